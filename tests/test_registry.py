"""The stage registry, seen from outside: lookups by name, the errors, the help it serves.

Only public behaviour is asserted (``registry.lookup`` and ``names`` by name,
``cobus stages``, ``cobus check``), so the tests hold however the registry
finds its stages.
"""

from __future__ import annotations

import re

import pytest

import cobus
from cobus.errors import SpecError
from cobus.registry import registry

#: Some stages of each role: name, looked up as a source, role.
KNOWN = [
    ("cat", True, "source"),
    ("follow", True, "source"),
    ("xml", True, "source"),
    ("xml", False, "filter"),
    ("grep", False, "filter"),
    ("where", False, "filter"),
    ("threaded", False, "filter"),
    ("count", False, "sink"),
    ("print", False, "sink"),
]


@pytest.mark.parametrize(("name", "source", "role"), KNOWN)
def test_lookup_by_name_gives_that_stage(name: str, source: bool, role: str) -> None:
    spec = registry.lookup(name, source=source)
    assert (spec.name, spec.role) == (name, role)
    assert spec.usage().split()[0] == name
    assert spec.help and spec.help == spec.help.strip() and "\n" not in spec.help


def test_names_are_sorted_unique_and_all_looked_up() -> None:
    names = registry.names()
    assert names == sorted(set(names))
    assert {"cat", "grep", "head", "print", "count", "xml", "broadcast", "parallel"} <= set(names)
    for name in names:
        found = []
        for source in (True, False):
            try:
                found.append(registry.lookup(name, source=source).name)
            except SpecError:
                pass
        assert found and set(found) == {name}


def test_one_name_may_be_a_source_and_a_filter() -> None:
    as_source = registry.lookup("xml", source=True)
    as_filter = registry.lookup("xml", source=False)
    assert (as_source.role, as_filter.role) == ("source", "filter")
    assert as_source.usage().startswith("xml FILE")
    assert as_filter.usage().startswith("xml [--recover]")


@pytest.mark.parametrize(
    ("name", "source", "message"),
    [
        ("grpe", False, "unknown stage 'grpe' (did you mean 'grep'?); `cobus stages` lists them"),
        ("nonesuch", False, "unknown stage 'nonesuch'; `cobus stages` lists them"),
        ("cat", False, "cat is a source and can only start a pipeline"),
        ("grep", True, "grep is not a source: a pipeline starts with a source such as cat, "),
    ],
)
def test_lookup_errors_say_what_to_do(name: str, source: bool, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        registry.lookup(name, source=source)
    assert str(caught.value).startswith(message)


def test_a_wrong_source_names_every_source() -> None:
    with pytest.raises(SpecError) as caught:
        registry.lookup("head", source=True)
    listed = str(caught.value).split("such as ", 1)[1]
    sources = sorted(n for n in registry.names() if _is_source(n))
    assert listed.split(", ") == sources


def _is_source(name: str) -> bool:
    try:
        registry.lookup(name, source=True)
    except SpecError:
        return False
    return True


def test_the_same_errors_reach_the_command_line(cli) -> None:
    r = cli("check", "cat x | grpe y")
    assert (r.exit_code, r.stdout) == (2, "")
    assert r.stderr == (
        "cobus: error: unknown stage 'grpe' (did you mean 'grep'?); `cobus stages` lists them (column 9)\n"
        "  cat x | grpe y\n"
        "          ^^^^\n"
    )


def test_stages_lists_every_registered_stage_once_per_role(cli) -> None:
    r = cli("stages")
    assert (r.exit_code, r.stderr) == (0, "")
    rows = re.findall(r"^│ (\S+)\s+│ (source|filter|sink)\s", r.stdout, re.MULTILINE)
    names = registry.names()
    expected = sorted(
        [(n, registry.lookup(n, source=True).role) for n in names if _is_source(n)]
        + [(n, registry.lookup(n, source=False).role) for n in names if _is_downstream(n)]
    )
    assert sorted(rows) == expected


def _is_downstream(name: str) -> bool:
    try:
        registry.lookup(name, source=False)
    except SpecError:
        return False
    return True


@pytest.mark.parametrize("name", ["grep", "count", "follow", "parallel"])
def test_stage_help_is_usage_help_and_examples(cli, name: str) -> None:
    spec = registry.lookup(name, source=name == "follow")
    r = cli("stages", name)
    assert (r.exit_code, r.stderr) == (0, "")
    first = r.stdout.splitlines()[0]
    assert first.startswith(spec.usage() + "   (")
    assert spec.help in r.stdout
    for example in spec.examples:
        assert f"cobus run '{example}'" in r.stdout


def test_every_example_a_stage_shows_is_a_valid_pipeline(cli) -> None:
    checked = 0
    for name in registry.names():
        for source in (True, False):
            try:
                spec = registry.lookup(name, source=source)
            except SpecError:
                continue
            assert spec.examples, f"{name} shows no example"
            for example in spec.examples:
                r = cli("check", example)
                assert (r.exit_code, r.stderr) == (0, ""), (name, example)
                assert r.stdout.startswith("ok: ")
                checked += 1
    assert checked >= 2 * len(registry.names())


def test_a_private_registry_keeps_its_stages_to_itself() -> None:
    reg = cobus.registry.__class__()

    @cobus.stage("twice", consumes="lines", produces="lines", into=reg)
    @cobus.coroutine
    def twice(target):  # type: ignore[no-untyped-def]
        """Send every batch two times."""
        try:
            while True:
                batch = yield
                target.send(batch)
                target.send(batch)
        finally:
            target.close()

    assert reg.lookup("twice", source=False).help == "Send every batch two times."
    with pytest.raises(SpecError, match="unknown stage 'twice'"):
        registry.lookup("twice", source=False)
    with pytest.raises(ValueError, match="registered twice"):
        cobus.stage("twice", consumes="lines", produces="lines", into=reg)(twice)
