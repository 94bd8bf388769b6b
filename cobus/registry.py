"""Stage name -> factory, with typed parameters, help text and examples.

Stages register themselves with :func:`stage`; the pipeline builder, ``cobus
stages``, ``cobus explain`` and error messages all read from here, and never
import a concrete stage. A factory is ``factory(target, *, params...)`` (a
source or sink has no target); its keyword-only parameters, annotated with
:class:`Arg` (positional words) or :class:`Opt` (``-x`` / ``--name`` options),
are the stage's parameters in the pipeline text. Any parameter may also be
given as ``name=value``; how words become values is the spec's
(:mod:`cobus.spec.options`): nothing here knows the pipeline syntax.
"""

from __future__ import annotations

import importlib
import re
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, Literal, NamedTuple

from .errors import SpecError

if typing.TYPE_CHECKING:
    from .steps import Absorber, Projector, Reads, Step

__all__ = [
    "ANY",
    "LATER",
    "Arg",
    "Branches",
    "Opt",
    "Param",
    "ParamError",
    "Registry",
    "StageSpec",
    "as_written",
    "declaration",
    "registry",
    "stage",
]

Role = Literal["source", "filter", "sink"]

#: ``consumes``/``produces`` value for stages that take any kind of batch.
ANY = "any"
#: ``produces`` value for stages that pass on the kind they receive.
SAME = "same"


class Arg(NamedTuple):
    """Annotation: a parameter filled from positional words, in order."""

    help: str = ""
    metavar: str = ""


class Opt(NamedTuple):
    """Annotation: a parameter given as an option, ``-i`` or ``--ignore-case``."""

    short: str = ""
    help: str = ""
    metavar: str = ""


class Branches(NamedTuple):
    """Annotation: the stage takes ``[ sub-pipelines ]`` (threaded, parallel ...).

    ``count`` is how many it takes (None: any); ``filters_only`` refuses a
    branch that ends in a sink. Both are checked when the pipeline is validated.
    """

    help: str = ""
    count: int | None = None  # type: ignore[assignment]  # a field, shadowing tuple.count on purpose
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


class Param(NamedTuple):
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


class StageSpec(NamedTuple):
    """What the registry knows of one stage.

    Discussion: why NamedTuples here. A frozen dataclass says the same, but
    building the class (and importing :mod:`dataclasses`, which imports
    :mod:`inspect`) is a measurable part of cobus's start-up, and these
    three classes are on every run's path. A NamedTuple is as immutable,
    has ``_fields``/``_replace``, and costs a fifth to define.
    """

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
    #: A source that runs until stopped (follow, listen): the run shows it live.
    live: bool = False
    #: The stage whose ``[ branches ]`` each get every item (the builder wires
    #: them as fan-out and fan-in, not as a stage with a branch argument).
    fans_out: bool = False
    #: The sink put at the end of a pipeline that does not end in one.
    default_sink: bool = False
    #: What runs a ``[ branch ]`` of this stage, as ``explain`` names it ("thread").
    boundary: str = ""
    #: Planner metadata (:mod:`cobus.steps`): this stage as a step for the
    #: stage before it, the steps it can take over from the stage after it,
    #: and the record fields it reads (None: undeclared, read as all).
    step: Callable[[dict[str, Any]], Step | None] | None = None
    absorbs: tuple[tuple[str, Absorber], ...] = ()
    reads: Reads | None = None
    #: It takes a :class:`cobus.columns.Columns` wherever it takes records
    #: (and a filter then passes columns on).
    columnar: bool = False
    #: For a stage that makes records: how it reads only the fields needed
    #: after it (``Projector``); the planner calls it with what is read.
    projects: Projector | None = None

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


#: ``fuse(params_of_first, params_of_second)`` -> (factory, params, note) or None.
class Registry:
    """All known stages, keyed by (name, role).

    Discussion: declared and registered stages. A stage module registers its
    stages when it is imported, but importing every module to start
    ``cat | head | print`` would cost most of cobus's start-up (lxml, rich,
    sockets ...). So the registry of cobus's own stages also holds a declared
    table (``cobus/_stagetable.py``, written by ``scripts/stage_table.py`` and
    checked against the modules by a test): every field of every
    :class:`StageSpec`, with the callables left to their module. Listing,
    help, completion and did-you-mean read the table; :meth:`lookup` imports
    the stage's module and returns the spec it registered, so a pipeline runs
    exactly the code it names. What a stage can fuse with is its own
    declaration (``step``, ``absorbs``); the planner (``cobus.spec.plan``)
    decides.
    """

    def __init__(self, table: str | None = None) -> None:
        self._stages: dict[tuple[str, str], StageSpec] = {}
        #: The module holding the declared table (None: only what registers itself).
        self._table = table
        self._declared: dict[tuple[str, str], StageSpec] = {}
        self._modules: dict[tuple[str, str], str] = {}
        self._loaded = False

    def add(self, spec: StageSpec) -> None:
        key = _key(spec.name, spec.role)
        if key in self._stages:
            raise ValueError(f"stage {spec.name!r} is registered twice")
        self._stages[key] = spec

    def load(self) -> Registry:
        """Read the declared table once (no stage module is imported)."""
        if not self._loaded:
            self._loaded = True
            if self._table is not None:
                table = importlib.import_module(self._table)
                for module, fields in table.STAGES:
                    self._declare(module, fields)
        return self

    def import_all(self) -> Registry:
        """Import every stage module (they register themselves): what the table is made from."""
        self.load()
        for package in ("sources", "stages", "sinks", "concurrency"):
            _import_all(f"{__package__}.{package}")
        return self

    def registered(self) -> list[StageSpec]:
        """The stages registered by their modules so far (not the declared ones)."""
        return sorted(self._stages.values(), key=lambda s: (s.name, s.role != "source"))

    def names(self) -> list[str]:
        return sorted({name for name, _ in self._known()})

    def all(self) -> list[StageSpec]:
        return sorted(self._known().values(), key=lambda s: (s.name, s.role != "source"))

    def lookup(self, name: str, *, source: bool) -> StageSpec:
        """The stage called ``name`` as a source (first stage) or downstream stage.

        A declared stage's module is imported here, and its registered spec returned.
        """
        key = (name, "source" if source else "downstream")
        spec = self._registered(key)
        if spec is not None:
            return spec
        stages = self._known()
        other = stages.get((name, "downstream" if source else "source"))
        if other is not None:
            if source:
                raise SpecError(
                    f"{name} is not a source: a pipeline starts with a source such as "
                    f"{', '.join(sorted(n for n, r in stages if r == 'source'))}"
                )
            raise SpecError(f"{name} is a source and can only start a pipeline")
        import difflib  # only for a name that is not a stage

        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SpecError(f"unknown stage {name!r}{hint}; `cobus stages` lists them")

    def _registered(self, key: tuple[str, str]) -> StageSpec | None:
        """The registered spec for ``key``, importing its declared module first."""
        spec = self._stages.get(key)
        if spec is None and key in self.load()._modules:
            importlib.import_module(self._modules[key])
            spec = self._stages.get(key)
            if spec is None:
                raise RuntimeError(
                    f"{self._modules[key]} no longer registers stage {key[0]!r}: "
                    "run `python scripts/stage_table.py --write`"
                )
        return spec

    def declared_code(self, name: str, role: str, module: str) -> _Code | None:
        """What the declared table says of a stage's code, when it declares it in ``module``.

        A stage registering itself takes its parameters and help from here
        rather than reading its signature (:mod:`inspect` and
        :func:`typing.get_type_hints` are a fair share of a run's start-up);
        the test of the table reads them from the code (:func:`as_written`).
        """
        key = _key(name, role)
        if self._modules.get(key) != module or not self._loaded:
            return None
        spec = self._declared[key]
        return spec.params, spec.wants_ctx, spec.branches, spec.branch_rules, spec.doc

    def _known(self) -> dict[tuple[str, str], StageSpec]:
        return {**self.load()._declared, **self._stages}

    def _declare(self, module: str, fields: dict[str, Any]) -> None:
        key = _key(fields["name"], fields["role"])
        values: dict[str, Any] = {
            name: _Later(self, module, key, name) if value is LATER else value
            for name, value in fields.items()
        }
        self._declared[key] = StageSpec(**values)
        self._modules[key] = module


def _key(name: str, role: str) -> tuple[str, str]:
    return (name, role if role == "source" else "downstream")


#: In the declared table: this field is a callable, found in the stage's module.
LATER: Any = type("Later", (), {"__repr__": lambda self: "LATER"})()


class _Later:
    """A declared stage's callable (factory, check ...).

    Calling it imports the module that registers the stage and calls what it
    registered; a pipeline never holds one (:meth:`Registry.lookup` returns the
    registered spec), but a declared spec stays whole and usable.
    """

    def __init__(self, reg: Registry, module: str, key: tuple[str, str], field: str) -> None:
        self._registry, self.module, self._key, self._field = reg, module, key, field

    def resolve(self) -> Callable[..., Any]:
        importlib.import_module(self.module)
        spec = self._registry._registered(self._key)
        assert spec is not None
        value: Callable[..., Any] = getattr(spec, self._field)
        return value

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{self._field} of {self._key[0]} in {self.module}>"


def declaration(spec: StageSpec) -> tuple[str, dict[str, Any]]:
    """What the declared table holds for ``spec``: its module and every field.

    Every field of :class:`StageSpec` is copied as it is, except callables
    and the pairs (step, callable) of ``absorbs``, which become :data:`LATER` (their
    module is the factory's; a pipeline's nodes hold the registered spec).
    """
    fields = dict(zip(spec._fields, as_written(spec), strict=True))
    for name, value in fields.items():
        if _holds_code(value):
            fields[name] = LATER
    return spec.factory.__module__, fields


def _holds_code(value: Any) -> bool:
    """A function, or a tuple holding one (``absorbs``' pairs); classes are data."""
    if isinstance(value, tuple):
        return any(_holds_code(v) for v in value)
    return callable(value) and not isinstance(value, type)


def _import_all(package: str) -> None:
    import pkgutil

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
registry = Registry(table=f"{__package__}._stagetable")


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
    live: bool = False,
    fans_out: bool = False,
    default_sink: bool = False,
    boundary: str = "",
    step: Callable[[dict[str, Any]], Step | None] | None = None,
    absorbs: dict[str, Absorber] | None = None,
    reads: Reads | None = None,
    columnar: bool = False,
    projects: Projector | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a stage factory under ``name``; its docstring is its help."""

    def register(factory: Callable[..., Any]) -> Callable[..., Any]:
        reg = into or registry
        code = reg.declared_code(name, role, factory.__module__) or _code_of(factory)
        params, wants_ctx, branches, rules, doc = code
        reg.add(
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
                live=live,
                fans_out=fans_out,
                default_sink=default_sink,
                boundary=boundary,
                step=step,
                absorbs=tuple((absorbs or {}).items()),
                reads=reads,
                columnar=columnar,
                projects=projects,
            )
        )
        return factory

    return register


#: What a factory's code says of its stage: params, wants_ctx, branches, branch_rules, doc.
_Code = tuple[tuple[Param, ...], bool, str | None, Branches | None, str]


def _code_of(factory: Callable[..., Any]) -> _Code:
    """Read a factory's signature and docstring (what the declared table saves a run)."""
    import inspect

    params, wants_ctx, branches, rules = _params_of(factory)
    return params, wants_ctx, branches, rules, inspect.getdoc(factory) or ""


def as_written(spec: StageSpec) -> StageSpec:
    """``spec`` with what its factory's code says read again (the table is checked against this)."""
    params, wants_ctx, branches, rules, doc = _code_of(spec.factory)
    return spec._replace(
        params=params,
        wants_ctx=wants_ctx,
        branches=branches,
        branch_rules=rules,
        help=doc.split("\n", 1)[0],
        doc=doc,
    )


def _params_of(
    factory: Callable[..., Any],
) -> tuple[tuple[Param, ...], bool, str | None, Branches | None]:
    import inspect

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
