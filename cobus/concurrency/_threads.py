"""``threaded``'s engine: a branch run by its own thread, fed through a bounded queue.

:class:`ThreadedStage` is a :class:`~._runner.Runner` whose branch is built in
the caller's thread and resumed only by its own thread; :class:`_Channel` is
the queue between the two. The stage's registration lives in :mod:`.stages`.

Discussion: which thread may touch what. A generator must never be resumed
by two threads at once. Everything downstream of the branch is reached only
through the runner's :class:`~cobus.core.Outlet`, whose lock admits one
thread at a time: the branch's thread or (when the run is interrupted) the
closing thread, which shuts the outlet so that a branch still busy can no
longer reach the stages the rest of the run is closing.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from ..core import Batch, Branch, Done, Target
from ._runner import ABORT_WAIT, Runner

__all__ = ["QUEUE_BATCHES", "ThreadedStage"]

#: Batches queued in front of a ``threaded`` branch.
QUEUE_BATCHES = 8

_END = object()


class _Channel:
    """A bounded FIFO from one producer thread to one consumer thread.

    ``put`` blocks while full and returns False once the channel is shut;
    ``get`` returns ``_END`` after ``finish`` (once drained) or ``shut``.
    The consumer calls ``task_done`` after each item it got; ``join`` waits
    until every item put has been done (or the channel is shut).
    """

    def __init__(self, capacity: int) -> None:
        self._items: deque[Any] = deque()
        self._capacity = capacity
        self._cond = threading.Condition()
        self._finished = False
        self._shut = False
        self._unfinished = 0

    def put(self, item: Any) -> bool:
        with self._cond:
            while len(self._items) >= self._capacity and not self._shut:
                self._cond.wait()
            if self._shut:
                return False
            self._items.append(item)
            self._unfinished += 1
            self._cond.notify_all()
            return True

    def get(self) -> Any:
        with self._cond:
            while not self._items and not (self._finished or self._shut):
                self._cond.wait()
            if self._shut or not self._items:
                return _END
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def task_done(self) -> None:
        with self._cond:
            self._unfinished -= 1
            self._cond.notify_all()

    def join(self) -> None:
        with self._cond:
            while self._unfinished and not self._shut:
                self._cond.wait()

    def finish(self) -> None:
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def shut(self) -> None:
        with self._cond:
            self._shut = True
            self._items.clear()
            self._cond.notify_all()


class ThreadedStage(Runner):
    """A branch run by its own thread, fed through a bounded :class:`_Channel`."""

    def __init__(self, name: str, branch: Branch, target: Target | None, capacity: int) -> None:
        super().__init__(name, target)
        # Built here, in the caller's thread; resumed only by the branch's thread.
        self._entry = branch.build(self._outlet)
        self._channel = _Channel(capacity)
        self._thread = threading.Thread(target=self._work, name=f"cobus {name}", daemon=True)
        self._thread.start()

    def _put(self, batch: Batch) -> None:
        if not self._channel.put(batch):
            self._raise_failure()
            raise Done

    def _work(self) -> None:
        entry, get = self._entry, self._channel.get
        try:
            while (batch := get()) is not _END:
                entry.send(batch)
                self._channel.task_done()
        except (Done, StopIteration):
            pass
        except BaseException as exc:
            self._fail(self._wrap(exc))
        finally:
            # Whatever ended the branch, the producer must not wait on a full queue.
            self._channel.shut()
            try:
                entry.close()
            except BaseException as exc:
                self._fail(self._wrap(exc))

    def drain(self) -> bool:
        """Wait until the branch has processed every batch sent (see cobus.delivery)."""
        self._channel.join()
        if self._failure is not None:
            self._raise_failure()
            return False  # reported before: still nothing to confirm
        return True

    def _wait(self) -> None:
        self._channel.finish()
        self._thread.join()

    def _abort(self) -> None:
        self._channel.shut()
        self._thread.join(ABORT_WAIT)
        if self._outlet is not None:
            # Flush what reached downstream, unless the branch's thread is in there.
            self._outlet.close(timeout=ABORT_WAIT if self._thread.is_alive() else -1)
