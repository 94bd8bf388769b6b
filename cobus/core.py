"""The coroutine engine: priming, the batch protocol, fan-out and fan-in.

A stage is a primed generator that receives *batches* with ``batch = (yield)``
and pushes what it makes into its target with ``target.send(batch)``. Closing
a stage closes its target, so ``close()`` travels down the chain and every sink
flushes exactly once. Nothing here knows the pipeline syntax, opens files or
imports a concrete stage.

Discussion: what a batch is. Lines travel as one ``bytes`` block of whole
lines, each ending in ``b"\\n"`` (a source adds the newline a file's last line
lacks, as grep does). A block costs one ``send`` however many lines it holds,
and C-level methods (``find``, ``count``, ``splitlines``) work on it without a
Python loop per line. Records travel as a ``list`` of ``dict``; XML events as
a ``list`` of tuples. :func:`batch_len` and :func:`batch_head` hide the
difference from the few stages (``head``, ``count``) that accept any kind.

Discussion: ticks. A live source (``follow``) that has nothing to send sends an
empty batch now and then. A stage that holds items back until a moment passes
(``multiline``'s idle timeout, an aggregate's redraw) looks at the clock when
a batch arrives, and an empty one counts. Stages that only filter pass an
empty batch on (it costs nothing), so the tick reaches them further down.

Discussion: how a stage says "enough". A stage that wants no more input (``head``
once satisfied, a sink whose reader went away) raises :class:`Done` out of its
``send``. Stages let it propagate; ``broadcast`` drops that branch and goes on
with the others; a source stops reading. Each stage closes its own target in a
``finally`` block, so a stage ended by ``Done`` or by an error still flushes
everything downstream. Sources and the concurrency stages push through an
:class:`Outlet`, the one place that remembers Done (and any other failure
downstream) and closes the target once.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any, ParamSpec, Protocol, TypeAlias

__all__ = [
    "EVENTS",
    "LINES",
    "RECORDS",
    "Batch",
    "Branch",
    "Done",
    "Outlet",
    "StageGen",
    "Target",
    "Unselected",
    "aborting",
    "batch_head",
    "batch_len",
    "broadcast",
    "coroutine",
    "drain",
    "fan_in",
    "iter_lines",
]

#: Kinds of data that flow between stages (checked when a pipeline is validated).
LINES = "lines"
RECORDS = "records"
EVENTS = "events"

#: A block of lines (bytes), or a list of records (dicts) or XML events (tuples).
#: Any rather than that union: the kinds are checked once, when the pipeline is
#: validated, and a union would make every stage narrow every batch it gets.
Batch: TypeAlias = Any


class Target(Protocol):
    """Whatever a stage sends into: a primed stage, an :class:`Outlet`, a fan-in inlet."""

    def send(self, batch: Batch, /) -> None: ...
    def close(self) -> object: ...


#: What a generator stage is, once primed by :func:`coroutine`.
StageGen: TypeAlias = Generator[None, Batch, None]


class Branch(Protocol):
    """A ``[ sub-pipeline ]`` handed to a stage such as ``threaded``.

    The spec builds one; the stage never needs to know how. ``text`` is the
    branch as written (a worker process rebuilds it from there), ``input_kind``
    what it expects (None: any), ``has_outputs`` whether batches leave it
    (rather than ending in its own sinks), ``read_after`` the record fields
    read after it (None: all; a worker rebuilding the branch is told them),
    ``columnar_after`` whether it may hand on :class:`cobus.columns.Columns`.
    """

    @property
    def text(self) -> str: ...
    @property
    def input_kind(self) -> str | None: ...
    @property
    def has_outputs(self) -> bool: ...
    @property
    def read_after(self) -> frozenset[str] | None: ...
    @property
    def columnar_after(self) -> bool: ...
    def build(self, target: Target | None) -> Target: ...


_P = ParamSpec("_P")


class Done(Exception):
    """Raised out of ``send`` by a stage that will accept no more input."""


class Unselected(bytes):
    """Lines a sink writes but that select nothing for the exit status: ``grep -c``'s count of 0.

    A stage that makes a batch of its own from one (slicing, joining) makes
    plain ``bytes``, which count again: ``grep -c x | grep 0 | print`` exits 0.
    """


def coroutine(func: Callable[_P, StageGen]) -> Callable[_P, StageGen]:
    """Decorate a generator function so that calling it returns a primed coroutine.

    >>> @coroutine
    ... def collect(into):
    ...     while True:
    ...         into.append((yield))
    >>> seen = []
    >>> c = collect(seen)
    >>> c.send(1); c.send(2)
    >>> seen
    [1, 2]
    """

    @functools.wraps(func)
    def start(*args: _P.args, **kwargs: _P.kwargs) -> StageGen:
        gen = func(*args, **kwargs)
        next(gen)
        return gen

    return start


def batch_len(batch: Batch) -> int:
    """Number of items in a batch: lines in a block, else list length."""
    if isinstance(batch, bytes):
        return batch.count(b"\n")
    return len(batch)


def batch_head(batch: Batch, n: int) -> Batch:
    """The first ``n`` items of a batch, of the same kind."""
    if isinstance(batch, bytes):
        end = -1
        for _ in range(n):
            end = batch.find(b"\n", end + 1)
            if end < 0:
                return batch
        return batch[: end + 1]
    return batch[:n]


def iter_lines(block: bytes) -> list[bytes]:
    """The lines of a block, each with its newline."""
    return block.splitlines(keepends=True) if b"\r" not in block else _split_lf(block)


def _split_lf(block: bytes) -> list[bytes]:
    # splitlines() also splits at a lone CR; a log line is ended by LF only.
    parts = block.split(b"\n")
    last = parts.pop()
    lines = [p + b"\n" for p in parts]
    if last:
        lines.append(last)
    return lines


@coroutine
def broadcast(targets: Sequence[Target]) -> StageGen:
    """Send every batch to each target; a target that raises Done is dropped."""
    live = list(targets)
    try:
        while live:
            batch = yield
            for t in tuple(live):
                try:
                    t.send(batch)
                except (Done, StopIteration):
                    live.remove(t)
        raise Done
    finally:
        for t in targets:
            t.close()


def aborting() -> bool:
    """True when the exception being handled (or one it interrupted) means "stop now".

    A KeyboardInterrupt, SystemExit or the CLI's SIGTERM (BaseExceptions that
    are not Exceptions, GeneratorExit aside) asks a closing stage to drop what
    it holds rather than wait for it.
    """
    exc = sys.exc_info()[1]
    while exc is not None:
        if not isinstance(exc, Exception | GeneratorExit):
            return True
        exc = exc.__context__
    return False


class Outlet:
    """The one door into a target: send unless done, remember why, close once.

    Every source and concurrency stage pushes through one. ``done`` turns
    True when the target wants no more (Done or StopIteration out of its
    ``send``) or was closed; after that :meth:`offer` drops batches and
    :meth:`send` raises Done. ``failure`` keeps any other exception the target
    raised (or one :meth:`fail` was told of), so a producer can tell an error
    downstream from its own, and stop confirming delivery.

    Discussion: one thread at a time. The lock is held while the target runs,
    so branches in other threads (``threaded``, a worker's reader) never
    resume a generator that is already executing, and :meth:`close` waits
    for a send in progress, or gives up after ``timeout`` when an
    interrupted run cannot wait for a busy branch. In one thread it costs an
    uncontended acquire per batch.
    """

    __slots__ = ("_lock", "_target", "done", "failure")

    def __init__(self, target: Target) -> None:
        self._target: Target | None = target
        self._lock = threading.Lock()
        self.done = False
        self.failure: BaseException | None = None

    @property
    def clean(self) -> bool:
        """No failure downstream so far: what was sent may still be confirmed."""
        return self.failure is None

    def offer(self, batch: Batch) -> bool:
        """Send a batch unless the target is done; False once it is."""
        with self._lock:
            if self.done or self._target is None:
                return False
            try:
                self._target.send(batch)
            except (Done, StopIteration):
                self.done = True
                return False
            except BaseException as exc:
                self.failure = exc
                raise
            return True

    def send(self, batch: Batch) -> None:
        """The Target side: as :meth:`offer`, but Done once the target is done."""
        if not self.offer(batch):
            raise Done

    def fail(self, exc: BaseException) -> None:
        """Remember a failure met outside a send (a delivery barrier)."""
        self.failure = self.failure or exc

    def close(self, timeout: float = -1) -> bool:
        """Close the target once; False if another thread kept the door past ``timeout``."""
        if not self._lock.acquire(timeout=timeout):
            return False
        try:
            target, self._target, self.done = self._target, None, True
            if target is not None:
                try:
                    target.close()
                except BaseException as exc:
                    self.failure = exc
                    raise
            return True
        finally:
            self._lock.release()


class _Join:
    """Counts the inlets still open; closes the shared outlet with the last."""

    def __init__(self, target: Target, inlets: int) -> None:
        self.outlet = Outlet(target)
        self.open = inlets
        self.lock = threading.Lock()

    def release(self) -> None:
        with self.lock:
            self.open -= 1
            last = self.open == 0
        if last:
            self.outlet.close()


class _Inlet:
    """One upstream's handle on a shared target: sends go through, close is counted.

    Sends from several inlets are serialized by the outlet's lock, so branches
    running in different threads can share one stage without "generator
    already executing".
    """

    __slots__ = ("_closed", "_join")

    def __init__(self, join: _Join) -> None:
        self._join = join
        self._closed = False

    def send(self, batch: Batch) -> None:
        self._join.outlet.send(batch)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._join.release()


def fan_in(target: Target, inlets: int) -> list[Target]:
    """Give ``inlets`` upstreams one shared target, closed once when all are closed."""
    join = _Join(target, inlets)
    return [_Inlet(join) for _ in range(inlets)]


def drain(items: Iterable[Batch], target: Target) -> None:
    """Push batches into a target and close it (for tests and simple drivers)."""
    try:
        for batch in items:
            target.send(batch)
    except Done:
        pass
    finally:
        target.close()
