"""What grep prints for the blocks of one stream: lines, counts, numbers, context, colour.

A :class:`Selection` takes the blocks of one input in order and returns, per
block, the bytes grep would print for it, keeping what must outlive a block
(line numbers, ``-B`` lines not yet printed, ``-A`` lines still owed, the
count for ``-m``). Both the ``grep`` stage and ``cobus grep`` use it, so the
two cannot drift apart. Which lines match is the engine's business
(:mod:`cobus.grepengine`); nothing here opens files.

Discussion: two paths. Without per-line features (``-n``, context, ``-o``,
colour, ``-m``) the selected lines are cut out of the block, or with ``-v``
the block between them is kept, with no Python per line (a file-name prefix
costs one concatenation per line).
Otherwise each line goes through a small state machine, as grep's own output
loop does: a context line is printed once, and ``--`` separates groups that
are not adjacent.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .grepengine import Searcher, Span

__all__ = ["Format", "Selection", "file_label"]

#: GNU grep's default GREP_COLORS: matches, file names, line numbers, separators.
_MATCH, _FILE, _NUMBER, _SEP = b"\x1b[01;31m\x1b[K", b"\x1b[35m\x1b[K", b"\x1b[32m\x1b[K", b"\x1b[36m\x1b[K"
_END = b"\x1b[m\x1b[K"


@dataclass(frozen=True)
class Format:
    """grep's output options for one stream."""

    invert: bool = False
    number: bool = False
    only: bool = False
    #: -m: stop after this many selected lines (None: no limit).
    max_count: int | None = None
    before: int = 0
    after: int = 0
    color: bool = False
    #: ``FILE`` for several files (printed before ``:``/``-``), or None.
    label: bytes | None = None

    @property
    def per_line(self) -> bool:
        return (
            bool(self.number or self.only or self.before or self.after or self.color)
            or self.max_count is not None
        )


class Selection:
    """grep's output for one stream, block by block; :attr:`selected` counts the selected lines.

    Discussion: -v and the count. Counting the lines of a block
    (``bytes.count``, one byte at a time) costs more than the search itself,
    and ``-v`` with output needs no count: so there :attr:`selected` only
    grows by one per block that kept a line, enough to say whether any was
    selected (the exit status). Where the number is printed or limits the
    output (``-c``, ``-m``, ``-n``) every line is counted.
    """

    def __init__(self, searcher: Searcher, fmt: Format) -> None:
        self.searcher = searcher
        self.fmt = fmt
        self.selected = 0
        #: -m reached and the trailing context printed: read no more.
        self.done = False
        self._line = 0  # number of the last line seen
        self._last_out = 0  # number of the last line printed (0: none yet)
        self._owed = 0  # -A lines still to print
        self._held: deque[tuple[int, bytes]] = deque(maxlen=fmt.before or None)

    def spans(self, block: bytes) -> list[Span]:
        """The selected lines of a block (``-v`` applied)."""
        spans = self.searcher.lines(block)
        return _complement(block, spans) if self.fmt.invert else spans

    def feed(self, block: bytes, *, emit: bool = True) -> bytes:
        """What grep prints for this block (nothing if ``emit`` is False: -c, -l, -q)."""
        if self.done or not block:
            return b""
        fmt = self.fmt
        if fmt.per_line and emit:
            return self._each_line(block)
        searcher = self.searcher
        if not fmt.invert and fmt.label is None:  # the common case: the lines, cut out in C
            lines = searcher.chosen(block) if emit else None
            found = searcher.count(block) if lines is None else len(lines)
            if self._count(found) and lines:
                return b"".join(lines)
            return b""
        spans = searcher.lines(block)
        if fmt.label is not None:  # several files: each line after its file's name
            chosen = _complement(block, spans) if fmt.invert else spans
            if not self._count(len(chosen)) or not emit:
                return b""
            head = file_label(fmt.label, b":", color=False)
            return b"".join([head + block[s:e] for s, e in chosen])
        if emit:  # -v: the block without the matching lines (see "-v and the count")
            out = _gaps(block, spans)
            self.selected += bool(out)
            return out
        self._count(block.count(b"\n") + (not block.endswith(b"\n")) - len(spans))
        return b""

    def _count(self, found: int) -> int:
        """Count ``found`` selected lines (-m stops the count when only counting); how many count."""
        limit = self.fmt.max_count
        if limit is not None and self.selected + found >= limit:
            found = limit - self.selected  # only when counting (-m is per-line otherwise)
            self.done = True
        self.selected += found
        return found

    def _each_line(self, block: bytes) -> bytes:
        fmt = self.fmt
        chosen = {s for s, _ in self.spans(block)}
        out: list[bytes] = []
        context = fmt.before or fmt.after
        pos = 0
        size = len(block)
        while pos < size:
            newline = block.find(b"\n", pos)
            end = size if newline < 0 else newline + 1
            line = block[pos:end]
            self._line += 1
            n = self._line
            if pos in chosen and not (fmt.max_count is not None and self.selected >= fmt.max_count):
                if context and self._last_out and n - len(self._held) > self._last_out + 1:
                    out.append(_SEP + b"--" + _END + b"\n" if fmt.color else b"--\n")
                for held_n, held in self._held:
                    out.append(self._render(held_n, held, b"-", context_line=True))
                self._held.clear()
                out.append(self._render(n, line, b":", context_line=False))
                self._last_out = n
                self._owed = fmt.after
                self.selected += 1
            elif self._owed:
                out.append(self._render(n, line, b"-", context_line=True))
                self._last_out = n
                self._owed -= 1
            elif fmt.max_count is not None and self.selected >= fmt.max_count:
                self.done = True
                break
            elif fmt.before:
                self._held.append((n, line))
            pos = end
        if fmt.max_count is not None and self.selected >= fmt.max_count and not self._owed:
            self.done = True
        return b"".join(out)

    def _render(self, n: int, line: bytes, sep: bytes, *, context_line: bool) -> bytes:
        fmt = self.fmt
        head = b""
        if fmt.label is not None:
            head += file_label(fmt.label, sep, color=fmt.color)
        if fmt.number:
            digits = str(n).encode()
            head += (_NUMBER + digits + _END + _SEP + sep + _END) if fmt.color else digits + sep
        body = line[:-1] if line.endswith(b"\n") else line
        if fmt.only:
            if context_line or fmt.invert:
                return b""
            return b"".join(head + body[s:e] + b"\n" for s, e in self.searcher.matches(body))
        if fmt.color and not context_line and not fmt.invert:
            parts, pos = [], 0
            for s, e in self.searcher.matches(body):
                parts += [body[pos:s], _MATCH, body[s:e], _END]
                pos = e
            parts.append(body[pos:])
            body = b"".join(parts)
        return head + body + b"\n"


def file_label(name: bytes, sep: bytes, *, color: bool) -> bytes:
    """A file name and the separator after it (``:``, ``-``, or a newline for -l), coloured as grep does."""
    if not color:
        return name + sep
    return _FILE + name + _END + (sep if sep == b"\n" else _SEP + sep + _END)


def _complement(block: bytes, spans: list[Span]) -> list[Span]:
    """The lines of a block not in ``spans``."""
    out: list[Span] = []
    pos = 0
    find, size = block.find, len(block)
    for start, end in [*spans, (size, size)]:
        while pos < start:
            newline = find(b"\n", pos, start)
            stop = start if newline < 0 else newline + 1
            out.append((pos, stop))
            pos = stop
        pos = end
    return out


def _gaps(block: bytes, spans: list[Span]) -> bytes:
    """The block without the lines in ``spans`` (-v without per-line output)."""
    if not spans:
        return block
    parts = []
    pos = 0
    for start, end in spans:
        if start > pos:
            parts.append(block[pos:start])
        pos = end
    parts.append(block[pos:])
    return b"".join(parts)
