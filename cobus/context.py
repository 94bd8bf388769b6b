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
from typing import IO, TYPE_CHECKING, Any, cast

from .delivery import Delivery
from .metering import NO_TRACKER, StageStats, Stopwatch, Tracker
from .outputs import NamedOutput

if TYPE_CHECKING:  # drawn by the CLI only: the engine never loads rich
    from .progress import ProgressBoard

__all__ = ["RunContext", "binary_stdout", "is_terminal"]


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


def is_terminal(stream: Any) -> bool:
    """True when ``stream`` is a terminal; False for anything else (a pipe, a test's buffer, None)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


class RunContext:
    """Per-run services handed to stages that ask for ``ctx``.

    Every field is a keyword of the constructor (a plain class, not a
    dataclass: see :class:`cobus.registry.StageSpec` for why).
    """

    def __init__(
        self,
        *,
        stdout: IO[bytes] | None = None,
        console: Any = None,
        clock: Callable[[], float] = time.monotonic,
        live: bool = False,
        live_source: bool = False,
        quiet: bool = False,
        debug: bool = False,
        progress: ProgressBoard | None = None,
        stats: list[StageStats] | None = None,
    ) -> None:
        self.stdout: IO[bytes] = stdout if stdout is not None else binary_stdout()
        #: rich Console on stderr, or None when rich output is off.
        self.console = console
        self.clock = clock
        #: Output is read live (a terminal, or a followed source): flush every batch.
        self.live = live
        #: A source never ends by itself (follow, listen): aggregates redraw as they go.
        self.live_source = live_source
        self.quiet = quiet
        self.debug = debug
        #: Callables run after the pipeline ended, in reverse order (close files ...).
        self.cleanups: list[Callable[[], None]] = []
        #: Progress bars on stderr (None: off, as when stderr is not a terminal).
        self.progress = progress
        #: With ``--stats``: one entry per stage, filled while the pipeline runs.
        self.stats = stats
        self.stopwatch = Stopwatch()
        #: Non-empty batches that reached a sink (or grep -q's match): 0 means exit status 1.
        self.selected = 0
        #: Sources' own one-line reports (a broker consumer's counts), shown below ``--stats``.
        self.notes: list[Callable[[], str]] = []
        #: Outputs, holds and concurrency stages, for sources that confirm delivery (cobus.delivery).
        self.delivery = Delivery()
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
