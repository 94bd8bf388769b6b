"""The ``--chart`` view of ``count ... per DURATION``: counts over time as a bar chart (rich).

One horizontal bar per bucket, time running down the screen, each bar
labelled with its bucket and its count; with ``by``, each bar is stacked
from the most frequent values (a fill character and a colour each, named in
a legend) and the rest as ``other``. Only drawn on a terminal: piped, the
same view is text rows (the aggregate's Report decides). Nothing here
tallies; rich is imported only when a chart is drawn.

Discussion: readable at any size. A person watching a log wants the latest
buckets and the shape of the counts, so a live chart shows the latest
buckets that fit the terminal's height (a chart printed once, at the end,
shows all of them), the date and offset the buckets share go once in the
title instead of on every bar, and a run of more than a few empty buckets
is one line saying how many (a quiet night must not fill the screen). The
fill characters differ as well as the colours, so the stacks read the same
without colour.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..formats import field_text
from ..timebuckets import Bucket

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions

    from ._report import View

__all__ = ["BucketChart"]

#: Fill characters and colours of the stacked series, most frequent first; the last is ``other``.
_FILLS = ("█", "▓", "▒", "░")
_STYLES = ("cyan", "magenta", "yellow", "green")
#: Empty buckets drawn one by one between two with records; a longer run is one line.
_MAX_GAP = 3


@dataclass(frozen=True)
class _Line:
    """One line of the body: a bucket and its counts per series, or a run of empty buckets."""

    bucket: Bucket | None
    counts: tuple[int, ...] = ()
    skipped: int = 0


class BucketChart:
    """A rich renderable: ``view`` (rows of bucket, keys..., count) as bars.

    ``width`` is the bucket width in seconds, ``per`` how the user wrote it;
    ``window`` keeps only the latest buckets that fit the console's height.
    """

    def __init__(self, view: View, *, width: int, per: str, window: bool = False) -> None:
        self.view = view
        self.width = width
        self.per = per
        self.window = window

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Any]:
        from rich.text import Text

        series, lines = self._lines()
        by = f" by {','.join(self.view.keys[1:])}" if len(self.view.keys) > 1 else ""
        title = [f"count{by} per {self.per}"]
        head = 1 + (len(series) > 1)
        if self.window and len(lines) > options.max_height - head - 1:
            keep = max(1, options.max_height - head - 2)
            hidden = sum(1 if ln.bucket is not None else ln.skipped for ln in lines[:-keep])
            lines = [_Line(None, skipped=hidden), *lines[-keep:]]
        shown = [ln.bucket for ln in lines if ln.bucket is not None]
        label, shared = _labeller(shown, self.width)
        yield Text(" · ".join([*title, *shared]), style="bold")
        if len(series) > 1:
            legend = Text()
            for i, name in enumerate(series):
                legend.append(("  " if i else "") + _FILLS[i] + " ", style=_STYLES[i])
                legend.append(name)
            yield legend
        labels = [label(ln.bucket) if ln.bucket is not None else "" for ln in lines]
        numbers = [str(sum(ln.counts)) if ln.bucket is not None else "" for ln in lines]
        label_w = max(map(len, labels), default=0)
        number_w = max(map(len, numbers), default=0)
        room = max(1, options.max_width - label_w - number_w - 3)
        peak = max((sum(ln.counts) for ln in lines), default=0) or 1
        for ln, text, number in zip(lines, labels, numbers, strict=True):
            if ln.bucket is None:
                what = "bucket" if ln.skipped == 1 else "buckets"
                yield Text(f"{'⋮':>{label_w}}  {ln.skipped} {what} not shown", style="dim")
                continue
            line = Text(f"{text:<{label_w}}  {number:>{number_w}} ")
            _bar(line, ln.counts, room * sum(ln.counts) / peak)
            yield line

    def _lines(self) -> tuple[list[str], list[_Line]]:
        """The series' names and the body's lines, buckets in order, gaps filled or folded."""
        rows = self.view.rows
        if len(self.view.keys) == 1:
            names: list[str] = [""]
            column = {(r[0], ""): r[-1] for r in rows}
        else:
            totals: dict[str, int] = {}
            column = {}
            for row in rows:
                key = _key_text(row[1:-1])
                totals[key] = totals.get(key, 0) + row[-1]
                column[row[0], key] = column.get((row[0], key), 0) + row[-1]
            ranked = sorted(totals, key=lambda k: (-totals[k], k))
            names = ranked if len(ranked) <= len(_FILLS) else [*ranked[: len(_FILLS) - 1], "other"]
        index = {name: i for i, name in enumerate(names)}
        other = len(names) - 1
        counts: dict[Bucket, list[int]] = {}
        for (bucket, key), n in column.items():
            slot = counts.setdefault(bucket, [0] * len(names))
            slot[index.get(key, other)] += n
        lines: list[_Line] = []
        for bucket in sorted(counts):
            if lines and lines[-1].bucket is not None:
                lines.extend(self._gap(lines[-1].bucket, bucket))
            lines.append(_Line(bucket, tuple(counts[bucket])))
        return names, lines

    def _gap(self, before: Bucket, after: Bucket) -> list[_Line]:
        """Empty buckets between two with records: each drawn, or one line when many."""
        missing = (after.start - before.start) // self.width - 1
        if missing <= 0:
            return []
        if missing > _MAX_GAP:
            return [_Line(None, skipped=missing)]
        return [
            _Line(Bucket.at(before.start + i * self.width, before.offset), ()) for i in range(1, missing + 1)
        ]


def _key_text(keys: Sequence[Any]) -> str:
    return " ".join("(none)" if k is None else field_text(k) for k in keys)


def _labeller(buckets: Sequence[Bucket], width: int) -> tuple[Any, list[str]]:
    """How each bucket is labelled, and what all share (the date, the offset) for the title.

    Bucket text is ``YYYY-MM-DDTHH:MM:SS`` and an offset (or none): the
    seconds go when the width is whole minutes, the date and the offset when
    every shown bucket has the same.
    """
    texts = [b.text for b in buckets]
    same_date = len({t[:10] for t in texts}) <= 1
    same_zone = len({t[19:] for t in texts}) <= 1
    end = 16 if width % 60 == 0 else 19
    shared = []
    if texts and same_date:
        shared.append(texts[0][:10])
    if texts and same_zone and texts[0][19:]:
        shared.append(texts[0][19:])

    def label(bucket: Bucket) -> str:
        text = bucket.text
        core = text[11:end] if same_date else f"{text[:10]} {text[11:end]}"
        return core if same_zone else core + text[19:]

    return label, shared


def _bar(line: Any, counts: Sequence[int], length: float) -> None:
    """Append the stacked bar of ``counts`` to ``line``: ``length`` cells, at least one when not empty."""
    total = sum(counts)
    if not total:
        return
    cells = max(1, round(length))
    done = 0
    running = 0
    for i, n in enumerate(counts):
        running += n
        upto = round(cells * running / total)
        if upto > done:
            line.append(_FILLS[i] * (upto - done), style=_STYLES[i])
            done = upto
