"""Apache access-log lines: the full parse, and a projected one that makes only the fields read.

:data:`APACHE` is the one definition of a valid line (common or combined
format); :func:`apache_records` makes whole records from its matches. When
the planner knows which fields a pipeline reads (``count by status`` reads
``status``), :class:`ApacheColumns` makes just those, a column per field.

Discussion: the projected fast path, and why it gives the same fields.
Python's ``re`` spends about 2 µs on a line of this regex, an order of
magnitude more than awk spends on the whole line. The fast path splits the
work in two:

1. *Is every line of the block valid?* One RE2 ``fullmatch`` of
   ``(LINE\\n)*`` over the block's bytes answers it in a DFA pass. ``LINE``
   is :data:`APACHE` spelled for bytes (Latin-1, so a byte is a character):
   ``\\S`` is written as the ASCII characters Python's ``\\s`` excludes and
   ``\\d`` as ``[0-9]``. Python decodes the block as UTF-8 and its ``\\s``
   also knows non-ASCII spaces: a block holding any of them (a short list of
   UTF-8 sequences, checked by one search) takes the full path, as does a
   block with a non-ASCII digit, which only the full regex accepts.
2. *Where are the fields?* In a valid line the first three fields are the
   first three space-separated words and the time follows at a fixed width,
   so one regex anchored on each ``\\n`` takes them. Status and size are the
   only ``" DDD N`` followed by white space in the line when the block has
   exactly one such run per line: a valid line always has it after the
   request, so any other (inside a quoted field) makes the count differ,
   and the block takes the full path. (Two runs cannot overlap: only a
   run's first character is a quote.)

Any doubt sends the block to the full path, which is exactly what the
record-at-a-time parse does; so the two cannot differ. Without the RE2
module (``google-re2``) the full path is taken every time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from itertools import repeat
from operator import itemgetter
from typing import Any

from ..columns import Columns
from ..fields import MISSING

__all__ = ["APACHE", "FIELDS", "ApacheColumns", "Dates", "Zones", "apache_records"]

Record = dict[str, Any]

# Apache common and combined formats, one line each. No part may match "\n"
# (see parse's Discussion). The request is split into method, path and
# protocol when it has that shape; otherwise (a "-" from a timed-out client,
# binary junk) the whole request text is kept as the path.
APACHE = re.compile(
    r"""^(\S+)\ (\S+)\ (\S+)
    \ \[(\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d\ [+-]\d{4})\]
    \ "(?:([^\s"]+)\ ([^\s"]+)(?:\ ([^\s"]+))?|((?:[^"\\\n]|\\.)*))"
    \ (\d{3})\ (\d+|-)
    (?:\ ("(?:[^"\\\n]|\\.)*")\ ("(?:[^"\\\n]|\\.)*"))?
    [\ \t\r]*$""",
    re.MULTILINE | re.VERBOSE,
)

#: Every field a record may have, in the order :func:`apache_records` makes them.
FIELDS = ("host", "ident", "user", "time", "ts", "method", "path", "protocol", "status", "bytes")
#: Fields of combined lines only.
COMBINED = ("referer", "agent")

_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {m: f"{i:02d}" for i, m in enumerate(_MONTH_NAMES, 1)}


class Dates(dict[str, str]):
    """``24/Feb/2008:`` -> ``2008-02-24T``, memoized: one entry per day of log.

    With :class:`Zones` it turns Apache's time text into ISO 8601 by two
    dict lookups and a slice per line (a function call per line would cost
    as much as the regex); the regex guarantees the fixed layout. An unknown
    month gives an empty date, so ``ts`` is then "".
    """

    def __missing__(self, text: str) -> str:
        month = _MONTHS.get(text[3:6])
        iso = "" if month is None else f"{text[7:11]}-{month}-{text[:2]}T"
        if len(self) > 4096:  # a long follow must not grow it for ever
            self.clear()
        self[text] = iso
        return iso


class Zones(dict[str, str]):
    """`` -0600`` -> ``-06:00``, memoized."""

    def __missing__(self, text: str) -> str:
        self[text] = zone = f"{text[1:4]}:{text[4:6]}"
        return zone


def _unquote(field: str) -> str:
    """A combined-format quoted field without its quotes, ``\\"`` and ``\\\\`` undone."""
    inner = field[1:-1]
    if "\\" in inner:
        inner = re.sub(r"\\(.)", r"\1", inner)
    return inner


def _timestamps(times: list[str], dates: Dates, zones: Zones) -> list[str]:
    return [dates[t[:12]] + t[12:20] + zones[t[20:]] if dates[t[:12]] else "" for t in times]


def apache_records(rows: list[tuple[str, ...]], dates: Dates, zones: Zones) -> list[Record]:
    """Records from the groups of :data:`APACHE` matches (``findall`` rows).

    ``ts`` is the time in ISO 8601 with the log's offset: ``24/Feb/2008:00:08:59
    -0600`` gives ``2008-02-24T00:08:59-06:00``. One comprehension builds the
    common fields; combined lines get referer and agent in a second pass.
    """
    records = [
        {
            "host": host,
            "ident": ident,
            "user": user,
            "time": time,
            "ts": dates[time[:12]] + time[12:20] + zones[time[20:]] if dates[time[:12]] else "",
            "method": method,
            "path": path if method else request,
            "protocol": protocol,
            "status": int(status),
            "bytes": 0 if size == "-" else int(size),
        }
        for host, ident, user, time, method, path, protocol, request, status, size, _, _ in rows
    ]
    if any(row[10] for row in rows):
        for rec, row in zip(records, rows, strict=True):
            if row[10]:
                rec["referer"] = _unquote(row[10])
                rec["agent"] = _unquote(row[11])
    return records


def _sizes(texts: Iterable[str | bytes]) -> list[int]:
    return [0 if s in ("-", b"-") else int(s) for s in texts]


def _numbers(texts: Iterable[bytes]) -> list[int]:
    """Three-digit codes as ints, each distinct one converted once."""
    texts = list(texts)
    value = {t: int(t) for t in set(texts)}
    return list(map(value.__getitem__, texts))


#: The columns of a :data:`APACHE` row that are fields as they are.
_GROUPS = {"host": 0, "ident": 1, "user": 2, "time": 3, "method": 4, "protocol": 6}


def _columns_of_rows(
    rows: list[tuple[str, ...]], names: frozenset[str], dates: Dates, zones: Zones
) -> Columns:
    """The named columns of :data:`APACHE` rows, made as :func:`apache_records` makes the fields."""
    n = len(rows)

    def col(i: int) -> list[str]:  # only the groups a field needs are taken out of the rows
        return list(map(itemgetter(i), rows))

    data: dict[str, list[Any]] = {}
    for name in names:
        if name in _GROUPS:
            data[name] = col(_GROUPS[name])
        elif name == "ts":
            data[name] = _timestamps(col(3), dates, zones)
        elif name == "path":
            data[name] = [p if m else r for m, p, r in zip(col(4), col(5), col(7), strict=True)]
        elif name == "status":
            data[name] = list(map(int, col(8)))
        elif name == "bytes":
            data[name] = _sizes(col(9))
        elif name in COMBINED:
            referer = col(10)
            quoted = referer if name == "referer" else col(11)
            data[name] = [_unquote(q) if r else MISSING for q, r in zip(quoted, referer, strict=True)]
        else:
            data[name] = list(repeat(MISSING, n))
    return Columns(data, n)


# -- the fast path (see the module's Discussion) ------------------------------------------------

#: What Python's ``\s`` matches in ASCII, as a class body for bytes.
_ASCII_SPACE = r"\t\n\x0b\x0c\r \x1c-\x1f"
#: The other characters Python's ``\s`` matches (tests check the list against ``re``).
UNICODE_SPACES = "\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
UNICODE_SPACES += "\u2028\u2029\u202f\u205f\u3000"

_S = f"[^{_ASCII_SPACE}]"
_QUOTED = r'(?:[^"\\\n]|\\.)*'
_LINE = (
    rf"{_S}+ {_S}+ {_S}+"
    r" \[[0-9][0-9]/[A-Za-z]{3}/[0-9]{4}:[0-9][0-9]:[0-9][0-9]:[0-9][0-9] [+-][0-9]{4}\]"
    rf' "(?:[^{_ASCII_SPACE}"]+ [^{_ASCII_SPACE}"]+(?: [^{_ASCII_SPACE}"]+)?|{_QUOTED})"'
    r" [0-9]{3} (?:[0-9]+|-)"
    rf'(?: "{_QUOTED}" "{_QUOTED}")?'
    r"[ \t\r]*"
)
#: The leading fields of a valid line, each found right after a newline.
_HEAD = re.compile(r"\n([^ ]*) ([^ ]*) ([^ ]*) \[([^\]\n]{26})\] ")
#: Status and size: one run per valid line (else the block takes the full path).
_TAIL = re.compile(rb'" ([0-9]{3}) ([0-9]+|-)[ \t\r\n]')
#: The status alone: ``" DDD `` opens the same run (a valid line has it after the request).
_STATUS = re.compile(rb'" ([0-9]{3}) ')
#: The fields the fast path makes.
FAST = frozenset({"host", "ident", "user", "time", "ts", "status", "bytes"})


def _re2() -> tuple[Callable[[bytes], Any], Callable[[bytes], Any]] | None:
    """RE2's ``fullmatch`` of a block of valid lines and ``search`` for a non-ASCII space, or None."""
    try:
        import re2  # type: ignore[import-untyped]
    except ImportError:
        return None
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1
    options.never_capture = True
    options.max_mem = 64 << 20
    valid = re2.compile(f"(?:{_LINE}\\n)*".encode("latin-1"), options)
    spaces = b"|".join(re.escape(c.encode()) for c in UNICODE_SPACES)
    return valid.fullmatch, re2.compile(spaces, options).search


class ApacheColumns:
    """Makes the named fields of a block of lines, as columns; None when the block needs the full path."""

    def __init__(self, names: frozenset[str], dates: Dates, zones: Zones) -> None:
        self.names = names
        self.dates = dates
        self.zones = zones
        engine = _re2() if names <= FAST else None
        self._valid: Callable[[bytes], Any] | None = None
        self._odd_space: Callable[[bytes], Any] | None = None
        if engine is not None:
            self._valid, self._odd_space = engine

    @property
    def fast(self) -> bool:
        """Whether blocks can skip the full regex (RE2 is there and every field is a fast one)."""
        return self._valid is not None

    def block(self, data: bytes) -> Columns | None:
        """The columns of a block of whole lines, or None (parse it in full: the module's Discussion)."""
        if self._valid is None or self._odd_space is None:
            return None
        if not data.isascii() and self._odd_space(data) is not None:
            return None
        if self._valid(data) is None:
            return None
        n = data.count(b"\n")
        names = self.names
        out: dict[str, list[Any]] = {}
        if names & {"host", "ident", "user", "time", "ts"}:
            rows = _HEAD.findall("\n" + data.decode("utf-8", "replace"))
            if len(rows) != n:
                return None
            host, ident, user, time = map(list, zip(*rows, strict=True)) if rows else ([], [], [], [])
            for name, col in (("host", host), ("ident", ident), ("user", user), ("time", time)):
                if name in names:
                    out[name] = col
            if "ts" in names:
                out["ts"] = _timestamps(time, self.dates, self.zones)
        if "bytes" in names:
            pairs = _TAIL.findall(data)
            if len(pairs) != n:
                return None
            status, size = zip(*pairs, strict=True) if pairs else ((), ())
            out["bytes"] = _sizes(size)
            if "status" in names:
                out["status"] = _numbers(status)
        elif "status" in names:
            found = _STATUS.findall(data)
            if len(found) != n:
                return None
            out["status"] = _numbers(found)
        return Columns(out, n)

    def rows(self, rows: list[tuple[str, ...]]) -> Columns:
        """The named columns of full-regex rows (the full path, and no RE2)."""
        return _columns_of_rows(rows, self.names, self.dates, self.zones)
