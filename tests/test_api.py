"""The public API: a small, sorted __all__ that imports and runs a pipeline."""

from __future__ import annotations

import io
from pathlib import Path

import cobus
from cobus.context import RunContext


def test_all_is_sorted_and_importable() -> None:
    assert list(cobus.__all__) == sorted(cobus.__all__)
    for name in cobus.__all__:
        assert getattr(cobus, name) is not None


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
