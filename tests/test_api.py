"""The public API: a small, sorted __all__ that imports and runs a pipeline."""

from __future__ import annotations

import importlib.metadata
import io
from pathlib import Path
from types import ModuleType

import cobus
from cobus.context import RunContext


def test_all_is_sorted_and_importable() -> None:
    assert list(cobus.__all__) == sorted(cobus.__all__)
    star: dict[str, object] = {}
    exec("from cobus import *", star)  # what a user's star import gets
    assert sorted(set(star) - {"__builtins__"}) == list(cobus.__all__)
    # Every public object of the package is in __all__ (submodules are not objects of the API).
    public = {
        name
        for name, value in vars(cobus).items()
        if not name.startswith("_") and not isinstance(value, ModuleType) and name != "annotations"
    }
    assert public | {"__version__"} == set(cobus.__all__)


def test_the_names_are_what_they_say() -> None:
    assert cobus.__version__ == importlib.metadata.version("cobus")
    errors = [cobus.SpecError, cobus.SourceError, cobus.StageError, cobus.SinkError]
    assert all(issubclass(error, cobus.CobusError) for error in errors)
    assert [error.exit_code for error in [cobus.CobusError, *errors]] == [1, 2, 1, 1, 1]
    assert issubclass(cobus.Done, Exception)
    assert "grep" in cobus.registry.names()


def test_run_a_pipeline_from_python(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"python\nperl\npython 3\n")
    out = io.BytesIO()
    cobus.run(f"cat {log} | grep python | print", RunContext(stdout=out))
    assert out.getvalue() == b"python\npython 3\n"


def test_a_stage_of_ones_own(tmp_path: Path) -> None:
    """A stage registered into a private registry is found by name, like the built-in ones."""
    reg = cobus.registry.__class__()

    @cobus.stage("shout", consumes="lines", produces="lines", into=reg)
    @cobus.coroutine
    def shout(target):  # type: ignore[no-untyped-def]
        """Upper-case every line."""
        try:
            while True:
                target.send((yield).upper())
        finally:
            target.close()

    spec = reg.lookup("shout", source=False)
    assert spec.help == "Upper-case every line."
    seen: list[bytes] = []

    @cobus.coroutine
    def sink():  # type: ignore[no-untyped-def]
        while True:
            seen.append((yield))

    stage = spec.factory(sink())
    stage.send(b"a\n")
    assert seen == [b"A\n"]
