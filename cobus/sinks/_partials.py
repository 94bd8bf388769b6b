"""The aggregates split in two: a partial per batch where the records are, merged at the sink.

``count``, ``top``, ``sum`` and ``uniq`` declare themselves as a split step
(:data:`cobus.steps.AGGREGATE`, through :func:`split_step`). Its two halves:

- ``partial(target)``: a filter that turns each non-empty batch into one
  :class:`~cobus.steps.Partial` (a worker process runs it after its branch);
- ``merge(**params, ctx=ctx)``: the sink fed with those partials in input
  order, reporting exactly as the stage does (same :class:`.aggregate.Report`,
  ``--csv``, ``--every``, terminal table).

What each partial holds (keys are group keys, :mod:`cobus.fields`):

====================  ==========================================================
``count``             ``total``: the batch's items
``count by``, ``top`` ``pairs``: (key, count), keys in first-seen order
``sum F``             ``total``: the batch's sum; ``skipped``
``sum F by G``        ``pairs``: (key, the numbers in record order); ``skipped``
``uniq``              ``pairs``: (key, None) for the keys this worker had not seen
====================  ==========================================================

Discussion: the same result as inline, byte for byte. Folded in input order,
the partials give every tally the keys in the order they were first seen
(ties in the ranking, ``uniq -l``, which of ``1`` and ``1.0`` is shown). A
float sum is not associative, so it is added as the stage adds it: ``sum F``
adds one sum per batch (the batches are the ones the inline sink would get),
``sum F by G`` each record's number in order; integer sums are exact either
way. The numbers are read as ``sum`` reads them (numeric text parsed, the
rest skipped and counted). A stage option not listed here (``count ... per``
from time buckets) means the stage is not split: it runs as written.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..context import RunContext
from ..core import StageGen, Target, batch_len, coroutine
from ..fields import Field
from ..steps import AGGREGATE, Partial, Step
from ._report import (
    Report,
    View,
    _by_fields,
    _fields,
    _key_function,
    _records,
    _report_loop,
    numbers,
    skipped_note,
    uniq_text,
)

__all__ = ["split_step"]

#: The parameters each aggregate is split with; any other that is set keeps it whole.
_KNOWN: Mapping[str, frozenset[str]] = {
    "count": frozenset({"by", "csv", "every"}),
    "top": frozenset({"n", "field", "csv", "every"}),
    "sum": frozenset({"field", "by", "csv", "every"}),
    "uniq": frozenset({"field", "values"}),
}


def split_step(name: str, params: Mapping[str, Any]) -> Step | None:
    """The aggregate ``name`` with ``params`` as a split step (None: it runs whole)."""
    if name not in _KNOWN or any(v for k, v in params.items() if k not in _KNOWN[name]):
        return None
    partial: Callable[[Target], Target]
    merge: Callable[..., Target]
    if name == "count":
        by = _by_fields(params.get("by") or ())
        partial, merge = functools.partial(_tally_partial, fields=by, name="count by"), _count
    elif name == "top":
        partial, merge = (
            functools.partial(_tally_partial, fields=_fields([params["field"]]), name="top"),
            _top,
        )
    elif name == "sum":
        by = _by_fields(params.get("by") or ())
        partial, merge = functools.partial(_sum_partial, field=params["field"], by=by), _sum
    else:
        partial, merge = functools.partial(_uniq_partial, fields=_fields([params["field"]])), _uniq
    return Step(AGGREGATE, {"partial": partial, "merge": merge})


# -- the partial halves (in each worker) ---------------------------------------------


@coroutine
def _tally_partial(target: Target, *, fields: Sequence[str], name: str) -> StageGen:
    """``count [by]``, ``top``: the batch's count, or its count per key."""
    keys_of = _key_function(fields) if fields else None
    send = target.send
    while True:
        batch = yield
        if not len(batch):
            continue
        if keys_of is None:
            send(Partial(batch_len(batch), []))
        else:
            send(Partial(None, list(Counter(keys_of(_records(batch, name))).items())))


@coroutine
def _sum_partial(target: Target, *, field: str, by: Sequence[str]) -> StageGen:
    """``sum F``: the batch's sum; ``sum F by G``: each key's numbers in record order."""
    keys_of = _key_function(by) if by else None
    reading = Field(field)
    send = target.send
    while True:
        batch = yield
        if not len(batch):
            continue
        values = numbers(_records(batch, "sum"), reading)
        skipped = values.count(None)
        if keys_of is None:
            send(Partial(sum(v for v in values if v is not None), [], skipped))
            continue
        groups: dict[Any, list[Any]] = {}
        for key, value in zip(keys_of(batch), values, strict=True):
            if value is not None:
                groups.setdefault(key, []).append(value)
        send(Partial(None, list(groups.items()), skipped))


@coroutine
def _uniq_partial(target: Target, *, fields: Sequence[str]) -> StageGen:
    """``uniq``: the keys of the batch this worker had not seen yet, first seen first."""
    keys_of = _key_function(fields)
    seen: set[Any] = set()
    send = target.send
    while True:
        batch = yield
        if not len(batch):
            continue
        fresh = [k for k in dict.fromkeys(keys_of(_records(batch, "uniq"))) if k not in seen]
        seen.update(fresh)
        send(Partial(None, [(k, None) for k in fresh]))


# -- the merge halves (the stage itself, in the parent) --------------------------------
# Each takes the stage's parameters; ``off`` holds those the split does not
# know, all unset (a set one keeps the stage whole: see split_step).


@coroutine
def _count(
    *, by: tuple[str, ...] = (), csv: bool = False, every: str | None = None, ctx: RunContext, **off: Any
) -> StageGen:
    fields = _by_fields(by)
    report = Report.for_run(ctx, as_csv=csv, every=every)
    tally: Counter[Any] = Counter()
    total: int | float = 0  # an int: partials of count carry ints

    def add(partial: Partial) -> None:
        nonlocal total
        if fields:
            tally.update(dict(partial.pairs))
        else:
            total += partial.total if partial.total is not None else 0

    def view() -> View:
        return View.ranked(fields, "count", tally) if fields else View.single("count", total)

    yield from _report_loop(report, add, view)


@coroutine
def _top(
    *, n: int, field: str, csv: bool = False, every: str | None = None, ctx: RunContext, **off: Any
) -> StageGen:
    fields = _fields([field])
    report = Report.for_run(ctx, as_csv=csv, every=every)
    tally: Counter[Any] = Counter()

    def add(partial: Partial) -> None:
        tally.update(dict(partial.pairs))

    yield from _report_loop(report, add, lambda: View.ranked(fields, "count", tally, limit=n))


@coroutine
def _sum(
    *,
    field: str,
    by: tuple[str, ...] = (),
    csv: bool = False,
    every: str | None = None,
    ctx: RunContext,
    **off: Any,
) -> StageGen:
    fields = _by_fields(by)
    report = Report.for_run(ctx, as_csv=csv, every=every)
    sums: dict[Any, int | float] = {}
    total: int | float = 0
    skipped = 0

    def add(partial: Partial) -> None:
        nonlocal total, skipped
        skipped += partial.skipped
        if not fields:
            total += partial.total if partial.total is not None else 0  # 0.0 stays a float
            return
        for key, values in partial.pairs:
            acc = sums.get(key, 0)
            for value in values:  # one by one, as the stage adds them (floats round at each step)
                acc += value
            sums[key] = acc

    def view() -> View:
        return View.ranked(fields, "sum", sums) if fields else View.single("sum", total)

    try:
        yield from _report_loop(report, add, view)
    finally:
        if skipped:
            ctx.warn(skipped_note(field, skipped))


@coroutine
def _uniq(*, field: str, values: bool = False, ctx: RunContext, **off: Any) -> StageGen:
    width = len(_fields([field]))
    seen: dict[Any, None] = {}
    hold = ctx.delivery.hold("uniq")
    try:
        while True:
            seen.update(dict.fromkeys(key for key, _ in (yield).pairs))
    finally:
        ctx.stdout.write(uniq_text(seen, width, values).encode("utf-8", "surrogateescape"))
        ctx.stdout.flush()
        hold.release()
