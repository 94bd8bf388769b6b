"""Reaching a record's fields: dotted paths, a value's text, a value's group key.

One place says how a field name finds a value and how a value reads as
text, so ``csv``, ``table``, ``print``, ``where`` and the aggregates agree:

- a name is a key of the record; when the record has no such key and the
  name holds dots, it is a path into nested objects (``request.method``); a
  part in double quotes is one key even with dots in it
  (``"a.b".c`` is key ``c`` inside key ``a.b``);
- a path that meets anything but an object (a string, an array, null) or a
  key that is absent finds :data:`MISSING`, which is not null;
- as text: missing is empty, JSON ``null``/``true``/``false`` are those
  words, numbers as Python writes them, objects and arrays compact JSON;
- as a group key (``count by``, ``top``, ``uniq``): strings and numbers are
  themselves, missing is None (shown empty), anything else its text.

Discussion: lists from XML and arrays from JSON. A repeated XML child gives
a list of strings, written ``a;b`` since before JSON came in; a JSON array
is a list too, and nothing on a record says where it came from (records
cross process boundaries as JSON). So a non-empty list of only strings keeps
the XML form and every other list is written as JSON. A JSON array of
strings therefore reads ``a;b`` in ``csv``/``table``/``print``; ``jsonl``
always writes real JSON.

Discussion: why fast paths check types. Records mostly hold strings and
ints; a batch whose column holds only those is taken as it is (``map`` of an
``itemgetter``, one ``set`` of the types, all in C). ``True`` hashes like
``1``, so a column holding a bool, a None or a container takes the slow path,
where every value is turned into its key or text one by one.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any, Final

__all__ = ["MISSING", "Field", "column_keys", "group_key", "group_keys", "texts", "value_text"]

Record = dict[str, Any]


class _Missing:
    """The value of a field a record does not have (not JSON null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()

#: Types a column may hold and be used without conversion (as a key: hashable, never a bool).
_PLAIN_KEYS = frozenset({str, int, float})
#: Types whose text is ``str(value)`` (not bool: True is "true").
_AS_STR = frozenset({str, int, float})
_PATH_PART = re.compile(r'"([^"]*)"|([^".]+)')

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def _path(name: str) -> tuple[str, ...] | None:
    """``request.method`` -> ``("request", "method")``; None when ``name`` is one key only."""
    if "." not in name and '"' not in name:
        return None
    parts: list[str] = []
    pos = 0
    while True:
        m = _PATH_PART.match(name, pos)
        if m is None:
            return None  # an empty part (a..b, a trailing dot): the name is a plain key
        parts.append(m[1] if m[1] is not None else m[2])
        pos = m.end()
        if pos == len(name):
            return tuple(parts)
        if name[pos] != ".":
            return None
        pos += 1


def _walker(name: str, path: tuple[str, ...]) -> Callable[[Record], Any]:
    literal = '"' not in name  # a quoted path was written as a path on purpose

    def get(record: Record) -> Any:
        if literal:
            value = record.get(name, MISSING)
            if value is not MISSING:
                return value
        value = record
        for key in path:
            if type(value) is not dict:
                return MISSING
            value = value.get(key, MISSING)
        return value

    return get


class Field:
    """One field name as the user wrote it, ready to read from records.

    >>> f = Field("request.method")
    >>> f.get({"request": {"method": "GET"}}), f.get({"request": "GET /"})
    ('GET', MISSING)
    >>> Field("t").texts([{"t": True}, {"t": None}, {}, {"t": {"a": [1, 2]}}])
    ['true', 'null', '', '{"a":[1,2]}']
    """

    __slots__ = ("get", "name", "plain")

    def __init__(self, name: str) -> None:
        self.name = name
        path = _path(name)
        #: A plain key (no path): a batch can be read with itemgetter.
        self.plain = path is None
        #: record -> value, or MISSING.
        self.get: Callable[[Record], Any] = (
            operator.methodcaller("get", name, MISSING) if path is None else _walker(name, path)
        )

    def values(self, batch: Sequence[Record]) -> list[Any]:
        """The field's value in each record (MISSING where absent)."""
        if self.plain:
            try:
                return list(map(operator.itemgetter(self.name), batch))
            except KeyError:
                pass
        return list(map(self.get, batch))

    def texts(self, batch: Sequence[Record]) -> list[str]:
        """The field's value in each record, as text (see the module's rules)."""
        return texts(self.values(batch))


def texts(values: list[Any]) -> list[str]:
    """Values as text (:func:`value_text`), in C where they are all strings or numbers."""
    kinds = set(map(type, values))
    if kinds <= {str}:
        return values
    if kinds <= _AS_STR:
        return list(map(str, values))
    return list(map(value_text, values))


def value_text(value: Any) -> str:
    """A value as text: missing empty, JSON literals as JSON, containers compact JSON."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int or kind is float:
        return str(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is MISSING:
        return ""
    if kind is list and value and all(type(v) is str for v in value):
        return ";".join(value)  # repeated XML children (see the module's Discussion)
    if kind is list or kind is dict or kind is tuple:
        return _dumps(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def group_key(value: Any) -> Any:
    """A hashable key that groups equal values and shows as :func:`value_text` does (missing: None)."""
    kind = type(value)
    if kind is str or kind is int or kind is float:
        return value
    if value is MISSING:
        return None
    return value_text(value)


def column_keys(values: list[Any]) -> list[Any]:
    """The group keys of one field's values: the list itself when every value is plain."""
    if set(map(type, values)) <= _PLAIN_KEYS:
        return values
    return list(map(group_key, values))


def group_keys(names: Sequence[str]) -> Callable[[Sequence[Record]], list[Any]]:
    """The group keys of a batch of records: a key, or a tuple of keys for several fields."""
    fields = [Field(n) for n in names]
    plain = all(f.plain for f in fields)
    fast = operator.itemgetter(*names)
    gets = [f.get for f in fields]

    if len(fields) == 1:
        one = gets[0]

        def single(batch: Sequence[Record]) -> list[Any]:
            if plain:
                try:
                    found = list(map(fast, batch))
                except KeyError:
                    pass
                else:
                    if set(map(type, found)) <= _PLAIN_KEYS:
                        return found
            return [group_key(one(r)) for r in batch]

        return single

    def several(batch: Sequence[Record]) -> list[Any]:
        if plain:
            try:
                found = list(map(fast, batch))
            except KeyError:
                pass
            else:
                if set(map(type, chain.from_iterable(found))) <= _PLAIN_KEYS:
                    return found
        return [tuple([group_key(g(r)) for g in gets]) for r in batch]

    return several
