"""The declared stage table (cobus/_stagetable.py) against the stage modules themselves."""

from __future__ import annotations

import subprocess
import sys

import pytest
from util import ROOT

import cobus._stagetable as table
from cobus.errors import SpecError
from cobus.registry import LATER, Registry, StageSpec, declaration, registry


def test_the_table_matches_what_the_modules_register() -> None:
    registry.import_all()
    real = [declaration(s) for s in registry.registered() if s.factory.__module__.startswith("cobus.")]
    assert [(m, f["name"], f["role"]) for m, f in table.STAGES] == [
        (m, f["name"], f["role"]) for m, f in real
    ], "run `python scripts/stage_table.py --write`"
    for (_, declared), (_, registered) in zip(table.STAGES, real, strict=True):
        for name, value in registered.items():
            assert declared[name] == value, f"{declared['name']}.{name}: run scripts/stage_table.py --write"


def test_the_table_declares_every_field_of_a_stage() -> None:
    names = set(StageSpec._fields)
    assert table.STAGES
    for _, fields in table.STAGES:
        assert set(fields) == names


def test_the_script_says_the_table_is_current() -> None:
    proc = subprocess.run(
        [sys.executable, "scripts/stage_table.py"], cwd=ROOT, capture_output=True, timeout=120, check=False
    )
    assert (proc.returncode, proc.stdout) == (0, b"the table is current\n")


def test_a_declared_stage_is_whole_before_its_module_is_imported() -> None:
    reg = Registry(table="cobus._stagetable").load()
    grep = next(s for s in reg.all() if s.name == "grep")
    assert grep.usage().startswith("grep ")
    assert grep.help == registry.lookup("grep", source=False).help
    assert not isinstance(grep.factory, type(registry.lookup("grep", source=False).factory))
    assert repr(grep.factory) == "<factory of grep in cobus.stages.grep>"


def test_a_stage_registers_from_the_table_but_is_checked_against_its_code(tmp_path) -> None:
    """Registering reads the declared params (no signature read); the check reads the code."""
    import cobus.stages.head as head_module
    from cobus.registry import as_written

    spec = registry.lookup("head", source=False)
    assert spec.factory is head_module.head
    assert as_written(spec) == spec  # the table is current: the code says the same
    stale = spec._replace(params=(), doc="old")
    assert as_written(stale) == spec


def test_lookup_gives_the_registered_spec_and_the_did_you_mean() -> None:
    spec = registry.lookup("head", source=False)
    assert spec.factory.__module__ == "cobus.stages.head"
    assert all(v is not LATER for v in spec._asdict().values())
    with pytest.raises(SpecError, match=r"unknown stage 'hed' \(did you mean 'head'\?\)"):
        registry.lookup("hed", source=False)
    with pytest.raises(SpecError, match="head is not a source"):
        registry.lookup("head", source=True)
