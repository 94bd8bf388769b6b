"""Helpers for tests of live parts (kernel, follow, listen): bounded waits, a kernel in a thread.

Nothing here sleeps for a fixed time to let something happen: tests wait for
a condition with a deadline, so they are fast on a fast machine and still pass
on a slow one.
"""

from __future__ import annotations

import io
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from cobus.context import RunContext
from cobus.kernel import Kernel, TaskGen


class Ctx(RunContext):
    """A run context that keeps warnings instead of printing them."""

    def __init__(self) -> None:
        super().__init__(stdout=io.BytesIO())
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.005)


def waiting_in(thread: threading.Thread, function: str, module: str) -> bool:
    """Whether ``thread`` is inside ``function`` of the module file ``module`` right now.

    What a thread is blocked in (a queue's ``wait``, the selector's
    ``select``) is the condition a test waits for before it checks that
    nothing more happens or wakes the thread from outside.
    """
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == function and os.path.basename(code.co_filename) == module:
            return True
        frame = frame.f_back
    return False


def watches_file(pid: int, path: os.PathLike[str] | str) -> bool:
    """Whether process ``pid`` has an inotify watch on the file ``path`` is now.

    follow arms that watch right after it opened the file and fixed where it
    reads from, so from then on what is appended to the file is new to it.
    """
    try:
        inode = os.stat(path).st_ino
        fds = os.listdir(f"/proc/{pid}/fdinfo")
    except OSError:
        return False
    wanted = f" ino:{inode:x} "
    for fd in fds:
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                if any(line.startswith("inotify") and wanted in line for line in f):
                    return True
        except OSError:
            continue
    return False


def read_by_peer(sock: socket.socket) -> bool:
    """Whether the other end of the loopback TCP connection ``sock`` has read all it was sent.

    From ``/proc/net/tcp``: nothing of ours is unacknowledged and the peer's
    socket has nothing unread (a peer that is gone has nothing unread).
    """
    try:
        here, there = sock.getsockname()[1], sock.getpeername()[1]
    except OSError:  # reset: the peer is gone
        return True
    queues: dict[tuple[int, int], tuple[int, int]] = {}
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote = (int(a.rsplit(":", 1)[1], 16) for a in fields[1:3])
            tx, rx = (int(q, 16) for q in fields[4].split(":"))
            queues[local, remote] = (tx, rx)
    unacked = queues.get((here, there), (0, 0))[0]
    unread = queues.get((there, here), (0, 0))[1]
    return unacked == 0 and unread == 0


class KernelThread:
    """A kernel running one task in a background thread, stopped by killing that task."""

    def __init__(self, task: TaskGen, name: str = "task") -> None:
        self.kernel = Kernel()
        self.tid = self.kernel.spawn(task, name=name)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.kernel.run()
        except BaseException as exc:
            self.error = exc

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Kill the task (its ``finally`` blocks run in the kernel's thread) and join."""
        if self._thread.is_alive():
            self.kernel.call_soon_threadsafe(lambda: self.kernel.kill(self.tid))
        self.join(timeout)

    def join(self, timeout: float = 10.0) -> None:
        """Wait for the run to end; re-raise its error here."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the kernel still runs after {timeout} s")
        self.kernel.close()
        if self.error is not None:
            raise self.error


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
