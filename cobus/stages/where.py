"""``where FIELD OP VALUE ...``: keep the records whose fields pass every condition.

Conditions are parsed into the tree of :mod:`cobus.conditions` (where the
semantics are spelled out) and compiled into small closures, so a batch is
filtered by one list comprehension (or, when the planner hands it columns,
:mod:`cobus.columns`, by testing each column once per distinct value). Numbers compare as numbers when both
sides are numbers, a missing field never matches, a list field matches when
any item does. The registration tells the planner what ``where`` is (a
record filter a source may test before it builds records) and which fields
it reads; it names no other stage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from ..conditions import AllOf
from ..core import RECORDS, StageGen, Target, coroutine
from ..registry import Arg, ParamError, stage
from ..steps import FILTER_RECORDS, Step

__all__ = ["where"]


def _check(params: dict[str, Any]) -> None:
    try:
        conditions = AllOf.parse(params["conditions"])
    except ValueError as exc:
        raise ParamError("conditions", str(exc)) from None
    for field, op, value in conditions:
        if op in ("~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ParamError("conditions", f"bad regular expression for {field}: {exc.msg}") from None


def _step(params: Mapping[str, Any]) -> Step:
    return Step(FILTER_RECORDS, {"conditions": AllOf.parse(params["conditions"])})


def _reads(params: Mapping[str, Any]) -> frozenset[str]:
    return AllOf.parse(params["conditions"]).fields


@stage(
    "where",
    consumes=RECORDS,
    produces=RECORDS,
    check=_check,
    step=_step,
    reads=_reads,
    columnar=True,
    examples=(
        'xml allroutes.xml | records bus | where route=22 direction="North Bound" | csv id,route',
        "xml allroutes.xml | records bus | where latitude>41.9 | count",
        "cat access-log | parse apache | where status>=500 | print",
        "xml allroutes.xml | records bus | where route~^2 route!=22 | table id,route",
    ),
)
@coroutine
def where(
    target: Target,
    *,
    conditions: Annotated[
        list[str], Arg("FIELD OP VALUE, OP one of = != < <= > >= ~ !~ (all must hold)", metavar="COND")
    ],
) -> StageGen:
    """Keep the records whose fields pass every condition (FIELD OP VALUE).

    OP is one of = != < <= > >= (numeric when both sides are numbers, else
    text) or ~ !~ (Python regular expression search). Several conditions must
    all hold. A record without the field (or with it empty as None) never
    matches, even with != . A list field (a repeated XML child) matches when
    any of its items does; != and !~ are the negation of = and ~.
    Quote a value with spaces: direction="North Bound".
    """
    kept = AllOf.parse(conditions).compile_filter()
    send = target.send
    try:
        while True:
            out = kept((yield))
            if out:
                send(out)
    finally:
        target.close()
