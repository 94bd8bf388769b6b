"""The planner: every rewrite of a validated graph, after validation and before build.

It reads only what stages declare in the registry (:mod:`cobus.steps`) and
names no stage. It records its choices on the nodes; a :class:`StageSpec` is
never changed. Three passes, branches first:

- **fusion**: where ``a | b`` is a chain (b is a's only consumer and a is
  b's only input), b is described as a step (``step``), and a declares it
  can take that step over (``absorbs``), the absorber may return a
  :class:`~cobus.steps.Fused` plan; b leaves the graph and a runs the plan.
  Repeated until nothing more fuses (``xml F | records T | where C``: the
  records first, then the filter);
- **projection**: for each node that makes records, the fields the stages
  after it read (each declares ``reads``; a filter that passes records on
  adds what is read after it). An undeclared reader, a ``[ branch ]`` or
  the end of a branch graph means all fields. A maker that declares a
  ``projects`` hook is planned to make only those fields, handed on as
  :class:`~cobus.columns.Columns` when every consumer declares ``columnar``
  (a columnar filter counts only when what follows it is columnar too).

- **splitting**: where a stage that runs a branch elsewhere (a
  ``boundary``) feeds a sink that is a split step (``aggregate``: each
  worker folds its share into partial tallies) and declares it can take the
  partials over, both stay in the graph: the first runs its plan (the
  partials computed beside the branch), the sink its ``downstream`` plan
  (merge the partials). Same rule as fusion: one consumer, one input. The
  branch then only feeds the aggregate: its projection ends with the
  fields the aggregate reads (``Graph.read_after``; a worker is told the
  same, see :func:`cobus.spec.load_branch`). The same holds for any
  branch whose output its stage passes on (``threaded [...]``): what is
  read after the stage is all that is read after the branch.

Discussion: one consumer, one input. A fused node runs b inside a, so b's
output must be a's only output and a must be all of b's input: a fan-out, a
fan-in or a branch edge keeps the two apart. A branch graph's outputs leave
it, so the node feeding them does not fuse with what follows the branch.
"""

from __future__ import annotations

from ..core import RECORDS
from ..steps import Call, Fused
from .graph import Graph, Node

__all__ = ["plan"]


def plan(graph: Graph) -> Graph:
    """Fuse and project ``graph`` (and its branches) in place; return it."""
    for node in graph.nodes:
        for sub in node.branches:
            plan(sub)
    while _fuse_one(graph):
        pass
    while _split_one(graph):
        pass
    _project(graph)
    return graph


def _fuse_one(graph: Graph) -> bool:
    """Fuse the first chain that a stage can take over; False when none is left."""
    for a in graph.nodes:
        b = _chained(graph, a)
        if b is None:
            continue
        fused = _absorb(a, b)
        if fused is not None and fused.downstream is None:
            _merge(graph, a, b, fused)
            return True
    return False


def _split_one(graph: Graph) -> bool:
    """Split the first aggregate a boundary stage can compute beside its branch; False when none."""
    for a in graph.nodes:
        if not a.spec.boundary or a.plan is not None:
            continue
        b = _chained(graph, a, branched=True)
        if b is None or b.plan is not None:
            continue
        fused = _absorb(a, b)
        if fused is not None and fused.downstream is not None:
            a.plan = fused._replace(absorbed=(b.text,))
            b.plan = fused.downstream
            for sub in a.branches:  # what leaves the branch is only tallied now
                sub.read_after = b.spec.reads(b.params) if b.spec.reads is not None else None
                sub.columnar_after = b.spec.columnar  # its partial half takes what the stage takes
                _project(sub)
            return True
    return False


def _chained(graph: Graph, a: Node, *, branched: bool = False) -> Node | None:
    """a's only consumer when it has a as its only input, else None.

    ``branched``: a's own branches run inside it (a boundary stage), so they do not part it from b.
    """
    if (a.branches and not branched) or a.id in graph.outputs:
        return None
    consumers = graph.consumers(a.id)
    if len(consumers) != 1:
        return None
    b = consumers[0]
    return b if len(b.inputs) == 1 and not b.branches else None


def _absorb(a: Node, b: Node) -> Fused | None:
    """a's plan with b taken over, if b is a step a declares it can absorb."""
    if b.spec.step is None or not a.spec.absorbs:
        return None
    step = b.spec.step(b.params)
    if step is None:
        return None
    absorber = dict(a.spec.absorbs).get(step.op)
    if absorber is None:
        return None
    step = step._replace(call=Call(b.factory, b.arguments, b.spec.wants_ctx), text=b.text)
    return absorber(a.arguments, step)


def _merge(graph: Graph, a: Node, b: Node, fused: Fused) -> None:
    """Record the plan on a and take b out of the graph (its consumers now read a)."""
    before = a.plan.absorbed if a.plan is not None else ()
    a.plan = fused._replace(absorbed=(*before, *fused.absorbed, b.text))
    a.text = f"{a.text} | {b.text}"
    a.output_kind = b.output_kind
    a.label = a.label or b.label
    graph.nodes.remove(b)
    for n in graph.nodes:
        n.inputs = [a.id if i == b.id else i for i in n.inputs]
    graph.outputs = [a.id if i == b.id else i for i in graph.outputs]


def _project(graph: Graph) -> None:
    """Set ``reads`` on declared readers, ``needs`` on record makers (sinks first).

    A record maker that declares a projector is then planned to make only
    what is needed, as columns when every consumer takes them.
    """
    columnar: dict[int, bool] = {}
    for node in reversed(graph.nodes):
        declared = node.spec.reads
        whole = node.plan is None or not node.plan.absorbed  # a split aggregate still reads its own fields
        node.reads = declared(node.params) if declared is not None and whole else None
        consumers = graph.consumers(node.id)
        leaves = node.id in graph.outputs
        # Its output may be columns: every reader, here and after the graph, takes them.
        readers_take_columns = (
            (bool(consumers) or leaves)
            and all(columnar[c.id] for c in consumers)
            and (not leaves or graph.columnar_after)
        )
        hands_columns = not node.branches and readers_take_columns
        columnar[node.id] = (
            node.spec.columnar and node.plan is None and (node.output_kind != RECORDS or hands_columns)
        )
        if node.output_kind != RECORDS:
            continue
        node.needs = _needed(graph, node)
        if node.needs is not None:  # a branch's output is passed on: read no more of it than that
            for sub in node.branches:
                if sub.read_after is None and sub.outputs:
                    sub.read_after = node.needs
                    # A columnar branch stage hands on columns (or turns them into records where
                    # they cross a process): the branch may end in them when its readers take them.
                    sub.columnar_after = node.spec.columnar and readers_take_columns
                    _project(sub)
        project = node.spec.projects
        if project is not None and node.plan is None and node.needs is not None:
            node.plan = project(node.params, node.needs, hands_columns)


def _needed(graph: Graph, node: Node) -> frozenset[str] | None:
    """The fields read after ``node`` (None: all of them)."""
    needed: set[str] = set()
    if node.id in graph.outputs:  # read outside this graph
        if graph.read_after is None:
            return None
        needed |= graph.read_after
    for consumer in graph.consumers(node.id):
        if consumer.reads is None or consumer.branches:
            return None
        needed |= consumer.reads
        if consumer.output_kind == RECORDS:  # passed on unchanged: what is read later counts
            if consumer.needs is None:
                return None
            needed |= consumer.needs
    return frozenset(needed)
