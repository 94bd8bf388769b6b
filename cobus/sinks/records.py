"""Record sinks: ``csv FIELDS``, ``jsonl`` and ``table FIELDS``, all on stdout.

Each writes bytes to ``ctx.stdout``, one write per batch, flushed per batch
when the output is read live. Fields are read and turned into text by
:mod:`cobus.fields` (dotted paths reach inside objects; missing is empty,
JSON ``true``/``false``/``null`` are those words, objects and arrays compact
JSON, a list of XML texts joins with ``;``), so every sink shows a record
the same way. ``table`` streams: piped, it writes rows as they come, its
column widths taken from the first screenful; on a terminal it shows the
latest rows and the count so far (:mod:`cobus.sinks.table`). Nothing here
reads input or knows XML.
"""

from __future__ import annotations

import csv as csvlib
import io
import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from ..columns import Columns
from ..context import RunContext
from ..core import RECORDS, StageGen, coroutine
from ..errors import SinkError
from ..fields import Field
from ..registry import Arg, Opt, ParamError, stage
from .table import open_view

__all__ = ["csv", "jsonl", "split_fields", "table"]


def split_fields(words: Sequence[str]) -> list[str]:
    """``["id,route", "run"]`` -> ``["id", "route", "run"]`` (commas or separate words)."""
    return [f.strip() for w in words for f in w.split(",") if f.strip()]


def _check_fields(params: dict[str, Any]) -> None:
    words = params.get("fields") or []
    if words and not split_fields(words):
        raise ParamError("fields", "no field names given (write them as id,route,direction)")


def _reads_fields(params: Mapping[str, Any]) -> frozenset[str] | None:
    """The columns named (None: every field of the records)."""
    return frozenset(split_fields(params.get("fields") or [])) or None


def _write(out: Any, data: bytes, live: bool) -> None:
    try:
        out.write(data)
        if live:
            out.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise SinkError(f"stdout: {exc.strerror or exc}") from exc


@stage(
    "csv",
    role="sink",
    consumes=RECORDS,
    check=_check_fields,
    reads=_reads_fields,
    columnar=True,  # columns come only when FIELDS are named (the planner reads them)
    examples=(
        "xml allroutes.xml | records bus | where route=22 | csv route,id,direction,latitude,longitude",
        "cat access-log | parse apache | csv --no-header host,status,bytes",
    ),
)
@coroutine
def csv(
    *,
    fields: Annotated[
        list[str], Arg("columns, comma-separated (default: the first record's fields)", metavar="FIELDS")
    ] = [],  # noqa: B006 - never mutated; the registry shows the default as "none"
    no_header: Annotated[bool, Opt("-H", "do not write the header line")] = False,
    ctx: RunContext,
) -> StageGen:
    """Write records as CSV (RFC 4180 quoting, LF line ends), header first.

    Missing fields are empty; a list field (a repeated XML child) is joined
    with ";". Without FIELDS the columns are the first record's fields.
    """
    columns = split_fields(fields) or None
    buffer = io.StringIO()
    writer = csvlib.writer(buffer, lineterminator="\n")
    out = ctx.stdout
    header = not no_header
    read: list[Field] = []

    def emit() -> None:
        _write(out, buffer.getvalue().encode("utf-8", "surrogateescape"), ctx.live)
        buffer.seek(0)
        buffer.truncate()

    try:
        while True:
            batch = yield
            if columns is None and batch:
                columns = list(batch[0])
            if columns is None:
                continue
            if header:
                writer.writerow(columns)
                header = False
            if batch:
                read = read or _fields(columns)
                writer.writerows(zip(*[_texts(f, batch) for f in read], strict=True))
                emit()
    finally:
        if header and columns is not None:
            writer.writerow(columns)
        if buffer.tell():
            emit()
        out.flush()


def _fields(columns: Sequence[str]) -> list[Field]:
    return [Field(c) for c in columns]


def _texts(field: Field, batch: Any) -> list[str]:
    """A field's texts from records, or from :class:`Columns` (which hold every field named)."""
    return batch.texts(field.name) if type(batch) is Columns else field.texts(batch)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


@stage(
    "jsonl",
    role="sink",
    consumes=RECORDS,
    examples=(
        "xml allroutes.xml | records bus | where route=22 | jsonl",
        "cat access-log | parse apache | head 5 | jsonl",
    ),
)
@coroutine
def jsonl(*, ctx: RunContext) -> StageGen:
    """Write each record as one JSON object per line (UTF-8, keys in record order)."""
    dumps = json.JSONEncoder(ensure_ascii=False, default=_json_default).encode
    out = ctx.stdout
    try:
        while True:
            batch = yield
            if batch:
                text = "\n".join(map(dumps, batch)) + "\n"
                _write(out, text.encode("utf-8", "surrogateescape"), ctx.live)
    finally:
        out.flush()


@stage(
    "table",
    role="sink",
    consumes=RECORDS,
    check=_check_fields,
    reads=_reads_fields,
    columnar=True,  # columns come only when FIELDS are named (the planner reads them)
    examples=(
        "xml allroutes.xml | records bus | where route~^2 | table id,route,direction",
        "cat access-log | parse apache | head 20 | table host,status,bytes",
    ),
)
@coroutine
def table(
    *,
    fields: Annotated[
        list[str], Arg("columns, comma-separated (default: the first record's fields)", metavar="FIELDS")
    ] = [],  # noqa: B006 - never mutated
    title: Annotated[str, Opt("-t", "a title above the table")] = "",
    ctx: RunContext,
) -> StageGen:
    """Draw the records as a table on stdout, row by row as they come.

    Piped, rows are written as they arrive, the column widths taken from
    the first screenful (a longer value later widens only its own row).
    On a terminal the table shows the latest rows that fit and the count
    so far, redrawn live. Memory stays small however many rows pass.
    """
    columns = split_fields(fields) or None
    read: list[Field] = []
    view = open_view(ctx, title, lambda data: _write(ctx.stdout, data, ctx.live))
    try:
        while True:
            batch = yield
            if columns is None and batch:
                columns = list(batch[0])
            if columns is None:
                view.idle()
                continue
            if not read:
                read = _fields(columns)
                view.start(columns)
            if batch:
                shown = batch
                if view.keep:
                    shown = batch.tail(view.keep) if type(batch) is Columns else batch[-view.keep :]
                view.add(len(batch), [_texts(f, shown) for f in read])
            else:
                view.idle()
    finally:
        view.close(columns or [])
