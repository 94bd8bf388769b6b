"""Time on an axis: a record's time read as an instant, and counts per time bucket.

``count [by F] per DURATION`` tallies records per bucket of time (and per
value): this module reads the ``per`` words, turns a field's value into an
instant (ISO 8601 text, with or without an offset, or epoch seconds as a
number or numeric text), cuts the time into buckets and keeps the tally.
It draws nothing (``cobus.sinks._chart`` does) and writes nothing (the
aggregate's Report does); it imports no stage.

Discussion: where a bucket starts, and which offset it shows. Buckets are
cut on the log's own clock: the local time (the instant plus the record's
offset) is floored to a multiple of the width, so ``per 1h`` starts on the
hour and ``per 24h`` at midnight of the log's zone, even at +05:30. A
bucket is one instant: records with another offset whose local floor lands
on the same instant share it, and the bucket shows the offset of the first
record that made it. A time without an offset is taken as UTC for ordering
and shown without one; epoch seconds are UTC and show ``+00:00``. Only
whole seconds are allowed as widths, so a start is always an int.

Discussion: why text is memoized by the minute. Parsing a time costs
about as much as parsing the line it came from, and most lines of a quiet
access log have a second of their own. When the width is whole minutes the
seconds cannot change the bucket, so ISO text with its seconds at
characters 17-18 (``2008-02-24T00:08:59-06:00``) is remembered without
them: the bucket is one slice and one dict lookup per record, and
``fromisoformat`` runs once a minute. The lookup takes that key only when
the two characters are 00-59, and only such text was ever stored under
one, so text that would not parse never borrows a bucket; other text is
remembered whole. The memo is cleared when it grows (a long follow stays
bounded).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from .fields import Field
from .formats import parse_duration
from .registry import ParamError

__all__ = [
    "DEFAULT_TIME",
    "Bucket",
    "Bucketer",
    "TimeTally",
    "bucket_width",
    "per_check",
    "per_reads",
    "split_per",
]

#: The field holding a record's time unless ``--time FIELD`` names another
#: (``parse apache`` and many JSON and logfmt logs call it ``ts``).
DEFAULT_TIME = "ts"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Epoch seconds a datetime can show: years 1 to 9999.
_FIRST, _LAST = -62135596800, 253402300800
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_MEMO_LIMIT = 4096
#: ISO 8601 text whose seconds are characters 17-18 (``2008-02-24T00:08:59...``).
_SECONDS_AT_17 = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:[0-5]\d")
_SECONDS = frozenset(f"{i:02d}" for i in range(60))
_UNSEEN: Any = object()

Check = Callable[[dict[str, Any]], None]
Reads = Callable[[Mapping[str, Any]], "frozenset[str] | None"]


def split_per(words: Sequence[str]) -> tuple[tuple[str, ...], str | None]:
    """``("by", "status", "per", "1m")`` -> ``(("by", "status"), "1m")``; no ``per``: ``(words, None)``.

    ``per DURATION`` comes last; ``per`` anywhere else is an error (raised as
    ValueError), except as a field name after ``by``.
    """
    words = tuple(words)
    head, per = (words[:-2], words[-1]) if len(words) >= 2 and words[-2] == "per" else (words, None)
    for i, word in enumerate(head):
        if word == "per" and not (i == 1 and head[0] == "by"):  # "by per": a field called per
            if i == len(head) - 1:
                raise ValueError("per needs a duration, e.g. per 1m")
            raise ValueError("per DURATION comes last, e.g. count by status per 1m")
    return head, per


def bucket_width(text: str) -> int:
    """The width of ``per TEXT`` in whole seconds (ValueError when it is not one)."""
    seconds = parse_duration(text)
    if seconds != int(seconds):
        raise ValueError(f"per takes whole seconds (1s, 5m, 1h), not {text!r}")
    return int(seconds)


def per_check(check: Check) -> Check:
    """``check`` of the ``by`` words, with ``per DURATION``, ``--time`` and ``--chart`` checked first."""

    def checked(params: dict[str, Any]) -> None:
        try:
            words, per = split_per(params.get("by") or ())
            if per is not None:
                bucket_width(per)
        except ValueError as exc:
            raise ParamError("by", str(exc)) from None
        for name in ("time", "chart"):
            if params.get(name) and per is None:
                raise ParamError(name, f"--{name} needs per DURATION, e.g. count per 1m --{name} ...")
        if params.get("time") == "":
            raise ParamError("time", "needs a field name")
        check({**params, "by": words})

    return checked


def per_reads(reads: Reads) -> Reads:
    """``reads`` of the ``by`` words, plus the time field when ``per`` is given."""

    def read(params: Mapping[str, Any]) -> frozenset[str] | None:
        words, per = split_per(params.get("by") or ())
        fields = reads({**params, "by": words})
        if per is None or fields is None:
            return fields
        return fields | {params.get("time") or DEFAULT_TIME}

    return read


@dataclass(frozen=True, slots=True, order=True)
class Bucket:
    """One bucket of time: its start (epoch seconds), shown as ISO 8601 in ``offset``.

    Equal, hashed and ordered by ``start`` alone; ``str()`` is the text
    ``bucket`` shows in every output.
    """

    start: int
    offset: int | None = field(compare=False)
    text: str = field(compare=False)

    def __str__(self) -> str:
        return self.text

    @classmethod
    def at(cls, start: int, offset: int | None) -> Bucket:
        """The bucket starting at ``start``, shown in ``offset`` (None: without one)."""
        local = _EPOCH + timedelta(seconds=start + (offset or 0))
        if offset is None:
            text = local.replace(tzinfo=None).isoformat()
        else:
            text = local.replace(tzinfo=timezone(timedelta(seconds=offset))).isoformat()
        return cls(start, offset, text)


class Bucketer:
    """Field values -> the start of the bucket each falls in (None: no time there).

    Tallies are keyed by the start, an int (hashed in C); :meth:`at` gives
    the :class:`Bucket` a start shows as.
    """

    def __init__(self, width: int) -> None:
        self.width = width
        #: Text (or its minute key, see the module's Discussion) -> bucket start.
        self._texts: dict[str, int | None] = {}
        self._buckets: dict[int, Bucket] = {}
        self._by_minute = width % 60 == 0

    def starts(self, values: Sequence[Any]) -> list[int | None]:
        """The bucket start of each value: text by the memo, anything else one by one."""
        texts = self._texts
        try:
            keys = (
                [v[:17] + v[19:] if v[17:19] in _SECONDS else v for v in values]
                if self._by_minute
                else values
            )
            found = [texts.get(k, _UNSEEN) for k in keys]
        except TypeError:  # not all text (numbers, missing, objects): one by one
            return [self.start(v) for v in values]
        if _UNSEEN in found:  # text not seen yet: a new minute, say
            found = [self.start(v) if f is _UNSEEN else f for v, f in zip(values, found, strict=True)]
        return found

    def bucket(self, value: Any) -> Bucket | None:
        """The bucket of one value, or None."""
        start = self.start(value)
        return None if start is None else self._buckets[start]

    def at(self, start: int) -> Bucket:
        """The bucket starting at ``start`` (one that a value fell in)."""
        return self._buckets[start]

    def start(self, value: Any) -> int | None:
        """The bucket start of one value (ISO text, epoch seconds as number or text), or None."""
        kind = type(value)
        if kind is int or kind is float:
            return self._of(value, 0)
        if kind is not str:
            return None  # missing, null, a bool, an object
        key = value
        if self._by_minute and _SECONDS_AT_17.match(value):
            key = value[:17] + value[19:]
        found = self._texts.get(key, _UNSEEN)
        if found is _UNSEEN:
            if len(self._texts) >= _MEMO_LIMIT:
                self._texts.clear()
            found = self._texts[key] = self._of_text(value.strip())
        return found

    def _of_text(self, text: str) -> int | None:
        if _NUMBER.fullmatch(text):
            return self._of(float(text) if "." in text else int(text), 0)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        delta = moment.utcoffset()
        if delta is None:
            return self._of(moment.replace(tzinfo=UTC).timestamp(), None)
        return self._of(moment.timestamp(), int(delta.total_seconds()))

    def _of(self, seconds: float, offset: int | None) -> int | None:
        if not _FIRST <= seconds < _LAST or math.isnan(seconds):
            return None
        local = seconds + (offset or 0)
        start = int(local // self.width) * self.width - (offset or 0)
        if start not in self._buckets:
            try:
                self._buckets[start] = Bucket.at(start, offset)
            except OverflowError:  # the first or the last bucket of the calendar
                return None
        return start


class TimeTally:
    """``count [by F] per D``: counts per bucket (and group key), and the records without a time."""

    def __init__(
        self,
        width: int,
        time_field: str,
        keys_of: Callable[[Any], list[Any]] | None,  # records or Columns -> their group keys
    ) -> None:
        self.bucketer = Bucketer(width)
        self.time = Field(time_field)
        self.keys_of = keys_of
        #: Counts by bucket start, or by (bucket start, group key).
        self.tally: Counter[Any] = Counter()
        #: Records whose time field is missing or not a time.
        self.skipped = 0

    def add(self, batch: Sequence[dict[str, Any]]) -> None:
        """Count a batch of records."""
        self.add_columns(self.time.values(batch), self.keys_of(batch) if self.keys_of is not None else None)

    def add_columns(self, times: Sequence[Any], keys: Sequence[Any] | None) -> None:
        """Count records given as columns: their time values and (with ``by``) their group keys."""
        starts = self.bucketer.starts(times)
        missing = starts.count(None)
        self.skipped += missing
        if keys is None:
            self.tally.update(starts)
            if missing:
                del self.tally[None]
            return
        pairs: Any = zip(starts, keys, strict=True)
        if missing:
            pairs = [pair for pair in pairs if pair[0] is not None]
        self.tally.update(pairs)

    def rows(self, sort_text: Callable[[Any], str]) -> list[tuple[Any, ...]]:
        """``(bucket, *keys, count)`` by bucket, then count (largest first), then the keys' text."""
        at = self.bucketer.at
        if self.keys_of is None:
            return [(at(start), n) for start, n in sorted(self.tally.items())]
        items = sorted(self.tally.items(), key=lambda kv: (kv[0][0], -kv[1], sort_text(kv[0][1])))
        return [
            (at(start), *key, n) if type(key) is tuple else (at(start), key, n) for (start, key), n in items
        ]
