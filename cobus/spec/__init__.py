"""The pipeline language: inline text and TOML files -> one validated graph.

``load`` is parse + validate (what ``cobus check`` and ``explain`` run);
:func:`cobus.spec.build.build` is the build step that opens and starts things.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ..errors import SpecError
from ..registry import Registry, registry
from .graph import Graph, GraphBuilder, Node, lower_text
from .parse import MAX_STAGES, parse
from .toml import lower_toml

__all__ = ["Graph", "Node", "fuse", "is_pipeline_file", "load", "load_branch"]


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
    return fuse(graph, reg)


def _size(graph: Graph) -> int:
    """Stages written in a graph, branches included (not the implicit print)."""
    return sum(0 if n.implicit else 1 + sum(map(_size, n.branches)) for n in graph.nodes)


def load_branch(text: str, kind: str, reg: Registry | None = None) -> Graph:
    """Validate a ``[ branch ]``'s text fed with ``kind`` data (a worker rebuilds it so)."""
    reg = (reg or registry).load()
    builder = GraphBuilder(reg)
    tails = builder.lower(parse(text), [], fed=kind)
    return fuse(Graph(builder.nodes, outputs=tails, input_kind=kind, text=text), reg)


def fuse(graph: Graph, reg: Registry) -> Graph:
    """Apply registered fusions to pairs ``a | b`` where b is a's only consumer."""
    for node in graph.nodes:
        for sub in node.branches:
            fuse(sub, reg)
    changed = True
    while changed:
        changed = False
        for a in graph.nodes:
            consumers = graph.consumers(a.id)
            if len(consumers) != 1 or a.id in graph.outputs:
                continue
            b = consumers[0]
            rule = reg.fusions.get((a.spec.name, b.spec.name))
            if rule is None or len(b.inputs) != 1 or b.branches or a.branches:
                continue
            fused = rule(a.params, b.params)
            if fused is None:
                continue
            factory, params, note = fused
            _replace(graph, a, b, factory, params, note)
            changed = True
            break
    return graph


def _replace(
    graph: Graph, a: Node, b: Node, factory: Callable[..., Any], params: dict[str, Any], note: str
) -> None:
    a.spec = dataclasses.replace(a.spec, factory=factory, produces=b.spec.produces, role=a.spec.role)
    a.params = params
    a.text = f"{a.text} | {b.text}"
    a.fused = note
    a.output_kind = b.output_kind
    a.label = a.label or b.label
    graph.nodes.remove(b)
    for n in graph.nodes:
        n.inputs = [a.id if i == b.id else i for i in n.inputs]
    graph.outputs = [a.id if i == b.id else i for i in graph.outputs]
