"""``cat``: read files (or stdin) as blocks of whole lines.

Compressed files (``.gz``, ``.bz2``, ``.xz``) are read transparently. A file is
read in large blocks; each block is cut after its last newline and the rest is
carried into the next one, so a line is never split between batches and a
very long line costs linear time. A pipe is read with what is ready now, so a
line typed into ``cat -`` reaches the sink at once. Errors name the path.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import sys
from collections.abc import Callable, Iterator
from typing import IO, Annotated, Any

from ..context import RunContext
from ..core import LINES, Done, Target
from ..errors import SourceError
from ..registry import Arg, stage

__all__ = ["blocks_of", "cat", "open_input", "read_blocks"]

BLOCK_SIZE = 1 << 20

_OPENERS: dict[str, Callable[[str], Any]] = {
    ".gz": lambda p: gzip.open(p, "rb"),
    ".bz2": lambda p: bz2.open(p, "rb"),
    ".xz": lambda p: lzma.open(p, "rb"),
}


def open_input(path: str) -> IO[bytes]:
    """Open a file for reading bytes (decompressing by suffix); ``-`` is stdin."""
    if path == "-":
        return open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
    opener = _OPENERS.get(os.path.splitext(path)[1].lower())
    try:
        if opener is not None:
            stream: IO[bytes] = opener(path)
            return stream
        return open(path, "rb", buffering=0)
    except OSError as exc:
        raise SourceError(f"{path}: {exc.strerror or exc}") from exc


def read_blocks(stream: IO[bytes], path: str, size: int = BLOCK_SIZE) -> Iterator[bytes]:
    """Raw blocks of a stream, with read errors (bad gzip ...) naming the path."""
    read = getattr(stream, "read1", stream.read)
    while True:
        try:
            chunk = read(size)
        except (OSError, EOFError, lzma.LZMAError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise SourceError(f"{path}: {reason}") from exc
        if not chunk:
            return
        yield chunk


def blocks_of(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Blocks of whole lines from raw chunks; a last line without newline gets one.

    Discussion: the tail after a block's last newline is carried as a list of
    pieces and joined only when its newline arrives, so a 1 GB line is copied
    once, not once per block.
    """
    carry: list[bytes] = []
    for chunk in chunks:
        cut = chunk.rfind(b"\n") + 1
        if cut == 0:
            carry.append(chunk)
            continue
        if carry:
            carry.append(chunk[:cut])
            yield b"".join(carry)
            carry = []
        else:
            yield chunk if cut == len(chunk) else chunk[:cut]
        if cut < len(chunk):
            carry.append(chunk[cut:])
    if carry:
        carry.append(b"\n")
        yield b"".join(carry)


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
    return _cat(target, files)


def _cat(target: Target, files: list[str]) -> Iterator[object]:
    try:
        for path in files:
            stream = open_input(path)
            try:
                for block in blocks_of(read_blocks(stream, path)):
                    target.send(block)
            finally:
                stream.close()
    except Done:
        return
    finally:
        target.close()
    yield from ()
