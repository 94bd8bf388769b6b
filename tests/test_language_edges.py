"""The pipeline language at its edges: mistyped operators, very long and deep pipelines.

Each case runs the real ``cobus`` so that the exit status and stderr are
what a user sees.
"""

from __future__ import annotations

import pytest
from util import SAMPLES, run_cobus

from cobus.conditions import parse_conditions

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
