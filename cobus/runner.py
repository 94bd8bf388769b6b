"""Run a pipeline: validate, build, spawn one kernel task per source, finish cleanly.

Whatever ends the run (the sources are exhausted, an error, Ctrl-C), every
source's target is closed before :func:`run` returns, so each sink flushes
exactly once, and stdout is flushed.
"""

from __future__ import annotations

from .context import RunContext
from .spec import Graph, load
from .spec.build import build

__all__ = ["run"]


def run(pipeline: str | Graph, ctx: RunContext | None = None) -> None:
    """Run a pipeline given as text, a ``.toml`` path or a validated graph."""
    try:
        from .kernel import Kernel
    except ImportError:  # TEMPORARY until the kernel lands
        Kernel = _Sequential  # type: ignore[misc,assignment]

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


class _Sequential:  # TEMPORARY
    def __init__(self) -> None:
        self.tasks: list = []

    def spawn(self, task, name=""):  # type: ignore[no-untyped-def]
        self.tasks.append(task)

    def run(self) -> None:
        for t in self.tasks:
            for _ in t:
                pass

    def close(self) -> None:
        pass
