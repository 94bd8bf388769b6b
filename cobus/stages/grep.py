"""``grep``: keep (or with ``-v`` drop) the lines that match, as GNU grep would.

The pattern speaks grep's dialects (basic by default, ``-E``, ``-F``, ``-P``;
see :mod:`cobus.grepsyntax`), matches characters of UTF-8 text, and is
compiled once into a :class:`~cobus.grepengine.Searcher` that scans whole
blocks. What is printed per block (``-n``, ``-o``, context, colour, ``-m``)
is :class:`~cobus.grepoutput.Selection`'s business, shared with ``cobus grep``.

Discussion: flags in a stream. ``-n`` numbers the lines of the stream the
stage sees, ``-c`` replaces the lines by one line with their count when the
stream ends (a count of 0 reaches the sink but, as in grep, selects nothing:
alone, it makes the run exit 1), ``-q`` passes nothing on but counts as a
selection for the exit status, and ``-m NUM`` stops the stage (and, through ``Done``, the source)
once NUM lines and their trailing context are through.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ..context import RunContext
from ..core import LINES, Done, StageGen, Target, Unselected, coroutine
from ..grepengine import PatternError, Searcher, patterns_of
from ..grepoutput import Format, Selection
from ..registry import Arg, Opt, ParamError, stage

__all__ = ["grep"]

_DIALECTS = (("fixed", "F"), ("perl", "P"), ("extended", "E"), ("basic", "G"))


def dialect_of(params: dict[str, Any]) -> str:
    """G, E, F or P from the dialect flags (the last of grep's rules: -F over -P over -E)."""
    return next((letter for name, letter in _DIALECTS if params.get(name)), "G")


def searcher_for(params: dict[str, Any], *, scan: bool = True) -> Searcher:
    """The stage's Searcher; ``scan=False`` only checks the patterns (no Hyperscan database)."""
    return Searcher(
        patterns_of(params.get("pattern"), params.get("regexp", ()), params.get("file", ())),
        dialect=dialect_of(params),
        ignore_case=bool(params.get("ignore_case")),
        word=bool(params.get("word")),
        line=bool(params.get("line")),
        scan=scan,
    )


def _check(params: dict[str, Any]) -> None:
    if params.get("pattern") is None and not params.get("regexp") and not params.get("file"):
        raise ParamError("pattern", "needs PATTERN (or -e PATTERN, or -f FILE)")
    try:
        searcher_for(params, scan=False)
    except PatternError as exc:
        raise ParamError(
            "pattern", f"bad regular expression: {exc.message} at position {exc.position}"
        ) from None
    except OSError as exc:
        raise ParamError("file", f"{exc.filename}: {exc.strerror}") from None


@stage(
    "grep",
    consumes=LINES,
    produces=LINES,
    check=_check,
    examples=(
        "cat access-log | grep python | print",
        'cat access-log | grep -v " 404 " | count',
        'cat app.log | grep -i -E "timeout|refused" | print',
        "cat access-log | grep 'python\\|swig' | print",
        "cat app.log | grep -n -C 2 Traceback | print",
    ),
)
@coroutine
def grep(
    target: Target,
    *,
    pattern: Annotated[
        str | None, Arg("basic regular expression, as GNU grep's (-E, -F, -P: other dialects)")
    ] = None,
    regexp: Annotated[tuple[str, ...], Opt("-e", "a pattern (repeat for several)", metavar="PATTERN")] = (),
    file: Annotated[tuple[str, ...], Opt("-f", "read patterns from FILE, one a line", metavar="FILE")] = (),
    extended: Annotated[bool, Opt("-E", "extended regular expressions: + ? | ( ) { } are operators")] = False,
    fixed: Annotated[bool, Opt("-F", "fixed strings, not regular expressions")] = False,
    basic: Annotated[bool, Opt("-G", "basic regular expressions (the default)")] = False,
    perl: Annotated[bool, Opt("-P", "Perl-style expressions, in Python's re syntax")] = False,
    ignore_case: Annotated[bool, Opt("-i", "ignore case (non-ASCII letters too)")] = False,
    invert: Annotated[bool, Opt("-v", "keep the lines that do NOT match")] = False,
    word: Annotated[bool, Opt("-w", "match whole words only")] = False,
    line: Annotated[bool, Opt("-x", "match whole lines only")] = False,
    count: Annotated[bool, Opt("-c", "pass on one line: the number of selected lines")] = False,
    line_number: Annotated[bool, Opt("-n", "prefix each line with its number in the stream")] = False,
    only_matching: Annotated[bool, Opt("-o", "pass on each match alone on its line")] = False,
    max_count: Annotated[int | None, Opt("-m", "stop after NUM selected lines", metavar="NUM")] = None,
    after_context: Annotated[int, Opt("-A", "also NUM lines after each match", metavar="NUM")] = 0,
    before_context: Annotated[int, Opt("-B", "also NUM lines before each match", metavar="NUM")] = 0,
    context: Annotated[int, Opt("-C", "also NUM lines around each match", metavar="NUM")] = 0,
    quiet: Annotated[bool, Opt("-q", "pass nothing on; stop at the first match")] = False,
    color: Annotated[
        Literal["auto", "always", "never"],
        Opt("", "highlight matches: auto (on a terminal), always, never", metavar="WHEN"),
    ] = "never",
    ctx: RunContext | None = None,
) -> StageGen:
    """Keep the lines matching a pattern, with GNU grep's syntax and flags (-v: the others).

    The pattern is a basic regular expression by default (``\\|``, ``\\(..\\)``,
    ``\\{m,n\\}``, ``\\+``, ``\\?``, back-references; ``+ ? | ( ) {`` are
    literal), an extended one with -E, a fixed string with -F, Python's
    syntax with -P. POSIX classes such as ``[[:digit:]]`` work in brackets.
    UTF-8 text is matched by characters (``.``, -i and -w know ``é``); bytes
    that are not UTF-8 pass through untouched. Matching runs in linear time
    (Hyperscan) for every pattern except -P and back-references.
    """
    params = {
        "pattern": pattern, "regexp": regexp, "file": file, "extended": extended, "fixed": fixed,
        "perl": perl, "ignore_case": ignore_case, "word": word, "line": line,
    }  # fmt: skip
    fmt = Format(
        invert=invert,
        number=line_number,
        only=only_matching,
        max_count=max_count,
        before=before_context or context,
        after=after_context or context,
        color=color == "always" or (color == "auto" and ctx is not None and ctx.live and ctx.stdout.isatty()),
    )
    selection = Selection(searcher_for(params), fmt)
    emit = not (count or quiet)
    send = target.send
    try:
        while not selection.done:
            block: bytes = yield
            if not block:  # a tick from an idle live source: pass it on
                send(block)
                continue
            out = selection.feed(block, emit=emit)
            if quiet and selection.selected:
                if ctx is not None:
                    ctx.selected += 1
                raise Done
            if out:
                send(out)
        raise Done
    finally:
        if count:
            try:
                n = selection.selected
                send(b"%d\n" % n if n else Unselected(b"0\n"))  # 0: exit status 1, as grep -c's
            except Done:
                pass
        target.close()
