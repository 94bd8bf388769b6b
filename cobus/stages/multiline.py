"""``multiline``: join continuation lines (a traceback, a stack trace) into one item; ``unjoin``.

An item of several lines leaves as ONE line of the lines block: its lines are
joined by a separator, by default the ASCII unit separator ``\\x1f``, so
``grep``, ``head``, ``count`` and ``where`` see one item, ``^`` in a grep
pattern anchors at its first line, and no byte is changed. ``unjoin`` turns
the separators back into newlines, so ``multiline --python | grep KeyError |
unjoin | print`` prints whole tracebacks as they were written. A readable
``--sep ' | '`` suits output meant to stay one line per item.

Discussion: never lost, never split. An item is sent on when the next one
starts, when it reaches ``--max-lines`` (a runaway item, cut with a notice),
at close, and, on a live run, once no line came for ``--timeout`` seconds.
A stage has no timer: the idle check runs whenever a batch arrives, and an
empty block counts, so a live source that sends ``b""`` while idle lets the
last traceback out on time. Arrival gaps are measured from the end of the
previous batch's work, so a slow stage downstream never causes a split.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from ..context import RunContext
from ..core import LINES, Done, StageGen, Target, coroutine
from ..grepengine import PatternError, Searcher
from ..registry import Opt, ParamError, stage

__all__ = ["Rule", "joiner", "multiline", "unjoin"]

SEP = "\x1f"

_INDENT = (b" "[0], b"\t"[0])


@dataclass(frozen=True)
class Rule:
    """Where items start.

    ``starts`` finds candidate first lines in a block: the zero-width
    ``^(?!continuation)`` of a preset, or (``search``) grep's engine with a
    user's pattern, which selects the lines it matches anywhere in, as
    ``grep -P`` does (see :meth:`matching`). ``exception`` is a preset's
    exception-line shape: such a candidate
    continues the item if the line before it was indented (``after_indent``)
    or was not (``not after_indent``), and, with ``needs_traceback``, only
    inside a Python traceback.
    """

    starts: re.Pattern[bytes] | None = None
    search: Searcher | None = None
    exception: re.Pattern[bytes] | None = None
    after_indent: bool = True
    needs_traceback: bool = False

    @classmethod
    def matching(cls, pattern: str, *, scan: bool = True) -> Rule:
        """Items start at the lines ``pattern`` (Python's syntax) matches; PatternError if bad.

        ``scan=False`` only checks the pattern.
        """
        return cls(search=Searcher([pattern], dialect="P", scan=scan))


_TRACEBACK = b"Traceback (most recent call last):"

PYTHON = Rule(
    starts=re.compile(
        rb"^(?![ \t]|\r?$|Traceback \(most recent call last\):|During handling of the above exception"
        rb"|The above exception was the direct cause)",
        re.MULTILINE,
    ),
    # The last line of a traceback is not indented: "KeyError: 'x'", "StopIteration".
    exception=re.compile(rb"[A-Za-z_][\w.]*(?::|\r?\n)"),
    after_indent=True,
    needs_traceback=True,
)

JAVA = Rule(
    starts=re.compile(rb"^(?![ \t]|\r?$|Caused by:)", re.MULTILINE),
    # "java.lang.IllegalStateException: boom" right under the log line that reported it.
    exception=re.compile(rb"(?:[A-Za-z_$][\w$]*\.)+[\w$]*(?:Exception|Error|Throwable)\b"),
    after_indent=False,
)


def _candidates(rule: Rule, block: bytes) -> list[int]:
    """Offsets of the lines in ``block`` that the rule's pattern says start an item."""
    if rule.search is not None:
        return [start for start, _ in rule.search.lines(block)]
    assert rule.starts is not None
    size = len(block)
    return [m.start() for m in rule.starts.finditer(block) if m.start() < size]


class _Joiner:
    """The pending item and the little state the rules need across blocks."""

    def __init__(self, rule: Rule, sep: bytes, max_lines: int) -> None:
        self.rule = rule
        self.sep = sep
        self.max_lines = max_lines
        self.pending: list[bytes] = []
        self.lines = 0
        self.cut = 0  # items cut at max_lines
        self.indented = False  # the last line seen started with a space or tab
        self.traceback = False  # a traceback is open in the pending item

    def feed(self, block: bytes) -> bytes:
        """The items this block completes, as one block (the last item stays pending)."""
        out: list[bytes] = []
        pos = 0
        for p in self._starts(block):
            if p > pos:
                self._extend(block[pos:p], out)
            if self.pending:
                out.append(self._take())
            pos = p
        self._extend(block[pos:], out)
        last = block.rfind(b"\n", 0, len(block) - 1) + 1
        self.indented = block[last] in _INDENT if last < len(block) else self.indented
        return b"".join(out)

    def flush(self) -> bytes:
        return self._take() if self.pending else b""

    def _starts(self, block: bytes) -> list[int]:
        rule = self.rule
        found = _candidates(rule, block)
        if rule.exception is None:
            return found
        starts = []
        last = 0
        for p in found:
            if rule.needs_traceback and _TRACEBACK in block[last:p]:
                self.traceback = True
            last = p
            if self._continues(block, p):
                self.traceback = False
                continue
            self.traceback = False
            starts.append(p)
        if rule.needs_traceback and _TRACEBACK in block[last:]:
            self.traceback = True
        return starts

    def _continues(self, block: bytes, p: int) -> bool:
        """Whether the exception-shaped candidate line at ``p`` belongs to the item before it."""
        rule = self.rule
        assert rule.exception is not None
        if rule.needs_traceback and not self.traceback:
            return False
        if p == 0:
            if not self.pending:
                return False
            indented = self.indented
        else:
            before = block.rfind(b"\n", 0, p - 1) + 1
            indented = block[before] in _INDENT
        return indented == rule.after_indent and rule.exception.match(block, p) is not None

    def _extend(self, part: bytes, out: list[bytes]) -> None:
        n = part.count(b"\n")
        room = self.max_lines - self.lines
        while n > room:  # a runaway item: send what fits, go on with the rest
            cut = -1
            for _ in range(room):
                cut = part.find(b"\n", cut + 1)
            self.pending.append(part[: cut + 1])
            self.lines = self.max_lines
            out.append(self._take())
            self.cut += 1
            part, n, room = part[cut + 1 :], n - room, self.max_lines
        if part:
            self.pending.append(part)
            self.lines += n

    def _take(self) -> bytes:
        item = b"".join(self.pending)
        self.pending = []
        self.lines = 0
        return item[:-1].replace(b"\n", self.sep) + b"\n"


def joiner(rule: Rule, sep: str = SEP, max_lines: int = 500) -> Callable[[bytes], bytes]:
    """A function joining blocks: ``join(block)`` -> completed items; ``join(b"")`` at EOF flushes.

    For tests and for callers without a pipeline; the stage uses the same machinery.
    """
    state = _Joiner(rule, sep.encode("utf-8", "surrogateescape"), max_lines)
    return lambda block: state.feed(block) if block else state.flush()


def _rule(start: str | None, python: bool, java: bool) -> Rule:
    if python:
        return PYTHON
    if java:
        return JAVA
    assert start is not None
    return Rule.matching(start)


def _check_sep(params: dict[str, Any]) -> None:
    sep = params.get("sep")
    if sep is not None and (not sep or "\n" in sep):
        raise ParamError("sep", "the separator must be non-empty and hold no newline")


def _check(params: dict[str, Any]) -> None:
    chosen = [k for k in ("start", "python", "java") if params.get(k)]
    if len(chosen) != 1:
        blame = chosen[1] if len(chosen) > 1 else "start"
        raise ParamError(blame, "give exactly one of --start REGEX, --python, --java")
    if params.get("start"):
        try:
            Rule.matching(params["start"], scan=False)
        except PatternError as exc:
            raise ParamError(
                "start", f"bad regular expression: {exc.message} at position {exc.position}"
            ) from None
    _check_sep(params)
    if params.get("max_lines", 1) < 1:
        raise ParamError("max_lines", "--max-lines must be 1 or more")
    if params.get("timeout", 0) < 0:
        raise ParamError("timeout", "--timeout must be 0 (off) or more seconds")


@stage(
    "multiline",
    consumes=LINES,
    produces=LINES,
    check=_check,
    examples=(
        "cat app.log | multiline --python | grep KeyError | unjoin | print",
        "follow server.log | multiline --java | grep NullPointer | count",
        'cat app.log | multiline --start "^\\d{4}-\\d\\d-\\d\\d " | head 5 | unjoin | print',
    ),
)
@coroutine
def multiline(
    target: Target,
    *,
    start: Annotated[str | None, Opt("-s", "a line matching this regex starts an item", metavar="RE")] = None,
    python: Annotated[bool, Opt("", "preset: Python tracebacks join the log line above them")] = False,
    java: Annotated[bool, Opt("", "preset: Java stack traces (at ..., Caused by:) join theirs")] = False,
    sep: Annotated[str, Opt("", "joins an item's lines (default \\x1f, undone by unjoin)")] = SEP,
    timeout: Annotated[float, Opt("", "live runs: send a pending item after this many idle seconds")] = 1.0,
    max_lines: Annotated[int, Opt("", "cut an item longer than this (with a notice)")] = 500,
    ctx: RunContext,
) -> StageGen:
    """Join continuation lines into one item: --start RE, or the --python / --java presets.

    Each item leaves as one line whose lines are joined by --sep (the
    invisible \\x1f by default: bytes are kept exactly, and `unjoin` restores
    the newlines for printing). An item is complete when the next one starts,
    at the end of input, when it reaches --max-lines, and on a live run after
    --timeout seconds without input (0: never).

    --python: a line starts an item unless it is indented, blank, a
    "Traceback (most recent call last):" / "During handling ..." / "The above
    exception ..." line, or the exception line that ends a traceback.
    --java: unless it is indented ("\\tat ...", "\\t... 3 more"), blank,
    "Caused by: ...", or an exception class line right under a log line.
    """
    state = _Joiner(_rule(start, python, java), sep.encode("utf-8", "surrogateescape"), max_lines)
    idle = timeout if ctx.live and timeout > 0 else None
    clock = ctx.clock
    last = clock()
    send = target.send
    try:
        while True:
            block: bytes = yield
            if idle is not None and state.pending and clock() - last >= idle:
                send(state.flush())
            if block:
                out = state.feed(block)
                if out:
                    send(out)
                last = clock()
    finally:
        try:
            rest = state.flush()
            if rest:
                send(rest)
        except (Done, StopIteration):
            pass  # downstream already wants no more (after head)
        finally:
            target.close()
            if state.cut:
                ctx.warn(f"multiline: {state.cut} item(s) longer than {max_lines} lines were cut")


@stage(
    "unjoin",
    consumes=LINES,
    produces=LINES,
    check=_check_sep,
    examples=("cat app.log | multiline --python | grep Error | unjoin | print",),
)
@coroutine
def unjoin(
    target: Target,
    *,
    sep: Annotated[str, Opt("", "the separator multiline joined with (default \\x1f)")] = SEP,
) -> StageGen:
    """Undo multiline: split joined items back into their original lines."""
    needle = sep.encode("utf-8", "surrogateescape")
    send = target.send
    try:
        while True:
            block: bytes = yield
            send(block.replace(needle, b"\n") if needle in block else block)
    finally:
        target.close()
