"""``threaded``, ``subprocess`` and ``parallel``: run a ``[ branch ]`` elsewhere.

``threaded`` feeds its branch through a bounded queue to one thread.
``subprocess`` and ``parallel N`` feed it to child ``python -m cobus worker``
processes over the frames of :mod:`cobus.wire` (the child's side lives in
:mod:`cobus.worker`). To the stages around them they are ordinary targets:
``send`` a batch, ``close`` at the end. Sends block when the branch is behind
(backpressure), batches keep their order, and ``close`` drains the branch,
closes it and waits for its thread or processes. A failure inside a branch
becomes one :class:`~cobus.errors.StageError` naming the stage.

Discussion: which thread may touch what. A generator must never be resumed
by two threads at once. The branch of ``threaded`` is built in the caller's
thread but resumed only by its own thread. Everything downstream is reached
only through an :class:`Outlet`, whose lock admits one thread at a time: the
branch's thread, a process reader, or (when the run is interrupted) the
closing thread, which shuts the outlet so that a branch still busy can no
longer reach the stages the rest of the run is closing.

Discussion: normal close or abort. ``close`` cannot be told why it is called,
so it looks at the exceptions in flight: a KeyboardInterrupt, SystemExit or
the CLI's SIGTERM (BaseExceptions that are not Exceptions, GeneratorExit
aside) means "stop now": queued batches are dropped, workers killed, and
nothing is waited for longer than :data:`ABORT_WAIT`. Any other end drains
the branch first, so what was already produced is written.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from typing import Annotated, Any, NoReturn, cast

from .context import RunContext
from .core import Batch, Done, Target
from .errors import CobusError, SpecError, StageError
from .registry import Arg, Branches, Opt, ParamError, stage
from .spec.build import Branch

__all__ = [
    "ABORT_WAIT",
    "Outlet",
    "ThreadedStage",
    "aborting",
    "describe",
    "failure",
    "parallel",
    "stage_error",
    "subprocess_",
    "threaded",
]

#: How long an interrupted stage waits for its thread or workers to stop.
ABORT_WAIT = 0.5
#: Batches queued in front of a ``threaded`` branch.
QUEUE_BATCHES = 8


def aborting() -> bool:
    """True when the exception being handled (or one it interrupted) means "stop now"."""
    exc = sys.exc_info()[1]
    while exc is not None:
        if not isinstance(exc, Exception | GeneratorExit):
            return True
        exc = exc.__context__
    return False


def failure(name: str, exc: BaseException) -> StageError:
    """The one-line error for ``exc`` raised inside the stage ``name``."""
    if isinstance(exc, StageError) and getattr(exc, "concurrent_stage", None):
        return exc  # a nested threaded/subprocess stage already named itself
    return stage_error(f"{name}: {describe(exc)}")


def describe(exc: BaseException) -> str:
    """An exception as the cause in one line: a cobus error's message, else its type too."""
    if isinstance(exc, CobusError):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def stage_error(message: str) -> StageError:
    err = StageError(message)
    err.concurrent_stage = True  # type: ignore[attr-defined]
    return err


def one_branch(name: str, branches: list[Branch], target: Target | None) -> Branch:
    """The stage's one branch (the registry's Branches(count=1) was checked in validation)."""
    if len(branches) != 1:  # pragma: no cover - only a graph built by hand gets here
        refuse(target, f"{name} takes exactly one [ branch ], not {len(branches)}")
    return branches[0]


def refuse(target: Target | None, message: str) -> NoReturn:
    """Raise a SpecError found while building; the stages below, already built, are closed."""
    if target is not None:
        target.close()
    raise SpecError(message)


class Outlet:
    """The one door from a branch to the stages downstream; one thread at a time.

    ``failure`` keeps an exception raised downstream, so that it can be told
    apart from the branch's own (a downstream sink's SinkError stays as it is).
    """

    def __init__(self, target: Target) -> None:
        self._target = target
        self._lock = threading.Lock()
        self._shut = False
        self.failure: BaseException | None = None

    def send(self, batch: Batch) -> None:
        with self._lock:
            if self._shut:
                raise Done
            try:
                self._target.send(batch)
            except (Done, StopIteration):
                self._shut = True
                raise Done from None
            except BaseException as exc:
                self.failure = exc
                raise

    def close(self, timeout: float = -1) -> bool:
        """Close the target once; False if another thread kept the door past ``timeout``."""
        if not self._lock.acquire(timeout=timeout):
            return False
        try:
            if self._target is None:
                return True
            target, self._target, self._shut = self._target, cast(Target, None), True
            try:
                target.close()
            except BaseException as exc:
                self.failure = exc
                raise
            return True
        finally:
            self._lock.release()


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


class ThreadedStage:
    """A branch run by its own thread, fed through a bounded :class:`_Channel`."""

    def __init__(self, name: str, branch: Branch, target: Target | None, capacity: int) -> None:
        self.name = name
        self._outlet = Outlet(target) if target is not None else None
        # Built here, in the caller's thread; resumed only by the branch's thread.
        self._entry = branch.build(cast(Target, self._outlet))
        self._channel = _Channel(capacity)
        self._failure: BaseException | None = None
        self._reported = False
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=f"cobus {name}", daemon=True)
        self._thread.start()

    def send(self, batch: Batch) -> None:
        if self._closed:
            raise Done
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
            self._failure = exc
        finally:
            # Whatever ended the branch, the producer must not wait on a full queue.
            self._channel.shut()
            try:
                entry.close()
            except BaseException as exc:
                self._failure = self._failure or exc

    def drain(self) -> bool:
        """Wait until the branch has processed every batch sent (see cobus.delivery)."""
        self._channel.join()
        if self._failure is not None:
            self._raise_failure()
            return False  # reported before: still nothing to confirm
        return True

    def _raise_failure(self) -> None:
        exc = self._failure
        if exc is None or self._reported:
            return
        self._reported = True
        if self._outlet is not None and exc is self._outlet.failure:
            raise exc  # raised downstream: it names its own stage
        raise failure(self.name, exc) from exc

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if aborting():
            self._abort()
            return
        self._channel.finish()
        try:
            self._thread.join()
        except BaseException:  # Ctrl-C while the branch drains
            self._abort()
            raise
        self._raise_failure()

    def _abort(self) -> None:
        self._channel.shut()
        self._thread.join(ABORT_WAIT)
        if self._outlet is not None:
            # Flush what reached downstream, unless the branch's thread is in there.
            self._outlet.close(timeout=ABORT_WAIT if self._thread.is_alive() else -1)


def _check_threaded(params: dict[str, Any]) -> None:
    if params.get("queue", QUEUE_BATCHES) < 1:
        raise ParamError("queue", "the queue holds at least 1 batch")


@stage(
    "threaded",
    check=_check_threaded,
    examples=(
        "cat access-log | threaded [grep -i python] | print",
        "cat big.log | broadcast [threaded [grep foo]] [threaded [grep bar]] | print",
        "xml allroutes.xml | records bus | threaded [where route=22 | csv id,route]",
    ),
)
def threaded(
    target: Target | None,
    *,
    queue: Annotated[int, Opt("-q", "batches queued in front of the branch", metavar="N")] = QUEUE_BATCHES,
    branch: Annotated[list[Branch], Branches("the sub-pipeline to run in a thread", count=1)],
    ctx: RunContext,
) -> Target:
    """Run a [ branch ] in its own thread, fed through a bounded queue.

    The stage before it never waits for the branch unless the queue is full
    (then it waits: memory stays bounded). Batches keep their order. At the
    end the queue is drained, the branch closed and its thread joined. An
    error in the branch stops the pipeline with one line naming the branch.
    """
    b = one_branch("threaded", branch, target)
    threaded_stage = ThreadedStage(f"threaded [{b.text}]", b, target, queue)
    ctx.delivery.stage(threaded_stage.drain)
    # The engine drives any object with send/close; Target names the generator protocol.
    return cast(Target, threaded_stage)


def _pool(
    name: str, b: Branch, target: Target | None, ctx: RunContext, workers: int, ordered: bool
) -> Target:
    from .worker import WorkerPool  # the process half: only runs that use it pay for it

    return cast(Target, WorkerPool(name, b, target, ctx, workers=workers, ordered=ordered))


@stage(
    "subprocess",
    examples=(
        "cat access-log | subprocess [grep -i python] | print",
        'xml allroutes.xml | records bus | subprocess [where route=22 | where direction="North Bound"'
        " | csv id,route]",
    ),
)
def subprocess_(
    target: Target | None,
    *,
    branch: Annotated[list[Branch], Branches("the sub-pipeline to run in a child process", count=1)],
    ctx: RunContext,
) -> Target:
    """Run a [ branch ] in a child process (python -m cobus worker).

    Batches travel over a pipe as length-prefixed frames (lines as bytes,
    records as JSON; never pickle). What the branch's sinks print comes back
    to this process's stdout; the child's stderr is this process's. If the
    child fails, exits non-zero or is killed, the pipeline stops with one line
    naming the branch and the cause.
    """
    b = one_branch("subprocess", branch, target)
    return _pool(f"subprocess [{b.text}]", b, target, ctx, 1, True)


def _check_parallel(params: dict[str, Any]) -> None:
    if not 0 <= params.get("n", 0) <= 256:
        raise ParamError("n", "parallel takes 1 to 256 workers (0: one per CPU)")


@stage(
    "parallel",
    check=_check_parallel,
    examples=(
        'cat big.log | parallel 2 [grep -i "timeout|refused"] | count',
        "cat big.log | parallel -u [grep -v DEBUG] | write filtered.log",
    ),
)
def parallel(
    target: Target | None,
    *,
    n: Annotated[int, Arg("worker processes (default: one per CPU)", metavar="N")] = 0,
    unordered: Annotated[bool, Opt("-u", "pass results on as they come, not in input order")] = False,
    branch: Annotated[
        list[Branch], Branches("a sub-pipeline of filters, run by every worker", count=1, filters_only=True)
    ],
    ctx: RunContext,
) -> Target:
    """Share the batches among N worker processes running the same [ branch ].

    The branch must be made of filters (a sink would run once per worker).
    Output keeps the input order unless --unordered. Stateful filters such as
    head or count see only their worker's share of the batches.
    """
    b = one_branch("parallel", branch, target)  # of filters: Branches(filters_only=True)
    workers = n or os.cpu_count() or 1
    return _pool(f"parallel {workers} [{b.text}]", b, target, ctx, workers, not unordered)
