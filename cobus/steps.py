"""The planner's vocabulary: what a stage does, said without naming any stage.

A stage declares in its registration (:func:`cobus.registry.stage`) what it
is as a *step* (``step=``: its parameters -> a :class:`Step`), which steps it
can take over from the stage right after it (``absorbs=``: step op -> an
:data:`Absorber`) and which record fields it reads (``reads=``). The planner
(:mod:`cobus.spec.plan`) matches them up and records the chosen
:class:`Fused` plan on the graph node. The ops below are the shared words;
a stage module imports them from here, never another stage's module.
Nothing here imports a stage, the registry or the spec. The records are
NamedTuples, as immutable as frozen dataclasses and cheaper to define (see
:class:`cobus.registry.StageSpec`); ``_replace`` makes a changed copy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = [
    "AGGREGATE",
    "FILTER_RECORDS",
    "MAKE_RECORDS",
    "PARSE_XML",
    "Absorber",
    "Call",
    "Fused",
    "Partial",
    "Projector",
    "Reads",
    "Step",
]

#: ``xml`` as a stage: parse arriving bytes as XML events. Args: ``recover``,
#: ``allow_entities``; ``call`` runs the parser in front of a target.
PARSE_XML = "parse xml"
#: ``records TAG``: make a record of each TAG element. Args: ``tag``.
MAKE_RECORDS = "make records"
#: ``where``: keep the records that pass a condition tree. Args: ``conditions``
#: (a :class:`cobus.conditions.AllOf`).
FILTER_RECORDS = "filter records"
#: An aggregating sink that can be split in two: ``partial(target)`` is a
#: filter that turns each non-empty batch into one :class:`Partial` (run where
#: the records are, e.g. in every worker), and ``merge(**params, ctx=ctx)``
#: is the sink itself fed with those partials in input order, giving what the
#: stage gives. Args: ``partial``, ``merge``.
AGGREGATE = "aggregate"


class Partial(NamedTuple):
    """One batch's share of an aggregate (:data:`AGGREGATE`), for the stage's merge.

    ``total``: a number (items counted, a batch's sum) or None; ``pairs``:
    ``(key, value)`` in the order the keys were first seen, a key being a
    group key (str, int, float, None or a tuple of them) and a value a count,
    a list of numbers, or None; ``skipped``: records left out (sum).
    """

    total: int | float | None
    pairs: list[tuple[Any, Any]]
    skipped: int = 0


class Call(NamedTuple):
    """A bound stage, callable later in front of a target (``call(target, ctx)``).

    An absorbing stage that keeps the absorbed one as it is (``cat`` feeding
    the XML parser its exact bytes) builds it through this, so it never has
    to look the other stage up by name.
    """

    factory: Callable[..., Any]
    params: Mapping[str, Any]
    wants_ctx: bool

    def __call__(self, target: Any, ctx: Any) -> Any:
        extra = {"ctx": ctx} if self.wants_ctx else {}
        return self.factory(target, **self.params, **extra)


class Step(NamedTuple):
    """One stage described for the stage before it: an op from this module and its args."""

    op: str
    args: Mapping[str, Any] = MappingProxyType({})
    #: The stage itself, bound (filled in by the planner).
    call: Call | None = None
    #: The stage as written (filled in by the planner; a worker rebuilds it from there).
    text: str = ""


class Fused(NamedTuple):
    """A plan the planner recorded on a node: run ``factory(target, **params)`` instead.

    ``note`` says what was gained (``explain`` shows it); ``absorbed`` is
    the text of every stage taken over, in order. A split step (an
    :data:`AGGREGATE` whose partials a stage computes) leaves the absorbed
    stage in the graph: ``downstream`` is then the plan it runs instead.
    """

    factory: Callable[..., Any]
    params: Mapping[str, Any]
    note: str
    absorbed: tuple[str, ...] = ()
    downstream: Fused | None = None


#: ``absorb(own_arguments, step)`` -> the fused plan, or None when these
#: parameters cannot be fused (output must never change). ``own_arguments``
#: are the stage's parameters, or those of the plan it already has.
Absorber = Callable[[Mapping[str, Any], Step], "Fused | None"]

#: ``project(own_arguments, needed, columns)`` -> a plan that makes only the
#: ``needed`` fields (as :class:`cobus.columns.Columns` when ``columns``), or
#: None when projecting gains nothing for these parameters.
Projector = Callable[[Mapping[str, Any], frozenset[str], bool], "Fused | None"]

#: ``reads(params)`` -> the record fields a stage reads, or None for all of them.
Reads = Callable[[Mapping[str, Any]], "frozenset[str] | None"]
