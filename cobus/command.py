"""What the cobus commands share without click: exit codes, signals, and ``cobus run``'s body.

The one place where exceptions become exit codes (:func:`guard`) and the
body of ``cobus run`` live here, so that :mod:`cobus.cli` (the click
commands) and :mod:`cobus.entry` (the click-free front door for a plain
``cobus run PIPELINE``) run the very same code. Nothing here imports click
or rich at import time; rich is loaded when there is something to draw.

Exit codes: 0 ok, 1 a run-time error (:class:`~cobus.errors.CobusError`) or,
as grep, a run where nothing reached a sink, 2 bad pipeline text or usage,
70 a bug, 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from .context import RunContext, binary_stdout, is_terminal
from .errors import CobusError, SpecError

if TYPE_CHECKING:  # rich is imported when there is something to draw, not at start
    from rich.console import Console

__all__ = [
    "EXIT_INTERNAL",
    "EXIT_NOTHING",
    "EXIT_SIGHUP",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "HungUp",
    "Terminated",
    "guard",
    "install",
    "on_sigterm",
    "pipeline_text",
    "report",
    "run_command",
    "silence_stdout",
    "standard_streams",
    "stderr_console",
]

EXIT_NOTHING = 1
EXIT_INTERNAL = 70
EXIT_SIGINT = 130
EXIT_SIGTERM = 143
EXIT_SIGHUP = 129


class Terminated(BaseException):
    """SIGTERM (or SIGHUP), raised where the main thread is so that finally blocks run."""

    exit_code = EXIT_SIGTERM


class HungUp(Terminated):
    """SIGHUP: the terminal went away; stop as for SIGTERM (checkpoint, flush)."""

    exit_code = EXIT_SIGHUP


def on_sigterm(signum: int, frame: Any) -> NoReturn:
    """The handler for SIGTERM and SIGHUP: unwind the main thread."""
    raise HungUp if signum == signal.SIGHUP else Terminated


def install(signum: int, handler: Any) -> Any:
    """Set a signal handler; the previous one (None when not on the main thread)."""
    try:
        return signal.signal(signum, handler)
    except ValueError:  # not the main thread (a test runner)
        return None


def stderr_console() -> Console:
    """The one rich Console on stderr (coloured on a terminal, plain when piped)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def report(console: Console, exc: BaseException, *, debug: bool) -> int:
    """Print one line for an error (and a caret under bad pipeline text); the exit code."""
    from rich.markup import escape

    from .broker import redact  # no password of a URL in the pipeline text is ever shown

    if isinstance(exc, CobusError):
        console.print(f"[bold red]cobus: error:[/] {escape(redact(str(exc)))}")
        if isinstance(exc, SpecError):
            for line in exc.caret_lines():
                console.print(escape(redact(line)), style="red" if line.strip(" ^") == "" else None)
        if debug:
            console.print(escape(_traceback(exc)))
        return exc.exit_code
    what = f"{type(exc).__name__}: {redact(str(exc))}"
    console.print(f"[bold red]cobus: internal error:[/] {escape(what)}")
    if debug:
        console.print(escape(_traceback(exc)))
    else:
        console.print("  (run again with --debug for the traceback, and please report it)")
    return EXIT_INTERNAL


def _traceback(exc: BaseException) -> str:
    import traceback  # only with --debug: not at every start

    return "".join(traceback.format_exception(exc))


def silence_stdout() -> None:
    """After EPIPE: point fd 1 at /dev/null so no flush at exit complains."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:  # pragma: no cover - nothing better to do
        pass


def _caused_by_closed_stdout(exc: BaseException | None) -> bool:
    """A reader of stdout went away (``| head``), perhaps wrapped by the kernel."""
    while exc is not None:
        if isinstance(exc, BrokenPipeError):
            return True
        exc = exc.__cause__
    return False


@contextmanager
def guard(debug: bool, passthrough: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """The one place where exceptions become exit codes; ``passthrough`` ones propagate."""
    code = 0
    try:
        yield
    except BrokenPipeError:
        silence_stdout()
    except KeyboardInterrupt:
        code = EXIT_SIGINT
    except Terminated as exc:
        code = exc.exit_code
    except passthrough:
        raise
    except Exception as exc:
        if _caused_by_closed_stdout(exc):
            silence_stdout()
        else:
            code = report(stderr_console(), exc, debug=debug)
    if code:
        sys.exit(code)


def pipeline_text(words: tuple[str, ...]) -> str:
    """The pipeline given as several words (unquoted on the command line) is one text."""
    return " ".join(words)


def standard_streams() -> None:
    """A closed stdin, stdout or stderr stays closed for cobus but is never reused by a file.

    Python leaves ``sys.stdout`` None when fd 1 was closed at start; it gets a
    stream on the reserved descriptor, so the first write fails and names stdout.
    """
    from .outputs import reserve_std_descriptors

    if 1 in reserve_std_descriptors() and sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)  # lives as long as the process


def run_command(pipeline: tuple[str, ...], *, quiet: bool, stats: bool, debug: bool) -> None:
    """``cobus run PIPELINE``: load, run with progress or stats on stderr, exit 1 if nothing was selected."""
    from .runner import run as run_pipeline
    from .spec import load

    with guard(debug):
        graph = load(pipeline_text(pipeline))
        # Without a terminal on stderr, notices are plain lines and rich is not loaded.
        terminal = is_terminal(sys.stderr)
        console = stderr_console() if terminal or stats else None
        live_source = any(n.spec.live for n in graph.sources)
        ctx = RunContext(
            stdout=binary_stdout(),
            console=console if terminal and not quiet else None,
            live=is_terminal(sys.stdout) or live_source,
            live_source=live_source,
            quiet=quiet,
            debug=debug,
            # A live stats table takes the place of the progress bars (one live display at a time).
            progress=_progress_board(console)
            if console is not None and terminal and not (quiet or stats)
            else None,
            stats=[] if stats else None,
        )
        if ctx.progress is not None:
            ctx.progress.share_terminal_with(ctx.stdout)
        previous = install(signal.SIGTERM, on_sigterm)
        previous_hup = install(signal.SIGHUP, on_sigterm)
        started = time.perf_counter()
        live_stats = None
        if ctx.stats is not None and console is not None and terminal and not quiet:
            from .progress import LiveStats

            live_stats = LiveStats(console, ctx.stats, ctx.stopwatch, started, ctx.notes)
            live_stats.share_terminal_with(ctx.stdout)
        try:
            run_pipeline(graph, ctx)
        finally:
            if live_stats is not None:
                live_stats.stop()
            install(signal.SIGTERM, previous)
            install(signal.SIGHUP, previous_hup)
            if ctx.progress is not None:
                ctx.progress.close()
            if ctx.stats is not None and console is not None:
                from .progress import stats_table

                console.print(stats_table(ctx.stats, time.perf_counter() - started, ctx.stopwatch, ctx.notes))
        if not ctx.selected:  # grep's rule: nothing reached a sink
            sys.exit(EXIT_NOTHING)


def _progress_board(console: Console) -> Any:
    from .progress import ProgressBoard

    # COBUS_PROGRESS_DELAY: seconds before a bar appears (tests set 0).
    return ProgressBoard(console, delay=float(os.environ.get("COBUS_PROGRESS_DELAY", "1.0")))
