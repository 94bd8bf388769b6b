"""``cat``: read files (or stdin) as blocks of whole lines.

Compressed files (``.gz``, ``.bz2``, ``.xz``) are read transparently. A file is
read in large blocks; each block is cut after its last newline and the rest is
carried into the next one, so a line is never split between batches and a
very long line costs linear time (see :mod:`cobus.inputs`). A pipe is read
with what is ready now, so a line typed into ``cat -`` reaches the sink at
once. Errors name the path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from ..context import RunContext
from ..core import LINES, Done, Target
from ..inputs import line_blocks, open_input
from ..kernel import ReadWait, Sleep
from ..registry import Arg, stage

__all__ = ["cat"]


@stage(
    "cat",
    role="source",
    produces=LINES,
    examples=(
        "cat access-log | grep python | print",
        "cat access-log.gz old.log.bz2 | count",
        "cat - | grep -i error | print",
    ),
)
def cat(
    target: Target,
    *,
    files: Annotated[list[str], Arg("files to read in order; - is stdin", metavar="FILE")],
    ctx: RunContext,
) -> Iterator[object]:
    """Read files in order (.gz/.bz2/.xz transparently; - is stdin) as lines."""
    return _cat(target, files, ctx)


def _cat(target: Target, files: list[str], ctx: RunContext) -> Iterator[object]:
    try:
        for path in files:
            source = open_input(path)
            tracker = ctx.track(path, source.size())
            try:
                blocks = line_blocks(source.stream, path)
                wait = source.waits()
                while True:
                    # A pipe: wait until readable. A file: give the other
                    # sources (follow, listen) a turn between blocks.
                    yield ReadWait(source.raw) if wait else Sleep(0)
                    block = next(blocks, None)
                    if block is None:
                        break
                    tracker.update(source.position())
                    if block:
                        target.send(block)
                tracker.finish()
            finally:
                source.close()
    except Done:
        return
    finally:
        target.close()
