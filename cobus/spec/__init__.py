"""The pipeline language: inline text and TOML files -> one validated graph.

``load`` is parse + validate + plan (what ``cobus check`` and ``explain``
run; the planner, :mod:`cobus.spec.plan`, records fusions and the fields
each stage reads on the nodes); :func:`cobus.spec.build.build` is the build
step that opens and starts things.
"""

from __future__ import annotations

from ..errors import SpecError
from ..registry import ANY, Registry, registry
from ..steps import Step
from .graph import Graph, GraphBuilder, Node, lower_text
from .parse import MAX_STAGES, parse
from .plan import plan
from .toml import lower_toml

__all__ = ["Graph", "Node", "is_pipeline_file", "load", "load_branch", "load_step", "plan"]


def is_pipeline_file(arg: str) -> bool:
    """True when ``arg`` names a TOML pipeline file rather than pipeline text."""
    return arg.endswith(".toml") and "|" not in arg and " " not in arg.strip()


def load(arg: str, reg: Registry | None = None) -> Graph:
    """Parse and validate a pipeline given as text or as a ``.toml`` path."""
    reg = (reg or registry).load()
    if is_pipeline_file(arg):
        try:
            with open(arg, encoding="utf-8") as f:
                source = f.read()
        except OSError as exc:
            raise SpecError(f"{arg}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise SpecError(f"{arg}: not UTF-8 text ({exc.reason})") from None
        graph = lower_toml(source, arg, reg)
        if _size(graph) > MAX_STAGES:  # each stage's text was parsed (and limited) apart
            raise SpecError(f"too many stages: a pipeline holds at most {MAX_STAGES}", where=arg)
    else:
        graph = lower_text(parse(arg), reg)
    return plan(graph)


def _size(graph: Graph) -> int:
    """Stages written in a graph, branches included (not the implicit print)."""
    return sum(0 if n.implicit else 1 + sum(map(_size, n.branches)) for n in graph.nodes)


def load_branch(
    text: str,
    kind: str,
    reg: Registry | None = None,
    *,
    aggregate: str | None = None,
    reads: frozenset[str] | None = None,
    columns: bool = False,
) -> Graph:
    """Validate a ``[ branch ]``'s text fed with ``kind`` data (a worker rebuilds it so).

    ``aggregate``: the text of the split aggregate after the branch (a
    worker runs its partial half): only the fields it reads are read after
    the branch. ``reads``: the fields read after the branch, as the
    parent's planner found them (None: all, unless ``aggregate`` says);
    ``columns``: the branch may end in columns (the parent planned it so).
    """
    reg = (reg or registry).load()
    read_after = reads
    columnar_after = columns
    if aggregate is not None:
        node = _one_stage(aggregate, reg)
        if read_after is None:
            read_after = node.spec.reads(node.params) if node.spec.reads is not None else None
        columnar_after = node.spec.columnar  # its partial half takes what the stage takes
    builder = GraphBuilder(reg)
    tails = builder.lower(parse(text), [], fed=kind)
    return plan(
        Graph(
            builder.nodes,
            outputs=tails,
            input_kind=kind,
            text=text,
            read_after=read_after,
            columnar_after=columnar_after,
        )
    )


def load_step(text: str, op: str, reg: Registry | None = None) -> Step:
    """The ``op`` step one stage's text declares (a worker rebuilds a split aggregate so)."""
    node = _one_stage(text, (reg or registry).load())
    step = node.spec.step(node.params) if node.spec.step is not None else None
    if step is None or step.op != op:
        raise SpecError(f"{text}: not a stage that runs as {op!r}")
    return step


def _one_stage(text: str, reg: Registry) -> Node:
    """The one stage ``text`` holds, validated (fed any kind of data)."""
    builder = GraphBuilder(reg)
    builder.lower(parse(text), [], fed=ANY)
    if len(builder.nodes) != 1:
        raise SpecError(f"{text}: not one stage")
    return builder.nodes[0]
