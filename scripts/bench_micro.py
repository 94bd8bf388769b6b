"""The classic coroutine micro-benchmark, and cobus's own cost per line (for bench.py).

Sending a line into a generator coroutine vs calling a method on an object,
per line, as in the classic course; then the same lines pushed through
cobus's grep stage as 1 MiB batches, which is what amortises the send.
Run by ``bench.py`` in a child process (so the lines held in memory do not
count in the bench's own peak RSS): ``bench_micro.py N REPEATS`` prints JSON.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from itertools import cycle, islice, repeat
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_LOG = ROOT / "samples" / "access.log"


class _GrepHandler:
    """The classic object version: a method call per line."""

    def __init__(self, pattern: str, target: _NullHandler) -> None:
        self.pattern = pattern
        self.target = target

    def send(self, line: str) -> None:
        if self.pattern in line:
            self.target.send(line)


class _NullHandler:
    def send(self, line: str) -> None:
        pass


def _primed(gen: Generator[None, Any, None]) -> Generator[None, Any, None]:
    next(gen)
    return gen


def _grep_coroutine(pattern: Any, target: Generator[None, Any, None]) -> Generator[None, Any, None]:
    """The classic coroutine version: a send per line."""
    while True:
        line = yield
        if pattern in line:
            target.send(line)


def _null_coroutine() -> Generator[None, Any, None]:
    while True:
        yield


def _per_item_ns(work: Callable[[], None], items: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) / items * 1e9


def _line_blocks(lines: Sequence[bytes], block_size: int = 1 << 20) -> list[bytes]:
    """Lines cut into blocks of whole lines of about ``block_size`` (as ``cat`` sends them)."""
    blocks: list[bytes] = []
    part: list[bytes] = []
    size = 0
    for line in lines:
        part.append(line)
        size += len(line)
        if size >= block_size:
            blocks.append(b"".join(part))
            part, size = [], 0
    if part:
        blocks.append(b"".join(part))
    return blocks


def _cobus_grep_ns(blocks: Sequence[bytes], items: int, repeats: int) -> float:
    """Per-line cost of cobus's own grep stage, fed batches in-process."""
    import cobus  # the public API: the registry builds the stage, as the pipeline builder does

    counted = [0]

    @cobus.coroutine
    def count_lines() -> Generator[None, Any, None]:
        while True:
            block = yield
            counted[0] += block.count(b"\n")

    factory = cobus.registry.lookup("grep", source=False).factory

    def work() -> None:
        stage = factory(count_lines(), pattern="python")
        try:
            for block in blocks:
                stage.send(block)
        except cobus.Done:
            pass
        finally:
            stage.close()

    return _per_item_ns(work, items, repeats)


def micro_measurements(n: int, repeats: int) -> tuple[dict[str, float], list[str]]:
    """ns per line for each way of pushing ``n`` lines; runs in its own process."""
    line = "python is nice"
    obj = _GrepHandler("python", _NullHandler())
    co = _primed(_grep_coroutine("python", _primed(_null_coroutine())))
    measured = {
        "method call (object)": _per_item_ns(lambda: _send_each(obj.send, repeat(line, n)), n, repeats),
        "coroutine send": _per_item_ns(lambda: _send_each(co.send, repeat(line, n)), n, repeats),
    }
    # The same chain over real log lines (bytes), to compare with cobus on the same data.
    log_lines = list(islice(cycle(SAMPLE_LOG.read_bytes().splitlines(keepends=True)), n))
    co_log = _primed(_grep_coroutine(b"python", _primed(_null_coroutine())))
    measured["coroutine send, log lines"] = _per_item_ns(
        lambda: _send_each(co_log.send, log_lines), n, repeats
    )
    notes = []
    try:
        sys.path.insert(0, str(ROOT))  # the working tree's cobus, as `python -m cobus` from ROOT
        measured["cobus grep, log lines"] = _cobus_grep_ns(_line_blocks(log_lines), n, repeats)
        every = _line_blocks([line.encode() + b"\n"] * n)
        measured["cobus grep, every line hits"] = _cobus_grep_ns(every, n, repeats)
    except Exception as exc:  # cobus not importable, or not built far enough yet
        notes.append(f"cobus in-process: skipped ({type(exc).__name__}: {exc})")
    return measured, notes


def _send_each(send: Callable[[Any], None], items: Iterable[Any]) -> None:
    for item in items:
        send(item)


def main(argv: Sequence[str]) -> int:
    n, repeats = int(argv[0]), int(argv[1])
    measured, notes = micro_measurements(n, repeats)
    print(json.dumps({"measured": measured, "notes": notes}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
