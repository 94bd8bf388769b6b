"""What a running pipeline shares: output streams, the stderr console, the clock.

A factory that declares a keyword-only ``ctx`` parameter receives the
:class:`RunContext` of the run. There is no module-level state: the CLI (or a
test) makes one context per run and passes it in.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, cast

from .delivery import Delivery
from .outputs import NamedOutput
from .progress import NO_TRACKER, ProgressBoard, StageStats, Stopwatch, Tracker

__all__ = ["RunContext", "binary_stdout"]


def binary_stdout(buffer_size: int = 1 << 16) -> IO[bytes]:
    """A buffered binary stream on fd 1 that ignores PYTHONUNBUFFERED.

    ``sys.stdout.buffer`` is unbuffered when PYTHONUNBUFFERED is set, which
    turns every write into a system call; sinks flush this one per batch.
    Its write errors name it (``stdout: No space left on device``), see
    :mod:`cobus.outputs`; a closed stdout fails at the first write.
    """
    stdout = sys.stdout
    try:
        fd = stdout.fileno() if stdout is not None else 1
    except (AttributeError, OSError, io.UnsupportedOperation):
        # Not a real file (click's CliRunner): write through its buffer.
        return cast(IO[bytes], NamedOutput(stdout.buffer, "stdout", owns=False))
    try:
        stream = os.fdopen(os.dup(fd), "wb", buffering=buffer_size)
    except OSError:  # fd 1 is closed: a stream whose writes fail as they would on it
        stream = os.fdopen(os.open(os.devnull, os.O_RDONLY), "wb", buffering=buffer_size)
    return cast(IO[bytes], NamedOutput(stream, "stdout"))


@dataclass
class RunContext:
    """Per-run services handed to stages that ask for ``ctx``."""

    stdout: IO[bytes] = field(default_factory=binary_stdout)
    #: rich Console on stderr, or None when rich output is off.
    console: Any = None
    clock: Callable[[], float] = time.monotonic
    #: Output is read live (a terminal, or a followed source): flush every batch.
    live: bool = False
    #: A source never ends by itself (follow, listen): aggregates redraw as they go.
    live_source: bool = False
    quiet: bool = False
    debug: bool = False
    #: Callables run after the pipeline ended, in reverse order (close files ...).
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    #: Progress bars on stderr (None: off, as when stderr is not a terminal).
    progress: ProgressBoard | None = None
    #: With ``--stats``: one entry per stage, filled while the pipeline runs.
    stats: list[StageStats] | None = None
    stopwatch: Stopwatch = field(default_factory=Stopwatch)
    #: Non-empty batches that reached a sink (or grep -q's match): 0 means exit status 1.
    selected: int = 0
    #: Sources' own one-line reports (a broker consumer's counts), shown below ``--stats``.
    notes: list[Callable[[], str]] = field(default_factory=list)
    #: Outputs, holds and concurrency stages, for sources that confirm delivery (cobus.delivery).
    delivery: Delivery = field(default_factory=Delivery)

    def __post_init__(self) -> None:
        self.delivery.output("stdout", self._flush_stdout)

    def _flush_stdout(self) -> None:
        self.stdout.flush()  # looked up each time: a test may swap ctx.stdout

    def track(self, path: str, total: int | None) -> Tracker:
        """A progress tracker for one input file of ``total`` bytes.

        A no-op unless progress is shown and the size is known (a regular file).
        """
        if self.progress is None or total is None:
            return NO_TRACKER
        return self.progress.track(os.path.basename(path), total)

    def warn(self, message: str) -> None:
        """One line on stderr for the user (a truncated file, a skipped document); not with --quiet."""
        if self.quiet:
            return
        if self.console is not None:
            from rich.markup import escape

            self.console.print(f"[yellow]cobus:[/] {escape(message)}", highlight=False)
        else:
            print(f"cobus: {message}", file=sys.stderr, flush=True)
