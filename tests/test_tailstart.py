"""_tailstart: where -n/-c output begins, in files (backwards, in blocks) and in streams, and follow -n."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from _util_live import Ctx, KernelThread, wait_for
from util import collect, run_cobus

from cobus.errors import SpecError
from cobus.registry import Word, registry
from cobus.sources import _tailstart
from cobus.sources._tailstart import Start, parse_count, pid_alive
from cobus.sources.follow import follow


def lines_of(data: bytes, delimiter: bytes = b"\n") -> list[bytes]:
    """The lines of ``data`` with their delimiters; a last line without one counts."""
    out, i = [], 0
    while i < len(data):
        j = data.find(delimiter, i)
        j = len(data) if j < 0 else j + 1
        out.append(data[i:j])
        i = j
    return out


def expected(data: bytes, start: Start) -> bytes:
    """What tail prints, worked out the plain way: the whole input in memory."""
    if start.unit == "bytes":
        if start.from_start:
            return data[max(start.count - 1, 0) :]
        return data[max(len(data) - start.count, 0) :] if start.count else b""
    lines = lines_of(data, start.delimiter)
    if start.from_start:
        return b"".join(lines[max(start.count - 1, 0) :])
    return b"".join(lines[-start.count :]) if start.count else b""


@pytest.mark.parametrize(
    ("text", "unit", "start"),
    [
        ("10", "lines", Start(10)),
        ("-3", "lines", Start(3)),
        ("+5", "lines", Start(5, "lines", True)),
        ("+0", "bytes", Start(0, "bytes", True)),
        ("2K", "bytes", Start(2048, "bytes")),
        ("1kB", "bytes", Start(1000, "bytes")),
        ("3b", "bytes", Start(1536, "bytes")),
        ("1M", "lines", Start(1 << 20)),
    ],
)
def test_parse_count_reads_tails_numbers(text: str, unit: str, start: Start) -> None:
    assert parse_count(text, unit) == start  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["abc", "3x", "", "+", "1.5", "--2"])
def test_parse_count_refuses_with_tails_wording(text: str) -> None:
    with pytest.raises(ValueError, match=r"^invalid number of lines: ") as info:
        parse_count(text, "lines")
    assert repr(text) in str(info.value)


def test_offset_and_select_agree_with_the_plain_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random contents and tiny blocks, so every boundary is crossed somewhere."""
    rng = random.Random(14)
    path = tmp_path / "f"
    for trial in range(1500):
        monkeypatch.setattr(_tailstart, "BLOCK_SIZE", rng.choice([1, 2, 3, 7, 64]))
        data = bytes(rng.choice(b"ab\n\r\0") for _ in range(rng.randint(0, 50)))
        delimiter = rng.choice([b"\n", b"\0"])
        start = Start(rng.randint(0, 14), rng.choice(["lines", "bytes"]), rng.random() < 0.4, delimiter)
        path.write_bytes(data)
        want = expected(data, start)
        with open(path, "rb") as f:
            assert data[start.offset(f.fileno(), len(data)) :] == want, (trial, data, start)
        cuts = sorted(rng.sample(range(len(data) + 1), k=min(3, len(data) + 1)))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        assert b"".join(start.select(iter(chunks))) == want, (trial, chunks, start)


def test_the_last_lines_of_a_huge_file_are_found_without_reading_it(tmp_path: Path) -> None:
    """10 GB (sparse) then 20 lines: -n 10 reads a few blocks, counted by the kernel in /proc/self/io."""
    io_file = Path("/proc/self/io")
    if not io_file.exists():
        pytest.skip("no /proc/self/io on this system")
    path = tmp_path / "huge.log"
    tail = b"".join(b"line %d\n" % i for i in range(20))
    with open(path, "wb") as f:
        f.truncate(10 << 30)
        f.seek(10 << 30)
        f.write(tail)

    def bytes_read() -> int:
        fields = dict(line.split(": ") for line in io_file.read_text().splitlines())
        return int(fields["rchar"])

    with open(path, "rb") as f:
        before = bytes_read()
        offset = Start(10).offset(f.fileno(), os.fstat(f.fileno()).st_size)
        read = bytes_read() - before
    assert offset == (10 << 30) + len(b"".join(lines_of(tail)[:10]))
    assert read < 1 << 20, f"read {read} bytes to find 10 lines"


def test_pid_alive_sees_a_process_end() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert pid_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not pid_alive(child.pid)


# -- follow -n / -c / --pid ---------------------------------------------------------


def test_follow_n_starts_with_the_last_lines_then_new_ones(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"".join(b"old %d\n" % i for i in range(1000)))
    batches: list[bytes] = []
    run = KernelThread(follow(collect(batches), paths=[str(path)], ctx=Ctx(), lines="3", interval=0.02))
    try:
        wait_for(lambda: b"".join(batches).count(b"\n") >= 3, what="the last 3 lines")
        with open(path, "ab") as f:
            f.write(b"new 1\n")
        wait_for(lambda: b"new 1\n" in b"".join(batches), what="the new line")
    finally:
        run.stop()
    assert b"".join(batches) == b"old 997\nold 998\nold 999\nnew 1\n"


@pytest.mark.parametrize(("options", "want"), [({"lines": "+3"}, b"c\nd\n"), ({"bytes": "5"}, b"\nc\nd\n")])
def test_follow_from_line_k_and_last_bytes(tmp_path: Path, options: dict[str, str], want: bytes) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"a\nb\nc\nd\n")
    batches: list[bytes] = []
    run = KernelThread(follow(collect(batches), paths=[str(path)], ctx=Ctx(), interval=0.02, **options))
    try:
        wait_for(lambda: b"".join(batches).endswith(b"d\n"), what="the file's end")
    finally:
        run.stop()
    assert b"".join(batches) == want


def test_follow_pid_ends_after_reading_all_the_process_wrote(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"")
    with open(path, "wb") as out:
        writer = subprocess.Popen(
            [sys.executable, "-c", "import time\nfor i in range(50): print(i, flush=True)\ntime.sleep(60)"],
            stdout=out,
        )
    batches: list[bytes] = []
    run = KernelThread(
        follow(collect(batches), paths=[str(path)], ctx=Ctx(), lines="+1", pid=writer.pid, interval=0.02)
    )
    try:
        want = b"".join(b"%d\n" % i for i in range(50))
        wait_for(lambda: path.stat().st_size == len(want), what="the writer's 50 lines")
        assert run.running
        writer.kill()
        writer.wait()
        wait_for(lambda: not run.running, what="follow to end")
    finally:
        run.stop()
    assert b"".join(batches) == want


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("follow -n abc x", "invalid number of lines: 'abc'"),
        ("follow -c 1Q2 x", "invalid number of bytes: '1Q2'"),
        ("follow -n 3 --from-start x", "give only one of -n, -c and --from-start"),
        ("follow --pid 0 x", "--pid must be a process id"),
    ],
)
def test_follow_refuses_bad_counts(text: str, message: str) -> None:
    spec = registry.lookup("follow", source=True)
    words = [Word(w, i, len(w)) for i, w in enumerate(text.split()[1:])]
    with pytest.raises(SpecError, match=message):
        spec.bind(words)


def test_follow_n_in_a_pipeline(tmp_path: Path) -> None:
    """`follow -n 2 --pid` from the command line: the last lines, then the run ends by itself."""
    path = tmp_path / "app.log"
    path.write_bytes(b"one\ntwo\nthree\n")
    sleeper = subprocess.Popen([sys.executable, "-c", "pass"])
    sleeper.wait()
    r = run_cobus(["run", f"follow -n 2 --pid {sleeper.pid} {path} | print"])
    assert (r.returncode, r.stdout, r.stderr) == (0, b"two\nthree\n", b"")


def test_follow_pid_empties_a_fifo_then_ends(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    batches: list[bytes] = []
    done = tmp_path / "written"
    code = (
        "import sys, time\nf = open(sys.argv[1], 'w')\n"
        "for i in range(5): print(i, file=f, flush=True)\nopen(sys.argv[2], 'w').close()\ntime.sleep(60)"
    )
    writer = subprocess.Popen([sys.executable, "-c", code, str(fifo), str(done)])
    run = KernelThread(follow(collect(batches), paths=[str(fifo)], ctx=Ctx(), pid=writer.pid, interval=0.02))
    try:
        wait_for(done.exists, what="the writer to have written its 5 lines")
        assert run.running
    finally:
        writer.kill()
        writer.wait()
    try:
        wait_for(lambda: not run.running, what="follow to end")
    finally:
        run.stop()
    assert b"".join(batches) == b"0\n1\n2\n3\n4\n"
