"""cobus as a real process: bytes pass through unchanged, closed stdout, Ctrl-C, SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _util_live import wait_for
from util import cobus_popen, run_cobus

ODD_BYTES = (
    b"plain python line\n"
    b"crlf python line\r\n"
    b"invalid utf-8 \xff\xfe\xc3 python\n"
    b"nul \x00 python \x00\n"
    b"no match here\n"
    + b"python"
    + b"x" * (10 * 1024 * 1024)
    + b"\n"  # a 10 MB line
    + b"last python line without newline"
)


@pytest.mark.skipif(shutil.which("grep") is None, reason="GNU grep not installed")
def test_bytes_pass_through_like_grep_a(tmp_path: Path) -> None:
    src = tmp_path / "odd.log"
    src.write_bytes(ODD_BYTES)
    ours = run_cobus(["run", f"cat {src} | grep python | print"])
    theirs = subprocess.run(["grep", "-a", "python", str(src)], capture_output=True, check=True)
    assert ours.returncode == 0, ours.stderr
    assert ours.stderr == b""
    assert ours.stdout == theirs.stdout


def test_cat_print_is_byte_identical(tmp_path: Path) -> None:
    src = tmp_path / "odd.log"
    src.write_bytes(ODD_BYTES + b"\n")
    ours = run_cobus(["run", f"cat {src} | print"])
    assert (ours.returncode, ours.stderr) == (0, b"")
    assert ours.stdout == src.read_bytes()


def test_closed_stdout_exits_quietly(tmp_path: Path) -> None:
    src = tmp_path / "big.log"
    src.write_bytes(b"python line of a big log\n" * 400_000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cobus", "run", f"cat {src} | grep python | print"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"python line of a big log\n"
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read()
    assert proc.wait(timeout=30) == 0
    assert err == b""


def _interrupt(sig: int, tmp_path: Path) -> tuple[int, bytes, bytes]:
    out = tmp_path / "out.log"
    proc = cobus_popen(["run", f"cat - | grep keep | write {out}"], stdin=subprocess.PIPE)
    assert proc.stdin is not None
    lines = b"".join(b"keep %d\n" % i for i in range(1000))
    proc.stdin.write(lines + b"drop\n")
    proc.stdin.flush()
    # Let it read and write what it read; the pipe stays open, so cobus is waiting.
    kept = len(lines)
    wait_for(lambda: out.exists() and out.stat().st_size == kept, 30, "the kept lines in the output")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err, out.read_bytes() if out.exists() else b""


def test_ctrl_c_flushes_sinks_and_exits_130(tmp_path: Path) -> None:
    code, err, written = _interrupt(signal.SIGINT, tmp_path)
    assert (code, err) == (130, b"")
    assert written == b"".join(b"keep %d\n" % i for i in range(1000))


def test_sigterm_flushes_sinks_and_exits_143(tmp_path: Path) -> None:
    code, err, written = _interrupt(signal.SIGTERM, tmp_path)
    assert (code, err) == (143, b"")
    assert written.count(b"\n") == 1000


def test_python_m_cobus_and_unbuffered_environment(tmp_path: Path) -> None:
    src = tmp_path / "a.log"
    src.write_bytes(b"a\nb\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "cobus", "run", f"cat {src} | count"],
        capture_output=True,
        env=env,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, b"2\n", b"")


def test_piped_stdin_delivers_each_line_at_once() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cobus", "run", "cat - | grep hit | print"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for i in range(3):
            proc.stdin.write(b"miss\nhit %d\n" % i)
            proc.stdin.flush()
            # readline blocks until cobus has written the line: no batching delay
            assert proc.stdout.readline() == b"hit %d\n" % i
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert proc.returncode == 0
