"""Pipelines in TOML: the same graph as inline text, with named stages.

    [stages.logs]
    run = "cat samples/access.log"

    [stages.python]
    from = "logs"
    run = "grep -i python"

    [stages.out]
    from = ["python"]
    run = "print"

Each ``run`` is inline pipeline text; ``from`` names the stages whose output
feeds it (several names: fan-in; one name in several ``from``: fan-out). A
file may instead hold one ``pipeline = "..."`` string. Both lower into the
graph of :mod:`cobus.spec.graph` with the same builder as inline text.
"""

from __future__ import annotations

from typing import Any

from ..errors import SpecError
from ..registry import Registry
from .graph import Graph, GraphBuilder
from .parse import parse

__all__ = ["lower_toml"]

_STAGE_KEYS = {"run", "from", "help"}


def _names(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise SpecError("'from' must be a stage name or a list of names", where=where)


def lower_toml(source: str, path: str, registry: Registry) -> Graph:
    """Validate a TOML pipeline file's text into a graph."""
    import tomllib  # only for a pipeline file: inline text starts without it

    try:
        doc = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"not valid TOML: {exc}", where=path) from None
    unknown = set(doc) - {"pipeline", "stages", "description"}
    if unknown:
        raise SpecError(
            f"unknown top-level key {sorted(unknown)[0]!r} (expected stages or pipeline)", where=path
        )
    if "pipeline" in doc:
        if "stages" in doc:
            raise SpecError("give either 'pipeline' or [stages], not both", where=path)
        text = doc["pipeline"]
        if not isinstance(text, str):
            raise SpecError("'pipeline' must be a string", where=path)
        builder = GraphBuilder(registry, where=path)
        try:
            return builder.finish(builder.lower(parse(" ".join(text.split("\n"))), []))
        except SpecError as exc:
            exc.where = exc.where or path
            raise
    stages = doc.get("stages")
    if not isinstance(stages, dict) or not stages:
        raise SpecError("no [stages.NAME] tables and no 'pipeline' string", where=path)
    builder = GraphBuilder(registry)
    tails: dict[str, list[int]] = {}
    used: set[str] = set()
    pending = dict(stages)
    while pending:
        ready = [
            name
            for name, table in pending.items()
            if all(n in tails for n in _names(table.get("from", []), f"{path}: stage {name!r}"))
        ]
        if not ready:
            name = sorted(pending)[0]
            missing = [n for n in _names(pending[name].get("from", []), name) if n not in stages]
            why = f"'from' names no stage {missing[0]!r}" if missing else "its 'from' makes a cycle"
            raise SpecError(why, where=f"{path}: stage {name!r}")
        for name in ready:
            table = pending.pop(name)
            where = f"{path}: stage {name!r}"
            if not isinstance(table, dict):
                raise SpecError("must be a table with 'run'", where=where)
            bad = set(table) - _STAGE_KEYS
            if bad:
                raise SpecError(f"unknown key {sorted(bad)[0]!r} (expected run, from)", where=where)
            text = table.get("run")
            if not isinstance(text, str):
                raise SpecError('needs run = "stage text"', where=where)
            sources = _names(table.get("from", []), where)
            inputs: list[int] = []
            for src in sources:
                if not tails[src]:
                    raise SpecError(f"{src!r} ends in a sink: nothing flows from it", where=where)
                inputs += tails[src]
                used.add(src)
            builder.where = where
            first = len(builder.nodes)
            tails[name] = builder.lower(parse(text), inputs)
            if len(builder.nodes) > first:
                builder.nodes[first].label = name
    builder.where = path
    return builder.finish([i for name, t in tails.items() if name not in used for i in t])
