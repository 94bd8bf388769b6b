"""The front door of the ``cobus`` command: a plain ``cobus run PIPELINE`` without click.

Shell users run small pipelines in loops, so start-up counts, and loading
click is a good part of it. :func:`main` reads the command line by hand only
in the plain case: ``run``, then the pipeline's words and the flags ``-q``,
``--quiet``, ``--stats`` and ``--debug`` in any order. Anything else (no
words, ``--help``, ``--``, another command, any other word starting with
``-``, a shell-completion request) goes to click (:mod:`cobus.cli`) with the
command line untouched, so every message and exit code is click's own.

Discussion: why the fast path cannot drift from click. It calls the very
function the click command calls (:func:`cobus.command.run_command`) with
the values click would have parsed: click gives ``-q``/``--quiet``,
``--stats`` and ``--debug`` as flags anywhere among the arguments and every
other word not starting with ``-`` to ``PIPELINE`` in order, and it ends a
standalone command that returned with status 0. ``tests/test_entry.py`` holds
both paths to the same output and status, and ``tests/test_startup.py``
checks that click is not loaded for ``cat | head | print``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, NoReturn

__all__ = ["PlainRun", "main", "plain_run"]

#: The flags of ``cobus run`` and the parameter each one sets.
_FLAGS = {"-q": "quiet", "--quiet": "quiet", "--stats": "stats", "--debug": "debug"}


class PlainRun(NamedTuple):
    """A ``cobus run`` command line as click would parse it."""

    pipeline: tuple[str, ...]
    quiet: bool = False
    stats: bool = False
    debug: bool = False


def plain_run(args: Sequence[str], environ: Mapping[str, str]) -> PlainRun | None:
    """``args`` (the words after the program name) as a plain run; None for anything else."""
    if not args or args[0] != "run" or any(k.startswith("_") and k.endswith("_COMPLETE") for k in environ):
        return None
    words: list[str] = []
    flags = dict.fromkeys(_FLAGS.values(), False)
    for arg in args[1:]:
        if arg.startswith("-"):
            if arg not in _FLAGS:
                return None  # --help, --, -qd, a typo ...: click says what it means
            flags[_FLAGS[arg]] = True
        else:
            words.append(arg)
    if not words:
        return None  # click reports the missing PIPELINE
    return PlainRun(tuple(words), **flags)


def main(**click_args: Any) -> NoReturn:
    """The ``cobus`` command (``click_args`` go to click's ``main`` when it takes over)."""
    plain = plain_run(sys.argv[1:], os.environ)
    if plain is None:
        from .cli import main as click_main

        click_main(**click_args)
        raise SystemExit(0)  # pragma: no cover - click's standalone main always exits
    from .command import run_command, standard_streams

    standard_streams()
    run_command(plain.pipeline, quiet=plain.quiet, stats=plain.stats, debug=plain.debug)
    sys.exit(0)  # as click ends a command that returned
