"""Run a pipeline: validate, build, spawn one kernel task per source, finish cleanly.

Whatever ends the run (the sources are exhausted, an error, Ctrl-C), every
source's target is closed before :func:`run` returns, so each sink flushes
exactly once, and stdout is flushed.
"""

from __future__ import annotations

from .context import RunContext
from .kernel import Kernel
from .spec import Graph, load
from .spec.build import build

__all__ = ["run"]


def run(pipeline: str | Graph, ctx: RunContext | None = None) -> None:
    """Run a pipeline given as text, a ``.toml`` path or a validated graph."""
    graph = load(pipeline) if isinstance(pipeline, str) else pipeline
    ctx = ctx or RunContext()
    built = build(graph, ctx)
    kernel = Kernel()
    try:
        for name, task in built.tasks:
            kernel.spawn(task, name=name)
        kernel.run()
    finally:
        try:
            for target in built.targets:
                target.close()
        finally:
            kernel.close()
            for cleanup in reversed(ctx.cleanups):
                cleanup()
            ctx.stdout.flush()
