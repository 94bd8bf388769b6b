"""table streams: rows leave as they come, in bounded memory; a live window on a terminal."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from _util_live import wait_for
from util import run_cobus

from cobus.context import RunContext
from cobus.core import drain
from cobus.sinks.records import table
from cobus.sinks.table import SCREENFUL

_LINE = b'10.0.%d.%d - - [24/Feb/2008:00:08:59 -0600] "GET /p/%d.html HTTP/1.1" %d 512\n'


def apache_log(path: Path, rows: int) -> Path:
    path.write_bytes(b"".join(_LINE % (i >> 8 & 255, i & 255, i, 200 + i % 3) for i in range(rows)))
    return path


def piped(batches: list[list[dict[str, Any]]], **params: Any) -> str:
    out = io.BytesIO()
    drain(batches, table(ctx=RunContext(stdout=out), **params))
    return out.getvalue().decode()


def test_widths_come_from_the_first_screenful() -> None:
    first = [{"a": "x", "b": i} for i in range(SCREENFUL)]
    later = [{"a": "a much longer value", "b": "ü\u4e2d"}, {"a": "two\nlines", "b": True}]
    text = piped([first, later], fields=["a,b"], title="T")
    lines = text.splitlines()
    assert lines[:4] == ["T", "┏━━━┳━━━━┓", "┃ a ┃ b  ┃", "┡━━━╇━━━━┩"]
    assert lines[4] == "│ x │ 0  │" and lines[3 + SCREENFUL] == "│ x │ 99 │"
    # Later rows are never cut: a longer value widens its own row only.
    assert lines[-3:] == ["│ a much longer value │ ü中 │", "│ two\\nlines │ true │", "└───┴────┘"]


def test_no_records_with_fields_gives_an_empty_frame() -> None:
    assert piped([], fields=["id"]) == "┏━━━━┓\n┃ id ┃\n┡━━━━┩\n└────┘\n"
    assert piped([[], []]) == ""


def test_a_big_table_when_piped_stays_small(tmp_path: Path) -> None:
    log = apache_log(tmp_path / "big.log", 300_000)
    out = tmp_path / "table.out"
    probe = (
        "import resource, subprocess, sys\n"
        "with open(sys.argv[1], 'wb') as out:\n"
        "    code = subprocess.run(sys.argv[2:], stdout=out).returncode\n"
        "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    pipeline = f"cat {log} | parse apache | table host,status"
    done = subprocess.run(
        [sys.executable, "-c", probe, str(out), sys.executable, "-m", "cobus", "run", pipeline],
        capture_output=True,
        check=True,
        timeout=300,
    )
    code, peak_kb = map(int, done.stdout.split())
    assert code == 0, done.stderr
    # Held, 300k rows took ~450 MB; streamed, the run is as big as a short one.
    assert peak_kb < 150 * 1024, f"peak RSS {peak_kb // 1024} MB"
    with open(out, "rb") as f:
        head = [next(f) for _ in range(5)]
        f.seek(-200, os.SEEK_END)
        tail = f.read().decode(errors="ignore").splitlines()
    assert head[1] == "┃ host        ┃ status ┃\n".encode()
    assert head[3] == "│ 10.0.0.0    │ 200    │\n".encode()
    assert tail[-2:] == ["│ 10.0.147.223 │ 202    │", "└─────────────┴────────┘"]
    assert out.stat().st_size > 300_000 * 20


def test_rows_leave_before_the_input_ends(tmp_path: Path) -> None:
    log = tmp_path / "app.jsonl"
    log.write_bytes(b"".join(b'{"n": %d}\n' % i for i in range(SCREENFUL + 50)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "cobus", "run", f"follow --from-start {log} | parse json | table n"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    seen: list[bytes] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(proc.stdout.readline, b"")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any(b"\xe2\x94\x82 149 " in line for line in seen), timeout=30, what="row 149")
        with open(log, "ab") as f:
            f.write(b'{"n": 12345}\n')
        wait_for(lambda: any(b" 12345 " in line for line in seen), timeout=30, what="a later row")
        assert proc.poll() is None  # the follow goes on: these rows left while it runs
        assert seen[1] == "┃ n   ┃\n".encode() and seen[3] == "│ 0   │\n".encode()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        reader.join(timeout=10)


def test_the_cli_table_of_nothing_is_quiet() -> None:
    done = run_cobus(["run", "cat /dev/null | parse json | table"])
    assert (done.returncode, done.stdout) == (1, b"")  # 1: nothing reached a sink, as grep says


pexpect = pytest.importorskip("pexpect")


def _spawn(pipeline: str) -> Any:
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "80", "LINES": "24"}
    return pexpect.spawn(
        sys.executable, ["-m", "cobus", "run", pipeline], env=env, timeout=60, dimensions=(24, 80)
    )


def test_on_a_terminal_the_latest_rows_and_the_count(tmp_path: Path) -> None:
    data = tmp_path / "n.jsonl"
    data.write_text("".join(f'{{"n": "row{i}"}}\n' for i in range(5000)))
    child = _spawn(f"cat {data} | parse json | table n")
    child.expect(pexpect.EOF)
    child.close()
    screen = child.before
    assert child.exitstatus == 0, screen
    assert b"5,000 rows, the latest 17 shown" in screen
    final = screen[screen.rindex(b"row4983") :]  # the last frame: the 17 latest rows
    assert all(b"row%d" % i in final for i in range(4983, 5000))
    assert b"row4982 " not in final


def test_on_a_terminal_a_followed_table_is_redrawn_live(tmp_path: Path) -> None:
    log = tmp_path / "app.jsonl"
    log.write_text("".join(f'{{"n": "first{i}"}}\n' for i in range(3)))
    child = _spawn(f"follow --from-start {log} | parse json | table n")
    try:
        child.expect("3 rows", timeout=30)
        with open(log, "a") as f:
            f.write("".join(f'{{"n": "second{i}"}}\n' for i in range(40)))
        child.expect("second39", timeout=30)  # a frame: the latest rows, then the count
        child.expect("43 rows, the latest 17 shown", timeout=30)
        assert child.isalive()
    finally:
        child.kill(15)
        child.expect(pexpect.EOF, timeout=30)
        child.close()
