"""The basic sinks: ``print`` (stdout), ``write FILE``, ``null`` (``count`` is in aggregate.py).

Sinks write through plain binary file objects: a block of lines is written as
it is, so bytes pass through unchanged; other items are written as one
readable line each. ``print`` flushes once per batch, so a followed source
shows every line at once while a batch file is still written in large chunks.
"""

from __future__ import annotations

from typing import IO, Annotated

from ..context import RunContext
from ..core import StageGen, coroutine
from ..errors import SinkError
from ..registry import Arg, Opt, stage

__all__ = ["null", "print_", "write"]


def _write_batches(out: IO[bytes], flush: bool) -> StageGen:
    """Write every batch to ``out``; flush per batch if asked."""
    while True:
        batch = yield
        if isinstance(batch, bytes):
            out.write(batch)
        else:  # formats (and json) load with the first batch of records: lines start without them
            from ..formats import item_line

            out.write(b"".join(map(item_line, batch)))
        if flush:
            out.flush()


@stage(
    "print",
    role="sink",
    default_sink=True,
    examples=("cat access-log | grep python | print", "xml feed.xml | records bus | print"),
)
@coroutine
def print_(*, ctx: RunContext) -> StageGen:
    """Write items to stdout: lines as they are, records as key=value lines."""
    out = ctx.stdout
    try:
        yield from _write_batches(out, flush=True)
    finally:
        out.flush()


@stage(
    "write",
    role="sink",
    examples=(
        "cat access-log | grep ply | write ply.log",
        "follow app.log | grep ERROR | write -a errors.log",
    ),
)
@coroutine
def write(
    *,
    path: Annotated[str, Arg("file to write (created or replaced)", metavar="FILE")],
    append: Annotated[bool, Opt("-a", "append instead of replacing")] = False,
    ctx: RunContext,
) -> StageGen:
    """Write items to a file (lines as they are, records as key=value lines)."""
    try:
        out = open(path, "ab" if append else "wb")
    except OSError as exc:
        raise SinkError(f"{path}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # a NUL byte (a TOML file can write one as \u0000)
        raise SinkError(f"{path!r}: a file name cannot hold a NUL byte") from exc
    ctx.delivery.output(path, out.flush)
    try:
        yield from _write_batches(out, flush=ctx.live)
    except OSError as exc:
        raise SinkError(f"{path}: {exc.strerror or exc}") from exc
    finally:
        try:
            out.close()  # flushes: it fails as the writes would
        except OSError as exc:
            raise SinkError(f"{path}: {exc.strerror or exc}") from exc


@stage("null", role="sink", examples=("cat big.log | grep foo | null",))
@coroutine
def null() -> StageGen:
    """Discard everything (for timing a pipeline)."""
    while True:
        yield
