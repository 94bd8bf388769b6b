"""follow: tail -F on real files under tmp_path, driven on a kernel in a thread."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from _util_live import Ctx, KernelThread, wait_for, watches_file
from util import collect

from cobus.core import Done, Target, coroutine
from cobus.errors import SourceError, SpecError
from cobus.registry import registry
from cobus.sources.follow import follow
from cobus.spec.options import bind
from cobus.spec.parse import Word


class Run:
    """One follow running on a kernel thread, with what it delivered so far."""

    def __init__(self, paths: list[Path | str], **options: Any) -> None:
        self.batches: list[bytes] = []
        self.ctx = Ctx()
        options.setdefault("interval", 0.02)
        task = follow(collect(self.batches), paths=[str(p) for p in paths], ctx=self.ctx, **options)
        self.thread = KernelThread(task, name="follow")

    @property
    def data(self) -> bytes:
        return b"".join(self.batches)

    def lines(self) -> list[bytes]:
        return self.data.splitlines()

    def wait_lines(self, n: int, timeout: float = 10.0) -> list[bytes]:
        wait_for(lambda: len(self.lines()) >= n, timeout, f"{n} lines (have {len(self.lines())})")
        return self.lines()

    def stop(self) -> None:
        self.thread.stop()


@pytest.fixture
def start() -> Iterator[Callable[..., Run]]:
    runs: list[Run] = []

    def start(*paths: Path | str, **options: Any) -> Run:
        run = Run(list(paths), **options)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.stop()


def append(path: Path, text: str | bytes) -> None:
    with open(path, "ab") as f:
        f.write(text.encode() if isinstance(text, str) else text)


def numbered(start: int, stop: int) -> str:
    return "".join(f"line {i}\n" for i in range(start, stop))


def expect(start: int, stop: int) -> list[bytes]:
    return [f"line {i}".encode() for i in range(start, stop)]


def settle(run: Run) -> None:
    """Wait until the follow task has sent two more idle ticks (one every 0.25 s).

    Between two ticks every follower (polling every 20 ms here) has looked at
    its file, so whatever it does with what is on disk now is done: it has
    started at the end of its file, noticed a truncation, or sent a line.
    """
    ticks = run.batches.count(b"")
    wait_for(lambda: run.batches.count(b"") >= ticks + 2, what="two idle ticks")


# -- the basics -------------------------------------------------------------------


def test_starts_at_the_end_and_delivers_new_lines(tmp_path: Path, start: Callable[..., Run]) -> None:
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 3))
    run = start(log)
    settle(run)
    append(log, numbered(3, 6))
    assert run.wait_lines(3) == expect(3, 6)
    settle(run)
    assert run.lines() == expect(3, 6)


def test_from_start_reads_what_is_there(tmp_path: Path, start: Callable[..., Run]) -> None:
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 3))
    run = start(log, from_start=True)
    run.wait_lines(3)
    append(log, numbered(3, 4))
    assert run.wait_lines(4) == expect(0, 4)


def test_every_batch_is_whole_lines(tmp_path: Path, start: Callable[..., Run]) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    run = start(log)
    settle(run)
    append(log, "first half")
    settle(run)
    assert run.data == b""  # a partial line is held (idle ticks are empty batches)
    append(log, " and the rest\nnext\n")
    run.wait_lines(2)
    assert all(b.endswith(b"\n") for b in run.batches if b)
    assert run.lines() == [b"first half and the rest", b"next"]


def test_a_partial_last_line_is_flushed_at_exit(tmp_path: Path, start: Callable[..., Run]) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    run = start(log)
    settle(run)
    append(log, "complete\nno newline yet")
    run.wait_lines(1)
    run.stop()
    assert run.data == b"complete\nno newline yet\n"


def test_bytes_pass_unchanged(tmp_path: Path, start: Callable[..., Run]) -> None:
    log = tmp_path / "app.log"
    raw = b"\xff\xfe invalid utf8\r\n\x00nul\n" + b"x" * 300_000 + b"\n"
    log.write_bytes(raw)
    run = start(log, from_start=True)
    wait_for(lambda: run.data == raw, what="the raw bytes")


def test_with_filename_and_several_files(tmp_path: Path, start: Callable[..., Run]) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("")
    b.write_text("")
    run = start(a, b, with_filename=True)
    settle(run)
    append(a, "one\ntwo\n")
    run.wait_lines(2)
    append(b, "three\n")
    assert run.wait_lines(3) == [f"{a}:one".encode(), f"{a}:two".encode(), f"{b}:three".encode()]


# -- what happens to files --------------------------------------------------------


def test_rotation_by_rename_under_a_fast_writer(tmp_path: Path, start: Callable[..., Run]) -> None:
    """~5,000 lines/s, five renames: every line exactly once, in order."""
    log = tmp_path / "app.log"
    log.write_text("")
    run = start(log, from_start=True, interval=0.05)
    total, per_file = 12_000, 2_000

    def writer() -> None:
        out = open(log, "ab", buffering=0)
        began = time.monotonic()
        for i in range(total):
            if i and i % per_file == 0:
                out.close()
                os.rename(log, f"{log}.{i // per_file}")
                out = open(log, "ab", buffering=0)
            out.write(f"line {i}\n".encode())
            if i % 50 == 49:  # keep to ~5,000 lines/s
                time.sleep(max(0.0, began + (i + 1) / 5000 - time.monotonic()))
        out.close()

    w = threading.Thread(target=writer)
    w.start()
    w.join(60)
    assert len(list(tmp_path.glob("app.log.*"))) == 5
    lines = run.wait_lines(total, timeout=30)
    settle(run)
    assert run.lines() == expect(0, total)
    assert lines == expect(0, total)


def test_rotation_reads_the_rest_of_the_old_file_first(tmp_path: Path, start: Callable[..., Run]) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    run = start(log, interval=0.5)  # slow polls: the rename happens between two looks
    settle(run)
    old = open(log, "ab", buffering=0)
    old.write(b"old 1\n")
    run.wait_lines(1)
    old.write(b"old 2\nold 3 no newline")
    os.rename(log, tmp_path / "app.log.1")
    old.write(b" but finished\n")  # the writer has not reopened yet
    old.close()
    log.write_text("new 1\n")
    assert run.wait_lines(4) == [b"old 1", b"old 2", b"old 3 no newline but finished", b"new 1"]


def test_copytruncate_is_reported_once_and_read_from_zero(tmp_path: Path, start: Callable[..., Run]) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    run = start(log)
    settle(run)
    append(log, numbered(0, 5))
    run.wait_lines(5)
    with open(log, "r+b") as f:
        f.truncate(0)
    settle(run)
    append(log, "after 1\n")
    lines = run.wait_lines(6)
    settle(run)
    assert lines == [*expect(0, 5), b"after 1"]
    assert run.ctx.warnings == [f"{log}: file truncated, reading it from the start"]


def test_delete_and_recreate(tmp_path: Path, start: Callable[..., Run]) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    run = start(log)
    settle(run)
    append(log, "before\n")
    run.wait_lines(1)
    log.unlink()
    settle(run)
    log.write_text("after 1\nafter 2\n")
    assert run.wait_lines(3) == [b"before", b"after 1", b"after 2"]


def test_a_file_that_appears_late_is_read_from_its_start(tmp_path: Path, start: Callable[..., Run]) -> None:
    log = tmp_path / "late.log"
    run = start(log)
    settle(run)
    log.write_text("first\nsecond\n")
    assert run.wait_lines(2) == [b"first", b"second"]


def test_a_glob_picks_up_new_files(tmp_path: Path, start: Callable[..., Run]) -> None:
    a = tmp_path / "a.log"
    a.write_text("old, skipped\n")
    (tmp_path / "other.txt").write_text("")
    run = start(tmp_path / "*.log", with_filename=True)
    settle(run)
    append(a, "a new\n")
    run.wait_lines(1)
    b = tmp_path / "b.log"
    b.write_text("b from its start\n")  # found by the next rescan (within ~1 s)
    append(tmp_path / "other.txt", "never\n")
    assert run.wait_lines(2) == [f"{a}:a new".encode(), f"{b}:b from its start".encode()]


def test_downstream_done_ends_the_follow(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 10))
    got: list[bytes] = []

    @coroutine
    def first_batch() -> Target:
        got.append((yield))
        raise Done

    thread = KernelThread(follow(first_batch(), paths=[str(log)], from_start=True, ctx=Ctx()))
    thread.join(10)  # returns on its own
    assert got == [numbered(0, 10).encode()]


def test_interval_must_be_positive() -> None:
    spec = registry.lookup("follow", source=True)
    words = [Word(w, i, 1) for i, w in enumerate(["--interval", "0", "x.log"])]
    with pytest.raises(SpecError, match="more than 0"):
        bind(spec, words)


# -- --state ------------------------------------------------------------------------


def test_state_resumes_where_output_stopped(tmp_path: Path, start: Callable[..., Run]) -> None:
    log, state = tmp_path / "app.log", tmp_path / "cache" / "follow.state"
    log.write_text(numbered(0, 3))
    first = start(log, state=str(state), from_start=True)
    first.wait_lines(3)
    append(log, numbered(3, 5) + "partial")
    first.wait_lines(5)
    first.stop()
    assert first.lines() == expect(0, 5)  # with --state the partial line waits for the next run
    append(log, " line\n" + numbered(6, 8))  # written while cobus is down
    second = start(log, state=str(state), from_start=True)  # the saved offset wins
    lines = second.wait_lines(3)
    settle(second)
    assert lines == [b"partial line", *expect(6, 8)]
    saved = json.loads(state.read_text())["files"][str(log)]
    assert saved["offset"] <= log.stat().st_size


def test_state_is_checkpointed_while_running(tmp_path: Path, start: Callable[..., Run]) -> None:
    log, state = tmp_path / "app.log", tmp_path / "follow.state"
    log.write_text(numbered(0, 2))
    start(log, state=str(state), from_start=True)
    size = log.stat().st_size
    wait_for(
        lambda: state.exists() and json.loads(state.read_text())["files"][str(log)]["offset"] == size,
        what="a checkpoint",
    )
    assert not list(tmp_path.glob("*.tmp"))


def test_state_finds_a_file_rotated_while_down(tmp_path: Path, start: Callable[..., Run]) -> None:
    log, state = tmp_path / "app.log", tmp_path / "follow.state"
    log.write_text(numbered(0, 2))
    first = start(log, state=str(state), from_start=True)
    first.wait_lines(2)
    first.stop()
    append(log, numbered(2, 4))
    log.rename(tmp_path / "app.log.1")
    log.write_text(numbered(4, 6))
    second = start(log, state=str(state))
    lines = second.wait_lines(4)
    settle(second)
    assert lines == expect(2, 6)


def test_state_does_not_trust_a_reused_inode(tmp_path: Path, start: Callable[..., Run]) -> None:
    log, state = tmp_path / "app.log", tmp_path / "follow.state"
    log.write_text(numbered(0, 2))
    first = start(log, state=str(state), from_start=True)
    first.wait_lines(2)
    first.stop()
    with open(log, "r+b") as f:  # same inode, other content, longer than the saved offset
        f.write(b"another file entirely\n" + numbered(100, 103).encode())
    second = start(log, state=str(state))
    assert second.wait_lines(4) == [b"another file entirely", *expect(100, 103)]


def test_a_broken_state_file_is_an_error(tmp_path: Path) -> None:
    state = tmp_path / "follow.state"
    state.write_text("{not json")
    with pytest.raises(SourceError, match="not a follow state file"):
        follow(collect([]), paths=["x.log"], state=str(state), ctx=Ctx())


# -- speed ------------------------------------------------------------------------


def test_a_new_line_arrives_within_250_ms(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    arrived: list[float] = []

    @coroutine
    def stamp() -> Generator[None, bytes, None]:
        while True:
            batch = yield
            arrived.extend([time.monotonic()] * batch.count(b"\n"))

    thread = KernelThread(follow(stamp(), paths=[str(log)], ctx=Ctx()))  # default interval
    try:
        wait_for(lambda: watches_file(os.getpid(), log), what="follow to start at the end of the log")
        delays = []
        for i in range(20):
            sent = time.monotonic()
            append(log, f"line {i}\n")
            wait_for(lambda i=i: len(arrived) > i, 5)  # type: ignore[misc]
            delays.append(arrived[i] - sent)
            time.sleep(0.013 * (i % 7))  # pacing, not waiting: the next line comes at another phase
    finally:
        thread.stop()
    assert statistics.median(delays) < 0.25
    assert max(delays) < 1.0


def test_idle_follow_of_ten_files_uses_little_cpu(tmp_path: Path) -> None:
    logs = [tmp_path / f"{i}.log" for i in range(10)]
    for log in logs:
        log.write_text("x\n")
    batches: list[bytes] = []
    thread = KernelThread(follow(collect(batches), paths=[str(p) for p in logs], ctx=Ctx()))
    try:
        wait_for(lambda: b"" in batches, what="the first idle tick")  # every follower has started
        cpu = time.process_time()
        time.sleep(2)  # the time measured, not a wait for something to happen
        cpu = time.process_time() - cpu
    finally:
        thread.stop()
    assert cpu < 0.1  # under 5% of a core here; scripts/measure_follow.py measures it closely


# -- end to end: cobus as a process, ended by signals --------------------------------


_AS_FROM_A_TERMINAL = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('cobus', run_name='__main__')"
)


def start_cobus(pipeline: str) -> subprocess.Popen[bytes]:
    """``cobus run PIPELINE`` as a process that turns SIGINT into KeyboardInterrupt.

    A shell starts background jobs with SIGINT ignored and children inherit
    that, so the child installs Python's handler itself.
    """
    return subprocess.Popen(
        [sys.executable, "-c", _AS_FROM_A_TERMINAL, "run", pipeline],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def end_with(proc: subprocess.Popen[bytes], signum: int) -> tuple[int, bytes, bytes]:
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


def file_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines() if path.exists() else []


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_a_signal_ends_follow_cleanly(tmp_path: Path, signum: int, code: int) -> None:
    log, out = tmp_path / "app.log", tmp_path / "out.log"
    log.write_text(numbered(0, 3))
    proc = start_cobus(f"follow --from-start {log} | write {out}")
    try:
        wait_for(lambda: len(file_lines(out)) == 3, 30, "the first lines")
        append(log, "written later\nand a partial line")
        wait_for(lambda: len(file_lines(out)) == 4, 30, "the new line")
    finally:
        rc, stdout, stderr = end_with(proc, signum)
    assert (rc, stdout, stderr) == (code, b"", b"")
    assert file_lines(out) == [*expect(0, 3), b"written later", b"and a partial line"]


def test_sigterm_with_state_then_restart_loses_and_repeats_nothing(tmp_path: Path) -> None:
    log, out, state = tmp_path / "app.log", tmp_path / "out.log", tmp_path / "follow.state"
    log.write_text("")
    total = 2_000
    pipeline = f"follow --from-start --state {state} {log} | write -a {out}"
    written = threading.Event()

    def writer() -> None:  # ~600 lines/s, each in two writes so a line is often half there
        with open(log, "ab", buffering=0) as f:
            for i in range(total):
                f.write(b"line %d" % i)
                f.write(b"\n")
                if i % 6 == 5:
                    time.sleep(0.01)
        written.set()

    first = start_cobus(pipeline)
    try:
        wait_for(lambda: state.exists() or first.poll() is not None, 30, "the first checkpoint")
        w = threading.Thread(target=writer)
        w.start()
        wait_for(lambda: len(file_lines(out)) >= total // 4, 30, "a quarter of the lines")
    finally:
        rc1, _, err1 = end_with(first, signal.SIGTERM)
    down = log.stat().st_size
    wait_for(lambda: log.stat().st_size >= down + 1000 or written.is_set(), 30, "lines written while down")
    second = start_cobus(pipeline)
    try:
        wait_for(written.is_set, 60, "the writer")
        wait_for(lambda: len(file_lines(out)) >= total, 30, "every line")
        # Once the checkpoint covers the whole log, every line read was written: a duplicate is in out.
        wait_for(lambda: _saved_offset(state, log) == log.stat().st_size, 30, "the last checkpoint")
    finally:
        rc2, _, err2 = end_with(second, signal.SIGTERM)
    w.join(10)
    assert (rc1, err1, rc2, err2) == (143, b"", 143, b"")
    assert file_lines(out) == expect(0, total)


def _saved_offset(state: Path, log: Path) -> int | None:
    try:
        offset: int = json.loads(state.read_text())["files"][str(log)]["offset"]
    except (OSError, ValueError, KeyError):
        return None
    return offset


def test_an_idle_follow_sends_ticks(tmp_path: Path, start: Callable[..., Run]) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    run = start(log)
    wait_for(lambda: len(run.batches) >= 2, timeout=5)  # about four a second
    assert set(run.batches) == {b""}
