"""follow under the faults of issue 11: copytruncate bursts, directories, FIFOs, stdout, fd limits."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _util_live import Ctx, KernelThread, wait_for
from util import collect

from cobus.sources._inotify import Inotify
from cobus.sources.follow import _follow, follow


class Run:
    """One follow on a kernel thread; what it delivered and what it warned."""

    def __init__(self, paths: list[str], **options: Any) -> None:
        self.batches: list[bytes] = []
        self.ctx = Ctx()
        self.thread = KernelThread(follow(collect(self.batches), paths=paths, ctx=self.ctx, **options))

    def lines(self) -> list[bytes]:
        return b"".join(self.batches).splitlines()

    def wait_lines(self, n: int, timeout: float = 10.0) -> list[bytes]:
        wait_for(lambda: len(self.lines()) >= n, timeout, f"{n} lines (have {len(self.lines())})")
        return self.lines()


@pytest.fixture
def start() -> Iterator[Callable[..., Run]]:
    runs: list[Run] = []

    def start(*paths: Path | str, **options: Any) -> Run:
        run = Run([str(p) for p in paths], **options)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.thread.stop()


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


needs_inotify = pytest.mark.skipif(Inotify.open() is None, reason="no inotify here")


# -- truncation -----------------------------------------------------------------------


def test_copytruncate_then_a_burst_longer_than_the_old_file(
    tmp_path: Path, start: Callable[..., Run]
) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    run = start(log, interval=0.5, from_start=True)
    old = [b"old %d" % i for i in range(10)]
    append(log, b"".join(line + b"\n" for line in old))
    assert run.wait_lines(10) == old
    # What logrotate's copytruncate does, then a writer's burst at once, longer than
    # the old file and with uneven lines, so reading on at the old offset would cut one.
    shutil.copyfile(log, tmp_path / "app.log.1")
    burst = [b"new %d %s" % (i, b"x" * (i % 7)) for i in range(40)]
    with open(log, "r+b") as f:
        f.truncate(0)
        f.write(b"".join(line + b"\n" for line in burst))
    assert run.wait_lines(50) == old + burst
    assert run.ctx.warnings == [f"{log}: file truncated, reading it from the start"]


# -- directories ------------------------------------------------------------------------


def test_a_directory_among_the_names_is_skipped_with_one_notice(
    tmp_path: Path, start: Callable[..., Run]
) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "old").mkdir()
    log = tmp_path / "logs" / "app.log"
    log.write_bytes(b"")
    run = start(tmp_path / "logs", tmp_path / "logs" / "*", interval=0.02, from_start=True)
    append(log, b"still followed\n")
    assert run.wait_lines(1) == [b"still followed"]
    assert sorted(run.ctx.warnings) == sorted(
        [
            f"{tmp_path / 'logs'}: is a directory; skipped (followed again if it becomes a file)",
            f"{tmp_path / 'logs' / 'old'}: is a directory; skipped",
        ]
    )


def test_a_name_replaced_by_a_directory_is_skipped_then_followed_again(
    tmp_path: Path, start: Callable[..., Run]
) -> None:
    log, other = tmp_path / "app.log", tmp_path / "other.log"
    log.write_bytes(b"")
    other.write_bytes(b"")
    run = start(log, other, interval=0.02, from_start=True)
    append(log, b"one\n")
    run.wait_lines(1)
    log.unlink()
    log.mkdir()
    wait_for(lambda: run.ctx.warnings, 10, "the notice")
    append(other, b"two\n")
    assert run.wait_lines(2) == [b"one", b"two"]
    log.rmdir()
    log.write_bytes(b"three\n")
    assert run.wait_lines(3) == [b"one", b"two", b"three"]
    assert run.ctx.warnings == [f"{log}: is a directory; skipped (followed again if it becomes a file)"]
    assert run.thread.running


# -- FIFOs ------------------------------------------------------------------------------


def test_a_fifo_is_read_across_writers(tmp_path: Path, start: Callable[..., Run]) -> None:
    fifo = tmp_path / "feed"
    os.mkfifo(fifo)
    run = start(fifo, interval=0.02)
    for text in (b"first writer\n", b"second writer\n"):
        fd = os.open(fifo, os.O_WRONLY)  # blocks until follow has it open for reading
        os.write(fd, text)
        os.close(fd)
    assert run.wait_lines(2) == [b"first writer", b"second writer"]


# -- inotify -----------------------------------------------------------------------------


@needs_inotify
def test_inotify_wakes_a_follower_long_before_its_interval(tmp_path: Path, start: Callable[..., Run]) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    run = start(log, interval=60.0, from_start=True)
    wait_for(lambda: run.thread.running, 10)
    for i in range(3):  # each within far less than the 60 s poll
        append(log, b"line %d\n" % i)
        run.wait_lines(i + 1, timeout=20)


# -- as a process: stdout's reader goes away; many files ---------------------------------------


@pytest.mark.parametrize(
    "pipeline",
    ["follow --from-start {log} | print", "broadcast [follow --from-start {log}] [follow {log}.2] | print"],
    ids=["one-follow", "two-follows"],
)
def test_head_ends_cobus_at_once_on_a_quiet_file(tmp_path: Path, pipeline: str) -> None:
    log = tmp_path / "quiet.log"
    log.write_bytes(b"first\nsecond\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cobus", "run", pipeline.format(log=log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"first\n"
    proc.stdout.close()  # what head -1 does once it has its line; the file stays quiet
    try:
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
    assert proc.stderr is not None
    assert proc.stderr.read() == b""


def _limit_fds(soft: int, hard: int) -> Callable[[], None]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return limit


@pytest.mark.parametrize(
    ("soft", "hard"), [(1024, 1024), (1024, 8192)], ids=["fixed-limit", "raisable-limit"]
)
def test_two_thousand_files_under_a_limit_of_1024_descriptors(tmp_path: Path, soft: int, hard: int) -> None:
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < hard:
        pytest.skip("the hard limit here is lower")
    logs = tmp_path / "logs"
    logs.mkdir()
    n = 2_000
    for i in range(n):
        (logs / f"f{i:04}.log").write_bytes(b"")
    out = tmp_path / "out.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cobus", "run", f'follow --from-start "{logs}/*.log" | write {out}'],
        stderr=subprocess.PIPE,
        preexec_fn=_limit_fds(soft, hard),  # noqa: PLW1509 - this test starts no thread before
    )

    def lines() -> int:
        return out.read_bytes().count(b"\n") if out.exists() else 0

    try:
        wait_for(lambda: out.exists() or proc.poll() is not None, 30, "the run to start")
        for round_ in range(2):  # the second time, most files are closed and reopened by name
            for i in range(n):
                append(logs / f"f{i:04}.log", b"round %d file %d\n" % (round_, i))
            wait_for(lambda r=round_: lines() >= n * (r + 1) or proc.poll() is not None, 120, "every line")
        assert proc.poll() is None
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert err == b""
    got = sorted(out.read_bytes().splitlines())
    assert got == sorted(b"round %d file %d" % (r, i) for r in range(2) for i in range(n))


# -- without inotify: the polling fallback ---------------------------------------------------


def test_without_inotify_polling_sees_rotation_and_a_truncation_burst(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"")
    batches: list[bytes] = []
    ctx = Ctx()
    task = _follow(
        collect(batches),
        [str(log)],
        ctx,
        state=None,
        from_start=True,
        with_filename=False,
        interval=0.02,
        inotify=False,
    )
    thread = KernelThread(task)
    try:

        def lines() -> list[bytes]:
            return b"".join(batches).splitlines()

        append(log, b"one\ntwo\n")
        wait_for(lambda: len(lines()) == 2, 10, "the first lines")
        os.rename(log, tmp_path / "app.log.1")
        append(tmp_path / "app.log.1", b"three\n")  # the writer has not reopened yet
        log.write_bytes(b"four\n")
        wait_for(lambda: len(lines()) == 4, 10, "the rotated file's rest, then the new file")
        with open(log, "r+b") as f:  # copytruncate, then a burst longer than the old file
            f.truncate(0)
            f.write(b"".join(b"burst %d\n" % i for i in range(20)))
        wait_for(lambda: len(lines()) == 24, 10, "the burst")
        assert lines() == [b"one", b"two", b"three", b"four"] + [b"burst %d" % i for i in range(20)]
    finally:
        thread.stop()
