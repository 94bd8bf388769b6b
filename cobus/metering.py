"""What the engine counts and times while a pipeline runs: bytes read, items, clocks.

Sources report bytes read through a :class:`Tracker` (:data:`NO_TRACKER`,
whose methods do nothing, when progress is off); ``--stats`` puts a
:class:`Meter` in front of every stage, which counts items and batches into
its :class:`StageStats` and charges it its own time on a per-thread
:class:`Stopwatch`. Nothing here draws: the bars and tables that show these
figures are :mod:`cobus.progress` (rich), loaded only by the CLI.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .core import Batch, batch_len

__all__ = ["NO_TRACKER", "REDRAW_EVERY", "Meter", "StageStats", "Stopwatch", "Tracker"]

#: Seconds between redraws of a live view (the --stats table, an aggregate on a terminal).
REDRAW_EVERY = 0.5


class Tracker:
    """One input's progress: call :meth:`update` with the bytes consumed so far."""

    def update(self, done: int) -> None:
        """The input has been read up to ``done`` bytes."""

    def finish(self) -> None:
        """The input is read completely."""


NO_TRACKER = Tracker()


class StageStats:
    """What one stage saw, and the time spent in it (not in the stages it feeds)."""

    __slots__ = ("batches", "feeds", "items", "name", "seconds")

    def __init__(
        self,
        name: str,
        items: int = 0,
        batches: int = 0,
        seconds: float = 0.0,
        feeds: StageStats | None = None,
    ) -> None:
        self.name = name
        self.items = items
        self.batches = batches
        self.seconds = seconds
        #: For a source: the stats of the stage it feeds (what it sent is what that got).
        self.feeds = feeds

    @property
    def items_in(self) -> int:
        return self.feeds.items if self.feeds is not None else self.items


class Stopwatch(threading.local):
    """Per-thread stack of nested sends, so each stage is charged its own time only.

    Discussion: a send into a stage returns only after every stage below it
    has handled the batch, so its wall time includes theirs. Each meter pushes
    a frame, nested meters add their elapsed time to the frame above, and a
    stage keeps ``elapsed - nested``. ``outside`` sums the top-level sends:
    what is left of the run's time belongs to the sources.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.frames: list[float] = []
        self.outside = 0.0
        #: Called after each top-level send (a live stats table redraws from here).
        self.after_send: Callable[[], None] | None = None

    def charge(self, stats: StageStats, start: float) -> None:
        elapsed = self.clock() - start
        nested = self.frames.pop()
        stats.seconds += elapsed - nested
        if self.frames:
            self.frames[-1] += elapsed
        else:
            self.outside += elapsed
            if self.after_send is not None:
                self.after_send()


class Meter:
    """Stands in front of a stage: counts what goes in and times each send."""

    __slots__ = ("_stats", "_target", "_watch")

    def __init__(self, target: Any, stats: StageStats, watch: Stopwatch) -> None:
        self._target = target
        self._stats = stats
        self._watch = watch

    def send(self, batch: Batch) -> None:
        stats, watch = self._stats, self._watch
        stats.batches += 1
        stats.items += batch_len(batch)
        watch.frames.append(0.0)
        start = watch.clock()
        try:
            self._target.send(batch)
        finally:
            watch.charge(stats, start)

    def close(self) -> None:
        watch = self._watch
        watch.frames.append(0.0)
        start = watch.clock()
        try:
            self._target.close()
        finally:
            watch.charge(self._stats, start)

    def throw(self, *args: Any) -> Any:  # pragma: no cover - generator protocol only
        return self._target.throw(*args)
