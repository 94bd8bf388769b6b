"""Opening inputs and cutting bytes into blocks of whole lines (used by every file source).

``open_input`` opens a path (or ``-``) and decompresses ``.gz``/``.bz2``/``.xz``
by suffix; ``read_blocks`` reads large raw blocks, translating read errors
into one-line errors that name the path; ``LineSplitter`` cuts raw chunks
into blocks of whole lines. Not a stage module: ``cat`` and ``xml`` both use
it, and stages never import each other.
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
from typing import IO, Any

from .errors import SourceError

__all__ = ["BLOCK_SIZE", "Input", "LineSplitter", "blocks_of", "open_input", "read_blocks"]

BLOCK_SIZE = 1 << 20

_DECOMPRESSORS: dict[str, Callable[[IO[bytes]], Any]] = {
    ".gz": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    ".bz2": lambda raw: bz2.BZ2File(raw, "rb"),
    ".xz": lambda raw: lzma.LZMAFile(raw, "rb"),
}


class Input:
    """An opened input: ``stream`` to read (decompressed), ``raw`` the file under it.

    The position of ``raw`` is the progress through a compressed file.
    """

    def __init__(self, path: str, stream: IO[bytes], raw: IO[bytes]) -> None:
        self.path = path
        self.stream = stream
        self.raw = raw

    def size(self) -> int | None:
        """The size in bytes of a regular file, else None."""
        try:
            st = os.fstat(self.raw.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def position(self) -> int:
        try:
            return self.raw.tell()
        except (OSError, ValueError):
            return 0

    def waits(self) -> bool:
        """True for a pipe, socket or terminal: wait until readable, never block the kernel.

        Regular files and other devices (``/dev/null``) are always readable,
        and epoll refuses to watch them.
        """
        try:
            fd = self.raw.fileno()
            mode = os.fstat(fd).st_mode
            return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)
        except (OSError, ValueError, io.UnsupportedOperation):
            return False

    def close(self) -> None:
        try:
            self.stream.close()
        finally:
            if self.raw is not self.stream:
                self.raw.close()


def open_input(path: str) -> Input:
    """Open a file for reading bytes (decompressing by suffix); ``-`` is stdin."""
    if path == "-":
        try:
            raw: IO[bytes] = open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
        except (OSError, ValueError, io.UnsupportedOperation):
            raw = sys.stdin.buffer  # not a real file (a test runner's stdin)
        return Input(path, raw, raw)
    try:
        raw = open(path, "rb", buffering=0)
    except OSError as exc:
        raise SourceError(f"{path}: {exc.strerror or exc}") from exc
    wrap = _DECOMPRESSORS.get(os.path.splitext(path)[1].lower())
    return Input(path, wrap(raw) if wrap else raw, raw)


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
