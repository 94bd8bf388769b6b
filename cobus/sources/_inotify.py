"""Linux inotify through ctypes on libc: watch files and directories, read their events.

:class:`Inotify` owns one inotify descriptor. It is non-blocking and readable
whenever events wait, so a kernel task waits on it with ``ReadWait`` like on
a socket. :meth:`Inotify.open` returns None where inotify is missing (not
Linux, no libc symbol, the per-user instance limit reached) and
:meth:`Inotify.add` returns None when a watch cannot be added (the watch
limit, a name that is gone); callers then poll. Nothing here knows follow.
"""

from __future__ import annotations

import errno
import os
import struct
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # ctypes is loaded only by a run that follows files
    import ctypes

__all__ = [
    "IN_ATTRIB",
    "IN_CREATE",
    "IN_DELETE",
    "IN_DELETE_SELF",
    "IN_IGNORED",
    "IN_MODIFY",
    "IN_MOVED_FROM",
    "IN_MOVED_TO",
    "IN_MOVE_SELF",
    "IN_ONLYDIR",
    "IN_Q_OVERFLOW",
    "Event",
    "Inotify",
]

# From <sys/inotify.h>.
IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC

_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name
_READ_SIZE = 1 << 16


@dataclass(frozen=True, slots=True)
class Event:
    """One inotify event: the watch it came from, what happened, and a name in a directory."""

    wd: int
    mask: int
    name: bytes


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        for name in ("inotify_init1", "inotify_add_watch", "inotify_rm_watch"):
            getattr(libc, name)
    except (OSError, AttributeError):
        return None
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    return libc


class Inotify:
    """One inotify instance; close it when done (it is a descriptor)."""

    def __init__(self, libc: ctypes.CDLL, fd: int) -> None:
        self._libc = libc
        self.fd = fd

    @classmethod
    def open(cls) -> Inotify | None:
        """A new instance, or None where inotify cannot be had (then poll)."""
        libc = _libc()
        if libc is None:
            return None
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            return None  # EMFILE: the per-user instance limit; ENOSYS
        return cls(libc, fd)

    def fileno(self) -> int:
        return self.fd

    def add(self, path: str, mask: int) -> int | None:
        """Watch ``path`` (the file or directory it names now); its watch descriptor.

        None when it cannot be watched: it is gone, or the watch limit is
        reached (ENOSPC), or the file system does not support it.
        """
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            import ctypes

            code = ctypes.get_errno()
            if code in (errno.ENOENT, errno.ENOTDIR, errno.ENOSPC, errno.EACCES, errno.EINVAL):
                return None
            raise OSError(code, os.strerror(code), path)
        return int(wd)

    def remove(self, wd: int) -> None:
        """Stop watching ``wd`` (harmless if the kernel already dropped it)."""
        self._libc.inotify_rm_watch(self.fd, wd)

    def read(self) -> list[Event]:
        """The events waiting now (none if nothing waits)."""
        try:
            data = os.read(self.fd, _READ_SIZE)
        except BlockingIOError:
            return []
        events = []
        at = 0
        while at + _EVENT.size <= len(data):
            wd, mask, _, size = _EVENT.unpack_from(data, at)
            at += _EVENT.size
            name = data[at : at + size].rstrip(b"\0")
            at += size
            events.append(Event(wd, mask, name))
        return events

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
