"""Build: turn a validated graph into wired coroutines and source tasks.

This is the only step that opens files or starts anything: each factory is
called with its target first and its bound parameters. A node read by several
consumers gets a :func:`~cobus.core.broadcast`; a node fed by several inputs
gets one :func:`~cobus.core.fan_in` inlet per input, so it is closed once,
after the last of them.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from ..context import RunContext
from ..core import StageGen, Target, Unselected, broadcast, coroutine, fan_in
from ..metering import Meter, StageStats
from .graph import Graph, Node

__all__ = ["Branch", "Built", "build", "build_branch"]


class Branch:
    """A ``[ sub-pipeline ]`` handed to a stage like ``threaded`` (a :class:`cobus.core.Branch`).

    ``text`` is the branch as written (a worker process rebuilds it from
    there); :meth:`build` wires it in this process in front of ``target``.
    """

    __slots__ = ("ctx", "graph", "text")

    def __init__(self, graph: Graph, text: str, ctx: RunContext) -> None:
        self.graph = graph
        self.text = text
        self.ctx = ctx

    @property
    def input_kind(self) -> str | None:
        return self.graph.input_kind

    @property
    def has_outputs(self) -> bool:
        return bool(self.graph.outputs)

    @property
    def read_after(self) -> frozenset[str] | None:
        return self.graph.read_after

    @property
    def columnar_after(self) -> bool:
        return self.graph.columnar_after

    def build(self, target: Target | None) -> Target:
        return build_branch(self.graph, target, self.ctx)


class Built:
    """A wired pipeline: one task per source, ready for the kernel."""

    __slots__ = ("targets", "tasks")

    def __init__(self, tasks: list[tuple[str, Generator[Any, Any, Any]]], targets: list[Target]) -> None:
        self.tasks = tasks
        #: The targets the sources push into: closed again after the run, in case
        #: a source task never started (closing twice is harmless).
        self.targets = targets


def _call(node: Node, target: Target | None, ctx: RunContext) -> Any:
    kwargs = dict(node.arguments)
    if node.spec.wants_ctx:
        kwargs["ctx"] = ctx
    if node.spec.branches is not None:
        kwargs[node.spec.branches] = [Branch(g, g.text, ctx) for g in node.branches]
    if node.is_sink and not node.branches:
        return _counted(node.factory(**kwargs), ctx)
    if node.is_sink:  # branches ending in sinks, perhaps in another process: count what goes in
        return _counted(node.factory(target, **kwargs), ctx)
    return node.factory(target, **kwargs)


@coroutine
def _counted(sink: Target, ctx: RunContext) -> StageGen:
    """A sink that counts the non-empty batches it receives (the run's exit status reads it).

    An :class:`~cobus.core.Unselected` batch is written but not counted.
    """
    try:
        while True:
            batch = yield
            if batch and type(batch) is not Unselected:
                ctx.selected += 1
            sink.send(batch)
    finally:
        sink.close()


def _wire(
    graph: Graph, ctx: RunContext, outside: Target | None, given: dict[int, Any] | None = None
) -> dict[int, list[Any]]:
    """Build every node from the sinks up; return each node's entry points.

    ``given`` collects the target each node was built with.
    """
    entries: dict[int, list[Any]] = {}
    metered: dict[int, StageStats] = {}
    taken: dict[int, int] = {}
    external: list[Target] = []
    if outside is not None and graph.outputs:
        external = [outside] if len(graph.outputs) == 1 else fan_in(outside, len(graph.outputs))

    def entry_for(consumer: Node) -> Any:
        i = taken.get(consumer.id, 0)
        taken[consumer.id] = i + 1
        return entries[consumer.id][i]

    try:
        for node in reversed(graph.nodes):
            targets = [entry_for(c) for c in graph.consumers(node.id)]
            if node.id in graph.outputs:
                targets.append(external[graph.outputs.index(node.id)])
            target = None if not targets else targets[0] if len(targets) == 1 else broadcast(targets)
            if given is not None:
                given[node.id] = target
            built = _call(node, target, ctx)
            if ctx.stats is not None:
                from ..broker import redact  # no password in a URL is shown (only with --stats)

                stats = StageStats(redact(node.text))
                consumers = graph.consumers(node.id)
                if node.spec.role == "source":
                    stats.feeds = metered.get(consumers[0].id) if consumers else None
                else:
                    built = Meter(built, stats, ctx.stopwatch)
                metered[node.id] = stats
            n_in = max(1, len(node.inputs))
            entries[node.id] = [built] if n_in == 1 else fan_in(built, n_in)
    except BaseException:
        _close_built(entries)
        raise
    if ctx.stats is not None:
        ctx.stats.extend(metered[n.id] for n in graph.nodes)
    return entries


def _close_built(entries: dict[int, list[Any]]) -> None:
    """A stage failed to build: close what was built (sinks close their files)."""
    for built in entries.values():
        for entry in built:
            try:
                entry.close()
            except Exception:  # the build error is the one to report
                pass


def build(graph: Graph, ctx: RunContext) -> Built:
    """Wire a whole pipeline; its sources become tasks."""
    given: dict[int, Any] = {}
    entries = _wire(graph, ctx, None, given)
    sources = graph.sources
    return Built([(n.text, entries[n.id][0]) for n in sources], [given[n.id] for n in sources])


def build_branch(graph: Graph, target: Target | None, ctx: RunContext) -> Target:
    """Wire a branch graph in front of ``target``; return its entry coroutine."""
    entries = _wire(graph, ctx, target)
    heads = [n for n in graph.nodes if not n.inputs]
    if len(heads) == 1:
        return entries[heads[0].id][0]
    return broadcast([entries[h.id][0] for h in heads])
