"""How a followed name learns that something happened to it: inotify, else polling.

A :class:`Watcher` serves one ``follow`` run. Each name gets a :class:`Watch`
with a kernel :class:`~cobus.kernel.Flag`; the watcher's task reads the
inotify descriptor (readable like a socket, so it waits in the kernel's
selector) and notifies the flags of the names an event concerns. A follower
waits with ``yield watch.wait()``: woken at once by an event, or after its
polling interval when inotify could not watch it (missing, or out of
watches). :func:`hangup_watch` ends the run when the reader of stdout goes
away. Nothing here reads files or knows the pipeline.

Discussion: what is watched. The file itself (its inode: IN_MODIFY for new
data and truncation, IN_ATTRIB, IN_MOVE_SELF and IN_DELETE_SELF for
rotation) and its directory (IN_CREATE, IN_MOVED_TO, IN_MOVED_FROM,
IN_DELETE for the name: a file that appears, a rotated name replaced). The
file watch follows the inode, not the name, so it is set again each time
the follower opens the name. Even when watched, a follower looks again every
:data:`SAFETY_POLL` seconds: file systems such as NFS accept watches but
report no remote writes.
"""

from __future__ import annotations

import os
import select
import stat
from collections.abc import Iterator
from typing import IO, Any

from ..kernel import Flag, Notify, ReadWait, TaskGen, Wait
from . import _inotify as ino

__all__ = ["SAFETY_POLL", "Watch", "Watcher", "hangup_watch"]

#: Seconds between two looks at a watched file when nothing was reported.
SAFETY_POLL = 1.0

_FILE_EVENTS = ino.IN_MODIFY | ino.IN_ATTRIB | ino.IN_MOVE_SELF | ino.IN_DELETE_SELF
_DIR_EVENTS = ino.IN_CREATE | ino.IN_MOVED_TO | ino.IN_MOVED_FROM | ino.IN_DELETE | ino.IN_ONLYDIR


class Watch:
    """One followed name's flag and watches."""

    __slots__ = ("dir", "file_wd", "flag", "name", "watcher")

    def __init__(self, watcher: Watcher, path: str) -> None:
        self.watcher = watcher
        self.flag = Flag()
        self.dir, name = os.path.split(os.path.abspath(path))
        self.name = os.fsencode(name)
        self.file_wd: int | None = None

    def arm(self, path: str) -> None:
        """Watch the file the name points to now (call after each open)."""
        self.watcher._arm(self, path)

    def disarm(self) -> None:
        """Stop watching the file (it was let go); the directory stays watched."""
        self.watcher._disarm(self)

    def wait(self, interval: float) -> Wait:
        """The system call to wait with: an event, or ``interval`` (watched: :data:`SAFETY_POLL`)."""
        watched = self.file_wd is not None and self.dir in self.watcher.dir_wds
        return Wait(self.flag, max(interval, SAFETY_POLL) if watched else interval)

    def wait_for_name(self, interval: float) -> Wait:
        """Wait for the name to appear (only the directory can tell)."""
        watched = self.dir in self.watcher.dir_wds
        return Wait(self.flag, max(interval, SAFETY_POLL) if watched else interval)


class Watcher:
    """The inotify instance of one follow run, and the task that reads it."""

    def __init__(self, *, inotify: bool = True) -> None:
        self.inotify = ino.Inotify.open() if inotify else None
        self.dir_wds: dict[str, int] = {}  # directory -> its watch
        self._by_wd: dict[int, set[Watch]] = {}  # file watch -> the names on that inode
        self._by_dir: dict[int, dict[bytes, set[Watch]]] = {}  # directory watch -> name -> watches
        #: Notified when a directory gets a new name (a glob may match more now).
        self.new_names = Flag()

    @property
    def active(self) -> bool:
        return self.inotify is not None

    def watch(self, path: str) -> Watch:
        """A watch for one followed name; its directory is watched from now on."""
        w = Watch(self, path)
        wd = self._watch_dir(w.dir)
        if wd is not None:
            self._by_dir.setdefault(wd, {}).setdefault(w.name, set()).add(w)
        return w

    def watch_dir(self, folder: str) -> None:
        """Watch a directory for new names (where a glob looks)."""
        self._watch_dir(os.path.abspath(folder))

    def _watch_dir(self, folder: str) -> int | None:
        if self.inotify is None:
            return None
        wd = self.dir_wds.get(folder)
        if wd is None:
            wd = self.inotify.add(folder, _DIR_EVENTS)
            if wd is not None:
                self.dir_wds[folder] = wd
                self._by_dir.setdefault(wd, {})
        return wd

    def _arm(self, w: Watch, path: str) -> None:
        if self.inotify is None:
            return
        self._disarm(w)
        wd = self.inotify.add(path, _FILE_EVENTS)
        if wd is not None:
            self._by_wd.setdefault(wd, set()).add(w)
        w.file_wd = wd

    def _disarm(self, w: Watch) -> None:
        wd, w.file_wd = w.file_wd, None
        if wd is None or self.inotify is None:
            return
        names = self._by_wd.get(wd)
        if names is not None:
            names.discard(w)
            if not names:
                del self._by_wd[wd]
                self.inotify.remove(wd)

    def task(self) -> TaskGen:
        """The kernel task: read events, notify the flags they concern."""
        assert self.inotify is not None
        while True:
            yield ReadWait(self.inotify)
            for flag in self._flags(self.inotify.read()):
                yield Notify(flag)

    def _flags(self, events: list[ino.Event]) -> Iterator[Flag]:
        woken: dict[int, Flag] = {}
        for event in events:
            if event.mask & ino.IN_Q_OVERFLOW:  # events were lost: everyone looks
                for watches in self._by_wd.values():
                    woken.update((id(w.flag), w.flag) for w in watches)
                for names in self._by_dir.values():
                    woken.update((id(w.flag), w.flag) for ws in names.values() for w in ws)
                woken[id(self.new_names)] = self.new_names
                continue
            if event.wd in self._by_wd:
                watches = self._by_wd[event.wd]
                woken.update((id(w.flag), w.flag) for w in watches)
                if event.mask & ino.IN_IGNORED:  # the inode is gone: its watch with it
                    for w in watches:
                        w.file_wd = None
                    del self._by_wd[event.wd]
            in_dir = self._by_dir.get(event.wd)
            if in_dir is not None:
                woken.update((id(w.flag), w.flag) for w in in_dir.get(event.name, ()))
                if event.mask & (ino.IN_CREATE | ino.IN_MOVED_TO):
                    woken[id(self.new_names)] = self.new_names
        return iter(woken.values())

    def close(self) -> None:
        if self.inotify is not None:
            self.inotify.close()


def hangup_watch(out: IO[bytes] | Any) -> TaskGen | None:
    """A task that raises BrokenPipeError once the reader of ``out`` (a pipe) has gone.

    ``tail -F | head -1`` ends as soon as head does, even if the file stays
    quiet: a pipe's write end reports an error (EPOLLERR) when its reader
    closes, and the selector wakes a reader-waiter on it. None when ``out``
    is not a pipe (a file or a terminal never goes away like that).
    """
    try:
        fd = out.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return None
        # A descriptor of its own: two follows in one run each wait on theirs.
        return _hangup(os.dup(fd))
    except (AttributeError, OSError, ValueError):
        return None


def _hangup(fd: int) -> TaskGen:
    try:
        poller = select.poll()
        poller.register(fd, select.POLLERR | select.POLLHUP)
        while True:
            yield ReadWait(fd)
            if any(mask & (select.POLLERR | select.POLLHUP) for _, mask in poller.poll(0)):
                raise BrokenPipeError(32, "the reader of stdout went away")
            yield Wait(Flag(), SAFETY_POLL)  # woken for something else: do not spin
    finally:
        os.close(fd)
