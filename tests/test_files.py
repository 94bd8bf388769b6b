"""cat: files in order, compressed files, stdin, very long lines, errors naming the path."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import subprocess
import sys
from pathlib import Path

import pytest
from util import needs_data

from cobus.inputs import line_blocks


class Trickle(io.RawIOBase):
    """A real raw stream that hands out its bytes a few at a time, like a slow pipe."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.pos, self.step = data, 0, step

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        n = min(len(b), self.step, len(self.data) - self.pos)
        b[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


def blocks(data: bytes, *, step: int, size: int) -> list[bytes]:
    return list(line_blocks(Trickle(data, step), "t", size))


def test_blocks_keep_lines_whole_and_add_a_final_newline() -> None:
    out = blocks(b"abc\ndef\ngh", step=2, size=4)
    assert b"".join(out) == b"abc\ndef\ngh\n"
    assert all(b == b"" or b.endswith(b"\n") for b in out)


def test_a_read_that_ends_no_line_yields_an_empty_block() -> None:
    assert blocks(b"abcdef\n", step=3, size=64) == [b"", b"", b"abcdef\n"]


@pytest.mark.parametrize("step", [1, 3, 7, 64, 4096])
@pytest.mark.parametrize("size", [1, 2, 16, 1 << 20])
def test_any_read_size_and_buffer_size_give_the_same_lines(step: int, size: int) -> None:
    data = b"".join(b"%d %s\n" % (i, b"x" * (i * 7 % 50)) for i in range(300)) + b"long " * 100
    out = blocks(data, step=step, size=size)
    assert b"".join(out) == data + b"\n"
    assert all(b == b"" or b.endswith(b"\n") for b in out)


def file_blocks(path: Path, size: int) -> list[bytes]:
    with open(path, "rb", buffering=0) as f:
        return list(line_blocks(f, str(path), size))


@pytest.mark.parametrize("size", [1, 5, 16, 100, 1 << 13, (1 << 13) + 7, 1 << 20])
@pytest.mark.parametrize("tail", [b"", b"no newline at the end"])
def test_a_regular_file_gives_the_same_lines_as_a_pipe(tmp_path: Path, size: int, tail: bytes) -> None:
    # Lines short and long: longer than the block, longer than the probe, around them.
    lengths = [0, 1, 3, 15, 16, 17, 99, 100, 5000, 8191, 8192, 9000, 20000, 1 << 20]
    data = b"".join(b"%d:" % i + b"x" * n + b"\n" for i, n in enumerate(lengths * 2)) + tail
    path = tmp_path / "f.log"
    path.write_bytes(data)
    out = file_blocks(path, size)
    assert b"".join(out) == data + (b"\n" if tail else b"")
    assert all(b == b"" or b.endswith(b"\n") for b in out)


def test_a_regular_file_is_read_in_whole_lines_of_at_most_a_block(tmp_path: Path) -> None:
    lines = [b"line %d %s\n" % (i, b"y" * (i % 37)) for i in range(5000)]
    path = tmp_path / "f.log"
    path.write_bytes(b"".join(lines))
    out = file_blocks(path, 4096)
    assert b"".join(out) == b"".join(lines)
    assert all(0 < len(b) <= 4096 and b.endswith(b"\n") for b in out)
    assert len(out) <= 2 * len(b"".join(lines)) // 4096 + 1


def test_an_empty_regular_file_gives_no_block(tmp_path: Path) -> None:
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    assert file_blocks(path, 64) == []


def test_a_regular_file_that_grows_while_read_is_read_to_its_new_end(tmp_path: Path) -> None:
    path = tmp_path / "growing.log"
    path.write_bytes(b"a" * 50 + b"\n" + b"b" * 50 + b"\n")
    with open(path, "rb", buffering=0) as f:
        blocks = line_blocks(f, str(path), 64)
        first = next(blocks)
        with open(path, "ab") as w:
            w.write(b"c" * 10 + b"\nlast, half")
        rest = list(blocks)
        position = f.tell()
    assert first + b"".join(rest) == b"a" * 50 + b"\n" + b"b" * 50 + b"\n" + b"c" * 10 + b"\nlast, half\n"
    assert position == path.stat().st_size


def test_stdin_redirected_from_a_file_is_read_from_its_position(tmp_path: Path) -> None:
    path = tmp_path / "f.log"
    path.write_bytes(b"skip me\npython one\nperl\npython two")
    with open(path, "rb", buffering=0) as f:
        f.seek(8)  # what a shell script read before: cobus starts where it stopped
        run = subprocess.run(
            [sys.executable, "-m", "cobus", "run", "cat - | grep python | print"],
            stdin=f,
            capture_output=True,
            check=False,
        )
    assert (run.returncode, run.stdout, run.stderr) == (0, b"python one\npython two\n", b"")


def test_several_files_in_order_and_compressed(cli, tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(b"one\ntwo")  # no final newline
    with gzip.open(tmp_path / "b.log.gz", "wb") as f:
        f.write(b"three\n")
    with bz2.open(tmp_path / "c.log.bz2", "wb") as f:
        f.write(b"four\n")
    with lzma.open(tmp_path / "d.log.xz", "wb") as f:
        f.write(b"five\n")
    files = [str(tmp_path / n) for n in ("a.log", "b.log.gz", "c.log.bz2", "d.log.xz")]
    result = cli("run", f"cat {' '.join(files)} | print")
    assert result.exit_code == 0
    assert result.stdout_bytes == b"one\ntwo\nthree\nfour\nfive\n"
    assert result.stderr == ""


def test_stdin(cli) -> None:
    result = cli("run", "cat - | grep py | print", input=b"python\nperl\npypy\n")
    assert (result.exit_code, result.stdout_bytes, result.stderr) == (0, b"python\npypy\n", "")


def test_real_gzip_and_bzip2_equal_the_plain_log(cli) -> None:
    plain = cli("run", f"cat {needs_data('access-log')} | grep -v ' 404 ' | print")
    for name in ("access-log-0108.gz", "access-log-0108.bz2"):
        packed = cli("run", f"cat {needs_data(name)} | grep -v ' 404 ' | print")
        assert packed.exit_code == 0
        assert packed.stdout_bytes == plain.stdout_bytes
    assert plain.stdout_bytes.count(b"\n") == 7298 - 2053


def test_missing_file_keeps_what_came_before(cli, tmp_path: Path) -> None:
    good = tmp_path / "good.log"
    good.write_bytes(b"kept line\n")
    result = cli("run", f"cat {good} {tmp_path / 'missing.log'} | print")
    assert result.exit_code == 1
    assert result.stdout_bytes == b"kept line\n"
    assert result.stderr.strip() == f"cobus: error: {tmp_path / 'missing.log'}: No such file or directory"


def test_unreadable_file(cli, tmp_path: Path) -> None:
    d = tmp_path / "dir.log"
    d.mkdir()
    result = cli("run", f"cat {d} | print")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert str(d) in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_corrupt_gzip_is_one_line(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage-garbage-garbage")
    result = cli("run", f"cat {bad} | count")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"cobus: error: {bad}: ")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="no /proc here")
def test_a_proc_file_that_says_it_is_empty_is_read_whole(cli) -> None:
    # /proc files are regular files of size 0 that hold text all the same.
    result = cli("run", "cat /proc/self/status | grep -c ^Name: | print")
    assert (result.exit_code, result.stdout_bytes, result.stderr) == (0, b"1\n", "")
