"""logfmt lines (``a=1 b="two words" flag``): a record per line, or the read fields of a whole block.

:func:`logfmt_record` is the definition. :func:`logfmt_columns` gives the
planner's projected path: one ``findall`` over the decoded block finds every
pair and every line end (a quoted value never crosses a line, as it cannot
in a single line), and only the pairs whose key is read are kept and
decoded, with no Python step per token. Unquoting a value is most of the cost of a logfmt line, so the
fields nobody reads are never unquoted.

A block with a line holding no pair (a line that does not parse, or a blank
one) takes the ordinary path, line by line, which counts and reports it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from itertools import accumulate, compress, repeat
from operator import itemgetter
from typing import Any

from ..columns import Columns
from ..fields import MISSING

__all__ = ["logfmt_columns", "logfmt_record"]

Record = dict[str, Any]

_PAIR = re.compile(r'([^\s="]+)(=("(?:[^"\\]|\\.)*"|[^\s"]*))?')
#: The same tokens over a block, and each line end ("\n" is in no token).
_TOKENS = re.compile(r'(\n)|([^\s="]+)(=("(?:[^"\\\n]|\\.)*"|[^\s"]*))?')


def _value(text: str) -> str:
    """A value as written: a quoted one unquoted (JSON escapes), else as it is."""
    if text[:1] != '"':
        return text
    try:
        value: str = json.loads(text, strict=False)
    except ValueError:  # an escape JSON does not know, such as \x41
        return text[1:-1].replace('\\"', '"')
    return value


def logfmt_record(text: str) -> Record | None:
    """``a=1 b="two words" flag`` -> {"a": "1", "b": "two words", "flag": True}.

    Values stay strings (as XML records do); a bare key is True. A line with
    no ``key=value`` pair at all does not parse.
    """
    rec: Record = {}
    pairs = False
    for key, eq, value in _PAIR.findall(text):
        if not eq:
            rec[key] = True
            continue
        pairs = True
        rec[key] = _value(value)
    return rec if pairs else None


def logfmt_columns(names: frozenset[str]) -> Callable[[str], Columns | None]:
    """A block parser making the ``names`` columns (as records would have them), or None for a block.

    Every step runs over the whole token list in C (``map``, ``compress``,
    ``accumulate``): each token's line number is the count of line ends
    before it, a line parses when some token on it is a pair, and a field's
    column is a dict from line number to value, the last pair on a line
    winning as it does in a record.
    """
    order = sorted(names)

    def block(text: str) -> Columns | None:
        if not text.endswith("\n"):
            return None  # not a block of whole lines
        tokens = _TOKENS.findall(text)
        ends = list(map(bool, map(itemgetter(0), tokens)))
        n = ends.count(True)
        lines = [0, *accumulate(ends)][:-1]  # each token's line
        if len(set(compress(lines, map(bool, map(itemgetter(2), tokens))))) != n:
            return None  # a line with no pair (or a blank one): the line path reports it
        keys = list(map(itemgetter(1), tokens))
        out: dict[str, list[Any]] = {}
        for name in order:
            at = list(compress(range(len(keys)), map(name.__eq__, keys)))
            if not at:
                out[name] = list(repeat(MISSING, n))
                continue
            found = {lines[i]: (tokens[i][3] if tokens[i][2] else True) for i in at}
            column = list(map(found.get, range(n), repeat(MISSING)))
            out[name] = [_value(v) if v.__class__ is str else v for v in column]
        return Columns(out, n)

    return block
