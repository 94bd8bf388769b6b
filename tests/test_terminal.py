"""Terminal behaviour for real: a progress bar under a pseudo-terminal, none when piped."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from util import run_cobus

pexpect = pytest.importorskip("pexpect")

ESCAPE = re.compile(rb"\x1b\[")


@pytest.fixture
def big_log(tmp_path: Path) -> Path:
    path = tmp_path / "big.log"
    path.write_bytes(b"python line of a log that is long enough to read a while\n" * 600_000)
    return path


def test_progress_bar_on_a_terminal(big_log: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.log"
    env = {**os.environ, "COBUS_PROGRESS_DELAY": "0", "COLUMNS": "100", "TERM": "xterm"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "cobus", "run", f"cat {big_log} | grep python | write {out}"],
        env=env,
        timeout=60,
    )
    child.expect(pexpect.EOF)
    child.close()
    screen = child.before
    assert child.exitstatus == 0, screen
    assert b"big.log" in screen  # the bar's description
    assert b"MB" in screen  # bytes done / total
    assert out.stat().st_size == big_log.stat().st_size


def test_no_escape_codes_when_piped(big_log: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.log"
    env = {"COBUS_PROGRESS_DELAY": "0"}
    done = run_cobus(["run", f"cat {big_log} | grep python | write {out}"], env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    bad = run_cobus(["run", "cat x | grpe y"], env=env)
    assert bad.returncode == 2
    assert not ESCAPE.search(bad.stderr)
    assert bad.stderr.startswith(b"cobus: error: unknown stage")


def test_errors_are_coloured_on_a_terminal() -> None:
    child = pexpect.spawn(
        sys.executable, ["-m", "cobus", "run", "cat x | grpe y"], env={**os.environ, "TERM": "xterm"}
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert ESCAPE.search(child.before)
    assert b"did you mean 'grep'" in child.before


def test_stats_are_live_on_a_terminal(tmp_path: Path) -> None:
    log, out = tmp_path / "app.log", tmp_path / "out.log"
    log.write_text("")
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    child = pexpect.spawn(
        sys.executable, ["-m", "cobus", "run", "--stats", f"follow {log} | grep x | write {out}"], env=env
    )
    # The follow never ends, so a table seen now was drawn while the run goes on.
    child.expect("own time", timeout=10)
    assert child.isalive()
    child.kill(15)
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    assert child.exitstatus == 143


def test_stats_at_the_end_when_piped(big_log: Path, tmp_path: Path) -> None:
    done = run_cobus(["run", "--stats", f"cat {big_log} | grep python | count"])
    assert done.returncode == 0
    assert done.stdout == b"600000\n"
    assert b"own time" in done.stderr
    assert not ESCAPE.search(done.stderr)


def test_output_lines_never_mix_with_the_progress_bar(tmp_path: Path) -> None:
    """stdout and the bar share one terminal: every line on the final screen is a whole output line."""
    pyte = pytest.importorskip("pyte")
    log = tmp_path / "big.log"
    filler = b"a line of a log that is long enough to be read for a while\n" * 4999
    with log.open("wb") as f:
        for i in range(120):
            f.write(filler + b"python %06d: the line that is printed\n" % i)
    rows, columns = 200, 120
    env = {**os.environ, "COBUS_PROGRESS_DELAY": "0", "TERM": "xterm"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "cobus", "run", f"cat {log} | grep python | print"],
        env=env,
        timeout=60,
        dimensions=(rows, columns),
    )
    child.expect(pexpect.EOF)
    child.close()
    raw = child.before
    assert child.exitstatus == 0, raw
    assert b"MB" in raw  # a bar was drawn in between
    screen = pyte.Screen(columns, rows)
    pyte.ByteStream(screen).feed(raw)
    lines = [line.rstrip() for line in screen.display if line.strip()]
    assert lines == [f"python {i:06d}: the line that is printed" for i in range(120)]


def test_output_lines_never_mix_with_live_stats(tmp_path: Path) -> None:
    """Lines trickle in for two seconds while --stats redraws its table on the same terminal."""
    pyte = pytest.importorskip("pyte")
    rows, columns = 100, 120
    feed = "for i in $(seq 10 49); do echo python $i; sleep 0.05; done"
    run = f"{sys.executable} -m cobus run --stats 'cat - | print'"
    child = pexpect.spawn(
        "sh",
        ["-c", f"{feed} | {run}"],
        env={**os.environ, "TERM": "xterm"},
        timeout=60,
        dimensions=(rows, columns),
    )
    child.expect(pexpect.EOF)
    child.close()
    raw = child.before
    assert child.exitstatus == 0, raw
    assert raw.count(b"own time") >= 2  # redrawn while the lines came, and once at the end
    screen = pyte.Screen(columns, rows)
    pyte.ByteStream(screen).feed(raw)
    lines = [line.rstrip() for line in screen.display if line.strip()]
    end = next(i for i, line in enumerate(lines) if "cobus --stats" in line)
    assert lines[:end] == [f"python {i}" for i in range(10, 50)]
