"""cobus grep against GNU grep, byte for byte, on both engines (Hyperscan and the re fallback)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cobus.grepsyntax import PatternError, translate

ROOT = Path(__file__).resolve().parent.parent
GNU = "/usr/bin/grep"
needs_gnu = pytest.mark.skipif(
    not Path(GNU).exists() or shutil.which("grep") is None, reason="GNU grep absent"
)

GENERATED = (
    "café au lait\nCAFÉ NOIR\ncaf ok\ncafé\n"
    "python is here\r\nno match\n\nPython capital\na c++ line\n(py)thon x{2}\n"
    "digits 404 and 503 12\n   \nword_python_word\n" + "long " * 3000 + "python end\n"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\nlast line without newline python"
).encode()

CASES = [
    # -o takes the longest of the leftmost matches (POSIX), not Python's first alternative:
    ["-o", "-E", "py|python|pyth"],
    ["-o", "-e", "GE", "-e", "GET /"],
    ["-o", "-F", "-e", "a", "-e", "ab"],
    ["-o", "-w", "-E", "ply|ply-2"],
    ["-o", "-i", "-E", "PY|python"],
    ["--color=always", "-E", "py|python"],
    ["python"],
    ["-i", "CAFÉ"],
    ["-w", "caf"],
    ["caf. "],
    ["python\\|swig"],
    ["\\(py\\)thon"],
    ["c++"],
    ["-E", "c++"],
    ["[[:digit:]]\\{3\\}"],
    ["-E", "[0-9]{3} 5[0-9]{2}"],
    ["-E", "timeout|refused|python"],
    ["-v", "python"],
    ["-c", "python"],
    ["-n", "-i", "python"],
    ["-x", "caf ok"],
    ["-o", "-E", "[0-9]+"],
    ["-F", "(py)"],
    ["-e", "python", "-e", "café"],
    ["-m", "2", "python"],
    ["-n", "-C", "1", "capital"],
    ["-A", "1", "-B", "2", "match"],
    ["-w", "-E", "python|404"],
    ["-E", "(a+)+$"],
    ["-E", "(a)\\1"],
    ["^$"],
    ["-n", "^$\\|match"],
    ["-q", "python"],
    ["-l", "python"],
    ["-L", "nomatchatall"],
    ["nomatchatall"],
    ["-i", "[[:upper:]]{4}"],
    ["-E", "[^a-z ]+"],
    ["\\<cafe\\>"],
    ["-h", "python"],
    ["-H", "-c", "python"],
    ["-w", "-F", "c++"],
    ["-w", "-e", "-foo"],
    ["-w", "-i", "café"],
    ["--color=always", "-n", "-i", "python"],
    ["--color=always", "-c", "python"],
    ["--color=always", "-C", "1", "-E", "caf.|match"],
]

#: Bytes that are not text: NUL, invalid UTF-8, CRLF, no final newline.
RAW = (
    b"python \x00 nul\n\xff\xfe python invalid\nclean python\r\ncaf\xc3\xa9 \xe9t\xe9 python\n"
    b"a -foo b\n\xc3\xa9python\xc3\xa9\nlast python"
)

#: Flags whose output differs with several files: those cases run on two files too.
_SEVERAL = ("-c", "-l", "-L", "-n", "-q", "-o", "-h", "-H", "--color=always")

RAW_CASES = [
    ["-a", "python"],
    ["-a", "-v", "clean"],
    ["-a", "-c", "python"],
    ["-a", "-n", "-w", "python"],
    ["-a", "caf."],
    ["-a", "-o", "-E", "[a-z]+"],
    ["python"],
    ["-c", "python"],
    ["-l", "python"],
]


def _run(argv: list[str], files: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    done = subprocess.run([*argv, *files], capture_output=True, check=False, env=env, cwd=ROOT, timeout=60)
    return done.returncode, done.stdout


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    d = tmp_path_factory.mktemp("compat")
    (d / "gen.txt").write_bytes(GENERATED)
    return [str(d / "gen.txt"), str(ROOT / "samples" / "access.log")]


@needs_gnu
@pytest.mark.parametrize("fallback", [False, True], ids=["hyperscan", "fallback"])
@pytest.mark.parametrize("args", CASES, ids=" ".join)
def test_cobus_grep_is_gnu_grep(files: list[str], args: list[str], fallback: bool) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
    if fallback and "(a+)+$" in args:
        pytest.skip("the re fallback backtracks exponentially on (a+)+$: only Hyperscan is linear")
    if fallback:
        env["COBUS_NO_HYPERSCAN"] = "1"
    # Several files (FILE: prefixes, per-file counts) for the flags that change what is printed.
    several = args[0] in _SEVERAL or args == ["python"]
    for chosen in ([files[0]], files) if several else ([files[0]],):
        expected = _run([GNU, *args], chosen, env)
        got = _run([sys.executable, "-m", "cobus", "grep", *args], chosen, env)
        assert got == expected, (args, chosen)


@needs_gnu
@pytest.mark.parametrize("fallback", [False, True], ids=["hyperscan", "fallback"])
@pytest.mark.parametrize("args", RAW_CASES, ids=" ".join)
def test_binary_input_as_gnu_grep(tmp_path: Path, args: list[str], fallback: bool) -> None:
    raw = tmp_path / "raw.bin"
    raw.write_bytes(RAW)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
    if fallback:
        env["COBUS_NO_HYPERSCAN"] = "1"
    expected = _run([GNU, *args], [str(raw)], env)
    assert _run([sys.executable, "-m", "cobus", "grep", *args], [str(raw)], env) == expected


@needs_gnu
def test_missing_file_gets_grep_message_and_the_others_are_searched(files: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cobus", "grep", "python", "/nonexistent", files[0]],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == b"grep: /nonexistent: No such file or directory\n"
    assert done.stdout.startswith(files[0].encode() + b":python is here")


def test_bad_pattern_is_one_line_and_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cobus", "grep", "a\\(b", "/dev/null"], capture_output=True, check=False
    )
    assert (done.returncode, done.stdout) == (2, b"")
    assert done.stderr == b"cobus grep: Unmatched ( or \\( at position 1 in 'a\\\\(b'\n"


@pytest.mark.parametrize(
    ("pattern", "dialect", "python"),
    [
        ("python\\|swig", "G", "python|swig"),
        ("\\(py\\)thon", "G", "(py)thon"),
        ("c++", "G", "c\\+\\+"),
        ("c++", "E", "(?:c+)+"),
        ("*a", "G", "\\*a"),
        ("*a", "E", "a"),
        ("a\\{2,\\}", "G", "a{2,}"),
        ("a{1", "E", "a\\{1"),
        ("[[:digit:]]", "G", "[0-9]"),
        ("a$b", "G", "a\\$b"),
        ("\\(a\\)\\1", "G", "(a)(?:\\1)"),
    ],
)
def test_translation(pattern: str, dialect: str, python: str) -> None:
    assert translate(pattern, dialect).python == python


def test_backreferences_are_served_by_confirmation() -> None:
    t = translate("\\(a\\)\\1")
    assert (t.exact, t.prefilter) == (False, True)


@pytest.mark.parametrize(
    ("pattern", "message", "position"),
    [
        ("a\\{1", "Unmatched \\{", 1),
        ("\\(a", "Unmatched ( or \\(", 0),
        ("[[:digit:]", "Unmatched [, [^, [:, [., or [=", 0),
        ("[:digit:]", "character class syntax is [[:space:]], not [:space:]", 0),
        ("a\\1", "Invalid back reference", 1),
        ("[b-a]", "Invalid range end", 0),
        ("a\\", "Trailing backslash", 1),
    ],
)
def test_bad_patterns(pattern: str, message: str, position: int) -> None:
    with pytest.raises(PatternError) as info:
        translate(pattern)
    assert (info.value.message, info.value.position) == (message, position)
