"""``records TAG``: turn each TAG element of an XML event stream into a record (a dict).

The rule (attributes as ``@name``, children by local name with their text
stripped, repeated children as lists, a childless element's own text under
its own name) lives in :mod:`cobus.xmlrecords`, shared with the fused
``xml FILE | records TAG`` that lxml runs in C. Records are sent one list per
batch of events; an element's events are dropped as soon as its record is
made, so memory does not grow with the document. As a planner step it is
"make records of TAG", which an XML source may take over (:mod:`cobus.steps`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from ..core import EVENTS, RECORDS, StageGen, Target, coroutine
from ..registry import Arg, ParamError, stage
from ..steps import MAKE_RECORDS, Step
from ..xmlrecords import RecordBuilder

__all__ = ["records"]


def _check(params: dict[str, Any]) -> None:
    tag = params["tag"]
    uri, brace, local = tag[1:].partition("}") if tag.startswith("{") else ("", "}", tag)
    if not brace or not local or any(c in local for c in " <>/{}&\"'") or "{" in uri:
        raise ParamError("tag", f"not an element name: {tag!r} (use name or {{uri}}name)")


def _step(params: Mapping[str, Any]) -> Step:
    return Step(MAKE_RECORDS, {"tag": params["tag"]})


@stage(
    "records",
    consumes=EVENTS,
    produces=RECORDS,
    check=_check,
    step=_step,
    examples=(
        "xml allroutes.xml | records bus | where route=22 | csv id,route,direction",
        "xml feed.xml | records {http://www.w3.org/2005/Atom}entry | jsonl",
        "follow feed.xml | xml | records bus | print",
    ),
)
@coroutine
def records(
    target: Target,
    *,
    tag: Annotated[str, Arg("element that makes a record: a local name, or {uri}name", metavar="TAG")],
) -> StageGen:
    """Turn each TAG element into a record: child text by name, attributes as @name.

    A record is made of each outermost TAG element (matched by local name, or
    exactly when written {uri}name): every attribute becomes a field @name,
    every child element a field named by its local name holding its whole
    text (CDATA and entities included, surrounding whitespace stripped). A
    child that repeats gives a list of texts in document order (csv and print
    join them with ";", where matches if any item does). An element with no
    children gives its own text under its own name: records route gives
    route=22. Fields are named by local name, whatever their namespace.
    """
    builder = RecordBuilder(tag)
    feed = builder.feed
    send = target.send
    try:
        while True:
            out = feed((yield))
            if out:
                send(out)
    finally:
        target.close()
