"""A batch of records held as columns: one list per field, for stages that work by the block.

When the planner knows every field a pipeline reads after a ``parse`` and
every stage that reads them takes columns (``where``, ``count``, ``top``,
``sum``, ``uniq``, ``csv`` and ``table`` with fields declare ``columnar``), the parser hands on a
:class:`Columns` instead of a list of dicts. A filter then tests a whole
column and keeps rows with :func:`itertools.compress`; an aggregate feeds a
column to ``Counter`` in one call. Nothing per record is built.

A column holds the values a record would hold under that name, and
:data:`~cobus.fields.MISSING` where a record would not have the field, so
every reader gives exactly what it gives on the records; :meth:`records`
turns the batch back into them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import compress, repeat
from typing import Any

from .fields import MISSING, Field, column_keys, texts

__all__ = ["Columns"]

Record = dict[str, Any]


class Columns:
    """Equal-length columns by field name; a name not held reads as all MISSING."""

    __slots__ = ("data", "length")

    def __init__(self, data: dict[str, list[Any]], length: int) -> None:
        self.data = data
        self.length = length

    @classmethod
    def from_records(cls, records: Sequence[Record], names: Iterable[str]) -> Columns:
        """The named fields of ``records`` (MISSING where a record lacks one)."""
        return cls({name: Field(name).values(records) for name in names}, len(records))

    def __len__(self) -> int:
        return self.length

    def __bool__(self) -> bool:
        return self.length > 0

    def __repr__(self) -> str:
        return f"Columns({sorted(self.data)}, {self.length} rows)"

    def column(self, name: str) -> list[Any]:
        """The values of ``name``, one per row."""
        found = self.data.get(name)
        return found if found is not None else list(repeat(MISSING, self.length))

    def keys(self, names: Sequence[str]) -> list[Any]:
        """The group keys of the rows, as :func:`cobus.fields.group_keys` gives them for records."""
        columns = [column_keys(self.column(n)) for n in names]
        return columns[0] if len(columns) == 1 else list(zip(*columns, strict=True))

    def texts(self, name: str) -> list[str]:
        """The values of ``name`` as text, as :meth:`cobus.fields.Field.texts` gives them."""
        return texts(self.column(name))

    def tail(self, n: int) -> Columns:
        """The last ``n`` rows."""
        if n >= self.length:
            return self
        return Columns({name: values[-n:] for name, values in self.data.items()}, n)

    def compress(self, keep: Sequence[bool]) -> Columns:
        """The rows whose ``keep`` is true, in order."""
        data = {name: list(compress(values, keep)) for name, values in self.data.items()}
        return Columns(data, sum(keep))

    def records(self) -> list[Record]:
        """The rows as records (fields a row lacks are left out)."""
        names = list(self.data)
        if not names:
            return [{} for _ in range(self.length)]
        rows = zip(*(self.data[n] for n in names), strict=True)
        return [{k: v for k, v in zip(names, row, strict=True) if v is not MISSING} for row in rows]
