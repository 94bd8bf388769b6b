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
import io
import lzma
import os
import stat
import sys
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Annotated, Any

from ..context import RunContext
from ..core import LINES, Done, Target
from ..errors import SourceError
from ..kernel import ReadWait
from ..registry import Arg, stage

__all__ = ["LineSplitter", "blocks_of", "cat", "open_input", "read_blocks"]

BLOCK_SIZE = 1 << 20

_OPENERS: dict[str, Callable[[str], Any]] = {
    ".gz": lambda p: gzip.open(p, "rb"),
    ".bz2": lambda p: bz2.open(p, "rb"),
    ".xz": lambda p: lzma.open(p, "rb"),
}


def open_input(path: str) -> IO[bytes]:
    """Open a file for reading bytes (decompressing by suffix); ``-`` is stdin."""
    if path == "-":
        try:
            return open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
        except (OSError, ValueError, io.UnsupportedOperation):
            return sys.stdin.buffer  # not a real file (a test runner's stdin)
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
        except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise SourceError(f"{path}: {reason}") from exc
        if not chunk:
            return
        yield chunk


class LineSplitter:
    """Cuts raw chunks into blocks of whole lines.

    Discussion: the tail after a chunk's last newline is carried as a list of
    pieces and joined only when its newline arrives, so a 1 GB line is copied
    once, not once per chunk.
    """

    def __init__(self) -> None:
        self._carry: list[bytes] = []

    def feed(self, chunk: bytes) -> bytes:
        """The whole lines completed by ``chunk`` (maybe ``b""``)."""
        cut = chunk.rfind(b"\n") + 1
        if cut == 0:
            self._carry.append(chunk)
            return b""
        if self._carry:
            self._carry.append(chunk[:cut])
            block = b"".join(self._carry)
            self._carry = []
        else:
            block = chunk if cut == len(chunk) else chunk[:cut]
        if cut < len(chunk):
            self._carry.append(chunk[cut:])
        return block

    def flush(self) -> bytes:
        """The held partial line, given the newline it lacks (or ``b""``)."""
        if not self._carry:
            return b""
        self._carry.append(b"\n")
        block = b"".join(self._carry)
        self._carry = []
        return block


def blocks_of(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Blocks of whole lines from raw chunks; a last line without newline gets one."""
    lines = LineSplitter()
    for chunk in chunks:
        block = lines.feed(chunk)
        if block:
            yield block
    tail = lines.flush()
    if tail:
        yield tail


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


def _waits(stream: IO[bytes]) -> bool:
    """True for a pipe, socket or terminal: wait until readable, never block the kernel."""
    try:
        return not stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, io.UnsupportedOperation):
        return False


def _cat(target: Target, files: list[str]) -> Iterator[object]:
    try:
        for path in files:
            stream = open_input(path)
            try:
                chunks = read_blocks(stream, path)
                lines = LineSplitter()
                wait = _waits(stream)
                while True:
                    if wait:
                        yield ReadWait(stream)
                    chunk = next(chunks, None)
                    if chunk is None:
                        break
                    block = lines.feed(chunk)
                    if block:
                        target.send(block)
                tail = lines.flush()
                if tail:
                    target.send(tail)
            finally:
                stream.close()
    except Done:
        return
    finally:
        target.close()
