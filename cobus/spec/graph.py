"""The one AST of a pipeline: a graph of validated stage nodes.

Inline text and TOML files both end here. :func:`lower` walks a parsed
:class:`~cobus.spec.parse.Pipeline`, looks every stage up in the registry,
binds its words to typed parameters, checks that the kind of data arriving
(lines, records, events) is what the stage takes, and adds nodes to a
:class:`GraphBuilder`. The fan-out stage (``broadcast [a] [b]``, marked
``fans_out`` in the registry) becomes a node with one consumer per branch;
branches that do not end in a sink flow into the next stage (fan-in). A
pipeline whose end is not a sink gets the registry's default sink
(``print``), marked implicit. No stage is named here. Nothing is opened or
started: ``cobus check`` and ``explain`` stop here, after the planner
(:mod:`cobus.spec.plan`) has recorded its choices on the nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..core import RECORDS
from ..errors import SpecError
from ..registry import ANY, SAME, Registry, StageSpec
from ..steps import Fused
from .options import bind
from .parse import Pipeline, Stage, Word

__all__ = ["Graph", "GraphBuilder", "Node", "lower_text"]


class Node:
    """One stage of the wired graph (a plain class, as :class:`cobus.registry.StageSpec` explains)."""

    def __init__(
        self,
        *,
        id: int,
        spec: StageSpec,
        params: dict[str, Any],
        inputs: list[int],
        text: str = "",
        label: str = "",
        input_kind: str = ANY,
        implicit: bool = False,
    ) -> None:
        self.id = id
        self.spec = spec
        self.params = params
        self.inputs = inputs
        self.text = text
        self.label = label
        #: Sub-graphs of a stage that takes ``[ ... ]`` (threaded, parallel ...).
        self.branches: list[Graph] = []
        self.input_kind = input_kind
        self.output_kind: str | None = None
        self.implicit = implicit
        #: The planner's choice for this node: the stages it took over and how
        #: it runs them (None: the stage runs as written).
        self.plan: Fused | None = None
        #: Record fields this stage reads, as it declares them (None: all, or undeclared).
        self.reads: frozenset[str] | None = None
        #: For a node that makes records: the fields the stages after it read
        #: (None: all of them, or not known). Set by the planner.
        self.needs: frozenset[str] | None = None

    def __repr__(self) -> str:
        return f"Node({self.id}, {self.text!r})"

    @property
    def is_sink(self) -> bool:
        return self.output_kind is None

    @property
    def fused(self) -> str:
        """What the planner's fusion gained, as ``explain`` says it ("" when none)."""
        return self.plan.note if self.plan is not None else ""

    @property
    def factory(self) -> Callable[..., Any]:
        """What the build calls: the planned factory, else the stage's own."""
        return self.plan.factory if self.plan is not None else self.spec.factory

    @property
    def arguments(self) -> Mapping[str, Any]:
        """The keyword arguments for :attr:`factory` (the stage's parameters unless planned)."""
        return self.plan.params if self.plan is not None else self.params


class Graph:
    """Nodes in topological order (every input comes before its consumer)."""

    def __init__(
        self,
        nodes: list[Node],
        *,
        outputs: list[int] | None = None,
        input_kind: str | None = None,
        text: str = "",
        read_after: frozenset[str] | None = None,
        columnar_after: bool = False,
    ) -> None:
        self.nodes = nodes
        #: For a branch graph: the nodes whose output leaves the branch.
        self.outputs: list[int] = outputs if outputs is not None else []
        #: For a branch graph: the kind of data fed into it.
        self.input_kind = input_kind
        #: For a branch graph: its text as written.
        self.text = text
        #: For a branch graph: the fields read after its outputs (None: all, or not known).
        self.read_after = read_after
        #: For a branch graph: what its outputs feed takes :class:`~cobus.columns.Columns`.
        self.columnar_after = columnar_after

    def node(self, node_id: int) -> Node:
        return next(n for n in self.nodes if n.id == node_id)

    def consumers(self, node_id: int) -> list[Node]:
        return [n for n in self.nodes if node_id in n.inputs]

    @property
    def sources(self) -> list[Node]:
        return [n for n in self.nodes if n.spec.role == "source"]

    def output_kind(self) -> str | None:
        kinds = {self.node(i).output_kind for i in self.outputs}
        return kinds.pop() if len(kinds) == 1 else (ANY if kinds else None)


class GraphBuilder:
    """Collects nodes while pipelines are lowered into one graph."""

    def __init__(self, registry: Registry, *, where: str | None = None) -> None:
        self.registry = registry
        self.nodes: list[Node] = []
        self.where = where

    def _error(self, exc: SpecError, text: str, word: Word) -> SpecError:
        exc.where = exc.where or self.where
        if exc.text == "" or exc.text is None:
            if exc.column is None:
                exc.column, exc.width = word.column, word.width
            exc.text = text
        return exc

    def lower(
        self,
        pipeline: Pipeline,
        inputs: list[int],
        *,
        fed: str | None = None,
    ) -> list[int]:
        """Add a pipeline's stages fed by ``inputs``; return the nodes whose output goes on.

        ``fed`` is the kind of data entering a branch of a stage like
        ``threaded`` (its first stage has no input node but is not a source).
        """
        current = list(inputs)
        kinds = {self.node(i).output_kind for i in inputs}
        kind = fed if fed is not None else (kinds.pop() if len(kinds) == 1 else None)
        for i, st in enumerate(pipeline.stages):
            if i > 0 and not current:
                prev = pipeline.stages[i - 1]
                raise self._error(
                    SpecError(
                        f"nothing flows into {st.name.text}: {prev.name.text} ends the pipeline"
                        " (it is a sink)"
                    ),
                    pipeline.text,
                    st.name,
                )
            if self._is_fan_out(st):
                current, kind = self._fan_out(st, current, kind, fed if i == 0 else None)
                continue
            node = self._node(st, current, kind, source=not current and fed is None)
            current = [] if node.is_sink else [node.id]
            kind = node.output_kind
        return current

    def _is_fan_out(self, st: Stage) -> bool:
        """True for the fan-out stage (looked up as a filter: it may also start a pipeline)."""
        try:
            return self.registry.lookup(st.name.text, source=False).fans_out
        except SpecError:  # unknown, or a source: _node says so where it belongs
            return False

    def _fan_out(
        self, st: Stage, current: list[int], kind: str | None, fed: str | None
    ) -> tuple[list[int], str | None]:
        if st.words or not st.branches:
            name = st.name.text
            raise self._error(
                SpecError(f"{name} takes only [ branches ]: {name} [grep a] [grep b]"),
                st.text,
                st.words[0] if st.words else st.name,
            )
        feed: list[int] = []
        if current or fed is not None:
            node = self._node(st, current, kind, source=False, with_branches=False)
            feed = [node.id]
        tails: list[int] = []
        kinds: set[str | None] = set()
        for branch in st.branches:
            out = self.lower(branch, feed)
            tails += out
            kinds |= {self.node(t).output_kind for t in out}
        if len(kinds) > 1:
            raise self._error(
                SpecError(
                    f"the branches of {st.name.text} send different kinds of data"
                    f" ({', '.join(sorted(map(str, kinds)))}) into one stage"
                ),
                st.text,
                st.name,
            )
        return tails, (kinds.pop() if kinds else None)

    def node(self, node_id: int) -> Node:
        return next(n for n in self.nodes if n.id == node_id)

    def _node(
        self,
        st: Stage,
        inputs: list[int],
        kind: str | None,
        *,
        source: bool,
        with_branches: bool = True,
    ) -> Node:
        try:
            spec = self.registry.lookup(st.name.text, source=source)
        except SpecError as exc:
            raise self._error(exc, st.text, st.name) from None
        try:
            params = bind(spec, st.words)
        except SpecError as exc:
            raise self._error(exc, st.text, st.name) from None
        takes = spec.takes(params)
        if kind is not None and kind != ANY and takes not in (ANY, kind):
            hint = " (put parse or records before it)" if takes == RECORDS else ""
            raise self._error(
                SpecError(f"{spec.name} takes {takes}, but {kind} arrive here{hint}"),
                st.text,
                st.name,
            )
        node = Node(
            id=len(self.nodes),
            spec=spec,
            params=params,
            inputs=list(inputs),
            text=st.source_text(),
            input_kind=kind or ANY,
        )
        self.nodes.append(node)
        out: str | None
        if spec.role == "sink":
            out = None
        elif spec.produces == SAME:
            out = kind or ANY
        elif spec.produces_if is not None:
            out = spec.produces_if(params)
        else:
            out = spec.produces
        if with_branches and st.branches:
            if spec.branches is None:
                raise self._error(SpecError(f"{spec.name} takes no [ branches ]"), st.text, st.name)
            rules = spec.branch_rules
            if rules is not None and rules.count is not None and len(st.branches) != rules.count:
                many = "one [ branch ]" if rules.count == 1 else f"{rules.count} [ branches ]"
                raise self._error(
                    SpecError(f"{spec.name} takes exactly {many}, not {len(st.branches)}"), st.text, st.name
                )
            for branch in st.branches:
                sub = GraphBuilder(self.registry, where=self.where)
                tails = sub.lower(branch, [], fed=kind or ANY)
                graph = Graph(sub.nodes, outputs=tails, input_kind=kind or ANY, text=branch.source_text())
                node.branches.append(graph)
                if rules is not None and rules.filters_only and not tails:
                    sink = next((n.text for n in sub.nodes if n.is_sink), "the branch")
                    raise self._error(
                        SpecError(
                            f"{spec.name} runs a branch of filters; {sink} ends it"
                            f" (put sinks after {spec.name} [ ... ])"
                        ),
                        st.text,
                        branch.stages[-1].name,
                    )
            outs = {g.output_kind() for g in node.branches}
            out = None if outs == {None} else next(k for k in outs if k is not None)
        elif spec.branches is not None:
            raise self._error(SpecError(f"{spec.name} needs a [ sub-pipeline ]"), st.text, st.name)
        node.output_kind = out
        return node

    def finish(self, tails: list[int]) -> Graph:
        """Close the graph: outputs that go nowhere end in the implicit default sink."""
        if tails:
            spec = self._default_sink()
            kinds = {self.node(t).output_kind for t in tails}
            self.nodes.append(
                Node(
                    id=len(self.nodes),
                    spec=spec,
                    params=bind(spec, ()),
                    inputs=list(tails),
                    text=spec.name,
                    input_kind=(kinds.pop() if len(kinds) == 1 else None) or ANY,
                    implicit=True,
                )
            )
        if not any(n.spec.role == "source" for n in self.nodes):
            raise SpecError("the pipeline has no source", where=self.where)
        return Graph(self.nodes)

    def _default_sink(self) -> StageSpec:
        sinks = [s for s in self.registry.all() if s.default_sink]
        if len(sinks) != 1:
            raise SpecError(f"the registry must mark one default sink, not {len(sinks)}")
        return sinks[0]


def lower_text(pipeline: Pipeline, registry: Registry) -> Graph:
    """Validate an inline pipeline into a graph."""
    builder = GraphBuilder(registry)
    tails = builder.lower(pipeline, [])
    return builder.finish(tails)
