"""The ``cobus`` command: parse arguments, call the library, map errors to exit codes.

This is the only module that imports click; it and :mod:`cobus.command`
(what the commands share without click: the exit codes and the one place
that exits, ``run``'s body) are the only exit path, and :mod:`cobus.entry`
runs a plain ``cobus run PIPELINE`` through the same body without loading
click. stdout carries data; messages go to one rich Console on stderr
(coloured on a terminal, plain when piped). A reader of stdout that went away (``| head``) ends the run
quietly; a stdout that cannot be written (a full disk, a closed descriptor)
is one error naming it (:mod:`cobus.outputs`).
"""

from __future__ import annotations

import errno
import io
import os
import signal
import sys
from contextlib import AbstractContextManager
from typing import IO, TYPE_CHECKING, Any, NoReturn

import click

from . import __version__
from .command import (
    guard,
    install,
    on_sigterm,
    pipeline_text,
    report,
    run_command,
    silence_stdout,
    standard_streams,
    stderr_console,
)
from .context import binary_stdout, is_terminal
from .registry import registry

if TYPE_CHECKING:  # rich is imported when there is something to draw, not at start
    from click.shell_completion import CompletionItem
    from rich.console import Console

__all__ = ["main"]


def _guard(debug: bool) -> AbstractContextManager[None]:
    """The one place where exceptions become exit codes (click's own exit passes through)."""
    return guard(debug, passthrough=(click.exceptions.Exit,))


class _Cobus(click.Group):
    """The command group; its :meth:`main` also covers what click itself prints (--help)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        standard_streams()
        try:
            return super().main(*args, **kwargs)
        except OSError as exc:  # click's own output (--help, --version) to a bad stdout
            from .outputs import output_error

            silence_stdout()
            report(stderr_console(), output_error("stdout", exc), debug=False)
            sys.exit(1)


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
    run_command(pipeline, quiet=quiet, stats=stats, debug=debug)


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


@main.command()
@_pipeline_argument
@_debug_option
def check(pipeline: tuple[str, ...], debug: bool) -> None:
    """Validate PIPELINE without running it (parse and check every stage)."""
    from .spec import load

    with _guard(debug):
        graph = load(pipeline_text(pipeline))
        click.echo(f"ok: {len(graph.nodes)} stages, {len(graph.sources)} source(s)", file=_stdout_text())


@main.command()
@_pipeline_argument
@_debug_option
def explain(pipeline: tuple[str, ...], debug: bool) -> None:
    """Show how PIPELINE is wired: stages, kinds of data, fan-out, fusions."""
    from .explain import graph_tree
    from .spec import load

    with _guard(debug):
        tree = graph_tree(load(pipeline_text(pipeline)))
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
        previous = install(signal.SIGTERM, on_sigterm)
        try:
            status = tail(files, opts, binary_stdout(), sys.stderr)
        finally:
            install(signal.SIGTERM, previous)
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
@click.option("--reads", default=None, metavar="JSON", help="the fields read after the branch")
@click.option("--columns", is_flag=True, help="the branch may end in columns")
@click.argument("branch")
def worker(
    kind: str, out_fd: int, live: bool, partial: str | None, reads: str | None, columns: bool, branch: str
) -> None:
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
            lambda ctx: Branch(
                load_branch(branch, kind, aggregate=partial, reads=_field_list(reads), columns=columns),
                branch,
                ctx,
            ),
            out_fd=out_fd,
            live=live,
            tail=tail,
        )
    )


def _field_list(text: str | None) -> frozenset[str] | None:
    """``--reads``: a JSON list of field names (None: not given)."""
    if text is None:
        return None
    import json

    names = json.loads(text)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise click.BadParameter("a JSON list of field names", param_hint="--reads")
    return frozenset(names)


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
