"""A stage's words -> its keyword arguments: the option syntax of the pipeline language.

The registry says what parameters a stage has (:class:`~cobus.registry.Param`);
this module says how they are written: positional words in order, ``-x`` and
``--name`` options (a value after ``=`` or in the next word), clusters of
short flags (``-iv``), ``--`` to end options, and ``name=value`` for any
parameter. A stage's ``check`` runs last and may blame one parameter; every
error points at the word it is about.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..errors import SpecError
from ..registry import Param, ParamError, StageSpec
from .parse import Word

__all__ = ["bind", "convert"]


def convert(param: Param, word: Word) -> Any:
    """The value of ``word`` as ``param``'s type, or SpecError at the word."""
    text = word.text
    kind = param.type
    if param.choices and text not in param.choices:
        import difflib  # did-you-mean only for a wrong word: not at every start

        close = difflib.get_close_matches(text, param.choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise _word_error(f"{param.long} must be one of {', '.join(param.choices)}, not {text!r}{hint}", word)
    try:
        if kind is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if kind in (int, float):
            number = kind(text)
            if not math.isfinite(number):  # nan and inf: no count, interval or timeout
                raise _word_error(f"{param.name} takes a finite number, not {text!r}", word)
            return number
    except ValueError:
        raise _word_error(
            f"{param.name} takes {'a number' if kind is not bool else 'true or false'}, not {text!r}",
            word,
        ) from None
    return text


def bind(spec: StageSpec, words: Sequence[Word]) -> dict[str, Any]:
    """Turn a stage's words into keyword arguments, or raise SpecError at a word."""
    values: dict[str, Any] = {}
    positional = [p for p in spec.params if p.positional]
    loose: list[Word] = []
    blame: dict[str, Word] = {}
    i = 0
    only_positional = False
    while i < len(words):
        w = words[i]
        i += 1
        text = w.text
        if w.quoted or only_positional or not text.startswith("-") or text == "-" or _is_number(text):
            key, eq, value = text.partition("=")
            p = spec.param(key) if (eq and not w.quoted and key.isidentifier()) else None
            if p is not None and not p.variadic:
                sub = Word(value, w.column + len(key) + 1, max(1, len(value)))
                values[p.name] = convert(p, sub)
                blame[p.name] = sub
            else:
                loose.append(w)
            continue
        if text == "--":
            only_positional = True
            continue
        name, eq, value = text.partition("=")
        p = _option(spec, name)
        if p is None and not name.startswith("--") and len(name) > 2:
            # a cluster of short flags: -iv
            flags = [_option(spec, "-" + c) for c in name[1:]]
            if all(f is not None and f.is_flag for f in flags) and not eq:
                for f in flags:
                    assert f is not None
                    values[f.name] = True
                    blame[f.name] = w
                continue
        if p is None:
            import difflib

            known = [o for q in spec.params if not q.positional for o in (q.short, q.long) if o]
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise _word_error(f"{spec.name} has no option {name}{hint}", w)
        if p.is_flag and not eq:
            values[p.name] = True
            blame[p.name] = w
            continue
        if eq:
            sub = Word(value, w.column + len(name) + 1, max(1, len(value)))
        elif i < len(words):
            sub = words[i]
            i += 1
        else:
            raise _word_error(f"{name} needs a value ({p.metavar or p.name.upper()})", w)
        # A list option (grep -e) gathers every time it is given.
        values[p.name] = [*values.get(p.name, ()), convert(p, sub)] if p.variadic else convert(p, sub)
        blame[p.name] = sub
    for p in positional:
        if p.name in values:
            continue
        if p.variadic:
            if loose:
                values[p.name] = [convert(p, x) for x in loose]
                blame[p.name] = loose[0]
                loose = []
        elif loose:
            w = loose.pop(0)
            values[p.name] = convert(p, w)
            blame[p.name] = w
    if loose:
        raise _word_error(f"{spec.name} takes no more arguments: {loose[0].text!r}", loose[0])
    missing = [p for p in spec.params if p.required and p.name not in values]
    if missing:
        raise SpecError(f"{spec.name} needs {missing[0].usage()}  (usage: {spec.usage()})")
    if spec.check is not None:
        try:
            spec.check(values)
        except ParamError as exc:
            culprit = blame.get(exc.param)
            err = SpecError(f"{spec.name}: {exc}")
            if culprit is not None:
                err.located("", culprit.column, culprit.width)
            raise err from None
        except ValueError as exc:
            raise SpecError(f"{spec.name}: {exc}") from None
    return values


def _option(spec: StageSpec, spelled: str) -> Param | None:
    for p in spec.params:
        if not p.positional and spelled in (p.short, p.long):
            return p
    if spelled.startswith("--"):
        named = spec.param(spelled[2:])
        return named if named is not None and not named.variadic else None
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _word_error(message: str, word: Word) -> SpecError:
    # The text is filled in by the parser, which knows the whole line.
    return SpecError(message).located("", word.column, word.width)
