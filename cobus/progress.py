"""What a long run shows on stderr: a progress bar per input file, and per-stage stats.

The progress bar is drawn by rich on the stderr console only when stderr is a
terminal, not with ``--quiet``, and only once the run has lasted about a
second (a quick run never flickers). Sources report bytes read through a
:class:`Tracker`; when progress is off they get :data:`NO_TRACKER`, whose
methods do nothing. ``--stats`` meters every stage: items and batches in,
time spent inside it (its own, without the stages it feeds).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .core import Batch, batch_len
from .outputs import NamedOutput

if TYPE_CHECKING:  # rich is imported only when a bar or a table is drawn
    from rich.console import Console, RenderableType
    from rich.progress import TaskID

__all__ = [
    "NO_TRACKER",
    "LiveStats",
    "Meter",
    "ProgressBoard",
    "StageStats",
    "Stopwatch",
    "Tracker",
    "stats_table",
]


class Tracker:
    """One input's progress: call :meth:`update` with the bytes consumed so far."""

    def update(self, done: int) -> None:
        """The input has been read up to ``done`` bytes."""

    def finish(self) -> None:
        """The input is read completely."""


NO_TRACKER = Tracker()


class _BarTracker(Tracker):
    def __init__(self, board: ProgressBoard, task: TaskID) -> None:
        self.board = board
        self.task = task

    def update(self, done: int) -> None:
        self.board.update(self.task, done)

    def finish(self) -> None:
        self.board.finish(self.task)


class ProgressBoard:
    """rich progress bars on the stderr console, shown after ``delay`` seconds.

    Discussion: output on the same terminal. When stdout is the terminal the
    bars are drawn on, a line written while a bar is on screen would land
    on the bar's line (``...0:00:01128.143.38.123``). So every write to such
    a stdout is made inside :meth:`hold`: the bars are erased first, the
    output goes where they were, and the next update draws them again below
    it. One lock orders holds (from any sink thread) and redraws.
    """

    def __init__(self, console: Console, *, delay: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.started = clock()
        self.delay = delay
        self.shown = False
        #: The bars are on the screen now (False while output is written, until the next redraw).
        self.drawn = False
        self._lock = threading.RLock()
        self._console = console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.text import Text

        #: Lines sources keep up to date (a consumer's counts), drawn below the bars.
        self.notes: list[Callable[[], str]] = []
        notes = self.notes

        class _Progress(Progress):
            def get_renderables(self) -> Iterable[RenderableType]:
                yield from super().get_renderables()
                yield from (Text(note()) for note in notes)

        self.progress = _Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            auto_refresh=False,
        )
        self._last_refresh = 0.0

    def track(self, description: str, total: int | None) -> Tracker:
        """A tracker for one input of ``total`` bytes (None: unknown)."""
        return _BarTracker(self, self.progress.add_task(description, total=total))

    def update(self, task: TaskID, done: int) -> None:
        self.progress.update(task, completed=done)
        self._refresh()

    def finish(self, task: TaskID) -> None:
        total = self.progress.tasks[task].total
        self.progress.update(task, completed=total or self.progress.tasks[task].completed)
        self._refresh()

    def note(self, line: Callable[[], str]) -> None:
        """Show ``line()`` below the bars, redrawn with them (see :meth:`poke`)."""
        self.notes.append(line)

    def poke(self) -> None:
        """What a note says may have changed: redraw at the bars' pace."""
        self._refresh()

    def _refresh(self) -> None:
        now = self.clock()
        with self._lock:
            if not self.shown:
                if now - self.started < self.delay:
                    return
                self.shown = True
            if not self.drawn:
                self.drawn = True
                self._last_refresh = now
                self.progress.start()  # draws the bars
            elif now - self._last_refresh >= 0.1:
                self._last_refresh = now
                self.progress.refresh()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Erase the bars (if drawn) and keep them off the screen while the block runs."""
        with self._lock:
            if self.drawn:
                self.drawn = False
                self.progress.stop()  # transient: erases them, the cursor where they began
                # A fresh Live: the stopped one would start by moving up over the lines written now.
                self.progress.live = self._new_live()
            yield

    def _new_live(self) -> Any:
        from rich.live import Live

        return Live(
            console=self._console,
            auto_refresh=False,
            transient=True,
            get_renderable=self.progress.get_renderable,
        )

    def share_terminal_with(self, out: Any) -> None:
        """Make writes to ``out`` (stdout) erase the bars first, when it is a terminal too."""
        if isinstance(out, NamedOutput) and out.isatty():
            out.pause = self.hold

    def close(self) -> None:
        with self._lock:
            if self.drawn:
                self.drawn = False
                self.progress.stop()


@dataclass
class StageStats:
    """What one stage saw, and the time spent in it (not in the stages it feeds)."""

    name: str
    items: int = 0
    batches: int = 0
    seconds: float = 0.0
    #: For a source: the stats of the stage it feeds (what it sent is what that got).
    feeds: StageStats | None = None

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


class LiveStats:
    """``--stats`` on a terminal: the table redrawn in place about twice a second."""

    def __init__(
        self,
        console: Console,
        stats: list[StageStats],
        watch: Stopwatch,
        started: float,
        notes: Sequence[Callable[[], str]] = (),
    ) -> None:
        self.stats, self.watch, self.started, self.notes = stats, watch, started, notes
        self.next_at = watch.clock() + REDRAW_EVERY
        self._console = console
        self._lock = threading.RLock()
        self.live = self._new_live()
        self.live.start()
        #: The table is on the screen (False from a write to the same terminal until the next redraw).
        self.drawn = True
        watch.after_send = self.poll

    def _new_live(self) -> Any:
        from rich.live import Live

        return Live(console=self._console, transient=True, auto_refresh=False)

    def poll(self) -> None:
        now = self.watch.clock()
        if now >= self.next_at:
            self.next_at = now + REDRAW_EVERY
            with self._lock:
                if not self.drawn:
                    self.drawn = True
                    self.live = self._new_live()  # see ProgressBoard.hold
                    self.live.start()
                table = stats_table(self.stats, now - self.started, self.watch, self.notes)
                self.live.update(table, refresh=True)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Erase the table and keep it off the screen while the block runs (output is written)."""
        with self._lock:
            if self.drawn:
                self.drawn = False
                self.live.stop()
            yield

    def share_terminal_with(self, out: Any) -> None:
        """Make writes to ``out`` (stdout) erase the table first, when it is a terminal too."""
        if isinstance(out, NamedOutput) and out.isatty():
            out.pause = self.hold

    def stop(self) -> None:
        self.watch.after_send = None
        with self._lock:
            if self.drawn:
                self.drawn = False
                self.live.stop()


#: Seconds between redraws of a live stats table.
REDRAW_EVERY = 0.5


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


def stats_table(
    stats: list[StageStats], wall: float, watch: Stopwatch, notes: Sequence[Callable[[], str]] = ()
) -> RenderableType:
    """A table of every stage: items in, batches, own time and share of the run.

    The sources share what is left of the run's time once every metered send
    is accounted for (reading, decompressing, waiting for input). ``notes``
    are the sources' own reports (a consumer's counts), one line each below.
    """
    from rich.table import Table

    sources = [s for s in stats if s.feeds is not None]
    for s in sources:
        s.seconds = max(0.0, wall - watch.outside) / len(sources)
    table = Table(title=f"cobus --stats ({wall:.2f} s)", title_justify="left")
    table.add_column("stage")
    for col in ("items", "batches", "own time", "share"):
        table.add_column(col, justify="right")
    for s in stats:
        share = s.seconds / wall * 100 if wall > 0 else 0.0
        batches = s.feeds.batches if s.feeds is not None else s.batches
        table.add_row(s.name, f"{s.items_in:,}", f"{batches:,}", f"{s.seconds:.3f} s", f"{share:.0f}%")
    if notes:
        from rich.console import Group
        from rich.text import Text

        return Group(table, *(Text(note()) for note in notes))
    return table
