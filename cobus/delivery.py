"""End-to-end acknowledgement: when may a source say "everything I sent is delivered"?

One :class:`Delivery` per run lives in ``ctx.delivery``. Three kinds of party
take part, each registering itself once while the pipeline is built:

- an *output* (stdout, a file a sink opened) registers how to flush it;
- a sink that keeps what it receives until it closes (an aggregate, a table)
  registers a *hold* and releases it once its last output is written;
- a *concurrency stage* (``threaded``, ``subprocess``, ``parallel``)
  registers a *drain*: block until every batch sent to it so far went
  through its branch, and say whether the branch holds anything back.

A source that must confirm delivery (``follow --state``, a broker's consumer
group) notes what it has sent, then calls :meth:`Delivery.confirm` from the
thread that sends (a barrier); if it returns True, everything sent before
the call is written and flushed by every sink downstream. Nothing here knows
stages, files or the pipeline text.

Discussion: why a barrier and not a receipt per batch. Batches are split,
merged, filtered away, fanned out and fanned in between a source and its
sinks; tracking each one to every sink that should see it would need every
stage's help. A barrier needs none: while the source is inside ``confirm``
nothing new enters the pipeline, so once each concurrency stage has emptied
its queue (upstream stages first) and each output is flushed, all that was
sent is either written or was dropped on purpose by a filter (``grep``,
``head``). A stage that holds items (``count``) makes the answer "not yet"
until it has written them. Failure is never an answer: a drain re-raises its
branch's error and a flush that fails raises :class:`SinkError` naming the
output, so the run ends and the source confirms nothing more.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .errors import SinkError

__all__ = ["Delivery", "Drain", "Hold"]

#: Block until the stage's branch has processed every batch sent to it; False
#: if something in the branch (a worker's aggregate) still holds items back.
Drain = Callable[[], bool]


class Hold:
    """A sink's promise to write later what it keeps now; :meth:`release` when written."""

    __slots__ = ("_delivery", "name")

    def __init__(self, delivery: Delivery, name: str) -> None:
        self._delivery = delivery
        self.name = name

    def release(self) -> None:
        """The sink has written and flushed all it held (at its close)."""
        self._delivery._release(self)


class Delivery:
    """The run's register of outputs, holds and drains, and the barrier over them.

    >>> flushed = []
    >>> d = Delivery()
    >>> d.output("out.log", lambda: flushed.append("out.log"))
    >>> d.confirm(), flushed
    (True, ['out.log'])
    >>> hold = d.hold("count")
    >>> d.confirm()
    False
    >>> hold.release(); d.confirm()
    True
    """

    def __init__(self) -> None:
        self._outputs: list[tuple[str, Callable[[], None]]] = []
        self._drains: list[Drain] = []
        self._holds: list[Hold] = []
        self._lock = threading.Lock()

    # -- taking part (while the pipeline is built) ------------------------------

    def output(self, name: str, flush: Callable[[], None]) -> None:
        """Register an output: ``flush()`` pushes what was written to it to the OS.

        ``name`` is what the user calls it (``stdout``, the file's path); a
        flush that raises OSError becomes a SinkError naming it.
        """
        with self._lock:
            self._outputs.append((name, flush))

    def hold(self, name: str) -> Hold:
        """Register a sink that writes what it received only later (at its close)."""
        hold = Hold(self, name)
        with self._lock:
            self._holds.append(hold)
        return hold

    def stage(self, drain: Drain) -> None:
        """Register a concurrency stage, once its own branch is built.

        The builder makes a stage's target before the stage, so a stage
        registers after those downstream of it; :meth:`confirm` drains in the
        reverse order, upstream first, and a drained stage gets nothing new.
        """
        with self._lock:
            self._drains.append(drain)

    @property
    def concurrent(self) -> bool:
        """Whether any concurrency stage takes part (their close may drop batches when aborting)."""
        return bool(self._drains)

    # -- confirming (a source, from the thread that sends) ----------------------

    def confirm(self) -> bool:
        """The barrier: True if everything sent before this call is delivered.

        Drains every concurrency stage (upstream first), then flushes every
        output. False while a sink holds items back; raises the branch's error
        or a SinkError naming an output that cannot be written.
        """
        with self._lock:
            drains = list(reversed(self._drains))
            outputs = list(self._outputs)
        delivered = True
        for drain in drains:
            delivered = drain() and delivered
        for name, flush in outputs:
            try:
                flush()
            except ValueError:  # closed already: its sink wrote all at its close
                continue
            except OSError as exc:
                raise SinkError(f"{name}: {exc.strerror or exc}") from exc
        with self._lock:
            return delivered and not self._holds

    def _release(self, hold: Hold) -> None:
        with self._lock:
            if hold in self._holds:
                self._holds.remove(hold)
