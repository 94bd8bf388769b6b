"""The planner: fusions and field projection from registry metadata alone, never stage names.

A private registry holds stages with made-up names that declare steps,
absorbers, reads, a fan-out and a default sink; the planner and the graph
builder must treat them exactly as they treat the built-in ones.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import cobus
from cobus.conditions import AllOf
from cobus.context import RunContext
from cobus.core import RECORDS, Target, coroutine
from cobus.explain import graph_tree
from cobus.registry import Arg, Registry, stage
from cobus.spec import load, plan
from cobus.spec.graph import Graph, lower_text
from cobus.spec.parse import parse
from cobus.steps import FILTER_RECORDS, Fused, Step

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _keep_reads(params: Mapping[str, Any]) -> frozenset[str] | None:
    return frozenset(params["fields"]) if params.get("fields") else None


def _registry(seen: list[Any]) -> Registry:
    reg = Registry()

    def numbers_filtered(target: Target, *, count: int, where: AllOf) -> Iterator[object]:
        return _numbers(target, count, where.compile())

    def absorb(args: Mapping[str, Any], step: Step) -> Fused:
        where = args.get("where")
        conditions = step.args["conditions"]
        params = {"count": args["count"], "where": where & conditions if where else conditions}
        return Fused(numbers_filtered, params, f"tested at the source: {params['where']}")

    @stage("numbers", role="source", produces=RECORDS, absorbs={FILTER_RECORDS: absorb}, into=reg)
    def numbers(target: Target, *, count: Annotated[int, Arg()]) -> Iterator[object]:
        """Records n=0..count-1 with odd=0|1."""
        return _numbers(target, count, lambda r: True)

    @stage(
        "only",
        consumes=RECORDS,
        produces=RECORDS,
        step=lambda p: Step(FILTER_RECORDS, {"conditions": AllOf.parse(p["conditions"])}),
        reads=lambda p: AllOf.parse(p["conditions"]).fields,
        into=reg,
    )
    @coroutine
    def only(target: Target, *, conditions: Annotated[list[str], Arg()]) -> Target:
        """Keep the records that pass."""
        keep = AllOf.parse(conditions).compile()
        try:
            while True:
                out = [r for r in (yield) if keep(r)]
                if out:
                    target.send(out)
        finally:
            target.close()

    @stage("as_is", consumes=RECORDS, produces=RECORDS, into=reg)
    def as_is(target: Target) -> Target:
        """Pass everything on (declares nothing, so it stops fusion and projection)."""
        return target

    @stage("tee", fans_out=True, into=reg)
    def tee(target: Target) -> Target:
        """Every item to each branch."""
        return target

    @stage("keep", role="sink", consumes=RECORDS, default_sink=True, reads=_keep_reads, into=reg)
    @coroutine
    def keep(*, fields: Annotated[list[str] | None, Arg()] = None) -> Target:
        """Collect the records (all fields, or those named)."""
        while True:
            for r in (yield):
                seen.append({f: r.get(f) for f in fields} if fields else r)

    return reg


def _numbers(target: Target, count: int, keep: Any) -> Iterator[object]:
    try:
        target.send([r for r in ({"n": i, "odd": i % 2} for i in range(count)) if keep(r)])
        yield from ()
    finally:
        target.close()


def _graph(text: str, reg: Registry) -> Graph:
    return plan(lower_text(parse(text), reg))


def _run(graph: Graph) -> None:
    cobus.run(graph, RunContext(stdout=io.BytesIO()))


def test_a_declared_step_is_absorbed_and_gives_the_same_records() -> None:
    seen: list[Any] = []
    reg = _registry(seen)
    fused = _graph("numbers 10 | only odd=1 | only n>4 | keep n", reg)
    head = fused.nodes[0]
    assert [n.spec.name for n in fused.nodes] == ["numbers", "keep"]
    assert head.plan is not None and head.plan.absorbed == ("only odd=1", "only n>4")
    assert head.fused == "tested at the source: odd=1 n>4"
    assert head.spec is reg.lookup("numbers", source=True)  # the spec is never rewritten
    assert head.spec.factory.__name__ == "numbers"
    _run(fused)
    by_fusion = list(seen)
    seen.clear()
    unfused = _graph("numbers 10 | as_is | only odd=1 | only n>4 | keep n", reg)
    assert [n.spec.name for n in unfused.nodes] == ["numbers", "as_is", "only", "only", "keep"]
    _run(unfused)
    assert by_fusion == seen == [{"n": 5}, {"n": 7}, {"n": 9}]


def test_fan_out_and_fan_in_stop_fusion_and_the_default_sink_comes_from_the_registry() -> None:
    reg = _registry([])
    graph = _graph("numbers 4 | tee [only odd=1] [only odd=0]", reg)
    assert [n.spec.name for n in graph.nodes] == ["numbers", "tee", "only", "only", "keep"]
    assert graph.nodes[-1].implicit and graph.nodes[-1].inputs == [2, 3]
    assert all(n.plan is None for n in graph.nodes)


def test_projection_adds_what_filters_pass_on_to_what_the_sink_reads() -> None:
    reg = _registry([])
    graph = _graph("numbers 10 | as_is | only odd=1 | keep n", reg)
    numbers, as_is, only, _ = graph.nodes
    assert only.reads == {"odd"} and only.needs == {"n"}
    assert as_is.reads is None and as_is.needs == {"n", "odd"}
    assert numbers.needs is None  # as_is declares nothing: all fields
    everything = _graph("numbers 10 | as_is | only odd=1 | keep", reg)
    assert everything.nodes[2].needs is None


def test_explain_shows_the_fields_read() -> None:
    graph = load("cat x | parse apache | where status>=500 path~^/a | head 2 | print")
    where = next(n for n in graph.nodes if n.spec.name == "where")
    assert where.reads == {"status", "path"}
    out = io.StringIO()
    from rich.console import Console

    Console(file=out, width=200).print(graph_tree(graph))
    text = out.getvalue()
    assert "reads path, status" in text
    assert "read after it: all fields" in text


def test_the_xml_fusion_takes_records_then_every_where_with_one_condition_tree() -> None:
    buses = SAMPLES / "buses.xml"
    graph = load(f'xml {buses} | records bus | where route=22 | where direction="North Bound" | csv id')
    head = graph.nodes[0]
    assert [n.spec.name for n in graph.nodes] == ["xml", "csv"]
    assert head.plan is not None
    assert head.plan.absorbed == ("records bus", "where route=22", 'where direction="North Bound"')
    where = head.plan.params["where"]
    assert isinstance(where, AllOf) and where.fields == {"route", "direction"}
    assert 'where route=22 direction="North Bound" tested before a record is built' in head.fused


def test_condition_trees_combine_and_print_as_written() -> None:
    tree = AllOf.parse(["route=22", "speed", ">", "3"]) & AllOf.parse(["d=North Bound"])
    assert [tuple(c) for c in tree] == [("route", "=", "22"), ("speed", ">", "3"), ("d", "=", "North Bound")]
    assert str(tree) == 'route=22 speed>3 d="North Bound"'
    assert tree.compile()({"route": "22", "speed": 4, "d": "North Bound"})
    assert not tree.compile()({"route": "22", "speed": 2, "d": "North Bound"})
