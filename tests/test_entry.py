"""The front door (cobus/entry.py): a plain ``cobus run`` without click, the same as with it.

Every case runs twice as a real process, once through the front door
(``python -m cobus``) and once straight through click (``cobus.cli.main``),
and the two must agree on exit status, stdout and stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from util import ROOT, SAMPLES, run_cobus

from cobus.entry import PlainRun, plain_run

_THROUGH_CLICK = "from cobus.cli import main; main(prog_name='cobus')"


def through_click(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """``cobus ARGS`` with click parsing the command line (as before the front door)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-c", _THROUGH_CLICK, *args],
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "cat x | print"], PlainRun(("cat x | print",))),
        (["run", "cat", "x", "|", "print"], PlainRun(("cat", "x", "|", "print"))),
        (["run", "-q", "cat x", "--stats"], PlainRun(("cat x",), quiet=True, stats=True)),
        (["run", "cat x", "--quiet", "--debug", "-q"], PlainRun(("cat x",), quiet=True, debug=True)),
        (["run", ""], PlainRun(("",))),
    ],
)
def test_a_plain_run_is_read_as_click_would(args: list[str], expected: PlainRun) -> None:
    assert plain_run(args, {}) == expected


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["run"],
        ["run", "-q"],
        ["run", "--help", "cat x"],
        ["run", "-h"],
        ["run", "--", "cat x"],
        ["run", "-qd", "cat x"],
        ["run", "--stat", "cat x"],
        ["run", "--quiet=1", "cat x"],
        ["run", "cat x", "-"],
        ["--debug", "run", "cat x"],
        ["check", "cat x"],
        ["stages"],
    ],
)
def test_anything_else_goes_to_click(args: list[str]) -> None:
    assert plain_run(args, {}) is None


def test_a_completion_request_goes_to_click() -> None:
    assert plain_run(["run", "cat x"], {"_COBUS_COMPLETE": "bash_complete"}) is None


@pytest.mark.parametrize(
    "args",
    [
        ["run", "cat access.log | head 3 | print"],
        ["run", "cat", "access.log", "|", "grep", "python", "|", "head", "2"],
        ["run", "-q", "cat access.log | grep no-such-text-anywhere | print"],  # exit 1: nothing selected
        ["run", "cat access.log | hed 1"],  # exit 2: a did-you-mean and a caret
        ["run", "--debug", "cat /nonexistent/file | print"],  # exit 1: a run-time error
        ["run", "cat access.log | count", "--quiet"],
        ["run", "--stats", "cat access.log | head 1 | null"],
        ["run", "--help"],  # both go through click
        ["run", "-x", "cat access.log"],
        ["run"],
    ],
)
def test_the_front_door_and_click_agree(args: list[str]) -> None:
    fast = run_cobus(args, cwd=SAMPLES)
    slow = through_click(args, SAMPLES)
    assert (fast.returncode, fast.stdout) == (slow.returncode, slow.stdout)
    if "--stats" in args:  # the table's times differ from run to run; its shape does not
        assert fast.stderr.splitlines()[1:] and fast.stderr.startswith(b"cobus --stats (")
        assert [line[:2] for line in fast.stderr.splitlines()] == [
            line[:2] for line in slow.stderr.splitlines()
        ]
    else:
        assert fast.stderr == slow.stderr


def test_the_front_door_runs_a_pipeline_file_as_click_does() -> None:
    args = ["run", "samples/web-report.toml"]
    fast, slow = run_cobus(args, cwd=ROOT), through_click(args, ROOT)
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr)
    assert fast.returncode == 0 and len(fast.stdout.splitlines()) == 5 + 1  # five lines, then the count
