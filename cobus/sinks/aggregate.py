"""Aggregating sinks: ``count [by F,G]``, ``top N F``, ``sum F [by G]``, ``uniq F``.

Each sink tallies the records it receives and hands a :class:`View` (key
columns, one number per row) to a :class:`Report`, which decides how it
reaches stdout: a rich table when stdout is a terminal (redrawn in place on a
live source), tab-separated ``value<TAB>number`` lines when piped (the stable
form for scripts), or CSV with ``--csv``. Rows are sorted by the number,
largest first, ties by value. Nothing here parses lines or reads input.

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
from collections import Counter
from collections.abc import Callable, Collection, Generator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from typing import IO, Annotated, Any

from ..columns import Columns
from ..context import RunContext
from ..core import RECORDS, StageGen, batch_len, coroutine
from ..delivery import Hold
from ..errors import StageError
from ..fields import Field, group_keys
from ..formats import field_text, parse_duration
from ..metering import REDRAW_EVERY
from ..registry import ANY, Arg, Opt, ParamError, stage
from ..steps import Step
from ..timebuckets import DEFAULT_TIME, TimeTally, bucket_width, per_check, per_reads, split_per
from ._screen import terminal_console

__all__ = ["Report", "View", "count", "parse_duration", "sum_", "top", "uniq"]


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


def _checker(*, by: str = "", field: str = "", n: str = "") -> Callable[[dict[str, Any]], None]:
    """A parse-time check of the ``by`` words, the field list, N and ``--every``."""

    def check(params: dict[str, Any]) -> None:
        if by:
            try:
                _by_fields(params.get(by) or ())
            except ValueError as exc:
                raise ParamError(by, str(exc)) from None
        if field and not _fields([params[field]]):
            raise ParamError(field, "needs a field name")
        if n and params[n] < 1:
            raise ParamError(n, "needs a count of 1 or more")
        if params.get("every") is not None:
            try:
                parse_duration(params["every"])
            except ValueError as exc:
                raise ParamError("every", str(exc)) from None

    return check


def _reader(*, by: str = "", field: str = "") -> Callable[[Mapping[str, Any]], frozenset[str]]:
    """The fields an aggregate reads, for the planner's projection (and explain)."""

    def reads(params: Mapping[str, Any]) -> frozenset[str]:
        names = set(_by_fields(params.get(by) or ())) if by else set()
        if field:
            names.update(_fields([params[field]]))
        return frozenset(names)

    return reads


def _split(name: str) -> Callable[[Mapping[str, Any]], Step | None]:
    """The aggregate as a split step: partials in workers, merged here (:mod:`._partials`)."""

    def step(params: Mapping[str, Any]) -> Step | None:
        from ._partials import split_step

        return split_step(name, params)

    return step


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

#: The output options of every sink that reports through :class:`Report`.
CsvOpt = Annotated[bool, Opt("", "write CSV with a header (when piped)")]
EveryOpt = Annotated[str | None, Opt("", EVERY_HELP, metavar="DURATION")]


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


@stage(
    "count",
    role="sink",
    check=per_check(_checker(by="by")),
    reads=per_reads(_reader(by="by")),
    step=_split("count"),
    consumes_if=lambda params: RECORDS if params.get("by") else ANY,
    columnar=True,
    examples=(
        "cat access-log | grep -i python | count",
        "cat access-log | parse apache | count by status",
        "follow access-log | parse apache | count by host,status --every 10s",
        "cat access-log | parse apache | count by status per 1h",
        "follow access-log | parse apache | count by status per 1m --chart",
        "cat app.jsonl | parse json | count per 5m --time time",
    ),
)
@coroutine
def count(
    *,
    by: Annotated[
        tuple[str, ...],
        Arg(
            "by FIELD[,FIELD]: count records per value; per DURATION: per bucket of time", metavar="by FIELD"
        ),
    ] = (),
    time: Annotated[
        str | None, Opt("", "with per: the field holding the time (default ts)", metavar="FIELD")
    ] = None,
    chart: Annotated[bool, Opt("", "with per, on a terminal: draw the counts as a bar chart")] = False,
    csv: CsvOpt = False,
    every: EveryOpt = None,
    ctx: RunContext,
) -> StageGen:
    """Count the items, or with `by FIELD[,FIELD]` the records per value, largest first.

    Without `by`, counts lines, records or events and prints the number. With
    `by`, prints one row per distinct value (a record lacking the field counts
    under an empty value): a table on a terminal, `value<TAB>count` lines when
    piped (several fields: one column each), a header and CSV rows with --csv.

    With `per DURATION` (last: `count per 5m`, `count by status per 1m`),
    counts per bucket of time on the record's `ts` (or `--time FIELD`): ISO
    8601 text, or epoch seconds as a number or numeric text. One row per
    bucket (and value): `bucket<TAB>value<TAB>count` when piped, by bucket,
    then largest count first; the bucket is its start in ISO 8601 with the
    log's offset (buckets start on the log's local clock: `per 1h` on the
    hour). Records without a time are skipped and counted on stderr at the
    end. `--chart` draws one bar per bucket on a terminal (stacked by the
    most frequent values), redrawn live on a followed file; piped, it is
    ignored and the rows are written.
    """
    by, per = split_per(by)
    if per is not None:
        yield from _count_per(
            _by_fields(by), per, time=time or DEFAULT_TIME, chart=chart, csv=csv, every=every, ctx=ctx
        )
        return
    fields = _by_fields(by)
    report = Report.for_run(ctx, as_csv=csv, every=every)
    tally: Counter[Any] = Counter()
    total = 0
    keys_of = _key_function(fields) if fields else None

    def add(batch: Any) -> None:
        nonlocal total
        if keys_of is None:
            total += batch_len(batch)
        else:
            tally.update(Counter(keys_of(_records(batch, "count by"))))

    def view() -> View:
        return View.ranked(fields, "count", tally) if fields else View.single("count", total)

    yield from _report_loop(report, add, view)


def _add_timed(tally: TimeTally, batch: Any) -> None:
    """Records into the time tally; columns a column at a time."""
    if type(batch) is not Columns:
        tally.add(batch)
        return
    keys = tally.keys_of(batch) if tally.keys_of is not None else None
    tally.add_columns(batch.column(tally.time.name), keys)


def _count_per(
    fields: list[str], per: str, *, time: str, chart: bool, csv: bool, every: str | None, ctx: RunContext
) -> Generator[None, Any, None]:
    """``count [by F] per D``: the tally and the chart are :mod:`cobus.timebuckets`' and ``_chart``'s."""
    width = bucket_width(per)
    tally = TimeTally(width, time, _key_function(fields) if fields else None)
    render: Callable[[View], Any] | None = None
    if chart:
        from ._chart import BucketChart

        render = partial(BucketChart, width=width, per=per, window=ctx.live_source)
    report = Report.for_run(ctx, as_csv=csv, every=every, render=render)
    try:
        yield from _report_loop(
            report,
            lambda batch: _add_timed(tally, _records(batch, "count per")),
            lambda: View(("bucket", *fields), "count", tally.rows(_sort_text)),
        )
    finally:
        if tally.skipped:
            hint = "" if tally.tally else " (--time FIELD names the field holding the time)"
            ctx.warn(
                f"count per {per}: {tally.skipped} record(s) without a time in {time} were skipped{hint}"
            )


@stage(
    "top",
    role="sink",
    consumes=RECORDS,
    check=_checker(field="field", n="n"),
    reads=_reader(field="field"),
    step=_split("top"),
    columnar=True,
    examples=(
        "cat access-log | parse apache | top 10 path",
        "cat access-log | parse apache | top 5 host,path",
    ),
)
@coroutine
def top(
    *,
    n: Annotated[int, Arg("how many rows", metavar="N")],
    field: Annotated[str, Arg("field(s) to rank the values of", metavar="FIELD[,FIELD]")],
    csv: CsvOpt = False,
    every: EveryOpt = None,
    ctx: RunContext,
) -> StageGen:
    """The N most frequent values of FIELD (or of several fields together), with counts."""
    fields = _fields([field])
    report = Report.for_run(ctx, as_csv=csv, every=every)
    tally: Counter[Any] = Counter()
    keys_of = _key_function(fields)

    def add(batch: Any) -> None:
        tally.update(Counter(keys_of(_records(batch, "top"))))

    yield from _report_loop(report, add, lambda: View.ranked(fields, "count", tally, limit=n))


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


@stage(
    "sum",
    role="sink",
    consumes=RECORDS,
    check=_checker(by="by", field="field"),
    reads=_reader(by="by", field="field"),
    step=_split("sum"),
    columnar=True,
    examples=(
        "cat access-log | parse apache | sum bytes",
        "cat access-log | parse apache | sum bytes by host",
    ),
)
@coroutine
def sum_(
    *,
    field: Annotated[str, Arg("the numeric field to add up", metavar="FIELD")],
    by: Annotated[tuple[str, ...], Arg("by FIELD[,FIELD]: one sum per value", metavar="by FIELD")] = (),
    csv: CsvOpt = False,
    every: EveryOpt = None,
    ctx: RunContext,
) -> StageGen:
    """Add up a numeric field, in all or per value of `by FIELD[,FIELD]`, largest first.

    Numbers and numeric text count; a record whose field is missing or not a
    number is skipped, and the skips are reported once on stderr at the end.
    """
    fields = _by_fields(by)
    report = Report.for_run(ctx, as_csv=csv, every=every)
    sums: dict[Any, int | float] = {}
    total: int | float = 0
    skipped = 0
    keys_of = _key_function(fields) if fields else None
    get = itemgetter(field)
    value_of = Field(field).get

    def add(batch: Any) -> None:
        nonlocal total, skipped
        batch = _records(batch, "sum")
        if type(batch) is Columns:
            values = batch.column(field)
        else:
            try:
                values = list(map(get, batch))
            except KeyError:
                values = list(map(value_of, batch))
        if not all(type(v) is int for v in values):
            values = list(map(_numeric, values))
            skipped += values.count(None)
        if keys_of is None:
            total += sum(v for v in values if v is not None)
        else:
            for key, value in zip(keys_of(batch), values, strict=True):
                if value is not None:
                    sums[key] = sums.get(key, 0) + value

    def view() -> View:
        return View.ranked(fields, "sum", sums) if fields else View.single("sum", total)

    try:
        yield from _report_loop(report, add, view)
    finally:
        if skipped:
            ctx.warn(skipped_note(field, skipped))


def skipped_note(field: str, skipped: int) -> str:
    """What ``sum`` says at the end about records it could not add."""
    return f"sum {field}: {skipped} record(s) without a number in {field} were skipped"


@stage(
    "uniq",
    role="sink",
    consumes=RECORDS,
    check=_checker(field="field"),
    reads=_reader(field="field"),
    step=_split("uniq"),
    columnar=True,
    examples=(
        "cat access-log | parse apache | uniq host",
        "cat access-log | parse apache | uniq --values method",
    ),
)
@coroutine
def uniq(
    *,
    field: Annotated[str, Arg("field(s) whose distinct values are wanted", metavar="FIELD[,FIELD]")],
    values: Annotated[bool, Opt("-l", "list the distinct values (first seen first)")] = False,
    ctx: RunContext,
) -> StageGen:
    """The number of distinct values of FIELD (or of several fields together); -l lists them."""
    fields = _fields([field])
    keys_of = _key_function(fields)
    seen: dict[Any, None] = {}
    hold = ctx.delivery.hold("uniq")
    try:
        while True:
            seen.update(dict.fromkeys(keys_of(_records((yield), "uniq"))))
    finally:
        ctx.stdout.write(uniq_text(seen, len(fields), values).encode("utf-8", "surrogateescape"))
        ctx.stdout.flush()
        hold.release()


def uniq_text(seen: Collection[Any], width: int, values: bool) -> str:
    """What ``uniq`` prints: the number of distinct keys, or with ``values`` the keys (``width`` fields)."""
    if not values:
        return f"{len(seen)}\n"
    rows = [((k,) if width == 1 else k) for k in seen]
    return "".join("\t".join(map(_cell, row)) + "\n" for row in rows)
