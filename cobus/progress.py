"""What a long run shows on stderr: a progress bar per input file, and the ``--stats`` table.

The progress bar is drawn by rich on the stderr console only when stderr is a
terminal, not with ``--quiet``, and only once the run has lasted about a
second (a quick run never flickers). This is the rendering side only: what is
counted and timed (trackers, stage stats, the stopwatch) is
:mod:`cobus.metering`, which the engine uses without ever loading rich or
this module; only the CLI draws.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .metering import REDRAW_EVERY, StageStats, Stopwatch, Tracker
from .outputs import NamedOutput

if TYPE_CHECKING:  # rich is imported only when a bar or a table is drawn
    from rich.console import Console, RenderableType
    from rich.progress import TaskID

__all__ = ["LiveStats", "ProgressBoard", "stats_table"]


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
