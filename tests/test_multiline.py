"""multiline: continuation lines join into one item, never lost, never split; unjoin undoes it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from _util_live import wait_for, watches_file
from util import collect

from cobus.context import RunContext
from cobus.stages.multiline import JAVA, PYTHON, Rule, joiner, multiline, unjoin

PY_LOG = (
    b"2024-01-01 10:00:00 INFO starting\n"
    b"2024-01-01 10:00:01 ERROR failed\n"
    b"Traceback (most recent call last):\n"
    b'  File "app.py", line 3, in <module>\n'
    b"    main()\n"
    b"KeyError: 'x'\n"
    b"\n"
    b"During handling of the above exception, another exception occurred:\n"
    b"\n"
    b"Traceback (most recent call last):\n"
    b'  File "app.py", line 5, in <module>\n'
    b"StopIteration\n"
    b"INFO:root:config\n"
    b"  indented detail\n"
    b"INFO:root:not joined to the detail above\n"
)
PY_ITEMS = [
    [0],
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    [12, 13],
    [14],
]

JAVA_LOG = (
    b"12:00:00.000 ERROR [main] c.e.App - request failed\n"
    b"java.lang.IllegalStateException: boom\n"
    b"\tat com.example.App.run(App.java:10)\n"
    b"\t... 3 more\n"
    b"Caused by: java.io.IOException: closed\n"
    b"\tat com.example.Io.read(Io.java:7)\n"
    b"12:00:01.000 INFO  [main] c.e.App - next\n"
    b"java.lang.RuntimeException: printed alone\n"
    b"\tat X.y(X.java:1)\n"
    b"java.lang.RuntimeException: and another\n"
    b"\tat X.y(X.java:2)\n"
)
JAVA_ITEMS = [[0, 1, 2, 3, 4, 5], [6, 7, 8], [9, 10]]


PRESETS = pytest.mark.parametrize(
    ("rule", "log", "groups"),
    [(PYTHON, PY_LOG, PY_ITEMS), (JAVA, JAVA_LOG, JAVA_ITEMS)],
    ids=["python", "java"],
)


def expected(log: bytes, groups: list[list[int]], sep: bytes = b"\x1f") -> list[bytes]:
    lines = log.split(b"\n")
    return [sep.join(lines[i] for i in group) + b"\n" for group in groups]


def join_all(rule: Rule, *blocks: bytes, **kw: Any) -> list[bytes]:
    join = joiner(rule, **kw)
    out = b"".join([join(b) for b in blocks]) + join(b"")
    return [line + b"\n" for line in out.split(b"\n")[:-1]]


@pytest.mark.parametrize(
    ("rule", "log", "groups"), [(PYTHON, PY_LOG, PY_ITEMS), (JAVA, JAVA_LOG, JAVA_ITEMS)]
)
def test_presets_group_lines(rule: Rule, log: bytes, groups: list[list[int]]) -> None:
    assert join_all(rule, log) == expected(log, groups)


@pytest.mark.parametrize(
    ("rule", "log", "groups"), [(PYTHON, PY_LOG, PY_ITEMS), (JAVA, JAVA_LOG, JAVA_ITEMS)]
)
def test_any_split_into_blocks_gives_the_same_items(rule: Rule, log: bytes, groups: list[list[int]]) -> None:
    lines = log.splitlines(keepends=True)
    want = expected(log, groups)
    for i in range(1, len(lines)):
        for j in range(i, len(lines)):
            blocks = [b"".join(lines[:i]), b"".join(lines[i:j]), b"".join(lines[j:])]
            assert join_all(rule, *[b for b in blocks if b]) == want, (i, j)


def start_rule(pattern: str) -> Rule:
    return Rule.matching(pattern)


def test_start_regex_is_searched_in_each_line_and_orphans_lead() -> None:
    log = b"orphan\n[a] one\n  more\n[b] two\nx [c] not at start\n"
    items = join_all(start_rule(r"^\[\w\]"), log)
    assert items == [b"orphan\n", b"[a] one\x1f  more\n", b"[b] two\x1fx [c] not at start\n"]
    # Searched, not anchored: a match anywhere in the line starts an item.
    assert len(join_all(start_rule(r"\[\w\]"), log)) == 4


def test_a_match_across_lines_does_not_count() -> None:
    items = join_all(start_rule(r"end\s+begin"), b"the end\nbegin here\n")
    assert items == [b"the end\x1fbegin here\n"]


def test_crlf_and_separator_round_trip_exactly() -> None:
    log = b"A\r\n cont\r\nB\r\n"
    items = join_all(start_rule("^[A-Z]"), log)
    assert items == [b"A\r\x1f cont\r\n", b"B\r\n"]
    assert b"".join(items).replace(b"\x1f", b"\n") == log


def test_max_lines_cuts_a_runaway_item() -> None:
    log = b"S\n" + b" c\n" * 6 + b"S\n"
    items = join_all(start_rule("^S"), log, max_lines=3)
    assert items == [b"S\x1f c\x1f c\n", b" c\x1f c\x1f c\n", b" c\n", b"S\n"]


def run_stage(blocks: list[bytes], **params: Any) -> list[bytes]:
    out: list[bytes] = []
    stage = multiline(collect(out), ctx=RunContext(stdout=io.BytesIO()), **params)
    for block in blocks:
        stage.send(block)
    stage.close()
    return out


def test_pending_item_is_flushed_at_close() -> None:
    out = run_stage([b"A\n cont\n"], start="^A")
    assert out == [b"A\x1f cont\n"]


def test_idle_timeout_flushes_on_a_live_run() -> None:
    clock = [0.0]
    out: list[bytes] = []
    ctx = RunContext(stdout=io.BytesIO(), clock=lambda: clock[0], live=True)
    stage = multiline(collect(out), start="^A", timeout=1.0, ctx=ctx)
    stage.send(b"A one\n cont\n")
    clock[0] = 0.9
    stage.send(b"")  # an idle heartbeat, too early
    assert out == []
    clock[0] = 1.0
    stage.send(b"")
    assert out == [b"A one\x1f cont\n"]
    stage.send(b" late\nA two\n")  # after the flush, a late continuation stands alone
    stage.close()
    assert out == [b"A one\x1f cont\n", b" late\n", b"A two\n"]


def test_no_timeout_when_not_live() -> None:
    clock = [0.0]
    out: list[bytes] = []
    ctx = RunContext(stdout=io.BytesIO(), clock=lambda: clock[0], live=False)
    stage = multiline(collect(out), start="^A", ctx=ctx)
    stage.send(b"A one\n")
    clock[0] = 60.0
    stage.send(b" cont\n")
    stage.close()
    assert out == [b"A one\x1f cont\n"]


def test_unjoin_restores_custom_separator() -> None:
    out: list[bytes] = []
    u = unjoin(collect(out), sep=" | ")
    u.send(b"a | b\nc\n")
    u.close()
    assert out == [b"a\nb\nc\n"]


def test_cli_traceback_grep_unjoin_print(cli, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(PY_LOG)
    result = cli("run", f"cat {log} | multiline --python | grep KeyError | unjoin | print")
    assert result.exit_code == 0
    assert result.stdout.encode() == b"".join(PY_LOG.splitlines(keepends=True)[1:12])
    assert result.stderr == ""


def test_cli_count_head_and_round_trip(cli, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(PY_LOG)
    result = cli("run", f"cat {log} | multiline --python | count")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "4\n", "")
    result = cli("run", f"cat {log} | multiline --python | head 1 | print")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "2024-01-01 10:00:00 INFO starting\n", "")
    result = cli("run", f"cat {log} | multiline --python | unjoin | print")
    assert (result.exit_code, result.stdout.encode(), result.stderr) == (0, PY_LOG, "")


def test_cli_max_lines_notice(cli, tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"S\n" + b" c\n" * 4)
    result = cli("run", f"cat {log} | multiline --start ^S --max-lines 2 --sep + | print")
    assert result.exit_code == 0
    assert result.stdout == "S+ c\n c+ c\n c\n"
    assert result.stderr == "cobus: multiline: 2 item(s) longer than 2 lines were cut\n"


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ("multiline", "give exactly one of --start REGEX, --python, --java"),
        ("multiline --python --java", "give exactly one of"),
        ('multiline --start "(x"', "bad regular expression"),
        ("multiline --python --max-lines 0", "--max-lines must be 1 or more"),
        ('multiline --python --sep ""', "the separator must be non-empty"),
    ],
)
def test_bad_parameters_exit_2(cli, stage: str, message: str) -> None:
    result = cli("check", f"cat x | {stage} | print")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr


def test_a_followed_traceback_is_flushed_after_the_idle_timeout(tmp_path) -> None:
    """follow sends ticks while idle, so the last traceback does not wait for the next line."""
    import subprocess
    import sys

    log, out = tmp_path / "app.log", tmp_path / "out.log"
    log.write_bytes(b"")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cobus",
            "run",
            f"follow {log} | multiline --python --timeout 0.5 | write {out}",
        ],
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: watches_file(proc.pid, log), 30, "follow to start at the end of the log")
        with log.open("ab") as f:
            f.write(b'Traceback (most recent call last):\n  File "x.py", line 1\nKeyError: 1\n')
        wait_for(
            lambda: b"KeyError" in (out.read_bytes() if out.exists() else b""),
            10,
            "the pending traceback to be flushed",
        )
        assert proc.poll() is None  # flushed by the idle timeout, not by the exit
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert out.read_bytes().count(b"\n") == 1  # one item: the whole traceback
