"""Stage name -> factory, with typed parameters, help text and examples.

Stages register themselves with :func:`stage`; the pipeline builder, ``cobus
stages``, ``cobus explain`` and error messages all read from here, and never
import a concrete stage. A factory is ``factory(target, *, params...)`` (a
source or sink has no target); its keyword-only parameters, annotated with
:class:`Arg` (positional words) or :class:`Opt` (``-x`` / ``--name`` options),
are the stage's parameters in the pipeline text. Any parameter may also be
given as ``name=value``. Nothing here knows the pipeline syntax beyond words.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import math
import pkgutil
import re
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .errors import SpecError

__all__ = [
    "ANY",
    "Arg",
    "Branches",
    "Opt",
    "Param",
    "ParamError",
    "Registry",
    "StageSpec",
    "Word",
    "fusion",
    "registry",
    "stage",
]

Role = Literal["source", "filter", "sink"]

#: ``consumes``/``produces`` value for stages that take any kind of batch.
ANY = "any"
#: ``produces`` value for stages that pass on the kind they receive.
SAME = "same"


@dataclass(frozen=True)
class Word:
    """One word of a stage's text, with where it stands in the pipeline text."""

    text: str
    column: int
    width: int
    quoted: bool = False


@dataclass(frozen=True)
class Arg:
    """Annotation: a parameter filled from positional words, in order."""

    help: str = ""
    metavar: str = ""


@dataclass(frozen=True)
class Opt:
    """Annotation: a parameter given as an option, ``-i`` or ``--ignore-case``."""

    short: str = ""
    help: str = ""
    metavar: str = ""


@dataclass(frozen=True)
class Branches:
    """Annotation: the stage takes ``[ sub-pipelines ]`` (threaded, parallel ...).

    ``count`` is how many it takes (None: any); ``filters_only`` refuses a
    branch that ends in a sink. Both are checked when the pipeline is validated.
    """

    help: str = ""
    count: int | None = None
    filters_only: bool = False


class ParamError(ValueError):
    """Raised by a stage's ``check`` to blame one parameter."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param

    @classmethod
    def bad_regex(cls, param: str, exc: re.error) -> ParamError:
        """The one wording for a regular expression that does not compile."""
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        return cls(param, f"bad regular expression: {exc.msg}{where}")


@dataclass(frozen=True)
class Param:
    name: str
    type: Any
    default: Any
    required: bool
    positional: bool
    variadic: bool
    short: str
    help: str
    metavar: str
    choices: tuple[str, ...] = ()

    @property
    def is_flag(self) -> bool:
        return self.type is bool

    @property
    def long(self) -> str:
        return "--" + self.name.replace("_", "-")

    def usage(self) -> str:
        meta = self.metavar or self.name.upper()
        if self.positional:
            text = f"{meta} ..." if self.variadic else meta
            return text if self.required else f"[{text}]"
        spelled = f"{self.short}|{self.long}" if self.short else self.long
        return f"[{spelled}]" if self.is_flag else f"[{spelled} {meta}]"

    def convert(self, word: Word) -> Any:
        text = word.text
        kind = self.type
        if self.choices and text not in self.choices:
            close = difflib.get_close_matches(text, self.choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _word_error(
                f"{self.long} must be one of {', '.join(self.choices)}, not {text!r}{hint}", word
            )
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
                    raise _word_error(f"{self.name} takes a finite number, not {text!r}", word)
                return number
        except ValueError:
            raise _word_error(
                f"{self.name} takes {'a number' if kind is not bool else 'true or false'}, not {text!r}",
                word,
            ) from None
        return text


@dataclass(frozen=True)
class StageSpec:
    """What the registry knows of one stage."""

    name: str
    role: Role
    factory: Callable[..., Any]
    params: tuple[Param, ...]
    help: str
    doc: str
    examples: tuple[str, ...]
    consumes: str
    produces: str
    check: Callable[[dict[str, Any]], None] | None = None
    #: When what the stage takes depends on its parameters (``count by F`` takes
    #: records, ``count`` anything): params -> kind.
    consumes_if: Callable[[dict[str, Any]], str] | None = None
    #: When what the stage makes depends on its parameters (``xread --records``): params -> kind.
    produces_if: Callable[[dict[str, Any]], str] | None = None
    wants_ctx: bool = False
    branches: str | None = None
    branch_rules: Branches | None = None

    def takes(self, params: dict[str, Any]) -> str:
        """The kind of data this stage takes, given its parameters."""
        return self.consumes_if(params) if self.consumes_if is not None else self.consumes

    def usage(self) -> str:
        parts = [self.name, *(p.usage() for p in self.params)]
        if self.branches:
            parts.append("[ ... ] ...")
        return " ".join(parts)

    def param(self, name: str) -> Param | None:
        name = name.replace("-", "_")
        return next((p for p in self.params if p.name == name), None)

    def bind(self, words: Sequence[Word]) -> dict[str, Any]:
        """Turn a stage's words into keyword arguments, or raise SpecError at a word."""
        values: dict[str, Any] = {}
        positional = [p for p in self.params if p.positional]
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
                p = self.param(key) if (eq and not w.quoted and key.isidentifier()) else None
                if p is not None and not p.variadic:
                    sub = Word(value, w.column + len(key) + 1, max(1, len(value)))
                    values[p.name] = p.convert(sub)
                    blame[p.name] = sub
                else:
                    loose.append(w)
                continue
            if text == "--":
                only_positional = True
                continue
            name, eq, value = text.partition("=")
            p = self._option(name)
            if p is None and not name.startswith("--") and len(name) > 2:
                # a cluster of short flags: -iv
                flags = [self._option("-" + c) for c in name[1:]]
                if all(f is not None and f.is_flag for f in flags) and not eq:
                    for f in flags:
                        assert f is not None
                        values[f.name] = True
                        blame[f.name] = w
                    continue
            if p is None:
                known = [o for q in self.params if not q.positional for o in (q.short, q.long) if o]
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise _word_error(f"{self.name} has no option {name}{hint}", w)
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
            values[p.name] = [*values.get(p.name, ()), p.convert(sub)] if p.variadic else p.convert(sub)
            blame[p.name] = sub
        for p in positional:
            if p.name in values:
                continue
            if p.variadic:
                if loose:
                    values[p.name] = [p.convert(x) for x in loose]
                    blame[p.name] = loose[0]
                    loose = []
            elif loose:
                w = loose.pop(0)
                values[p.name] = p.convert(w)
                blame[p.name] = w
        if loose:
            raise _word_error(f"{self.name} takes no more arguments: {loose[0].text!r}", loose[0])
        missing = [p for p in self.params if p.required and p.name not in values]
        if missing:
            raise SpecError(f"{self.name} needs {missing[0].usage()}  (usage: {self.usage()})")
        if self.check is not None:
            try:
                self.check(values)
            except ParamError as exc:
                culprit = blame.get(exc.param)
                err = SpecError(f"{self.name}: {exc}")
                if culprit is not None:
                    err.located("", culprit.column, culprit.width)
                raise err from None
            except ValueError as exc:
                raise SpecError(f"{self.name}: {exc}") from None
        return values

    def _option(self, spelled: str) -> Param | None:
        for p in self.params:
            if not p.positional and spelled in (p.short, p.long):
                return p
        if spelled.startswith("--"):
            named = self.param(spelled[2:])
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


#: ``fuse(params_of_first, params_of_second)`` -> (factory, params, note) or None.
Fusion = Callable[[dict[str, Any], dict[str, Any]], "tuple[Callable[..., Any], dict[str, Any], str] | None"]


class Registry:
    """All known stages, keyed by (name, role), and the fusions between them."""

    def __init__(self) -> None:
        self._stages: dict[tuple[str, str], StageSpec] = {}
        self.fusions: dict[tuple[str, str], Fusion] = {}
        self._loaded = False

    def add(self, spec: StageSpec) -> None:
        key = (spec.name, spec.role if spec.role == "source" else "downstream")
        if key in self._stages:
            raise ValueError(f"stage {spec.name!r} is registered twice")
        self._stages[key] = spec

    def load(self) -> Registry:
        """Import every stage module once (they register themselves)."""
        if not self._loaded:
            self._loaded = True
            for package in ("sources", "stages", "sinks", "concurrency"):
                _import_all(f"{__package__}.{package}")
        return self

    def names(self) -> list[str]:
        return sorted({name for name, _ in self.load()._stages})

    def all(self) -> list[StageSpec]:
        return sorted(self.load()._stages.values(), key=lambda s: (s.name, s.role != "source"))

    def lookup(self, name: str, *, source: bool) -> StageSpec:
        """The stage called ``name`` as a source (first stage) or downstream stage."""
        stages = self.load()._stages
        spec = stages.get((name, "source" if source else "downstream"))
        if spec is not None:
            return spec
        other = stages.get((name, "downstream" if source else "source"))
        if other is not None:
            if source:
                raise SpecError(
                    f"{name} is not a source: a pipeline starts with a source such as "
                    f"{', '.join(sorted(n for n, r in stages if r == 'source'))}"
                )
            raise SpecError(f"{name} is a source and can only start a pipeline")
        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SpecError(f"unknown stage {name!r}{hint}; `cobus stages` lists them")


def _import_all(package: str) -> None:
    try:
        pkg = importlib.import_module(package)
    except ModuleNotFoundError as exc:
        if exc.name == package:
            return
        raise
    for info in pkgutil.iter_modules(getattr(pkg, "__path__", [])):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")


#: The registry stages add themselves to.
registry = Registry()


def fusion(first: str, second: str, *, into: Registry | None = None) -> Callable[[Fusion], Fusion]:
    """Register a fusion: ``first | second`` may run as one faster factory.

    The function gets both stages' parameters and returns the fused factory
    (called like ``first``'s), its parameters and a note for ``explain``, or
    None when these parameters cannot be fused. Output must not change.
    """

    def register(fn: Fusion) -> Fusion:
        (into or registry).fusions[(first, second)] = fn
        return fn

    return register


def stage(
    name: str,
    *,
    role: Role = "filter",
    consumes: str = ANY,
    produces: str = SAME,
    examples: Iterable[str] = (),
    check: Callable[[dict[str, Any]], None] | None = None,
    consumes_if: Callable[[dict[str, Any]], str] | None = None,
    produces_if: Callable[[dict[str, Any]], str] | None = None,
    into: Registry | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a stage factory under ``name``; its docstring is its help."""

    def register(factory: Callable[..., Any]) -> Callable[..., Any]:
        params, wants_ctx, branches, rules = _params_of(factory)
        doc = inspect.getdoc(factory) or ""
        (into or registry).add(
            StageSpec(
                name=name,
                role=role,
                factory=factory,
                params=params,
                help=doc.split("\n", 1)[0],
                doc=doc,
                examples=tuple(examples),
                consumes=consumes,
                produces=produces if role != "sink" else "",
                check=check,
                consumes_if=consumes_if,
                produces_if=produces_if,
                wants_ctx=wants_ctx,
                branches=branches,
                branch_rules=rules,
            )
        )
        return factory

    return register


def _params_of(
    factory: Callable[..., Any],
) -> tuple[tuple[Param, ...], bool, str | None, Branches | None]:
    hints = typing.get_type_hints(factory, include_extras=True)
    params: list[Param] = []
    wants_ctx = False
    branches: str | None = None
    rules: Branches | None = None
    for p in inspect.signature(factory).parameters.values():
        if p.kind is not p.KEYWORD_ONLY:
            continue
        if p.name == "ctx":
            wants_ctx = True
            continue
        hint = hints.get(p.name, str)
        meta: Any = None
        if typing.get_origin(hint) is typing.Annotated:
            hint, meta, *_ = typing.get_args(hint)
        if isinstance(meta, Branches):
            branches, rules = p.name, meta
            continue
        variadic = typing.get_origin(hint) in (list, tuple)
        base = typing.get_args(hint)[0] if variadic else hint
        if isinstance(base, types.UnionType) or typing.get_origin(base) is typing.Union:
            base = next(a for a in typing.get_args(base) if a is not type(None))
        choices: tuple[str, ...] = ()
        if typing.get_origin(base) is Literal:
            choices = tuple(str(c) for c in typing.get_args(base))
            base = str
        required = p.default is inspect.Parameter.empty
        params.append(
            Param(
                name=p.name,
                type=base,
                default=None if required else p.default,
                required=required,
                positional=not isinstance(meta, Opt),
                variadic=variadic,
                short=meta.short if isinstance(meta, Opt) else "",
                help=getattr(meta, "help", ""),
                metavar=getattr(meta, "metavar", ""),
                choices=choices,
            )
        )
    return tuple(params), wants_ctx, branches, rules
