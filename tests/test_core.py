"""The engine: priming, close reaching every sink once, Done, fan-out and fan-in."""

from __future__ import annotations

from typing import Any

import pytest
from util import collect

from cobus.core import Done, Target, batch_head, batch_len, broadcast, coroutine, drain, fan_in, iter_lines


@coroutine
def closing_sink(log: list[str], name: str) -> Target:
    try:
        while True:
            log.append(f"{name}:{(yield)}")
    finally:
        log.append(f"{name}:closed")


@coroutine
def stop_after(target: Target, n: int) -> Target:
    try:
        for _ in range(n):
            target.send((yield))
    finally:
        target.close()
    raise Done


def test_broadcast_closes_each_branch_once() -> None:
    log: list[str] = []
    b = broadcast([closing_sink(log, "a"), closing_sink(log, "b")])
    b.send(1)
    b.close()
    b.close()
    assert log == ["a:1", "b:1", "a:closed", "b:closed"]


def test_done_drops_only_that_branch() -> None:
    log: list[str] = []
    b = broadcast([stop_after(closing_sink(log, "a"), 1), closing_sink(log, "b")])
    b.send(1)
    b.send(2)
    b.close()
    assert log == ["a:1", "a:closed", "b:1", "b:2", "b:closed"]


def test_broadcast_is_done_when_every_branch_is() -> None:
    log: list[str] = []
    b = broadcast([stop_after(closing_sink(log, "a"), 1)])
    with pytest.raises(Done):
        b.send(1)


def test_fan_in_closes_the_shared_target_after_the_last_inlet() -> None:
    log: list[str] = []
    one, two = fan_in(closing_sink(log, "s"), 2)
    one.send(1)
    one.close()
    one.close()  # counted once
    two.send(2)
    assert log == ["s:1", "s:2"]
    two.close()
    assert log[-1] == "s:closed"


def test_fan_in_after_done_raises_done_for_every_inlet() -> None:
    log: list[str] = []
    one, two = fan_in(stop_after(closing_sink(log, "s"), 1), 2)
    with pytest.raises(Done):
        one.send(1)
    with pytest.raises(Done):
        two.send(2)


def test_drain_stops_at_done() -> None:
    out: list[Any] = []
    drain(iter([[1], [2], [3]]), stop_after(collect(out), 2))
    assert out == [[1], [2]]


def test_batch_helpers_count_lines_and_items() -> None:
    assert batch_len(b"a\nb\n") == 2
    assert batch_len([{}, {}]) == 2
    assert batch_head(b"a\nb\nc\n", 2) == b"a\nb\n"
    assert batch_head(b"a\n", 5) == b"a\n"
    assert batch_head([1, 2, 3], 2) == [1, 2]


def test_iter_lines_splits_at_lf_only() -> None:
    assert iter_lines(b"a\r\nb\rc\n") == [b"a\r\n", b"b\rc\n"]
    assert iter_lines(b"a\nb\n") == [b"a\n", b"b\n"]
