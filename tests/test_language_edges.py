"""The pipeline language at its edges: mistyped operators, very long and deep pipelines.

Each case runs the real ``cobus`` so that the exit status and stderr are
what a user sees.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from util import SAMPLES, run_cobus

from cobus.conditions import parse_conditions
from cobus.spec.parse import MAX_NESTING, MAX_STAGES

LOG = SAMPLES / "access.log"


@pytest.mark.parametrize(
    ("condition", "says"),
    [
        ("status=>200", "'=>' is not an operator (did you mean '>='?)"),
        ("status<>200", "'<>' is not an operator (did you mean '!='?)"),
        ("status=<200", "'=<' is not an operator (did you mean '<='?)"),
        ("status>", "compares with nothing"),
        ("status>=", "compares with nothing"),
    ],
)
def test_mistyped_operators_are_refused_with_a_caret(condition: str, says: str) -> None:
    pipeline = f"cat {LOG} | parse apache | where {condition} | count"
    done = run_cobus(["run", pipeline])
    assert done.returncode == 2
    assert done.stdout == b""
    first, text, caret = done.stderr.decode().splitlines()
    assert first.startswith(f"cobus: error: where: {condition}") and says in first
    assert text == "  " + pipeline
    assert caret.strip() == "^" * len(condition)
    assert text[caret.index("^")] == condition[0]


def test_a_value_that_starts_with_an_operator_is_matched_with_a_regex() -> None:
    assert parse_conditions(["op~^=>"]) == [("op", "~", "^=>")]
    assert parse_conditions(["status>=", "400"]) == [("status", ">=", "400")]
    assert parse_conditions(["referer="]) == [("referer", "=", "")]


def _chain(n: int) -> str:
    """n stages in all: ``cat LOG``, greps and ``count``."""
    return f"cat {LOG}" + " | grep a" * (n - 2) + " | count"


def _nested(stage: str, depth: int) -> str:
    return f"cat {LOG} | " + f"{stage} [" * depth + "grep a" + "]" * depth + " | count"


def test_the_longest_and_deepest_pipelines_allowed_run() -> None:
    want = b"%d\n" % sum(1 for line in LOG.read_bytes().splitlines() if b"a" in line)
    for pipeline in (
        _chain(MAX_STAGES - 1),
        _nested("threaded", MAX_NESTING),
        _nested("broadcast", MAX_NESTING),
    ):
        done = run_cobus(["run", pipeline])
        assert (done.returncode, done.stdout, done.stderr) == (0, want, b"")


@pytest.mark.parametrize(
    ("pipeline", "says"),
    [
        (_chain(MAX_STAGES + 1), b"too many stages: a pipeline holds at most 256"),
        (_chain(500), b"too many stages"),
        (_chain(1000), b"too many stages"),
        (_nested("threaded", MAX_NESTING + 1), b"branches nested too deep: at most 8 levels"),
        (_nested("threaded", 150), b"branches nested too deep"),
        (_nested("broadcast", 500), b"branches nested too deep"),
    ],
    ids=["257", "500", "1000", "9-threaded", "150-threaded", "500-brackets"],
)
def test_check_refuses_what_would_not_run(pipeline: str, says: bytes) -> None:
    for command in ("check", "run"):
        done = run_cobus([command, pipeline])
        assert (done.returncode, done.stdout) == (2, b"")
        first, _text, caret = done.stderr.splitlines()
        assert first.startswith(b"cobus: error: " + says)
        assert set(caret.strip(b" ")) == set(b"^")  # under the bracket, or the stage, too many
        assert b"Traceback" not in done.stderr


def test_a_toml_pipeline_with_too_many_stages_is_refused(tmp_path: Path) -> None:
    lines = ["[stages.src]", f'run = "cat {LOG}"']
    previous = "src"
    for i in range(MAX_STAGES):
        lines += [f"[stages.g{i}]", 'run = "grep a"', f'from = "{previous}"']
        previous = f"g{i}"
    path = tmp_path / "long.toml"
    path.write_text("\n".join(lines) + "\n")
    done = run_cobus(["check", str(path)])
    assert done.returncode == 2
    assert done.stderr == f"cobus: error: {path}: too many stages: a pipeline holds at most 256\n".encode()


def test_head_without_n_takes_ten() -> None:
    """Found by the property test: head's check read N even when it was not written."""
    done = run_cobus(["run", f"cat {LOG} | head | count"])
    assert (done.returncode, done.stdout, done.stderr) == (0, b"10\n", b"")
