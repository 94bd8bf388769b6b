"""``where FIELD OP VALUE ...``: keep the records whose fields pass every condition.

Conditions are parsed once into small closures (:mod:`cobus.conditions`,
where the semantics are spelled out), so a batch is filtered by one list
comprehension. Numbers compare as numbers when both sides are numbers, a
missing field never matches, a list field matches when any item does.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from ..conditions import compile_conditions, parse_conditions
from ..core import RECORDS, StageGen, Target, coroutine
from ..registry import Arg, ParamError, stage

__all__ = ["where"]


def _check(params: dict[str, Any]) -> None:
    try:
        conditions = parse_conditions(params["conditions"])
    except ValueError as exc:
        raise ParamError("conditions", str(exc)) from None
    for field, op, value in conditions:
        if op in ("~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ParamError("conditions", f"bad regular expression for {field}: {exc.msg}") from None


@stage(
    "where",
    consumes=RECORDS,
    produces=RECORDS,
    check=_check,
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
    keep = compile_conditions(parse_conditions(conditions))
    send = target.send
    try:
        while True:
            batch = yield
            out = [r for r in batch if keep(r)]
            if out:
                send(out)
    finally:
        target.close()
