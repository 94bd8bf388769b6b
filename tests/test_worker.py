"""The worker process as its parent sees it: ``cobus worker`` spoken to in frames.

Frames are built and read here from the layout :mod:`cobus.wire` documents
(one kind byte, a 4-byte big-endian length, the payload), not with its
helpers, so these tests hold the protocol itself still. Each worker is a real
``python -m cobus worker`` process: records and events in and out, delivery
barriers, output printed per batch with ``--live``, a branch that fails half
way, a worker that dies with its parent, and a failing worker seen from
``cobus run``.
"""

from __future__ import annotations

import json
import os
import select
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import pytest
from _util_live import wait_for
from util import SAMPLES, run_cobus

HEADER = struct.Struct(">cI")


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def as_json(kind: bytes, items: list[Any]) -> bytes:
    return frame(kind, json.dumps(items).encode())


def read_frames(stream: IO[bytes]) -> list[tuple[bytes, bytes]]:
    out = []
    while header := stream.read(HEADER.size):
        kind, size = HEADER.unpack(header)
        payload = stream.read(size)
        assert len(payload) == size, "a frame cut short"
        out.append((kind, payload))
    return out


def worker(
    branch: str, *frames: bytes, kind: str = "lines", live: bool = False
) -> tuple[int, list[Any], str]:
    """Run ``cobus worker`` over ``frames``: its exit code, its answers (JSON decoded) and stderr."""
    r, w = os.pipe()
    args = ["worker", "--kind", kind, "--out-fd", str(w), *(["--live"] if live else []), "--", branch]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cobus", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=(w,),
    )
    os.close(w)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    with open(r, "rb") as out:
        try:
            proc.stdin.write(b"".join(frames))
            proc.stdin.close()
        except BrokenPipeError:
            pass
        answers = read_frames(out)
    assert proc.stdout.read() == b""  # the worker's own stdout carries nothing
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=60)
    decoded = [(k, json.loads(p) if k in b"RVE" else p) for k, p in answers]
    return code, decoded, err


def test_records_in_records_out() -> None:
    records = [{"host": "a", "status": 404}, {"host": "b", "status": 200}, {"host": "c", "status": 404}]
    code, out, err = worker("where status=404", as_json(b"R", records), kind="records")
    assert (code, err) == (0, "")
    assert out == [(b"R", [records[0], records[2]]), (b"S", b""), (b"Z", b"")]


def test_events_in_records_out() -> None:
    events = [
        ["start", "buses", {}],
        ["start", "bus", {"id": "7"}],
        ["start", "route", {}],
        ["text", "22"],
        ["end", "route"],
        ["end", "bus"],
        ["end", "buses"],
    ]
    code, out, err = worker("records bus", as_json(b"V", events), kind="events")
    assert (code, err) == (0, "")
    assert out == [(b"R", [{"@id": "7", "route": "22"}]), (b"S", b""), (b"Z", b"")]


def test_a_batch_with_nothing_left_is_answered_by_its_sync_alone() -> None:
    code, out, err = worker("grep zzz", frame(b"L", b"a\n"), frame(b"L", b""), frame(b"L", b"zzz\n"))
    assert (code, err) == (0, "")
    assert out == [(b"S", b""), (b"S", b""), (b"L", b"zzz\n"), (b"S", b""), (b"Z", b"")]


def test_a_barrier_is_answered_in_order() -> None:
    code, out, err = worker("grep a", frame(b"L", b"a\n"), frame(b"B"), frame(b"L", b"ab\n"), frame(b"B"))
    assert (code, err) == (0, "")
    assert out == [
        (b"L", b"a\n"),
        (b"S", b""),
        (b"A", b"1"),
        (b"L", b"ab\n"),
        (b"S", b""),
        (b"A", b"1"),
        (b"Z", b""),
    ]


def test_what_the_sinks_print_comes_back_before_the_sync_of_its_batch() -> None:
    batches = [frame(b"L", b"a1\n"), frame(b"L", b"b\n"), frame(b"L", b"a2\n")]
    for live in (False, True):
        code, out, err = worker("grep a | print", *batches, live=live)
        assert (code, err) == (0, "")
        assert out == [(b"O", b"a1\n"), (b"S", b""), (b"S", b""), (b"O", b"a2\n"), (b"S", b""), (b"Z", b"")]
    code, out, err = worker("grep a | count", *batches)  # an aggregate prints once, at the end
    assert (code, err) == (0, "")
    assert out == [(b"S", b""), (b"S", b""), (b"S", b""), (b"O", b"2\n"), (b"Z", b"")]


def test_a_branch_that_fails_half_way() -> None:
    good = (SAMPLES / "access.log").read_bytes().splitlines(keepends=True)[0]
    code, out, err = worker("parse apache --strict", frame(b"L", good), frame(b"L", b"garbage\n"))
    assert (code, err) == (1, "")
    (kind, first), sync, (error, message) = out
    assert (kind, sync, error) == (b"R", (b"S", b""), b"E")
    assert first[0]["host"] == good.split()[0].decode()
    assert message == {"message": "parse apache: line 2 does not parse: 'garbage'"}


def test_a_worker_dies_with_the_process_that_started_it() -> None:
    """SIGKILL its parent while the worker waits for input that never ends: it goes too."""
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    middle_code = (
        "import subprocess, sys, time\n"
        "i, o = int(sys.argv[1]), sys.argv[2]\n"
        "args = [sys.executable, '-m', 'cobus', 'worker', '--kind', 'lines', '--out-fd', o, '--', 'grep a']\n"
        "p = subprocess.Popen(args, stdin=i, pass_fds=(int(o),))\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    middle = subprocess.Popen(
        [sys.executable, "-c", middle_code, str(stdin_r), str(out_w)],
        stdout=subprocess.PIPE,
        pass_fds=(stdin_r, out_w),
    )
    os.close(stdin_r)
    os.close(out_w)
    assert middle.stdout is not None
    worker_pid = int(middle.stdout.readline())
    with open(stdin_w, "wb", buffering=0) as to_worker, open(out_r, "rb", buffering=0) as answers:
        to_worker.write(frame(b"B"))
        assert answers.read(HEADER.size + 1) == frame(b"A", b"1")  # it runs, past its start-up
        middle.kill()
        middle.wait(timeout=30)
        # The worker held the only other end of its answer pipe: EOF means it is gone,
        # although its input is still open here.
        deadline = time.monotonic() + 30
        while select.select([answers], [], [], max(0.0, deadline - time.monotonic()))[0]:
            if answers.read(1) == b"":
                break
        else:
            pytest.fail("the worker outlived its parent by 30 s")
    wait_for(lambda: _state(worker_pid) in (None, "Z"), 30, "the worker to be dead")


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def test_a_failing_worker_fails_the_run(tmp_path: Path) -> None:
    log = tmp_path / "mixed.log"
    good = (SAMPLES / "access.log").read_bytes().splitlines(keepends=True)[:3]
    log.write_bytes(b"".join(good) + b"garbage\n")
    done = run_cobus(["run", f"cat {log} | subprocess [parse apache --strict] | count"])
    assert done.returncode == 1
    assert done.stderr == (
        b"cobus: error: subprocess [parse apache --strict]: parse apache: line 4 does not parse: 'garbage'\n"
    )
