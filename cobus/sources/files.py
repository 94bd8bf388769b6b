"""``cat``: read files (or stdin) as blocks of whole lines.

Compressed files (``.gz``, ``.bz2``, ``.xz``) are read transparently. A file is
read in large blocks; each block is cut after its last newline and the rest is
carried into the next one, so a line is never split between batches and a
very long line costs linear time (see :mod:`cobus.inputs`). A pipe is read
with what is ready now, so a line typed into ``cat -`` reaches the sink at
once. Errors name the path; as with GNU cat, a file that cannot be read
is reported at the end and the others are read all the same.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from typing import Annotated, Any

from ..context import RunContext
from ..core import LINES, Outlet, Target
from ..errors import SourceError
from ..inputs import line_blocks, open_input, read_blocks
from ..kernel import ReadWait, Sleep
from ..registry import Arg, stage
from ..steps import PARSE_XML, Call, Fused, Step

__all__ = ["cat"]


def _absorb_xml(args: Mapping[str, Any], step: Step) -> Fused | None:
    # The parser must see each file's bytes exactly: the newline cat gives a
    # last line that lacks one is a stray byte in a UTF-16 document.
    if step.call is None:
        return None
    params = {"files": args["files"], "parser": step.call}
    return Fused(
        _cat_into_parser, params, "the files' bytes go to the parser exactly as they are (no newline added)"
    )


def _cat_into_parser(target: Target, *, files: list[str], parser: Call, ctx: RunContext) -> Iterator[object]:
    return _cat(parser(target, ctx), files, ctx, exact=True)


@stage(
    "cat",
    role="source",
    produces=LINES,
    absorbs={PARSE_XML: _absorb_xml},
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


def _cat(target: Target, files: list[str], ctx: RunContext, *, exact: bool = False) -> Iterator[object]:
    outlet = Outlet(target)
    failed: list[SourceError] = []
    try:
        for path in files:
            error = yield from _cat_one(outlet, path, ctx, exact)
            if outlet.done:  # downstream has enough (head): nothing more to read or report
                return
            if error is not None:  # like GNU cat: go on with the others
                failed.append(error)
    finally:
        outlet.close()
    if failed:
        raise failed[0] if len(failed) == 1 else SourceError("; ".join(map(str, failed)))


def _cat_one(
    outlet: Outlet, path: str, ctx: RunContext, exact: bool
) -> Generator[object, None, SourceError | None]:
    """Send the lines of one file; the error that kept it from being read (or all of it), if any.

    Only opening and reading are caught: an error raised downstream (bad XML
    in ``cat F | xml``) ends the run as it is.
    """
    try:
        source = open_input(path)
    except SourceError as exc:
        return exc
    tracker = ctx.track(path, source.size())
    try:
        blocks = read_blocks(source.stream, path) if exact else line_blocks(source.stream, path)
        wait = source.waits()
        while True:
            # A pipe: wait until readable. A file: give the other
            # sources (follow, listen) a turn between blocks.
            yield ReadWait(source.raw) if wait else Sleep(0)
            try:
                block = next(blocks, None)
            except SourceError as exc:
                return exc
            if block is None:
                break
            tracker.update(source.position())
            if block and not outlet.offer(block):
                return None  # downstream has enough
        tracker.finish()
    finally:
        source.close()
    return None
