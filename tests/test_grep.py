"""grep: block-wise search must select exactly the lines GNU grep selects."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest
from util import collect

from cobus.stages.grep import grep

TRICKY = (
    b"python is here\n"
    b"no match\r\n"
    b"\xff\xfe invalid utf8 python \x00 nul\n"
    b"\n"
    b"Python capital\n"
    b"pythonic word\n"
    b"ends with python\n"
    b"a\tb python\tc\r\n"
)


def run_grep(block: bytes, pattern: str, **flags: bool) -> bytes:
    out: list[bytes] = []
    g = grep(collect(out), pattern=pattern, **flags)
    g.send(block)
    g.close()
    return b"".join(out)


def gnu(block: bytes, args: list[str], tmp_path: Path) -> bytes:
    f = tmp_path / "in"
    f.write_bytes(block)
    # A UTF-8 locale: characters, as cobus matches them (``.`` never matches an invalid byte).
    env = {"LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(["grep", "-a", *args, str(f)], capture_output=True, check=False, env=env)
    return done.stdout


needs_grep = pytest.mark.skipif(shutil.which("grep") is None, reason="GNU grep not installed")


@needs_grep
@pytest.mark.parametrize(
    ("pattern", "flags", "grep_args"),
    [
        ("python", {}, ["-F", "python"]),
        ("python", {"ignore_case": True}, ["-i", "-F", "python"]),
        ("python", {"invert": True}, ["-v", "-F", "python"]),
        ("python", {"word": True}, ["-w", "python"]),
        ("^python", {}, ["-E", "^python"]),
        ("python$", {}, ["-E", "python$"]),
        ("^$", {}, ["-E", "^$"]),
        ("py.*on", {}, ["-E", "py.*on"]),
        ("a\\sb", {"perl": True}, ["-P", "a\\sb"]),
        ("no|capital", {"extended": True}, ["-E", "no|capital"]),
        ("x*", {"extended": True}, ["-E", "x*"]),
        ("[.]", {"fixed": True}, ["-F", "[.]"]),
        ("\\s+$", {"perl": True}, ["-P", "\\s+$"]),
    ],
)
def test_matches_gnu_grep(tmp_path: Path, pattern: str, flags: dict[str, bool], grep_args: list[str]) -> None:
    assert run_grep(TRICKY, pattern, **flags) == gnu(TRICKY, grep_args, tmp_path)


def test_a_match_across_a_newline_does_not_select_the_line() -> None:
    # \s matches the newline after "one"; the line "one" alone has no "one\sb".
    assert run_grep(b"one\nb two\none b\n", "one\\sb") == b"one b\n"


@needs_grep
def test_random_lines_against_gnu_grep(tmp_path: Path) -> None:
    rng = random.Random(7)
    alphabet = b"ab \t\r\xff"
    lines = [bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 12))) + b"\n" for _ in range(3000)]
    block = b"".join(lines)
    cases = [("ab", ["-F", "ab"]), ("a b", ["-F", "a b"]), ("^b+$", ["-E", "^b+$"]), ("a.a", ["-E", "a.a"])]
    for pattern, args in cases:
        ere = args[0] == "-E"
        assert run_grep(block, pattern, extended=ere) == gnu(block, args, tmp_path), pattern
        assert run_grep(block, pattern, extended=ere, invert=True) == gnu(block, ["-v", *args], tmp_path), (
            pattern
        )


def test_empty_output_sends_nothing() -> None:
    out: list[bytes] = []
    g = grep(collect(out), pattern="zzz")
    g.send(b"a\nb\n")
    g.close()
    assert out == []


@needs_grep
@pytest.mark.parametrize(
    ("pattern", "flags", "grep_args"),
    [
        ("python", {}, ["-F", "python"]),
        ("python", {"invert": True}, ["-v", "-F", "python"]),
        ("PYTHON", {"ignore_case": True}, ["-i", "-F", "PYTHON"]),
        ("PYTHON", {"ignore_case": True, "invert": True}, ["-v", "-i", "-F", "PYTHON"]),
        ("ends with python", {}, ["-F", "ends with python"]),
        ("\\s$", {}, ["-P", "\\s$"]),
        ("py.hon", {"invert": True}, ["-v", "-E", "py.hon"]),
    ],
)
def test_dense_blocks_are_filtered_line_by_line_alike(
    tmp_path: Path, pattern: str, flags: dict[str, bool], grep_args: list[str]
) -> None:
    # Most lines match: past the first matches grep switches to testing each line.
    block = TRICKY * 500
    assert run_grep(block, pattern, **flags) == gnu(block, grep_args, tmp_path)


@pytest.mark.parametrize(
    ("pipeline", "out", "status"),
    [
        ("grep -c zzz | print", b"0\n", 1),  # grep -c: a count of 0 is printed, and exit 1
        ("grep -c a | print", b"2\n", 0),
        ("grep -c zzz | grep 0 | print", b"0\n", 0),  # the second grep selected its line
        ("broadcast [grep -c zzz | print] [grep a | print]", b"a\nab\n0\n", 0),
        ("threaded [grep -c zzz] | print", b"0\n", 1),
    ],
)
def test_a_count_of_nothing_is_no_selection(
    cli, tmp_path: Path, pipeline: str, out: bytes, status: int
) -> None:
    f = tmp_path / "in.log"
    f.write_bytes(b"a\nab\n")
    r = cli("run", f"cat {f} | {pipeline}")
    assert (r.exit_code, r.stdout_bytes, r.stderr) == (status, out, "")
