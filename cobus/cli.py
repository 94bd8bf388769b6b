"""The ``cobus`` command: parse arguments, call the library, map errors to exit codes.

This is the only module that imports click and the only place that exits.
stdout carries data; messages go to one rich Console on stderr (coloured on a
terminal, plain when piped). Exit codes: 0 ok, 1 a run-time error
(:class:`~cobus.errors.CobusError`) or, as grep, a run where nothing reached
a sink, 2 bad pipeline text or usage, 70 a bug, 130 Ctrl-C, 143 SIGTERM,
129 SIGHUP. A reader of stdout that went away (``| head``) ends the run
quietly; a stdout that cannot be written (a full disk, a closed descriptor)
is one error naming it (:mod:`cobus.outputs`).
"""

from __future__ import annotations

import errno
import io
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, NoReturn

import click

from . import __version__
from .context import RunContext, binary_stdout, is_terminal
from .errors import CobusError, SpecError
from .registry import registry

if TYPE_CHECKING:  # rich is imported when there is something to draw, not at start
    from click.shell_completion import CompletionItem
    from rich.console import Console

__all__ = ["main"]

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


def _on_sigterm(signum: int, frame: Any) -> NoReturn:
    raise HungUp if signum == signal.SIGHUP else Terminated


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _stderr_is_terminal() -> bool:
    return is_terminal(sys.stderr)


def _report(console: Console, exc: BaseException, *, debug: bool) -> int:
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


def _silence_stdout() -> None:
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
def _guard(debug: bool) -> Iterator[None]:
    """The one place where exceptions become exit codes."""
    code = 0
    try:
        yield
    except BrokenPipeError:
        _silence_stdout()
    except KeyboardInterrupt:
        code = EXIT_SIGINT
    except Terminated as exc:
        code = exc.exit_code
    except click.exceptions.Exit:
        raise
    except Exception as exc:
        if _caused_by_closed_stdout(exc):
            _silence_stdout()
        else:
            code = _report(_stderr(), exc, debug=debug)
    if code:
        sys.exit(code)


def _pipeline_arg(words: tuple[str, ...]) -> str:
    return " ".join(words)


class _Cobus(click.Group):
    """The command group; its :meth:`main` also covers what click itself prints (--help)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        _standard_streams()
        try:
            return super().main(*args, **kwargs)
        except OSError as exc:  # click's own output (--help, --version) to a bad stdout
            from .outputs import output_error

            _silence_stdout()
            _report(_stderr(), output_error("stdout", exc), debug=False)
            sys.exit(1)


def _standard_streams() -> None:
    """A closed stdin, stdout or stderr stays closed for cobus but is never reused by a file.

    Python leaves ``sys.stdout`` None when fd 1 was closed at start; it gets a
    stream on the reserved descriptor, so the first write fails and names stdout.
    """
    from .outputs import reserve_std_descriptors

    if 1 in reserve_std_descriptors() and sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)  # lives as long as the process


def _stdout_text() -> IO[str]:
    """Text on stdout whose write errors name it (``stdout: No space left on device``)."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    return io.TextIOWrapper(binary_stdout(), encoding=encoding, errors="replace", write_through=True)


@click.group(cls=_Cobus, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cobus")
def main() -> None:
    """cobus: pipelines of coroutines over logs and XML streams.

    \b
    cobus run 'cat access-log | grep python | print'
    cobus run 'xml feed.xml | records bus | where route=22 | csv id,route'
    cobus run pipeline.toml
    cobus stages            every stage with its help
    """


_debug_option = click.option("--debug", is_flag=True, help="Show tracebacks for errors.")


def _complete_pipeline(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Complete the stage name being typed after ``|`` or ``[`` (or at the start)."""
    cut = max(incomplete.rfind("|"), incomplete.rfind("["))
    word = incomplete[cut + 1 :].lstrip()
    if " " in word:
        return []  # the stage's arguments: let the shell complete file names
    prefix = incomplete[: len(incomplete) - len(word)]
    names = registry.load().names()
    return [_item(prefix + name) for name in names if name.startswith(word)]


def _item(value: str) -> CompletionItem:
    from click.shell_completion import CompletionItem  # only when completing: not at every start

    return CompletionItem(value)


_pipeline_argument = click.argument("pipeline", nargs=-1, required=True, shell_complete=_complete_pipeline)


@main.command()
@_pipeline_argument
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or notices on stderr.")
@click.option(
    "--stats",
    is_flag=True,
    help="Show items and time per stage on stderr (live on a terminal, else at the end).",
)
@_debug_option
def run(pipeline: tuple[str, ...], quiet: bool, stats: bool, debug: bool) -> None:
    """Run PIPELINE: inline text such as 'cat log | grep x | print', or a .toml file.

    Exit status, as grep's: 0 when something reached a sink, 1 when nothing
    did (or for a run-time error), 2 for bad pipeline text, 130 Ctrl-C, 143 SIGTERM.
    """
    from .runner import run as run_pipeline
    from .spec import load

    with _guard(debug):
        graph = load(_pipeline_arg(pipeline))
        # Without a terminal on stderr, notices are plain lines and rich is not loaded.
        terminal = _stderr_is_terminal()
        console = _stderr() if terminal or stats else None
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
        previous = _install(signal.SIGTERM, _on_sigterm)
        previous_hup = _install(signal.SIGHUP, _on_sigterm)
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
            _install(signal.SIGTERM, previous)
            _install(signal.SIGHUP, previous_hup)
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


def _stdout_console() -> Console:
    """A console for stdout; piped, lines are never cut at 80 columns."""
    from rich.console import Console

    out = _stdout_text()
    console = Console(file=out, highlight=False)
    if not console.is_terminal:
        console = Console(file=out, highlight=False, width=100_000)
    # rich exits with status 1 when the reader goes away; here that is the quiet end of | head.
    console.on_broken_pipe = _broken_pipe  # type: ignore[method-assign]
    return console


def _broken_pipe() -> NoReturn:
    raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def _install(signum: int, handler: Any) -> Any:
    try:
        return signal.signal(signum, handler)
    except ValueError:  # not the main thread (a test runner)
        return None


@main.command()
@_pipeline_argument
@_debug_option
def check(pipeline: tuple[str, ...], debug: bool) -> None:
    """Validate PIPELINE without running it (parse and check every stage)."""
    from .spec import load

    with _guard(debug):
        graph = load(_pipeline_arg(pipeline))
        click.echo(f"ok: {len(graph.nodes)} stages, {len(graph.sources)} source(s)", file=_stdout_text())


@main.command()
@_pipeline_argument
@_debug_option
def explain(pipeline: tuple[str, ...], debug: bool) -> None:
    """Show how PIPELINE is wired: stages, kinds of data, fan-out, fusions."""
    from .explain import graph_tree
    from .spec import load

    with _guard(debug):
        tree = graph_tree(load(_pipeline_arg(pipeline)))
        _stdout_console().print(tree)


@main.command()
@click.argument(
    "name",
    required=False,
    shell_complete=lambda ctx, param, incomplete: [
        _item(n) for n in registry.load().names() if n.startswith(incomplete)
    ],
)
def stages(name: str | None) -> None:
    """List every stage, or show the full help of stage NAME."""
    from .explain import stage_help, stages_table

    with _guard(False):
        console = _stdout_console()
        if name is None:
            console.print(stages_table(registry.load()))
        else:
            for renderable in stage_help(registry.load(), name):
                console.print(renderable)


@main.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL (stage names included).

    \b
    bash:  eval "$(cobus completion bash)"     (in ~/.bashrc)
    zsh:   eval "$(cobus completion zsh)"      (in ~/.zshrc)
    fish:  cobus completion fish > ~/.config/fish/completions/cobus.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # the choice above lists only known shells
    with _guard(False):
        click.echo(cls(main, {}, "cobus", "_COBUS_COMPLETE").source(), file=_stdout_text())


class _TailCommand(click.Command):
    """Reads GNU tail's obsolete ``tail -20 FILE`` too."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from .tail import modern_args

        return super().parse_args(ctx, modern_args(args))


@main.command(name="tail", cls=_TailCommand, context_settings={"help_option_names": ["--help"]})
@click.argument("files", nargs=-1, metavar="[FILE]...")
@click.option("-n", "--lines", metavar="N", help="The last N lines (+K: from line K on); 10 by default.")
@click.option("-c", "--bytes", "count_bytes", metavar="N", help="The last N bytes (+K: from byte K on).")
@click.option("-f", "--follow", "by_descriptor", is_flag=True, help="Then print what the files grow by.")
@click.option("-F", "by_name", is_flag=True, help="Follow by name, with retry (rotation, truncation).")
@click.option("-q", "--quiet", "--silent", is_flag=True, help="Never print ==> FILE <== headers.")
@click.option("-v", "--verbose", is_flag=True, help="Always print ==> FILE <== headers.")
@click.option(
    "-s", "--sleep-interval", "interval", type=float, default=1.0, metavar="S", help="Seconds between looks."
)
@click.option("--pid", type=int, metavar="PID", help="With -f/-F: end once process PID has ended.")
@click.option("-z", "--zero-terminated", "zero", is_flag=True, help="Lines end with NUL, not newline.")
def tail_command(files: tuple[str, ...], by_descriptor: bool, by_name: bool, **given: Any) -> None:
    """Print the last 10 lines of each FILE (- or none: stdin), as GNU tail does; -f/-F to follow."""
    from .tail import EXIT_USAGE, UsageError, options, tail

    with _guard(False):
        try:
            opts = options(follow="name" if by_name else "descriptor" if by_descriptor else "", **given)
        except UsageError as exc:
            click.echo(f"cobus tail: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        previous = _install(signal.SIGTERM, _on_sigterm)
        try:
            status = tail(files, opts, binary_stdout(), sys.stderr)
        finally:
            _install(signal.SIGTERM, previous)
        sys.exit(status)


def _branch_kind(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from .core import EVENTS, LINES, RECORDS
    from .registry import ANY

    kinds = (LINES, RECORDS, EVENTS, ANY)
    if value not in kinds:
        raise click.BadParameter(f"invalid choice: {value!r} (choose from {', '.join(kinds)})")
    return value


@main.command(hidden=True)
@click.option("--kind", default="any", callback=_branch_kind, help="what the branch reads")
@click.option("--out-fd", type=int, default=1, metavar="FD", help="where output frames go")
@click.option("--live", is_flag=True, help="flush stdout per batch")
@click.option("--partial", default=None, metavar="STAGE", help="an aggregate run as partials")
@click.argument("branch")
def worker(kind: str, out_fd: int, live: bool, partial: str | None, branch: str) -> None:
    """Run a [ branch ] for a subprocess/parallel stage (started by cobus itself)."""
    from .concurrency import die_with_parent, run_worker
    from .spec import load_branch, load_step
    from .spec.build import Branch
    from .steps import AGGREGATE

    if not die_with_parent():
        os._exit(1)  # the parent died before we asked: nobody is left to serve
    tail = None if partial is None else lambda: load_step(partial, AGGREGATE).args["partial"]
    sys.exit(
        run_worker(
            lambda ctx: Branch(load_branch(branch, kind, aggregate=partial), branch, ctx),
            out_fd=out_fd,
            live=live,
            tail=tail,
        )
    )


@main.command("grep", context_settings={"help_option_names": ["--help"]})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("-e", "--regexp", "regexps", multiple=True, help="A pattern (repeat for several).")
@click.option("-f", "--file", "pattern_files", multiple=True, help="Read patterns from FILE.")
@click.option("-E", "--extended-regexp", "dialect", flag_value="E", help="Extended regular expressions.")
@click.option("-F", "--fixed-strings", "dialect", flag_value="F", help="Fixed strings.")
@click.option("-G", "--basic-regexp", "dialect", flag_value="G", default=True, help="Basic (the default).")
@click.option("-P", "--perl-regexp", "dialect", flag_value="P", help="Perl-style (Python re syntax).")
@click.option("-i", "--ignore-case", is_flag=True)
@click.option("-v", "--invert-match", is_flag=True)
@click.option("-w", "--word-regexp", is_flag=True)
@click.option("-x", "--line-regexp", is_flag=True)
@click.option("-c", "--count", is_flag=True)
@click.option("-n", "--line-number", is_flag=True)
@click.option("-o", "--only-matching", is_flag=True)
@click.option("-m", "--max-count", type=int, default=None)
@click.option("-A", "--after-context", type=int, default=0)
@click.option("-B", "--before-context", type=int, default=0)
@click.option("-C", "--context", type=int, default=0)
@click.option("-q", "--quiet", "--silent", is_flag=True)
@click.option("-H", "--with-filename", "with_filename", flag_value=True, default=None)
@click.option("-h", "--no-filename", "with_filename", flag_value=False)
@click.option("-l", "--files-with-matches", is_flag=True)
@click.option("-L", "--files-without-match", is_flag=True)
@click.option("-s", "--no-messages", is_flag=True)
@click.option("-r", "--recursive", is_flag=True)
@click.option("-a", "--text", is_flag=True)
@click.option("--color", "--colour", type=click.Choice(["auto", "always", "never"]), default="auto")
def grep(
    args: tuple[str, ...], regexps: tuple[str, ...], pattern_files: tuple[str, ...], **flags: Any
) -> None:
    """Search FILEs for PATTERN, as GNU grep does: cobus grep [OPTIONS] PATTERN [FILE...]."""
    from .grepcmd import grep_command

    with _guard(False):
        tty = is_terminal(sys.stdout)
        sys.exit(grep_command(list(args), regexps, pattern_files, flags, tty, binary_stdout(), sys.stderr))
