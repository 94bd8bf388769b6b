"""Tests for cobus.core's Outlet (the one door into a target) and the concurrency package's layering."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest

import cobus
from cobus.core import Done, Outlet, StageGen, coroutine, fan_in


@coroutine
def collect(into: list[object], *, limit: int = 1000, fail_on: object = None) -> StageGen:
    try:
        while True:
            batch = yield
            if batch == fail_on:
                raise ValueError(f"bad batch {batch!r}")
            into.append(batch)
            if len(into) >= limit:
                raise Done
    finally:
        into.append("closed")


def test_offer_sends_until_the_target_is_done_then_drops() -> None:
    seen: list[object] = []
    outlet = Outlet(collect(seen, limit=2))
    assert outlet.offer(b"a\n") is True
    assert outlet.offer(b"b\n") is False  # the target took it, then said Done
    assert outlet.done
    assert outlet.offer(b"c\n") is False
    with pytest.raises(Done):
        outlet.send(b"d\n")
    assert seen == [b"a\n", b"b\n", "closed"]  # a generator that raised is finished
    assert outlet.clean


def test_a_failure_downstream_is_kept_and_raised() -> None:
    seen: list[object] = []
    outlet = Outlet(collect(seen, fail_on=b"x\n"))
    with pytest.raises(ValueError, match="bad batch") as info:
        outlet.offer(b"x\n")
    assert outlet.failure is info.value
    assert not outlet.clean


def test_fail_keeps_the_first_failure() -> None:
    outlet = Outlet(collect([]))
    first, second = RuntimeError("barrier"), RuntimeError("later")
    outlet.fail(first)
    outlet.fail(second)
    assert outlet.failure is first


def test_close_closes_once_and_ends_sending() -> None:
    seen: list[object] = []
    outlet = Outlet(collect(seen))
    outlet.offer(b"a\n")
    assert outlet.close() is True
    assert outlet.close() is True
    assert seen == [b"a\n", "closed"]
    assert outlet.offer(b"b\n") is False
    with pytest.raises(Done):
        outlet.send(b"b\n")


def test_close_gives_up_while_another_thread_is_inside_the_target() -> None:
    inside, release = threading.Event(), threading.Event()

    @coroutine
    def slow() -> StageGen:
        while True:
            yield
            inside.set()
            release.wait(30)

    outlet = Outlet(slow())
    sender = threading.Thread(target=outlet.offer, args=(b"a\n",))
    sender.start()
    try:
        assert inside.wait(30)
        assert outlet.close(timeout=0.05) is False
    finally:
        release.set()
        sender.join(30)
    assert outlet.close() is True


def test_fan_in_closes_the_shared_target_after_the_last_inlet() -> None:
    seen: list[object] = []
    a, b = fan_in(collect(seen, limit=3), 2)
    a.send(b"1\n")
    b.send(b"2\n")
    a.close()
    a.close()  # counted once
    assert "closed" not in seen
    with pytest.raises(Done):
        b.send(b"3\n")  # the third item: the target says Done
    with pytest.raises(Done):
        a.send(b"4\n")
    b.close()
    assert seen == [b"1\n", b"2\n", b"3\n", "closed"]


def _imports(path: Path) -> set[str]:
    """The cobus modules a file imports, as dotted names."""
    package = "cobus." + ".".join(path.relative_to(Path(cobus.__file__).parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rstrip(".").split(".")
                base = base[: len(base) - node.level + 1]
                found.add(".".join([*base, *([node.module] if node.module else [])]))
            elif node.module and node.module.startswith("cobus"):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("cobus"))
    return found


def test_the_concurrency_package_never_imports_the_spec_or_the_cli() -> None:
    root = Path(cobus.__file__).parent / "concurrency"
    files = sorted(root.glob("*.py"))
    assert len(files) >= 6
    for path in files:
        upward = {m for m in _imports(path) if m.startswith(("cobus.spec", "cobus.cli", "cobus.runner"))}
        assert not upward, f"{path.name} imports {upward}"


def test_the_core_and_the_kernel_import_no_stage_error() -> None:
    root = Path(cobus.__file__).parent
    for name in ("core.py", "kernel.py"):
        assert "StageError" not in (root / name).read_text()
