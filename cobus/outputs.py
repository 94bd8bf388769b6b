"""Output streams that name themselves in their errors, and the standard descriptors.

Every byte cobus writes to stdout goes through a :class:`NamedOutput`: a
write or flush that fails (a full disk, a closed descriptor, an I/O error)
becomes one :class:`~cobus.errors.SinkError` naming the output
(``stdout: No space left on device``), whichever sink, thread or worker
relay was writing. A reader that went away (``EPIPE``) stays a
``BrokenPipeError``: the CLI ends quietly on it, as ``| head`` expects.
:func:`reserve_std_descriptors` keeps a closed 0, 1 or 2 from being taken by
the next file opened. Nothing here knows a stage.

Discussion: why a failed output is closed at once. A buffered writer keeps
the bytes it could not write and tries again when it is flushed or
collected; at interpreter exit that second failure prints an ``Exception
ignored`` traceback. So the first failure closes the stream (dropping what
it held) and is remembered: every later write or flush raises the same
error, so a sink's ``finally`` cannot turn it into a different one.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import IO, Any

from .errors import SinkError

__all__ = ["NamedOutput", "output_error", "reserve_std_descriptors"]


def output_error(name: str, exc: OSError) -> SinkError:
    """The one-line error for a failed write to ``name``."""
    error = SinkError(f"{name}: {exc.strerror or os.strerror(exc.errno or 0) or exc}")
    error.__cause__ = exc
    return error


class NamedOutput:
    """A binary output (a buffered file) whose write errors name it; see the module docstring."""

    def __init__(self, stream: IO[bytes], name: str, *, owns: bool = True) -> None:
        self._stream = stream
        self.name = name
        #: Close ``stream`` with this (False: someone else's, such as a test runner's stdout).
        self._owns = owns
        #: Called around every write and flush (progress bars on the same terminal step aside).
        self.pause: Callable[[], AbstractContextManager[object]] | None = None
        self._error: SinkError | None = None

    def _fail(self, exc: OSError) -> SinkError:
        if self._error is None:
            self._error = output_error(self.name, exc)
            if self._owns:
                with contextlib.suppress(OSError, ValueError):
                    self._stream.close()
        return self._error

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._error is not None:
            raise self._error
        try:
            if self.pause is None:
                return self._stream.write(data)
            with self.pause():
                return self._stream.write(data)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._fail(exc) from exc

    def flush(self) -> None:
        if self._error is not None:
            raise self._error
        if self._stream.closed:
            return
        try:
            if self.pause is None:
                self._stream.flush()
            else:
                with self.pause():
                    self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._fail(exc) from exc

    @property
    def closed(self) -> bool:
        return self._error is not None or self._stream.closed

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        try:
            return self._stream.isatty()
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        if self._error is None and not self._stream.closed:
            with contextlib.suppress(BrokenPipeError):
                self.flush()
            if self._owns:
                self._stream.close()

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._stream, attr)


def _closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError as exc:
        return exc.errno == errno.EBADF
    return False


def reserve_std_descriptors() -> list[int]:
    """Point a closed 0, 1 or 2 at ``/dev/null`` opened the wrong way round; the fds so reserved.

    A closed stdout stays unwritable (writes fail with "Bad file
    descriptor", as they would on the closed descriptor) and a closed stdin
    unreadable, but the next file cobus opens no longer lands on 0, 1 or 2,
    where a sink or a child process would take it for a standard stream.
    """
    reserved = []
    for fd in (0, 1, 2):
        if _closed(fd):
            # stdin: write-only, so reads fail; stdout: read-only, so writes fail;
            # stderr: writable, so messages vanish as they would have.
            flags = os.O_WRONLY if fd in (0, 2) else os.O_RDONLY
            got = os.open(os.devnull, flags)
            if got != fd:  # pragma: no cover - a lower one was closed too and taken first
                os.dup2(got, fd)
                os.close(got)
            reserved.append(fd)
    return reserved
