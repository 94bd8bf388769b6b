"""JSON lines decoded into the fields a pipeline reads, and nothing else.

When the planner knows the fields read after ``parse json`` (``where
level=error | count by service`` reads ``level`` and ``service``), msgspec
decodes each line into a small struct with just those keys: it still checks
the whole line is JSON, but it builds no dict and no value for any other
key, which is most of the work of decoding a log line. The block is decoded
line by line in one ``map`` (each line must be one whole object), and each
field becomes a column.

A line that is not a JSON object, a blank line, or anything msgspec refuses
makes the whole block take the ordinary path (a dict per line, then the
same columns), so failures are found and counted exactly as before. Names
with a dot or a quote may be paths into objects (:mod:`cobus.fields`); they
are read from whole records, so such a pipeline does not take this path.
Without msgspec, neither does any.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from ..columns import Columns
from ..fields import MISSING

__all__ = ["json_columns"]


def json_columns(names: frozenset[str]) -> Callable[[bytes], Columns | None] | None:
    """A block decoder making the ``names`` columns, or None when this path cannot serve them."""
    if any("." in n or '"' in n for n in names):
        return None
    try:
        import msgspec
    except ImportError:
        return None
    order = sorted(names)
    slots = [f"f{i}" for i in range(len(order))]
    row = msgspec.defstruct(
        "Row",
        [(slot, Any, msgspec.UNSET) for slot in slots],
        rename=dict(zip(slots, order, strict=True)),
    )
    decode = msgspec.json.Decoder(row).decode
    unset = msgspec.UNSET
    getters = [operator.attrgetter(slot) for slot in slots]

    def block(data: bytes) -> Columns | None:
        lines = data.split(b"\n")
        lines.pop()  # the empty text after the block's last newline
        try:
            rows = list(map(decode, lines))
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None  # the ordinary path finds the culprits
        out: dict[str, list[Any]] = {}
        for name, get in zip(order, getters, strict=True):
            values = list(map(get, rows))
            if unset in values:
                values = [MISSING if v is unset else v for v in values]
            out[name] = values
        return Columns(out, len(rows))

    return block
