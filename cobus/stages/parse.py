"""``parse FORMAT``: turn lines into records (apache, json, logfmt, regex).

Lines arrive as blocks of bytes and leave as a list of dicts, one per parsed
line. A block is decoded once, as UTF-8 with ``errors="replace"``: records are
for filtering and display, and every sink can show a clean ``str``, while the
bytes themselves stay intact for pipelines that never parse. A line that does
not parse is counted (one notice on stderr at the end), passed on as
``{"_raw": line}`` with ``--keep``, or ends the run with ``--strict``. Blank
lines are skipped and not counted. Nothing here writes output.

Discussion: the fast and the slow path. Each format may have a *block* parser
that handles a whole decoded block in C-level calls (``findall`` of one
MULTILINE regex for apache, ``json.loads`` mapped over the lines) and returns
None when any line of the block fails. Only then is the block parsed line by
line, which finds the culprits, keeps order for ``--keep`` and knows line
numbers. The apache regex never matches a newline, so each of its matches is
exactly one whole line: as many matches as lines means every line parsed.

Discussion: the planned path. When the planner knows the fields read after
``parse`` it runs :func:`parse_fields`, which tries a format's projected
block parser first (``_apache``, ``_jsoncols``, ``_logfmt``: only the read
fields, as :class:`~cobus.columns.Columns`), then the full block parser,
then the line path; whatever path a block takes, its records are turned
into the planned shape last, so failures, ``--keep`` and ``--strict`` behave
exactly as they do without a plan.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, NamedTuple

from ..columns import Columns
from ..context import RunContext
from ..core import LINES, RECORDS, StageGen, Target, coroutine
from ..errors import StageError
from ..registry import Arg, Opt, ParamError, stage
from ..steps import Fused
from ._apache import APACHE, ApacheColumns, Dates, Zones, apache_records
from ._jsoncols import json_columns
from ._logfmt import logfmt_columns, logfmt_record

__all__ = ["logfmt_record", "parse", "parse_fields"]

Record = dict[str, Any]


def _apache() -> _Format:
    dates, zones = Dates(), Zones()
    findall, match = APACHE.findall, APACHE.match

    def block(text: str) -> list[Record] | None:
        rows = findall(text)
        return apache_records(rows, dates, zones) if len(rows) == text.count("\n") else None

    def line(text: str) -> Record | None:
        m = match(text)
        return None if m is None else apache_records([m.groups("")], dates, zones)[0]

    return _Format(block, line)


def _fast_json() -> Callable[[bytes | str], Any] | None:
    """msgspec's JSON decoder when it is installed, else None (the standard library decodes)."""
    try:
        from msgspec.json import Decoder
    except ImportError:
        return None
    return Decoder().decode


def _json() -> _Format:
    loads = json.loads
    fast = _fast_json()

    def raw(data: bytes) -> list[Record] | None:
        assert fast is not None
        try:
            records = list(map(fast, data.split(b"\n")[:-1]))
        except ValueError:  # msgspec.DecodeError: the line path sorts it out
            return None
        return records if set(map(type, records)) <= {dict} else None

    def block(text: str) -> list[Record] | None:
        try:
            records = list(map(loads, text.split("\n")[:-1]))
        except ValueError:  # JSONDecodeError, and a blank line
            return None
        return records if set(map(type, records)) <= {dict} else None

    def line(text: str) -> Record | None:
        try:
            rec = fast(text) if fast is not None else loads(text)
        except ValueError:
            try:  # what msgspec refuses and json takes: NaN, a lone surrogate
                rec = loads(text)
            except ValueError:
                return None
        # A line holding a bare number or list is not a record.
        return rec if type(rec) is dict else None

    if fast is None:
        return _Format(block, line)
    return _Format(None, line, raw)


def _logfmt() -> _Format:
    return _Format(None, logfmt_record)


def _regex(pattern: str) -> _Format:
    search = re.compile(pattern).search

    def line(text: str) -> Record | None:
        m = search(text)
        return None if m is None else m.groupdict()

    return _Format(None, line, scan=_scanner(pattern))


def _scanner(pattern: str) -> Callable[[bytes], list[bytes] | None] | None:
    """The lines of a block that can match ``pattern``, picked by grep's engine; None: no help here.

    A line can match only if it holds the pattern's required literal
    (:func:`cobus.grepsyntax.required_literal`: ``user=`` of
    ``user=(?P<u>\\w+)``); Hyperscan finds those lines in one scan of the
    block (as ``grep -F``), and ``re`` looks at them alone. Without a literal
    of three characters or more, or without Hyperscan, every line is
    searched; so is every line after a block where a quarter of the lines
    or more held the literal (the scan would cost more than it saves). A
    block that is not valid UTF-8 is searched whole too: its text is
    decoded with replacement characters, which the engine never sees.
    """
    from ..grepengine import Searcher
    from ..grepsyntax import required_literal

    literal = required_literal(pattern)
    if literal is None:
        return None
    searcher = Searcher([literal], dialect="F")
    if searcher.engine != "hyperscan":
        return None

    useful = True

    def scan(block: bytes) -> list[bytes] | None:
        nonlocal useful
        if not useful:
            return None
        if not block.isascii():
            try:
                block.decode("utf-8")
            except UnicodeDecodeError:
                return None
        chosen = searcher.chosen(block)
        # A literal on most lines saves no search and costs a scan: stop scanning.
        useful = len(chosen) * 4 < block.count(b"\n")
        return chosen

    return scan


class _Format:
    """How one format parses: a whole block (or None), and a single line.

    ``raw``, when given, parses a whole block from its bytes before they are
    decoded (JSON: msgspec reads UTF-8 itself); None sends the block on to
    ``block`` and then line by line, exactly as if it had never been tried.
    ``scan`` picks the lines that can parse out of a whole block (regex).
    """

    __slots__ = ("block", "line", "raw", "scan")

    def __init__(
        self,
        block: Callable[[str], list[Record] | None] | None,
        line: Callable[[str], Record | None],
        raw: Callable[[bytes], list[Record] | None] | None = None,
        *,
        scan: Callable[[bytes], list[bytes] | None] | None = None,
    ) -> None:
        self.block = block
        self.line = line
        self.raw = raw
        #: The lines of a block worth parsing (the others cannot parse), or None: look at all.
        self.scan = scan


class _Bad(NamedTuple):
    number: int
    text: str


Format = Literal["apache", "json", "logfmt", "regex"]


def _make(format: str, pattern: str) -> _Format:
    if format == "regex":
        return _regex(pattern)
    return {"apache": _apache, "json": _json, "logfmt": _logfmt}[format]()


def _check(params: dict[str, Any]) -> None:
    format, pattern = params["format"], params.get("pattern")
    if format != "regex":
        if pattern is not None:
            raise ParamError("pattern", f"{format} takes no pattern (only regex does)")
        return
    if pattern is None:
        raise ParamError("format", 'regex needs a pattern, e.g. parse regex "(?P<ip>\\S+) .*"')
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ParamError.bad_regex("pattern", exc) from None
    if not rx.groupindex:
        raise ParamError("pattern", "the pattern needs named groups, e.g. (?P<code>\\d{3})")


def _project(params: Mapping[str, Any], needed: frozenset[str], columns: bool) -> Fused | None:
    """The planner's hook: parse only what is read, and hand on columns when every reader takes them."""
    format = params["format"]
    narrows = format in ("apache", "logfmt") or (format == "json" and json_columns(needed) is not None)
    if not narrows and not columns:
        return None  # the records would be the same
    names = ", ".join(sorted(needed)) or "no fields"
    how = "as columns, by the block" if columns else "as records"
    note = f"parse makes only {names}, {how}" if narrows else f"hands on {names} {how}"
    return Fused(parse_fields, {**params, "fields": needed, "columns": columns}, note)


@stage(
    "parse",
    consumes=LINES,
    produces=RECORDS,
    check=_check,
    projects=_project,
    examples=(
        "cat access-log | parse apache | where status>=400 | count by status",
        "cat app.jsonl | parse json | where level=error | jsonl",
        "cat app.log | parse logfmt | csv ts,duration_ms",
        'cat x.log | parse regex "(?P<ip>\\S+) .* (?P<code>\\d{3})" | count by code',
    ),
)
def parse(
    target: Target,
    *,
    format: Annotated[Format, Arg("apache, json, logfmt or regex", metavar="FORMAT")],
    pattern: Annotated[
        str | None, Arg("regex only: a pattern with (?P<name>...) groups", metavar="RE")
    ] = None,
    keep: Annotated[bool, Opt("-k", "pass lines that do not parse on as {_raw: line}")] = False,
    strict: Annotated[bool, Opt("-s", "stop with an error at the first line that does not parse")] = False,
    ctx: RunContext,
) -> Target:
    """Parse lines into records: apache, json, logfmt, or regex with named groups.

    apache   common and combined log formats: host, ident, user, time (as
             written), ts (ISO 8601 with the log's offset, e.g.
             2008-02-24T00:08:59-06:00), method, path, protocol, status (int),
             bytes (int, "-" is 0); combined lines add referer and agent. A
             request that is not "METHOD PATH PROTOCOL" is kept whole in path.
    json     one JSON object per line, fields as they are.
    logfmt   key=value pairs (values in "double quotes" may hold spaces);
             values stay strings, a bare key is true.
    regex    the named groups of PATTERN, searched in each line; a group that
             did not take part is null. Lines without the pattern's fixed
             text (GET in "GET (?P<path>\\S+)") are passed over by grep's
             scan engine, never searched one by one.

    When the pipeline names every field read after parse (count by status,
    where level=error | csv ts,msg), only those fields are made, as columns
    where every later stage takes them; explain shows it. The records seen
    are the same.

    Lines are decoded as UTF-8, invalid bytes replaced by U+FFFD. Blank lines
    are skipped. Lines that do not parse are counted and reported once on
    stderr at the end; --keep passes them on as {"_raw": line}, --strict stops
    at the first with its line number (counted from parse's first input line).
    """
    return _parsing(target, format, pattern or "", keep=keep, strict=strict, ctx=ctx)


def parse_fields(
    target: Target,
    *,
    format: str,
    pattern: str | None = None,
    keep: bool = False,
    strict: bool = False,
    fields: frozenset[str],
    columns: bool,
    ctx: RunContext,
) -> Target:
    """``parse`` as the planner runs it when only ``fields`` are read after it.

    The records carry those fields (other fields may be there too), handed
    on as :class:`~cobus.columns.Columns` when ``columns``.
    """
    shape = _Projection(format, fields, columns)
    return _parsing(target, format, pattern or "", keep=keep, strict=strict, ctx=ctx, shape=shape)


class _Projection:
    """What a planned parse makes of a block: the needed fields only, as columns or records."""

    def __init__(self, format: str, fields: frozenset[str], columns: bool) -> None:
        self.fields = fields
        self.columns = columns
        self.apache = ApacheColumns(fields, Dates(), Zones()) if format == "apache" else None
        self.json = json_columns(fields) if format == "json" else None
        self.logfmt = logfmt_columns(fields) if format == "logfmt" else None

    def fast(self, block: bytes) -> Any:
        """The block's batch without the full parse, or None."""
        if self.apache is not None:
            cols = self.apache.block(block)
        elif self.json is not None:
            cols = self.json(block)
        elif self.logfmt is not None:
            cols = self.logfmt(block.decode("utf-8", "replace"))
        else:
            cols = None
        return None if cols is None else self.out(cols)

    def rows(self, block: bytes) -> Any:
        """The batch of a block whose lines all match the apache regex, or None."""
        if self.apache is None:
            return None
        text = block.decode("utf-8", "replace")
        rows = APACHE.findall(text)
        return self.out(self.apache.rows(rows)) if len(rows) == text.count("\n") else None

    def records(self, records: list[Record]) -> Any:
        """Records made in full, as this plan hands them on."""
        return Columns.from_records(records, self.fields) if self.columns else records

    def out(self, cols: Columns) -> Any:
        return cols if self.columns else cols.records()


@coroutine
def _parsing(
    target: Target,
    format: str,
    pattern: str,
    *,
    keep: bool,
    strict: bool,
    ctx: RunContext,
    shape: _Projection | None = None,
) -> StageGen:
    """The parse loop: a block at a time, the fast paths first (see the module's Discussion)."""
    fmt = _make(format, pattern)
    label = f"parse {format}"
    seen = 0  # lines before the current block, for line numbers
    bad_count = 0
    first_bad = 0
    send = target.send
    try:
        while True:
            block: bytes = yield
            if not block:  # a tick from an idle live source: pass it on
                send([])
                continue
            if shape is not None:
                batch = shape.fast(block)
                if batch is None:
                    batch = shape.rows(block)
                if batch is not None:
                    seen += len(batch)
                    if batch:
                        send(batch)
                    continue
            records = fmt.raw(block) if fmt.raw is not None else None
            text = "" if records is not None else block.decode("utf-8", "replace")
            if records is None and fmt.block is not None and (shape is None or shape.apache is None):
                records = fmt.block(text)
            if records is None and fmt.scan is not None and not (keep or strict):
                scanned = _scanned(text, block, fmt, seen, find_first=not first_bad)
                if scanned is not None:
                    records, failed, first = scanned
                    bad_count += failed
                    first_bad = first_bad or first
            if records is None:
                records, bad = _by_line(text, fmt.line, seen, keep=keep, stop=strict)
                if bad:
                    if strict:
                        # What parsed before the culprit still reaches the sinks.
                        if records:
                            send(records if shape is None else shape.records(records))
                        number, line = bad[0]
                        raise StageError(f"{label}: line {number} does not parse: {_excerpt(line)}")
                    bad_count += len(bad)
                    first_bad = first_bad or bad[0].number
            seen += block.count(b"\n")  # as many as in the decoded text
            if records:
                send(records if shape is None else shape.records(records))
    finally:
        try:
            target.close()
        finally:
            if bad_count:
                fate = "passed on as _raw" if keep else "skipped; --keep passes them on"
                ctx.warn(f"{label}: {bad_count} line(s) did not parse (first: line {first_bad}); {fate}")


#: A line of white space only (not counted as a line that does not parse).
_BLANK = re.compile(r"^[^\S\n]*$", re.MULTILINE)
#: The ASCII characters ``str.strip`` removes, but the newline.
_ASCII_BLANKS = b" \t\r\x0b\x0c\x1c\x1d\x1e\x1f"


def _blank_lines(block: bytes, text: str) -> int:
    """How many lines of a block hold nothing but white space (``text`` is the block decoded)."""
    if block.isascii():  # without the white space, a blank line is an empty one: all in C
        return block.translate(None, _ASCII_BLANKS).split(b"\n").count(b"") - 1
    return len(_BLANK.findall(text)) - 1  # not the empty text after the last newline


def _scanned(
    text: str, block: bytes, fmt: _Format, seen: int, *, find_first: bool
) -> tuple[list[Record], int, int] | None:
    """Parse only the lines ``fmt.scan`` picks: the records, how many lines failed, the first (or 0).

    The same as :func:`_by_line` without ``keep``/``strict``: the lines not
    picked cannot parse, and fail unless blank. None: do it line by line.
    """
    assert fmt.scan is not None
    chosen = fmt.scan(block)
    if chosen is None:
        return None
    lines = b"".join(chosen).decode("utf-8").split("\n")
    lines.pop()  # the empty text after the last newline
    records: list[Record] = []
    blank_parsed = 0
    for line in lines:
        rec = fmt.line(line)
        if rec is not None:
            records.append(rec)
            blank_parsed += not line.strip()
    failed = block.count(b"\n") - len(records) - (_blank_lines(block, text) - blank_parsed)
    first = 0
    if failed and find_first:
        for i, line in enumerate(text.split("\n")):
            if line.strip() and fmt.line(line) is None:
                first = seen + i + 1
                break
    return records, failed, first


def _by_line(
    text: str, parse_line: Callable[[str], Record | None], seen: int, *, keep: bool, stop: bool
) -> tuple[list[Record], list[_Bad]]:
    """Parse a block line by line: the records (with ``_raw`` ones if ``keep``), the failures.

    With ``stop``, the first failure ends the block: the records are those before it.
    """
    records: list[Record] = []
    bad: list[_Bad] = []
    lines = text.split("\n")
    lines.pop()  # the empty text after the block's last newline
    for i, line in enumerate(lines):
        rec = parse_line(line)
        if rec is not None:
            records.append(rec)
        elif line.strip():
            bad.append(_Bad(seen + i + 1, line))
            if stop:
                break
            if keep:
                records.append({"_raw": line.rstrip("\r")})
    return records, bad


def _excerpt(line: str, width: int = 80) -> str:
    return repr(line if len(line) <= width else line[:width] + "...")
