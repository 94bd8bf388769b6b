"""Record sinks: ``csv FIELDS``, ``jsonl`` and ``table FIELDS`` (rich), all on stdout.

Each writes bytes to ``ctx.stdout``, one write per batch, flushed per batch
when the output is read live. Field values are turned into text by
:func:`cobus.formats.field_text` (a list joins with ``;``, None and missing
fields are empty), so every sink shows a record the same way. ``table``
must see every row before it can size its columns: it holds the records and
draws once, at the end. Nothing here reads input or knows XML.
"""

from __future__ import annotations

import csv as csvlib
import io
import json
import shutil
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from ..context import RunContext, is_terminal
from ..core import RECORDS, StageGen, coroutine
from ..errors import SinkError
from ..formats import field_text
from ..registry import Arg, Opt, ParamError, stage

__all__ = ["csv", "jsonl", "split_fields", "table"]

#: Width for a table written to a pipe or file: wide enough never to wrap.
_PIPE_WIDTH = 10_000


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
            get = [_getter(c) for c in columns]
            writer.writerows([[g(r) for g in get] for r in batch])
            emit()
    finally:
        if header and columns is not None:
            writer.writerow(columns)
        if buffer.tell():
            emit()
        out.flush()


def _getter(field: str) -> Any:
    def get(record: dict[str, Any]) -> str:
        return field_text(record.get(field))

    return get


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
    """Draw the records as a table on stdout, once all have arrived.

    Meant for a screenful: every record is held until the end, so use csv
    or jsonl for big outputs. On a terminal the table fits its width and
    has colour; written to a pipe it is plain text and never wraps.
    """
    columns = split_fields(fields) or None
    rows: list[list[str]] = []
    hold = ctx.delivery.hold("table")
    try:
        while True:
            batch = yield
            if columns is None and batch:
                columns = list(batch[0])
            if columns is not None:
                cols = columns
                rows.extend([field_text(r.get(c)) for c in cols] for r in batch)
    finally:
        _draw(ctx, columns or [], rows, title)
        hold.release()


def _draw(ctx: RunContext, columns: list[str], rows: list[list[str]], title: str) -> None:
    from rich.console import Console  # only when a table is drawn: a quicker start
    from rich.table import Table

    out = ctx.stdout
    tty = is_terminal(out)
    grid = Table(title=title or None, title_justify="left")
    for c in columns:
        grid.add_column(c, overflow="fold")
    for row in rows:
        grid.add_row(*row)
    text = io.StringIO()
    width = shutil.get_terminal_size().columns if tty else _PIPE_WIDTH
    console = Console(file=text, width=width, force_terminal=tty, no_color=not tty, highlight=False)
    console.print(grid)
    body = text.getvalue()
    if not tty:
        body = "\n".join(line.rstrip() for line in body.split("\n"))
    _write(out, body.encode("utf-8", "surrogateescape"), True)
