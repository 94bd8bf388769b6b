"""Helpers for tests of live parts (kernel, follow, listen): bounded waits, a kernel in a thread.

Nothing here sleeps for a fixed time to let something happen: tests wait for
a condition with a deadline, so they are fast on a fast machine and still pass
on a slow one.
"""

from __future__ import annotations

import io
import socket
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
