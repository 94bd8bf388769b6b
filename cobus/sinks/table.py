"""How ``table`` shows rows: streamed text when piped, a live window on a terminal.

The ``table`` sink (:mod:`cobus.sinks.records`) reads the cells' texts and
hands them here, column by column, one batch at a time. Two views:

- :class:`PipedTable` writes boxed rows as they come. Column widths come
  from the first screenful: the batches held until :data:`SCREENFUL` rows
  have come (all of a first batch counts, so a file's first block of
  thousands of rows decides), the end of the input, or a quiet live
  source; a later, longer value widens its own row only. A cell's line
  breaks are written ``\\n``.
- :class:`TerminalTable` keeps only the rows that fit on the screen and the
  count so far, and redraws them with rich at most every
  :data:`~cobus.metering.REDRAW_EVERY` seconds as batches come.

Discussion: cost per row. A piped batch is padded a column at a time
(``str.ljust`` mapped over the column when its text is plain ASCII on one
line, the common case) and joined into rows by one ``map`` of ``str.join``:
no Python call per cell, so a row costs about what a CSV row does. Only the
first screenful is ever held, so memory does not grow with the input. The
terminal view formats only the rows that it will show.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from itertools import repeat
from typing import Any

from ..context import RunContext
from ..metering import REDRAW_EVERY
from ._screen import terminal_console

__all__ = ["SCREENFUL", "PipedTable", "TerminalTable", "open_view"]

#: Rows a piped table reads before it fixes its column widths.
SCREENFUL = 100
#: A live source quiet this long (seconds) fixes the widths of what came so far.
_QUIET = 1.0

Columns = list[list[str]]
Write = Callable[[bytes], None]


def _cell_len(text: str) -> int:
    if text.isascii():
        return len(text)
    from rich.cells import cell_len  # wide characters take two cells

    return int(cell_len(text))


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _pad_column(texts: list[str], width: int) -> list[str]:
    """The texts of one column, each padded to ``width`` cells (never cut)."""
    joined = "".join(texts)
    if joined.isascii() and "\n" not in joined and "\r" not in joined:
        return list(map(str.ljust, texts, repeat(width)))
    out = []
    for text in texts:
        text = _one_line(text)
        out.append(text + " " * (width - _cell_len(text)))
    return out


class PipedTable:
    """Boxed plain-text rows, written as they come after the first screenful."""

    keep = 0  # every row's text is wanted

    def __init__(self, ctx: RunContext, title: str, write: Write) -> None:
        self._write = write
        self._title = title
        self._clock = ctx.clock
        self._live_source = ctx.live_source
        self._hold: Any = ctx.delivery.hold("table")
        self._pending: list[Columns] = []
        self._count = 0
        self._since = 0.0
        self._widths: list[int] | None = None
        self._columns: list[str] = []

    def start(self, columns: list[str]) -> None:
        self._columns = columns

    def add(self, n: int, cells: Columns) -> None:
        if self._widths is not None:
            self._write(self._rows(cells).encode("utf-8", "surrogateescape"))
            return
        if not self._pending:
            self._since = self._clock()
        self._pending.append(cells)
        self._count += n
        if self._count >= SCREENFUL or (self._live_source and self._clock() - self._since >= _QUIET):
            self._fix()

    def idle(self) -> None:
        """An empty batch: a live source has nothing new; show what waits."""
        if self._widths is None and self._pending:
            self._fix()

    def close(self, columns: list[str]) -> None:
        try:
            if self._widths is None and columns:
                self._columns = columns
                self._fix()
            if self._widths is not None:
                self._write(self._rule("└", "┴", "┘", "─").encode("utf-8"))
        finally:
            self._release()

    def _fix(self) -> None:
        """Take the widths from the rows so far, write the header and those rows."""
        widths = [_cell_len(_one_line(c)) for c in self._columns]
        for cells in self._pending:
            for i, texts in enumerate(cells):
                if texts:
                    widths[i] = max(widths[i], *(_cell_len(_one_line(t)) for t in texts))
        self._widths = widths
        head = [*([self._title] if self._title else []), self._rule("┏", "┳", "┓", "━").rstrip("\n")]
        names = [
            _one_line(c) + " " * (w - _cell_len(_one_line(c)))
            for c, w in zip(self._columns, widths, strict=True)
        ]
        head += ["┃ " + " ┃ ".join(names) + " ┃", self._rule("┡", "╇", "┩", "━")]
        text = "\n".join(head) + "".join(self._rows(cells) for cells in self._pending)
        self._pending = []
        self._write(text.encode("utf-8", "surrogateescape"))
        self._release()

    def _rule(self, left: str, mid: str, right: str, line: str) -> str:
        return left + mid.join(line * (w + 2) for w in self._widths or ()) + right + "\n"

    def _rows(self, cells: Columns) -> str:
        assert self._widths is not None
        if not cells or not cells[0]:
            return ""
        padded = [_pad_column(texts, w) for texts, w in zip(cells, self._widths, strict=True)]
        return "│ " + " │\n│ ".join(map(" │ ".join, zip(*padded, strict=True))) + " │\n"

    def _release(self) -> None:
        if self._hold is not None:
            self._hold.release()
            self._hold = None


class TerminalTable:
    """The latest rows that fit and the count so far, redrawn live with rich."""

    def __init__(self, ctx: RunContext, title: str, console: Any, height: int) -> None:
        self.keep = max(3, height - 7)  # room for the borders, the header and the count
        self._console = console
        self._title = title
        self._clock = ctx.clock
        self._hold = ctx.delivery.hold("table")
        self._rows: deque[tuple[str, ...]] = deque(maxlen=self.keep)
        self._count = 0
        self._columns: list[str] = []
        self._live: Any = None
        self._next_at = self._clock()
        self._dirty = False

    def start(self, columns: list[str]) -> None:
        self._columns = columns

    def add(self, n: int, cells: Columns) -> None:
        self._count += n
        self._rows.extend(zip(*cells, strict=True))
        self._dirty = True
        self.idle()

    def idle(self) -> None:
        """Redraw if rows came since the last drawing and it is time (a live source ticks)."""
        if self._dirty and self._clock() >= self._next_at:
            self._next_at = self._clock() + REDRAW_EVERY
            self._dirty = False
            self._draw()

    def close(self, columns: list[str]) -> None:
        try:
            self._columns = self._columns or columns
            if self._live is not None:
                self._live.update(self._renderable(), refresh=True)
                self._live.stop()
            elif self._columns:
                self._console.print(self._renderable())
        finally:
            self._hold.release()

    def _draw(self) -> None:
        if self._live is None:
            from rich.live import Live

            # auto_refresh=False: no thread reading the rows while they change.
            self._live = Live(self._renderable(), console=self._console, auto_refresh=False)
            self._live.start(refresh=True)
        else:
            self._live.update(self._renderable(), refresh=True)

    def _renderable(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        shown = len(self._rows)
        count = f"{self._count:,} row{'s' * (self._count != 1)}"
        if shown < self._count:
            count += f", the latest {shown} shown"
        grid = Table(title=self._title or None, title_justify="left")
        for c in self._columns:
            grid.add_column(c, overflow="fold")
        for row in self._rows:
            grid.add_row(*row)
        return Group(grid, Text(count, style="dim"))


def open_view(ctx: RunContext, title: str, write: Write) -> PipedTable | TerminalTable:
    """The view for this run's stdout: live on a terminal, streamed text otherwise."""
    console = terminal_console(ctx)
    if console is None:
        return PipedTable(ctx, title, write)
    return TerminalTable(ctx, title, console, console.size.height)
