"""Aggregating sinks: ``count [by F,G] [per D]``, ``top N F``, ``sum F [by G]``, ``uniq F``.

Each sink tallies the records it receives (a list of records, or
:class:`~cobus.columns.Columns` a column at a time) and hands a view of the
tally to a :class:`~._report.Report`, which brings it to stdout as a table,
TSV or CSV, once or live (:mod:`._report`). Rows are sorted by the number,
largest first, ties by value. ``count ... per D`` tallies time buckets
(:mod:`cobus.timebuckets`, drawn by :mod:`._chart`); inside ``parallel``,
each aggregate can run split in two (:mod:`._partials`). Nothing here parses
lines or reads input.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Generator, Mapping
from functools import partial
from typing import Annotated, Any

from ..columns import Columns
from ..context import RunContext
from ..core import RECORDS, StageGen, batch_len, coroutine
from ..fields import Field
from ..formats import parse_duration
from ..registry import ANY, Arg, Opt, ParamError, stage
from ..steps import Step
from ..timebuckets import DEFAULT_TIME, TimeTally, bucket_width, per_check, per_reads, split_per
from ._report import (
    EVERY_HELP,
    Report,
    View,
    _by_fields,
    _fields,
    _key_function,
    _records,
    _report_loop,
    _sort_text,
    numbers,
    rich_table,
    skipped_note,
    uniq_text,
)

__all__ = ["Report", "View", "count", "parse_duration", "rich_table", "sum_", "top", "uniq"]


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


#: The output options of every sink that reports through :class:`Report`.
CsvOpt = Annotated[bool, Opt("", "write CSV with a header (when piped)")]
EveryOpt = Annotated[str | None, Opt("", EVERY_HELP, metavar="DURATION")]


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
    reading = Field(field)

    def add(batch: Any) -> None:
        nonlocal total, skipped
        batch = _records(batch, "sum")
        values = numbers(batch, reading)
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
