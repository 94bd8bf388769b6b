"""Opening inputs and cutting bytes into blocks of whole lines (used by every file source).

``open_input`` opens a path (or ``-``) and decompresses ``.gz``/``.bz2``/``.xz``
by suffix; ``read_blocks`` reads large raw blocks, translating read errors
into one-line errors that name the path; ``line_blocks`` reads blocks of
whole lines. Not a stage module: ``cat`` and ``xml`` both use
it, and stages never import each other.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

from .errors import SourceError

__all__ = ["BLOCK_SIZE", "Input", "line_blocks", "open_input", "read_blocks"]

BLOCK_SIZE = 1 << 20


def _gzip(raw: IO[bytes]) -> Any:
    import gzip  # each decompressor is loaded for its first file: plain text starts quicker

    return gzip.GzipFile(fileobj=raw, mode="rb")


def _bz2(raw: IO[bytes]) -> Any:
    import bz2

    return bz2.BZ2File(raw, "rb")


def _xz(raw: IO[bytes]) -> Any:
    import lzma

    return lzma.LZMAFile(raw, "rb")


_DECOMPRESSORS: dict[str, Callable[[IO[bytes]], Any]] = {".gz": _gzip, ".bz2": _bz2, ".xz": _xz}


def _read_errors() -> tuple[type[BaseException], ...]:
    """What reading a (compressed) input raises for bad data.

    Called in ``except`` clauses, which Python evaluates only when an
    exception is on its way: the decompressors stay unloaded until a
    compressed file is opened.
    """
    import lzma
    import zlib

    return (OSError, EOFError, lzma.LZMAError, zlib.error)


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
        stdin = sys.stdin
        try:
            # Python leaves sys.stdin None when fd 0 was closed: try fd 0 itself.
            fd = stdin.fileno() if stdin is not None else 0
        except (OSError, ValueError, io.UnsupportedOperation):
            raw: IO[bytes] = stdin.buffer  # not a real file (a test runner's stdin)
            return Input(path, raw, raw)
        try:
            raw = open(fd, "rb", buffering=0, closefd=False)
        except OSError as exc:  # closed
            raise SourceError(f"-: {exc.strerror or exc}") from exc
        return Input(path, raw, raw)
    try:
        raw = open(path, "rb", buffering=0)
    except OSError as exc:
        raise SourceError(f"{path}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # a NUL byte (a TOML file can write one as \u0000)
        raise SourceError(f"{path!r}: a file name cannot hold a NUL byte") from exc
    wrap = _DECOMPRESSORS.get(os.path.splitext(path)[1].lower())
    return Input(path, wrap(raw) if wrap else raw, raw)


def read_blocks(stream: IO[bytes], path: str, size: int = BLOCK_SIZE) -> Iterator[bytes]:
    """Raw blocks of a stream, with read errors (bad gzip ...) naming the path."""
    read = getattr(stream, "read1", stream.read)
    while True:
        try:
            chunk = read(size)
        except _read_errors() as exc:
            raise _read_error(path, exc) from exc
        if not chunk:
            return
        yield chunk


def line_blocks(stream: IO[bytes], path: str, size: int = BLOCK_SIZE) -> Iterator[bytes]:
    """Blocks of whole lines read from ``stream``; ``b""`` after a read that ended no line.

    A last line without a newline is given one. The empty blocks let a caller
    wait until a pipe is readable again before the next read, instead of
    blocking inside this generator while a long line trickles in.

    Discussion: one buffer, read into. Each read lands after the partial line
    held from the last one, so a block is copied exactly once, into the
    ``bytes`` that is sent; only the (short) held tail is moved to the front.
    A line longer than the buffer doubles it, so a 1 GB line costs linear
    time and memory. A regular file is read with no copy at all (see
    :func:`_file_blocks`).
    """
    if _is_regular(stream):
        yield from _file_blocks(stream, path, size)
        return
    # readinto1: at most one system call, so a pipe gives what is ready now.
    raw: Any = stream
    readinto: Callable[[memoryview], int] = getattr(raw, "readinto1", None) or raw.readinto
    buf = bytearray(size)
    held = 0
    while True:
        if held == len(buf):
            buf.extend(bytes(len(buf)))  # a line longer than the buffer
        with memoryview(buf) as view:
            try:
                n = readinto(view[held:])
            except _read_errors() as exc:
                raise _read_error(path, exc) from exc
            if not n:
                break
            end = held + n
            cut = buf.rfind(b"\n", held, end) + 1
            if cut == 0:
                held = end
                block = b""
            else:
                block = bytes(view[:cut])
                held = end - cut
        if held and cut:
            buf[:held] = buf[cut:end]
        yield block
    if held:
        yield bytes(buf[:held]) + b"\n"


#: How far back from the end of the next read :func:`_file_blocks` looks for a newline.
_PROBE = 1 << 13


def _is_regular(stream: IO[bytes]) -> bool:
    """An unbuffered, undecompressed regular file that can be read by position.

    A file that says it is empty (``/proc`` files, whose size is 0 whatever
    they hold) is read as a pipe is.
    """
    if type(stream) is not io.FileIO:
        return False
    try:
        st = os.fstat(stream.fileno())
        os.lseek(stream.fileno(), 0, os.SEEK_CUR)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size > 0


def _file_blocks(stream: IO[bytes], path: str, size: int) -> Iterator[bytes]:
    """:func:`line_blocks` for a regular file: each block read straight into the ``bytes`` sent.

    Discussion: the probe. Before each read, ``pread`` looks at the last
    ``_PROBE`` bytes the read would take (without moving the file position)
    for the last newline there; the read then asks for exactly that many
    bytes, so it ends at a line end and its ``bytes`` is the block as it is,
    with no copy in user space (1 MB of memcpy per MB read saved; the probe
    costs one small system call). Where the probe finds no newline (a line
    longer than it) or the read falls short (the file changed under us), the
    partial line is held and joined to the next read, as a pipe's would be.
    The reads are real reads, so the file position (progress) stays true,
    and a file that grows is read on to its end as before.
    """
    fd = stream.fileno()
    probe = min(_PROBE, size)
    held: list[bytes] = []  # a line not ended yet, in pieces (a long line costs linear time)
    try:
        pos = os.lseek(fd, 0, os.SEEK_CUR)
        while True:
            try:
                tail = os.pread(fd, probe, pos + size - probe)
            except OSError:  # no reading by position after all: plain reads, lines held as a pipe's
                tail = b""
            newline = tail.rfind(b"\n")
            chunk = stream.read(size - probe + newline + 1 if newline >= 0 else size)
            if not chunk:
                break
            pos += len(chunk)
            if not held and chunk[-1] == 10:  # the usual case: whole lines, sent as read
                yield chunk
                continue
            cut = chunk.rfind(b"\n") + 1
            if not cut:
                held.append(chunk)
                yield b""
                continue
            held.append(chunk[:cut])
            yield b"".join(held)
            held = [chunk[cut:]] if cut < len(chunk) else []
    except OSError as exc:
        raise _read_error(path, exc) from exc
    if held:
        yield b"".join(held) + b"\n"


def _read_error(path: str, exc: BaseException) -> SourceError:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return SourceError(f"{path}: {reason}")
