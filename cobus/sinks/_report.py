"""How an aggregate's tally reaches stdout, and the pieces every aggregate shares.

An aggregating sink (:mod:`.aggregate`; its split halves in :mod:`._partials`)
hands a :class:`View` (key columns, one number per row) to a :class:`Report`,
which decides how it reaches stdout: a rich table when stdout is a terminal
(redrawn in place on a live source), tab-separated ``value<TAB>number`` lines
when piped (the stable form for scripts), or CSV with ``--csv``. Rows are
sorted by the number, largest first, ties by value. Also here: the field
lists of ``by F,G``, the group keys of a batch (records or
:class:`~cobus.columns.Columns`), and how ``sum`` reads a number.

Discussion: when output happens. Piped output is written once, at close,
unless ``--every`` asks for a snapshot each interval (snapshots are separated
by a blank line). A terminal shows the table at close; with a live source
(``follow``, ``listen``) it is drawn as soon as data comes and redrawn at
most twice a second. Both are checked when a batch arrives: a sink has no
timer, and between batches nothing changed that would need drawing.
"""

from __future__ import annotations

import csv as csvlib
import io
from collections.abc import Callable, Collection, Generator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from ..columns import Columns
from ..context import RunContext
from ..delivery import Hold
from ..errors import StageError
from ..fields import Field, group_keys
from ..formats import field_text, parse_duration
from ..metering import REDRAW_EVERY
from ._screen import terminal_console

__all__ = [
    "EVERY_HELP",
    "Report",
    "View",
    "csv_text",
    "numbers",
    "plain_text",
    "rich_table",
    "skipped_note",
    "uniq_text",
]


def _fields(words: Sequence[str]) -> list[str]:
    """``["host,", "status"]`` or ``["host,status"]`` -> ``["host", "status"]``."""
    return [f for w in words for f in w.split(",") if f]


def _by_fields(words: Sequence[str]) -> list[str]:
    """The fields after the word ``by`` (nothing given: no grouping)."""
    if not words:
        return []
    if words[0] != "by":
        raise ValueError(f"expected 'by FIELD[,FIELD]', not {' '.join(words)!r}")
    fields = _fields(words[1:])
    if not fields:
        raise ValueError("'by' needs at least one field, e.g. by status or by host,status")
    return fields


@dataclass(frozen=True)
class View:
    """What an aggregate shows: key columns, a number column, rows of (keys..., number)."""

    keys: tuple[str, ...]
    label: str
    rows: list[tuple[Any, ...]]

    @classmethod
    def ranked(cls, keys: Sequence[str], label: str, tally: dict[Any, Any], limit: int = 0) -> View:
        """Rows from ``{key: number}`` (a tuple key for several fields), largest first."""
        single = len(keys) == 1
        items = sorted(tally.items(), key=lambda kv: (-kv[1], _sort_text(kv[0])))
        if limit:
            items = items[:limit]
        rows = [((k, v) if single else (*k, v)) for k, v in items]
        return cls(tuple(keys), label, rows)

    @classmethod
    def single(cls, label: str, number: Any) -> View:
        return cls((), label, [(number,)])


def _sort_text(key: Any) -> str:
    return "\x00".join(map(_text, key)) if isinstance(key, tuple) else _text(key)


def _text(value: Any) -> str:
    # A list value was grouped as a tuple (hashable); it shows as a list does.
    return field_text(list(value) if isinstance(value, tuple) else value)


def _cell(value: Any) -> str:
    # One row per line, one column per tab: a tab or newline inside a value is escaped.
    text = _text(value)
    if "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _number(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def plain_text(view: View) -> str:
    """``value<TAB>number`` lines (just the number when there are no keys)."""
    return "".join("\t".join([*map(_cell, row[:-1]), _number(row[-1])]) + "\n" for row in view.rows)


def csv_text(view: View) -> str:
    """A header line (keys, label) and one CSV row per row."""
    out = io.StringIO()
    writer = csvlib.writer(out, lineterminator="\n")
    writer.writerow([*view.keys, view.label])
    writer.writerows([[*map(_text, row[:-1]), _number(row[-1])] for row in view.rows])
    return out.getvalue()


def rich_table(view: View) -> Any:
    """The view as a rich renderable: a table, or the bare number without keys."""
    from rich.table import Table
    from rich.text import Text

    if not view.keys:
        return Text(_number(view.rows[0][-1]) if view.rows else "0")
    table = Table(box=None, header_style="bold", pad_edge=False)
    for key in view.keys:
        table.add_column(key, overflow="fold")
    table.add_column(view.label, justify="right", style="cyan")
    for row in view.rows:
        keys = [Text(_text(v)) if v is not None else Text("(none)", style="dim") for v in row[:-1]]
        table.add_row(*keys, _number(row[-1]))
    return table


class Report:
    """Brings an aggregate's views to stdout: at the end, every N seconds, or live.

    ``console`` is a rich Console for a terminal on stdout (None: piped);
    ``live`` says the source is live (redraw in place); ``every`` is the
    interval in seconds between snapshots (None: the end only, or twice a
    second when redrawing).
    """

    def __init__(
        self,
        out: IO[bytes],
        *,
        clock: Callable[[], float],
        console: Any = None,
        live: bool = False,
        as_csv: bool = False,
        every: float | None = None,
        render: Callable[[View], Any] | None = None,
    ) -> None:
        self.out = out
        #: View -> what a terminal shows (``count ... --chart`` draws a chart).
        self.render = render or rich_table
        self.clock = clock
        self.console = console if not as_csv else None
        self.as_csv = as_csv
        self.redraw = self.console is not None and live
        self.every = every if every is not None else (REDRAW_EVERY if self.redraw else None)
        self.next_at = clock() if self.redraw else (clock() + self.every if self.every else None)
        self.printed = False
        self._live: Any = None
        self.hold: Hold | None = None

    @classmethod
    def for_run(
        cls,
        ctx: RunContext,
        *,
        as_csv: bool = False,
        every: str | None = None,
        render: Callable[[View], Any] | None = None,
    ) -> Report:
        report = cls(
            ctx.stdout,
            clock=ctx.clock,
            console=terminal_console(ctx),
            live=ctx.live_source,
            as_csv=as_csv,
            every=parse_duration(every) if every else None,
            render=render,
        )
        # What it tallies reaches the output only in the last view (cobus.delivery).
        report.hold = ctx.delivery.hold("aggregate")
        return report

    def due(self) -> bool:
        """Whether a snapshot is wanted now (checked when a batch arrived)."""
        return self.next_at is not None and self.clock() >= self.next_at

    def show(self, view: View) -> None:
        """A snapshot: redraw the live table, or print a block of text."""
        assert self.every is not None
        self.next_at = self.clock() + self.every
        if self.redraw:
            self._draw(view)
        else:
            self._print(view)

    def final(self, view: View) -> None:
        """The last view, written exactly once when the sink closes."""
        if self._live is not None:
            self._live.update(self.render(view), refresh=True)
            self._live.stop()
        else:
            self._print(view)
        self.out.flush()
        if self.hold is not None:
            self.hold.release()

    def _draw(self, view: View) -> None:
        if self._live is None:
            from rich.live import Live

            # auto_refresh=False: no refresh thread reading the tallies while they change.
            self._live = Live(self.render(view), console=self.console, auto_refresh=False)
            self._live.start(refresh=True)
        else:
            self._live.update(self.render(view), refresh=True)

    def _print(self, view: View) -> None:
        if self.console is not None:
            self.console.print(self.render(view))
            return
        text = csv_text(view) if self.as_csv else plain_text(view)
        if self.printed:
            text = "\n" + text
        self.printed = True
        self.out.write(text.encode("utf-8", "surrogateescape"))
        self.out.flush()


def _records(batch: Any, name: str) -> Any:
    """The batch when it holds records (a list of them, or :class:`Columns`), else a clear error."""
    if type(batch) is Columns:
        return batch
    if isinstance(batch, bytes) or (batch and type(batch[0]) is not dict):
        kind = "lines" if isinstance(batch, bytes) else "events"
        raise StageError(f"{name} needs records (put parse or records before it), but {kind} arrive here")
    return batch


def _key_function(names: Sequence[str]) -> Callable[[Any], list[Any]]:
    """The group keys of a batch: JSON values group by their text, a dotted name
    reaches inside objects, a missing field is None (:mod:`cobus.fields`).
    Columns give the same keys a column at a time."""
    of_records = group_keys(names)

    def keys(batch: Any) -> list[Any]:
        return batch.keys(names) if type(batch) is Columns else of_records(batch)

    return keys


EVERY_HELP = "piped: print a snapshot every DURATION (10s, 2m); live terminal: redraw interval"


def _report_loop(
    report: Report, add: Callable[[Any], None], view: Callable[[], View]
) -> Generator[None, Any, None]:
    """The body of a reporting sink: ``add`` each batch, a snapshot when due, the last view at close.

    A sink runs it with ``yield from``, so the batches sent to the sink reach
    ``add`` and closing the sink closes this loop (which shows the final view).
    """
    try:
        while True:
            add((yield))
            if report.due():
                report.show(view())
    finally:
        report.final(view())


def numbers(batch: Any, field: Field) -> list[Any]:
    """The field's values as ``sum`` adds them: ints as they are, else :func:`_numeric` (None: skip)."""
    values = batch.column(field.name) if type(batch) is Columns else field.values(batch)
    if not all(type(v) is int for v in values):
        values = list(map(_numeric, values))
    return values


def _numeric(value: Any) -> int | float | None:
    """A number from a field: ints and floats as they are, numeric text parsed, else None."""
    if type(value) is int or type(value) is float:
        return value
    if isinstance(value, str | bytes) and value:
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def skipped_note(field: str, skipped: int) -> str:
    """What ``sum`` says at the end about records it could not add."""
    return f"sum {field}: {skipped} record(s) without a number in {field} were skipped"


def uniq_text(seen: Collection[Any], width: int, values: bool) -> str:
    """What ``uniq`` prints: the number of distinct keys, or with ``values`` the keys (``width`` fields)."""
    if not values:
        return f"{len(seen)}\n"
    rows = [((k,) if width == 1 else k) for k in seen]
    return "".join("\t".join(map(_cell, row)) + "\n" for row in rows)
