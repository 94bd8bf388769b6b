"""Tests for cobus.concurrency.wire (the frames) and the worker's side of it.

Frames are checked in memory; the worker runs as a real ``python -m cobus
worker`` process fed through its stdin, answering on an extra pipe fd.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from cobus.concurrency import wire


def frames(data: bytes) -> list[tuple[bytes, bytes]]:
    stream = io.BytesIO(data)
    out = []
    while (frame := wire.read_frame(stream)) is not None:
        out.append(frame)
    return out


def framed(*pairs: tuple[bytes, bytes]) -> bytes:
    buf = io.BytesIO()
    writer = wire.FrameWriter(buf)
    for kind, payload in pairs:
        writer.write(kind, payload)
    return buf.getvalue()


# -- frames in memory ----------------------------------------------------------


def test_frame_layout_is_kind_length_payload() -> None:
    assert framed((wire.LINES, b"a\nb\n")) == b"L\x00\x00\x00\x04a\nb\n"
    assert framed((wire.SYNC, b"")) == b"S\x00\x00\x00\x00"


def test_large_payload_round_trips() -> None:
    block = b"x" * 99 + b"\n"
    payload = block * 50_000  # 5 MB: written through, read in pieces
    assert frames(framed((wire.LINES, payload), (wire.END, b""))) == [(wire.LINES, payload), (wire.END, b"")]


@pytest.mark.parametrize(
    "batch",
    [
        b"one\ntwo\r\n\xff\xfe not utf-8\n",
        [{"id": "1", "route": "22"}, {"name": "caf\u00e9", "n": 3, "nested": {"a": [1, 2]}}],
        [("start", "bus", {"id": "7"}), ("end", "bus")],
    ],
    ids=["lines", "records", "events"],
)
def test_batches_round_trip(batch: object) -> None:
    kind, payload = wire.encode_batch(batch)
    decoded = wire.decode_batch(kind, payload)
    if isinstance(batch, list) and batch and isinstance(batch[0], tuple):
        # An event's own tuple comes back; tuples inside it arrive as lists.
        assert decoded == [tuple(json.loads(json.dumps(e))) for e in batch]
    else:
        assert decoded == batch


def test_records_with_values_json_cannot_hold_arrive_as_text() -> None:
    kind, payload = wire.encode_batch([{"when": Path("/x"), "raw": b"ab"}])
    assert kind == wire.RECORDS
    assert wire.decode_batch(kind, payload) == [{"when": "/x", "raw": "b'ab'"}]


def test_error_frames_round_trip() -> None:
    assert wire.decode_error(wire.encode_error("grep: bad \u00e9")) == "grep: bad \u00e9"
    with pytest.raises(wire.WireError, match="must hold"):
        wire.decode_error(b'{"msg": "x"}')


def test_clean_end_of_stream_is_none() -> None:
    assert wire.read_frame(io.BytesIO(b"")) is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"L\x00\x00", "inside a frame header"),
        (b"L\x00\x00\x00\x09abc\n", r"inside a L frame \(4 of 9 bytes\)"),
        (b"X\x00\x00\x00\x00", "unknown frame kind"),
        # A forged length costs nothing: only the bytes really sent are read.
        (b"L\xff\xff\xff\xffab\n", "inside a L frame"),
    ],
    ids=["short-header", "short-payload", "unknown-kind", "forged-length"],
)
def test_malformed_frames_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(wire.WireError, match=message):
        wire.read_frame(io.BytesIO(data))


@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        (wire.LINES, b"no newline", "must end with a newline"),
        (wire.RECORDS, b"[1, 2]", "array of objects"),
        (wire.RECORDS, b'{"a": 1}', "JSON array"),
        (wire.RECORDS, b"[{]", "bad JSON"),
        (wire.EVENTS, b'[{"a": 1}]', "array of arrays"),
        (wire.SYNC, b"", "not a batch"),
    ],
)
def test_bad_batches_are_refused(kind: bytes, payload: bytes, message: str) -> None:
    with pytest.raises(wire.WireError, match=message):
        wire.decode_batch(kind, payload)


def test_only_batches_can_be_encoded() -> None:
    with pytest.raises(wire.WireError, match="cannot send a dict"):
        wire.encode_batch({"a": 1})


# -- the worker process ------------------------------------------------------------


def run_worker(branch: str, stdin: bytes, kind: str = "lines") -> tuple[int, list[tuple[bytes, bytes]], str]:
    """Run ``cobus worker`` on raw stdin bytes; its exit code, output frames and stderr."""
    r, w = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cobus", "worker", "--kind", kind, "--out-fd", str(w), "--", branch],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=(w,),
    )
    os.close(w)
    assert proc.stdin is not None and proc.stderr is not None
    with open(r, "rb") as out:
        try:
            proc.stdin.write(stdin)
            proc.stdin.close()
        except BrokenPipeError:  # a worker that stopped early
            pass
        answer = out.read()
    err = proc.stderr.read()
    return proc.wait(timeout=60), frames(answer), err.decode()


def test_worker_runs_a_branch_and_answers_each_batch() -> None:
    stdin = framed((wire.LINES, b"a1\nb1\n"), (wire.LINES, b"b2\n"), (wire.LINES, b"a3\n"))
    code, out, err = run_worker("grep a", stdin)
    assert (code, err) == (0, "")
    assert out == [
        (wire.LINES, b"a1\n"),
        (wire.SYNC, b""),
        (wire.SYNC, b""),
        (wire.LINES, b"a3\n"),
        (wire.SYNC, b""),
        (wire.END, b""),
    ]


def test_worker_sinks_print_through_stdout_frames() -> None:
    code, out, err = run_worker("grep a | count", framed((wire.LINES, b"a\nb\na\n")))
    assert (code, err) == (0, "")
    assert out == [(wire.SYNC, b""), (wire.STDOUT, b"2\n"), (wire.END, b"")]


def test_worker_says_when_its_branch_wants_no_more() -> None:
    stdin = framed((wire.LINES, b"a\nb\n"), (wire.LINES, b"c\n"))
    code, out, err = run_worker("head 1", stdin)
    assert (code, err) == (0, "")
    assert out == [
        (wire.LINES, b"a\n"),
        (wire.QUIT, b""),
        (wire.SYNC, b""),
        (wire.SYNC, b""),
        (wire.END, b""),
    ]


def test_worker_reports_a_failing_branch_in_an_error_frame(tmp_path: Path) -> None:
    code, out, err = run_worker(f"write {tmp_path}/no/such/dir/x", b"")
    assert code == 1
    assert err == ""
    assert out == [(wire.ERROR, wire.encode_error(f"{tmp_path}/no/such/dir/x: No such file or directory"))]


@pytest.mark.parametrize(
    "stdin",
    [b"L\x00\x00\x00\x03ab", b"?\x00\x00\x00\x00", b"R\x00\x00\x00\x03[1]"],
    ids=["truncated", "unknown-kind", "not-records"],
)
def test_worker_exits_non_zero_on_a_malformed_frame(stdin: bytes) -> None:
    code, out, err = run_worker("grep a", stdin, kind="any")
    assert code == 2
    assert err.startswith("cobus worker: malformed frame: ") and err.count("\n") == 1
    assert out[-1][0] == wire.ERROR
    assert wire.decode_error(out[-1][1]).startswith("malformed frame: ")


class _Evil:
    """Unpickling this would create a file: a worker must never do it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


def test_worker_never_unpickles_what_it_is_sent(tmp_path: Path) -> None:
    planted = tmp_path / "planted"
    payload = pickle.dumps([_Evil(planted)])
    stdin = struct.pack(">cI", wire.RECORDS, len(payload)) + payload
    code, out, err = run_worker("head 5", stdin, kind="records")
    assert code == 2
    assert "bad JSON" in err
    assert out[-1][0] == wire.ERROR
    assert not planted.exists()


def test_worker_rejects_bad_arguments() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cobus", "worker", "--kind", "bytes", "grep a"],
        check=False,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert b"invalid choice: 'bytes'" in proc.stderr
