"""cat: files in order, compressed files, stdin, very long lines, errors naming the path."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

from util import needs_data

from cobus.inputs import blocks_of


def test_blocks_keep_lines_whole_and_add_a_final_newline() -> None:
    chunks = [b"ab", b"c\nde", b"f\ng", b"h"]
    assert list(blocks_of(iter(chunks))) == [b"abc\n", b"def\n", b"gh\n"]


def test_a_block_without_newline_is_carried() -> None:
    chunks = [b"x" * 5, b"y" * 5, b"\nz\n"]
    assert list(blocks_of(iter(chunks))) == [b"xxxxxyyyyy\nz\n"]


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
