"""Record conditions (``FIELD OP VALUE``): parsed once into a small tree, compiled into predicates.

:meth:`AllOf.parse` turns the words into an :class:`AllOf` of
:class:`Condition` leaves (:func:`parse_conditions`); the ``where`` stage compiles it, the fused
``xml | records | where`` tests it before it builds a record, and the planner
and ``explain`` read its fields from it (stages never import each other, so
this lives outside them). The semantics:

- ``=`` ``!=`` ``<`` ``<=`` ``>`` ``>=`` compare numerically when both the
  field and VALUE are numbers (an int or float, or text that reads as one),
  else as text; ``~`` and ``!~`` search a Python regular expression;
- a missing field (or one that is None) never matches, not even ``!=``,
  except that a None (JSON null) matches ``=null``; a dotted name is a path
  into objects, and JSON values compare as their text (``true``, ``null``,
  compact JSON) (both from :mod:`cobus.fields`);
- a list field (a repeated XML child) matches when any item does; ``!=`` and
  ``!~`` are the exact negation of ``=`` and ``~`` on a present field;
- several conditions must all hold;
- a mistyped operator (``=>``, ``<>``, ``=<``) or an ordering with no value
  (``status>``) is refused, never read as a strange value.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .columns import Columns
from .fields import MISSING, Field, value_text
from .grepsyntax import required_literal

__all__ = ["AllOf", "Condition", "Predicate", "compile_conditions", "parse_conditions"]


class Condition(NamedTuple):
    """One test, ``FIELD OP VALUE`` (``==`` already read as ``=``)."""

    field: str
    op: str
    value: str

    def __str__(self) -> str:
        value = self.value
        if not value or any(c.isspace() for c in value) or '"' in value:
            value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{self.field}{self.op}{value}"


@dataclass(frozen=True)
class AllOf:
    """Conditions that must all hold: the tree every user of conditions shares.

    Iterating gives the :class:`Condition` leaves in the order written.
    """

    terms: tuple[Condition, ...]

    @classmethod
    def parse(cls, words: Sequence[str]) -> AllOf:
        """The tree of a stage's words (see :func:`parse_conditions`); ValueError when not conditions."""
        return cls(tuple(parse_conditions(words)))

    def __iter__(self) -> Iterator[Condition]:
        return iter(self.terms)

    def __len__(self) -> int:
        return len(self.terms)

    def __and__(self, other: AllOf) -> AllOf:
        return AllOf(self.terms + other.terms)

    @property
    def fields(self) -> frozenset[str]:
        """The fields the conditions read."""
        return frozenset(c.field for c in self.terms)

    def compile(self) -> Predicate:
        """One predicate that holds when every condition does."""
        return compile_conditions(self.terms)

    def compile_filter(self) -> Callable[[Any], Any]:
        """batch -> the part of it that passes: a list of records, or :class:`Columns` by the column."""
        return _filter(self.terms)

    def __str__(self) -> str:
        return " ".join(map(str, self.terms))


Predicate = Callable[[dict[str, Any]], bool]

_OPS = r"!=|<=|>=|!~|==|=|<|>|~"
_WHOLE = re.compile(rf"(?P<field>[^=!<>~\s]+)\s*(?P<op>{_OPS})(?P<value>.*)", re.DOTALL)
_OP_FIRST = re.compile(rf"(?P<op>{_OPS})(?P<value>.*)", re.DOTALL)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
#: Distinct texts remembered per condition (ids are unique: do not grow forever).
_MEMO_SIZE = 4096


def parse_conditions(words: Sequence[str]) -> list[Condition]:
    """``["route=22", "speed", ">", "3"]`` -> ``[("route", "=", "22"), ("speed", ">", "3")]``.

    A condition may be one word or spread over two or three; a word that is
    a whole condition with an empty value takes the next word as its value
    unless that word is itself a condition.
    """
    out: list[Condition] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        m = _WHOLE.fullmatch(word)
        if m is not None:
            field, op, value = m["field"], m["op"], m["value"]
        else:
            field = word
            if i >= len(words) or (m2 := _OP_FIRST.fullmatch(words[i])) is None:
                raise ValueError(f"{word!r} is not a condition (write FIELD OP VALUE, e.g. route=22)")
            op, value = m2["op"], m2["value"]
            i += 1
        if value == "" and i < len(words) and _WHOLE.fullmatch(words[i]) is None:
            value = words[i]
            i += 1
        op = "=" if op == "==" else op
        _refuse_odd(field, op, value)
        out.append(Condition(field, op, value))
    if not out:
        raise ValueError("where needs at least one condition, e.g. route=22")
    return out


#: Operators people write by habit from other languages, and what they mean here.
_HABITS = {"=>": ">=", "=<": "<=", "<>": "!=", "><": "!=", "=!": "!=", "=~": "~"}
_ORDERED = frozenset({"<", "<=", ">", ">="})


def _refuse_odd(field: str, op: str, value: str) -> None:
    """Refuse ``status=>200``, ``status<>200`` and ``status>``, which would quietly match all or nothing.

    A comparison whose value starts with an operator character is almost
    surely a mistyped operator; a value that really starts with one is
    matched with ``~`` (``status~^>200$``).
    """
    if op not in ("~", "!~") and value[:1] and value[0] in "=<>!~":
        typed = op + value[0]
        meant = _HABITS.get(typed)
        hint = f"did you mean {meant!r}?" if meant else "the operators are = != < <= > >= ~ !~"
        raise ValueError(
            f"{field}{op}{value}: {typed!r} is not an operator ({hint}); "
            f"to match a value that starts with {value[0]!r}, use ~"
        )
    if op in _ORDERED and value == "":
        raise ValueError(f"{field}{op} compares with nothing (write e.g. {field}{op}400)")


def _number(value: Any) -> float | None:
    """A number for an int/float, or for text that reads as a decimal number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _text(value: Any) -> str:
    return value_text(value)  # JSON true/false/null and objects as JSON (cobus.fields)


def _item_test(op: str, value: str) -> Callable[[Any], bool]:
    """A test for one (non-list) field value, for a positive operator."""
    if op == "~":
        search = re.compile(value).search
        literal = required_literal(value)
        if literal is not None:  # a text without the pattern's fixed part cannot match: no search
            return lambda v: literal in (t := _text(v)) and search(t) is not None
        return lambda v: search(_text(v)) is not None
    compare = _COMPARE[op]
    number = _number(value)
    if number is None:
        return lambda v: compare(_text(v), value)
    if op == "=":

        def equal(v: Any) -> bool:
            if v == value:
                return True
            n = _number(v)
            return n == number if n is not None else False

        return equal

    def ordered(v: Any) -> bool:
        n = _number(v)
        return compare(n, number) if n is not None else compare(_text(v), value)

    return ordered


def _value_test(op: str, value: str) -> Callable[[Any], bool]:
    """The test of one condition on a field's value (MISSING when the record lacks the field)."""
    negate = op in ("!=", "!~")
    test = _item_test({"!=": "=", "!~": "~"}.get(op, op), value)
    # Field values repeat (a route, a status code): remember each text's verdict.
    memo: dict[str, bool] = {}
    remembered = memo.get
    null_hit = op == "=" and value == "null"  # JSON null matches only =null

    def holds(v: Any) -> bool:
        if v is None:
            return null_hit
        if v is MISSING:
            return False
        if v.__class__ is str:
            hit = remembered(v)
            if hit is None:
                hit = test(v) != negate
                if len(memo) < _MEMO_SIZE:
                    memo[v] = hit
            return hit
        if isinstance(v, list):
            return any(map(test, v)) != negate
        return test(v) != negate

    return holds


def _condition(field: str, op: str, value: str) -> Predicate:
    holds = _value_test(op, value)
    get = Field(field).get  # a dotted path reaches inside objects
    return lambda record: holds(get(record))


def _column_mask(values: list[Any], holds: Callable[[Any], bool]) -> list[bool]:
    """``holds`` over a column; a column of one plain type is tested once per distinct value."""
    kinds = set(map(type, values))
    if len(kinds) == 1 and kinds <= {str, int, float}:
        verdict = {v: holds(v) for v in set(values)}
        return list(map(verdict.__getitem__, values))
    return list(map(holds, values))


def _filter(conditions: Sequence[Condition]) -> Callable[[Any], Any]:
    keep = compile_conditions(conditions)
    tests = [(c.field, _value_test(c.op, c.value)) for c in conditions]

    def kept(batch: Any) -> Any:
        if type(batch) is not Columns:
            return [r for r in batch if keep(r)]
        mask: list[bool] | None = None
        for name, holds in tests:
            hits = _column_mask(batch.column(name), holds)
            mask = hits if mask is None else list(map(operator.and_, mask, hits))
        return batch.compress(mask or [])

    return kept


def compile_conditions(conditions: Sequence[tuple[str, str, str]]) -> Predicate:
    """One predicate that holds when every condition does."""
    tests = [_condition(*c) for c in conditions]
    if len(tests) == 1:
        return tests[0]
    return lambda record: all(t(record) for t in tests)
