"""Rich renderings of the registry and of a wired graph (``stages``, ``explain``).

Everything shown is read from the registry and the planned graph (the
planner's fusions, and the record fields each stage reads), so the help can
never disagree with what runs. No stage is named here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from .broker import redact
from .core import RECORDS
from .errors import SpecError
from .registry import Registry, StageSpec
from .spec.graph import Graph, Node

__all__ = ["graph_tree", "stage_help", "stages_table"]

_ROLE_STYLE = {"source": "green", "filter": "cyan", "sink": "magenta"}


def stages_table(reg: Registry) -> Table:
    """One row per stage: name, role, usage, one-line help (``stages NAME`` has the examples)."""
    table = Table(show_lines=False, expand=False)
    for column in ("stage", "role", "usage", "help"):
        table.add_column(column, overflow="fold")
    for spec in reg.all():
        table.add_row(
            Text(spec.name, style=_ROLE_STYLE.get(spec.role, "")),
            spec.role,
            spec.usage(),
            spec.help,
        )
    return table


def stage_help(reg: Registry, name: str) -> Iterator[Any]:
    """The full help of one stage (every role it has)."""
    specs = [s for s in reg.all() if s.name == name]
    if not specs:
        reg.lookup(name, source=False)  # raises with a did-you-mean
        raise SpecError(f"unknown stage {name!r}")  # pragma: no cover
    for spec in specs:
        yield from _one_stage(spec)


def _one_stage(spec: StageSpec) -> Iterator[Any]:
    yield Text.assemble((spec.usage(), "bold"), f"   ({spec.role}: {_kinds(spec)})")
    yield ""
    yield spec.doc
    if spec.params:
        table = Table(show_header=False, box=None, padding=(0, 2))
        for p in spec.params:
            spelled = (
                p.metavar or p.name.upper()
                if p.positional
                else (f"{p.short}, {p.long}" if p.short else p.long)
            )
            unset = p.required or p.default in (None, False, [], ())
            default = "" if unset else f" (default {_shown(p.default)})"
            choices = f" [{'|'.join(p.choices)}]" if p.choices else ""
            table.add_row(spelled, f"{p.help}{choices}{default}")
        yield ""
        yield table
    if spec.examples:
        yield ""
        yield Text("examples:", style="bold")
        for example in spec.examples:
            yield Text(f"  cobus run '{example}'")
    yield ""


def _shown(value: Any) -> str:
    """A default as the user would type it; repr() when it has invisible characters."""
    text = str(value)
    return text if text.isprintable() and text.strip() == text and text else repr(text)


def _kinds(spec: StageSpec) -> str:
    if spec.role == "source":
        return f"produces {spec.produces}"
    if spec.role == "sink":
        return f"takes {spec.consumes}"
    out = "the same" if spec.produces == "same" else spec.produces
    return f"takes {spec.consumes}, produces {out}"


def _label(node: Node) -> Text:
    text = Text(redact(node.text), style=_ROLE_STYLE.get(node.spec.role, ""))
    kind = node.output_kind or "end"
    text.append(f"   {node.input_kind if node.inputs else node.spec.role} -> {kind}", style="dim")
    if node.implicit:
        text.append("   (implicit)", style="dim")
    if node.label:
        text.append(f"   [{node.label}]", style="yellow")
    if node.fused:
        how = "fused" if node.plan is not None and node.plan.absorbed else "planned"
        text.append(f"   {how}: {node.fused}", style="bold yellow")
    if node.reads is not None and node.input_kind == RECORDS:
        text.append(f"   reads {_fields(node.reads)}", style="dim")
    if node.output_kind == RECORDS:
        needs = "all fields" if node.needs is None else _fields(node.needs)
        text.append(f"   read after it: {needs}", style="dim")
    return text


def _fields(fields: frozenset[str]) -> str:
    return ", ".join(sorted(fields)) if fields else "no fields"


def _grow(tree: Tree, graph: Graph, node: Node, shown: set[int]) -> None:
    branch = tree.add(_label(node))
    if node.id in shown:
        branch.label = Text.assemble(_label(node), ("   (joined, see above)", "dim"))
        return
    shown.add(node.id)
    for i, sub in enumerate(node.branches, 1):
        boundary = node.spec.boundary or "branch"
        sub_tree = branch.add(Text(f"[{boundary} {i}]", style="bold blue"))
        for head in (n for n in sub.nodes if not n.inputs):
            _grow(sub_tree, sub, head, set())
        if sub.outputs:
            sub_tree.add(Text("-> out of the branch", style="dim"))
    for consumer in graph.consumers(node.id):
        _grow(branch, graph, consumer, shown)


def graph_tree(graph: Graph) -> Tree:
    """The graph as a tree from its sources down; shared stages are marked."""
    tree = Tree(Text(escape("pipeline"), style="bold"))
    shown: set[int] = set()
    for source in graph.sources:
        _grow(tree, graph, source, shown)
    return tree
