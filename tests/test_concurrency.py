"""Tests for threaded, subprocess and parallel (cobus.concurrency).

Pipelines run through the CLI (in-process with CliRunner, or as real
processes where a signal, a crash or the process table is involved). Crashes
on demand come from a test-only ``crash`` stage that is never shipped: its
module is written under tmp_path and loaded by a ``sitecustomize`` there, so
both the cobus process and its workers know it while this process does not.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _util_live import wait_for, waiting_in
from click.testing import Result
from util import cobus_popen

from cobus.concurrency import ThreadedStage
from cobus.context import RunContext
from cobus.core import coroutine
from cobus.spec import load
from cobus.spec.build import build

ROOT = Path(__file__).resolve().parents[1]
ACCESS_LOG = ROOT / "samples" / "access.log"

CRASH_STAGE = '''
"""Test only: a filter that fails on demand after AFTER batches."""
import os, signal, threading, time
from typing import Annotated
from cobus.core import coroutine
from cobus.registry import Arg, stage

@stage("crash")
@coroutine
def crash(target, *, mode: Annotated[str, Arg("raise|exit|kill|busy|warn")],
          after: int = 0, tag: str = "", ctx):
    """Pass batches on; after AFTER of them fail as MODE says."""
    seen = 0
    try:
        while True:
            batch = yield
            if seen == after:
                if mode == "raise":
                    raise RuntimeError("boom")
                if mode == "exit":
                    os._exit(3)
                if mode == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                if mode == "busy":
                    marks = os.environ.get("CRASH_MARKS")
                    if marks:  # say that this loop spins now
                        open(os.path.join(marks, f"{os.getpid()}.{threading.get_ident()}"), "w").close()
                    end = time.monotonic() + 60
                    while time.monotonic() < end:
                        pass
                if mode == "warn":
                    ctx.warn("crash warns")
            seen += 1
            target.send(batch)
    finally:
        target.close()
'''


@pytest.fixture
def crash_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose Python processes know the ``crash`` stage."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "cobus_crash_stage.py").write_text(CRASH_STAGE)
    (site / "sitecustomize.py").write_text("import cobus_crash_stage\n")
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    marks = tmp_path / "busy"  # one file per spinning `crash busy`
    marks.mkdir()
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", "CRASH_MARKS": str(marks)}


@pytest.fixture
def tag() -> str:
    """A word to find this test's processes by in the process table."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def numbered(tmp_path: Path) -> tuple[Path, bytes]:
    """A 5 MB file of numbered lines: cat cuts it into five or six batches."""
    data = b"".join(b"line %07d\n" % i for i in range(400_000))
    path = tmp_path / "numbered.log"
    path.write_bytes(data)
    return path, data


def cobus_process(args: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    kwargs.setdefault("timeout", 60)
    return subprocess.run(
        [sys.executable, "-m", "cobus", *args], check=False, capture_output=True, env=env, **kwargs
    )


def processes_with(word: str) -> list[int]:
    """Live processes whose command line holds ``word`` (zombies have none)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if word.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def children_of(pid: int) -> dict[int, str]:
    """Child pid -> state letter (Z for a zombie), from /proc."""
    kids = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if int(ppid) == pid:
                kids[int(entry.name)] = state
    return kids


@pytest.fixture
def no_stray_children() -> Iterator[None]:
    """The test leaves no child process of this one behind, zombie or alive."""
    before = set(children_of(os.getpid()))
    yield
    assert {p: s for p, s in children_of(os.getpid()).items() if p not in before} == {}


# -- what a user sees ----------------------------------------------------------


@pytest.mark.parametrize(
    "moved",
    [
        "threaded [grep -i python]",
        "subprocess [grep -i python]",
        "parallel 2 [grep -i python]",
        "parallel -u [grep -i python]",
    ],
)
def test_a_moved_branch_prints_what_the_inline_one_does(
    cli: Callable[..., Result], moved: str, no_stray_children: None
) -> None:
    inline = cli("run", f"cat {ACCESS_LOG} | grep -i python | print")
    result = cli("run", f"cat {ACCESS_LOG} | {moved} | print")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == inline.stdout and result.stdout.count("\n") == 170


@pytest.mark.parametrize("where", ["threaded", "subprocess"])
def test_a_branch_may_end_in_its_own_sinks(cli: Callable[..., Result], where: str) -> None:
    result = cli("run", f"cat {ACCESS_LOG} | {where} [broadcast [grep -i python | count] [head 2 | print]]")
    assert (result.exit_code, result.stderr) == (0, "")
    lines = ACCESS_LOG.read_text().splitlines(keepends=True)
    assert sorted(result.stdout.splitlines(keepends=True)) == sorted([*lines[:2], "170\n"])


@pytest.mark.parametrize(
    "moved", ["threaded [grep -v zzz]", "subprocess [grep -v zzz]", "parallel 3 [grep -v zzz]"]
)
def test_batches_keep_their_order(
    cli: Callable[..., Result], numbered: tuple[Path, bytes], moved: str
) -> None:
    path, data = numbered
    result = cli("run", f"cat {path} | {moved} | print")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout_bytes == data


def test_parallel_unordered_passes_every_line_once(
    cli: Callable[..., Result], numbered: tuple[Path, bytes]
) -> None:
    path, data = numbered
    result = cli("run", f"cat {path} | parallel 3 --unordered [grep -v zzz] | print")
    assert (result.exit_code, result.stderr) == (0, "")
    assert sorted(result.stdout_bytes.splitlines()) == data.splitlines()


@pytest.mark.parametrize(
    ("moved", "inline"),
    [
        (
            "records bus | threaded [where route=22 | csv id,route]",
            "records bus | where route=22 | csv id,route",
        ),
        (
            'records bus | subprocess [where route=22 | where direction="North Bound" | csv id,route]',
            'records bus | where route=22 | where direction="North Bound" | csv id,route',
        ),
        (
            "records bus | parallel 2 [where route=22] | csv id,route",
            "records bus | where route=22 | csv id,route",
        ),
        ("subprocess [records bus] | jsonl", "records bus | jsonl"),
        ("threaded [events] | head 40", "events | head 40"),
    ],
    ids=[
        "threaded-records",
        "subprocess-records",
        "parallel-records",
        "subprocess-events",
        "threaded-events",
    ],
)
def test_records_and_events_cross_too(cli: Callable[..., Result], moved: str, inline: str) -> None:
    xml = ROOT / "samples" / "buses.xml"
    expected = cli("run", f"xml {xml} | {inline}")
    assert expected.exit_code == 0 and expected.stdout.count("\n") > 1
    result = cli("run", f"xml {xml} | {moved}")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == expected.stdout


@pytest.mark.parametrize(
    "pipeline",
    [
        "cat {f} | threaded [grep -v zzz] | head 3",
        "cat {f} | threaded [head 3]",
        "cat {f} | subprocess [grep -v zzz] | head 3",
        "cat {f} | subprocess [head 3]",
        "cat {f} | parallel 2 [grep -v zzz] | head 3",
    ],
)
def test_enough_is_enough(cli: Callable[..., Result], numbered: tuple[Path, bytes], pipeline: str) -> None:
    path, _ = numbered
    result = cli("run", pipeline.format(f=path))
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout_bytes == b"line 0000000\nline 0000001\nline 0000002\n"


def test_the_workers_stderr_reaches_the_user(crash_env: dict[str, str]) -> None:
    proc = cobus_process(["run", f"cat {ACCESS_LOG} | subprocess [crash warn | count]"], crash_env)
    assert proc.returncode == 0
    assert proc.stdout == b"%d\n" % ACCESS_LOG.read_bytes().count(b"\n")
    assert proc.stderr == b"cobus: crash warns\n"


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        ("cat x | parallel 2 [grep a | print]", "parallel runs a branch of filters; print ends it"),
        ("cat x | threaded [grep a] [grep b]", "threaded takes exactly one [ branch ], not 2"),
        ("cat x | threaded --queue 0 [grep a]", "threaded: the queue holds at least 1 batch"),
        ("cat x | parallel 999 [grep a]", "parallel: parallel takes 1 to 256 workers"),
    ],
)
def test_misuse_is_a_spec_error(cli: Callable[..., Result], pipeline: str, message: str) -> None:
    for command in ("check", "run"):  # found when the pipeline is validated
        result = cli(command, pipeline)
        assert result.exit_code == 2
        assert result.stdout == ""
        assert result.stderr.startswith(f"cobus: error: {message}")


def test_stages_are_listed_with_help(cli: Callable[..., Result]) -> None:
    result = cli("stages", "parallel")
    assert (result.exit_code, result.stderr) == (0, "")
    assert "Share the batches among N worker processes" in result.stdout
    assert "--unordered" in result.stdout


# -- fan-in from threads, backpressure ------------------------------------------------


def test_two_threads_into_one_stage_never_collide() -> None:
    """broadcast [threaded [grep foo]] [threaded [grep bar]] | print, thousands of times.

    A tiny switch interval makes the threads swap inside the shared ``print``
    as often as possible; without fan-in's lock this fails within a few runs
    with "generator already executing".
    """
    graph = load("cat - | broadcast [threaded [grep foo]] [threaded [grep bar]] | print")
    batches = [b"foo %d\nbar %d\nfoo bar %d\nneither\n" % (i, i, i) for i in range(200)]
    foo = [line for b in batches for line in b.splitlines() if b"foo" in line]
    bar = [line for b in batches for line in b.splitlines() if b"bar" in line]
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(300):
            out = io.BytesIO()
            built = build(graph, RunContext(stdout=out))
            (target,) = built.targets
            for batch in batches:
                target.send(batch)
            target.close()
            lines = out.getvalue().splitlines()
            assert len(lines) == len(foo) + len(bar)
            # Each branch's own lines keep their order; lines with both words come twice.
            assert [x for x in lines if x.startswith(b"foo ") and b"bar" not in x] == [
                x for x in foo if b"bar" not in x
            ]
            assert [x for x in lines if x.startswith(b"bar ")] == [x for x in bar if x.startswith(b"bar ")]
            assert sorted(lines) == sorted(foo + bar)
    finally:
        sys.setswitchinterval(previous)


class _FakeBranch:
    """A branch for ThreadedStage made of a given generator function."""

    def __init__(self, make: Callable[[Any], Any]) -> None:
        self.text = "test"
        self._make = make

    def build(self, target: Any) -> Any:
        return self._make(target)


def test_a_slow_branch_slows_the_sender_and_memory_stays_bounded() -> None:
    gate = threading.Event()
    seen: list[bytes] = []

    @coroutine
    def slow(target: Any) -> Any:
        while True:
            batch = yield
            gate.wait()
            seen.append(batch)

    stage = ThreadedStage("threaded [test]", _FakeBranch(slow), None, capacity=2)  # type: ignore[arg-type]
    sent: list[int] = []

    def produce() -> None:
        for i in range(10):
            stage.send(b"%d\n" % i)
            sent.append(i)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    # One batch in the branch, two in the queue, the fourth send waits.
    wait_for(lambda: len(sent) == 3, 20)
    wait_for(lambda: waiting_in(producer, "wait", "threading.py"), 20, "the fourth send to wait")
    assert len(sent) == 3 and seen == []
    gate.set()
    producer.join(10)
    stage.close()
    assert seen == [b"%d\n" % i for i in range(10)]


# -- faults ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "cause"),
    [
        ("threaded [crash raise after=2 tag={tag}]", "RuntimeError: boom"),
        ("subprocess [crash raise after=2 tag={tag}]", "RuntimeError: boom"),
        ("subprocess [crash exit after=2 tag={tag}]", "the worker exited with status 3"),
        ("subprocess [crash kill after=2 tag={tag}]", "the worker was killed by SIGKILL"),
        ("parallel 2 [crash raise after=1 tag={tag}]", "RuntimeError: boom"),
    ],
    ids=["threaded-raise", "subprocess-raise", "subprocess-exit", "subprocess-sigkill", "parallel-raise"],
)
def test_a_crashing_branch_stops_the_pipeline_with_one_line(
    crash_env: dict[str, str], numbered: tuple[Path, bytes], tag: str, where: str, cause: str
) -> None:
    path, data = numbered
    stage = where.format(tag=tag)
    proc = cobus_process(["run", f"cat {path} | {stage} | print"], crash_env)
    assert proc.returncode == 1
    assert proc.stderr.decode() == f"cobus: error: {stage}: {cause}\n"
    # What the branch produced before it failed is written, whole lines only:
    # at least the first batch (cat cuts about 1 MiB at a line's end).
    first_batch = data[: data.rfind(b"\n", 0, 1 << 20) + 1]
    assert len(proc.stdout) >= len(first_batch)
    assert data.startswith(proc.stdout) and proc.stdout.endswith(b"\n")
    assert processes_with(tag) == []


def test_a_crash_inside_the_workers_own_sinks_flushes_them(
    crash_env: dict[str, str], numbered: tuple[Path, bytes], tag: str
) -> None:
    path, data = numbered
    stage = f"subprocess [crash raise after=2 tag={tag} | print]"
    proc = cobus_process(["run", f"cat {path} | {stage}"], crash_env)
    assert proc.returncode == 1
    assert proc.stderr.decode() == f"cobus: error: {stage}: RuntimeError: boom\n"
    assert len(proc.stdout) > 1 << 20 and data.startswith(proc.stdout)
    assert processes_with(tag) == []


def test_a_worker_killed_from_outside(tmp_path: Path) -> None:
    """SIGKILL a worker mid-run: the output so far is there, then one line, exit 1."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cobus", "run", "cat - | subprocess [grep a] | print"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(b"a1\nb1\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == b"a1\n"
    (worker,) = wait_for(lambda: list(children_of(proc.pid)), 20)
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: children_of(proc.pid).get(worker, "Z") == "Z", 20)
    try:
        proc.stdin.write(b"a2\n")
        proc.stdin.close()
    except BrokenPipeError:
        pass
    assert proc.wait(timeout=20) == 1
    assert proc.stdout.read() == b""
    assert proc.stderr.read() == b"cobus: error: subprocess [grep a]: the worker was killed by SIGKILL\n"
    assert not os.path.exists(f"/proc/{worker}")


def test_ctrl_c_stops_busy_threads_and_workers_at_once(
    crash_env: dict[str, str], numbered: tuple[Path, bytes], tag: str
) -> None:
    path, _ = numbered
    pipeline = (
        f"cat {path} | broadcast [threaded [crash busy after=1 tag={tag}]]"
        f" [subprocess [crash busy after=1 tag={tag}]] [parallel 2 [crash busy tag={tag}]] | count"
    )
    # Its own process group, as a shell gives a job; a terminal's Ctrl-C signals the group.
    proc = cobus_popen(["run", pipeline], env=crash_env, process_group=0)
    # Three workers spinning, plus the cobus process with its spinning thread.
    wait_for(lambda: len(processes_with(tag)) == 4, 20)
    marks = Path(crash_env["CRASH_MARKS"])
    wait_for(lambda: len(list(marks.iterdir())) == 4, 20, "the four loops to spin")
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    code = proc.wait(timeout=20)
    elapsed = time.monotonic() - started
    assert code == 130
    assert proc.stderr is not None and proc.stderr.read() == b""
    assert elapsed < 2.0, f"took {elapsed:.2f} s to stop"
    assert processes_with(tag) == []


def test_a_busy_worker_dies_with_a_killed_cobus(
    crash_env: dict[str, str], numbered: tuple[Path, bytes], tag: str
) -> None:
    """SIGKILL cobus itself: its worker, busy in a long batch, goes too (no orphan)."""
    path, _ = numbered
    proc = subprocess.Popen(
        [sys.executable, "-m", "cobus", "run", f"cat {path} | subprocess [crash busy tag={tag}] | count"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=crash_env,
    )
    wait_for(lambda: len(processes_with(tag)) == 2, 20)  # cobus and its spinning worker
    proc.kill()
    proc.wait(timeout=20)
    wait_for(lambda: processes_with(tag) == [], timeout=10)
