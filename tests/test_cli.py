"""The command line: run, check, explain, stages; exit codes and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from util import SAMPLES, needs_data

LOG = SAMPLES / "access.log"


def lines_with(word: bytes, path: Path = LOG, *, ignore_case: bool = False) -> list[bytes]:
    lines = path.read_bytes().splitlines(keepends=True)
    if ignore_case:
        return [x for x in lines if word.lower() in x.lower()]
    return [x for x in lines if word in x]


def test_grep_print(cli) -> None:
    r = cli("run", f"cat {LOG} | grep python | print")
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout_bytes == b"".join(lines_with(b"python"))
    assert r.stdout_bytes


def test_count_ignore_case(cli) -> None:
    r = cli("run", f"cat {LOG} | grep -i python | count")
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == f"{len(lines_with(b'python', ignore_case=True))}\n"


def test_invert_head(cli) -> None:
    r = cli("run", f"cat {LOG} | grep -v ' 404 ' | head 20 | print")
    assert (r.exit_code, r.stderr) == (0, "")
    expected = [x for x in LOG.read_bytes().splitlines(keepends=True) if b" 404 " not in x][:20]
    assert r.stdout_bytes == b"".join(expected)


def test_broadcast_to_three_sinks(cli, tmp_path: Path) -> None:
    ply = tmp_path / "ply.log"
    r = cli(
        "run", f"cat {LOG} | broadcast [grep python | print] [grep ply | write {ply}] [grep swig | count]"
    )
    assert (r.exit_code, r.stderr) == (0, "")
    python = b"".join(lines_with(b"python"))
    assert r.stdout_bytes == python + b"%d\n" % len(lines_with(b"swig"))
    assert ply.read_bytes() == b"".join(lines_with(b"ply"))


def test_broadcast_fan_in_keeps_every_line(cli) -> None:
    r = cli("run", f"cat {LOG} | broadcast [grep python] [grep ply] [grep swig] | count")
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == f"{sum(len(lines_with(w)) for w in (b'python', b'ply', b'swig'))}\n"


def test_head_stops_reading(cli, tmp_path: Path) -> None:
    # A second file that does not exist is never opened: head was satisfied first.
    r = cli("run", f"cat {LOG} {tmp_path / 'missing'} | head 3 | print")
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout_bytes.count(b"\n") == 3


def test_toml_pipeline(cli, tmp_path: Path) -> None:
    ply = tmp_path / "ply.log"
    f = tmp_path / "p.toml"
    f.write_text(
        f"""
[stages.logs]
run = "cat {LOG}"
[stages.python]
from = "logs"
run = "grep python"
[stages.ply]
from = "logs"
run = "grep ply | write {ply}"
[stages.both]
from = ["python"]
run = "count"
"""
    )
    r = cli("run", str(f))
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == f"{len(lines_with(b'python'))}\n"
    assert ply.read_bytes() == b"".join(lines_with(b"ply"))


def test_real_access_log_counts(cli) -> None:
    log = needs_data("access-log")
    r = cli("run", f"cat {log} | grep -F '/robots.txt HTTP' | count")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "191\n", "")


@pytest.mark.parametrize(
    ("text", "first", "caret_at"),
    [
        ("cat x | grpe y", "cobus: error: unknown stage 'grpe' (did you mean 'grep'?)", 8),
        ("cat x | broadcast [grep y", "cobus: error: unbalanced '['", 18),
        ("cat x | grep '[a'", "cobus: error: grep: bad regular expression", 13),
        ("cat x | grep", "cobus: error: grep: needs PATTERN", 8),
    ],
)
def test_spec_errors_exit_2_with_a_caret(cli, text: str, first: str, caret_at: int | None) -> None:
    for command in ("run", "check"):
        r = cli(command, text)
        assert r.exit_code == 2
        assert r.stdout == ""
        lines = r.stderr.splitlines()
        assert lines[0].startswith(first)
        assert "Traceback" not in r.stderr
        if caret_at is not None:
            assert lines[1] == "  " + text
            assert lines[2].index("^") == caret_at + 2
        else:
            assert len(lines) == 1


def test_check_ok(cli) -> None:
    r = cli("check", "cat x | grep y | print")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "ok: 3 stages, 1 source(s)\n", "")


def test_stages_lists_every_stage(cli) -> None:
    r = cli("stages")
    assert (r.exit_code, r.stderr) == (0, "")
    for name in ("cat", "grep", "head", "broadcast", "print", "write", "count", "null"):
        assert f"│ {name} " in r.stdout


def test_stage_help(cli) -> None:
    r = cli("stages", "grep")
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout.startswith("grep [PATTERN] [-e|--regexp PATTERN]")
    assert "cobus run 'cat access-log | grep python | print'" in r.stdout
    bad = cli("stages", "grpe")
    assert bad.exit_code == 2
    assert "did you mean 'grep'" in bad.stderr


def test_explain_shows_fan_out_and_fan_in(cli) -> None:
    r = cli("explain", "cat x | broadcast [grep a] [grep b | count] [grep c] | print")
    assert (r.exit_code, r.stderr) == (0, "")
    out = r.stdout
    for part in ("cat x", "broadcast", "grep a", "grep b", "count", "print", "(joined, see above)"):
        assert part in out


def test_version_and_help(cli) -> None:
    assert cli("--version").stdout.startswith("cobus, version ")
    r = cli("--help")
    assert r.exit_code == 0
    assert "cobus run 'cat access-log | grep python | print'" in r.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(cli, shell: str) -> None:
    r = cli("completion", shell)
    assert (r.exit_code, r.stderr) == (0, "")
    assert "_COBUS_COMPLETE" in r.stdout


def test_completion_offers_stage_names() -> None:
    from util import run_cobus

    env = {"_COBUS_COMPLETE": "bash_complete", "COMP_WORDS": "cobus run 'cat x | gr", "COMP_CWORD": "2"}
    done = run_cobus([], env=env)
    assert done.returncode == 0
    assert b"plain,cat x | grep\n" in done.stdout
    env = {"_COBUS_COMPLETE": "bash_complete", "COMP_WORDS": "cobus stages he", "COMP_CWORD": "2"}
    assert run_cobus([], env=env).stdout == b"plain,head\n"


@pytest.mark.parametrize("n", [0, 1, 7, 100_000])
def test_head_counts_exactly(cli, n: int) -> None:
    r = cli("run", f"cat {LOG} | head {n} | print")
    assert (r.exit_code, r.stderr) == (0 if n else 1, "")  # nothing printed: exit 1, as grep
    assert r.stdout_bytes == b"".join(LOG.read_bytes().splitlines(keepends=True)[:n])


def test_a_stage_that_fails_to_build_closes_the_others(cli, tmp_path: Path) -> None:
    out = tmp_path / "out.log"
    # Stages are built from the end: the second write is opened before the first fails.
    r = cli("run", f"cat {LOG} | broadcast [write {tmp_path / 'no' / 'such' / 'dir.log'}] [write {out}]")
    assert r.exit_code == 1
    assert r.stderr.startswith("cobus: error: ")
    assert "dir.log: No such file or directory" in r.stderr
    assert out.read_bytes() == b""  # created, then closed: nothing half-written
