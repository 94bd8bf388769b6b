"""The scan engine behind ``grep`` and ``cobus grep``: which lines of a block match.

A :class:`Searcher` is compiled once from grep's patterns and options and then
asked, block after block, for the spans of the selected lines
(:meth:`Searcher.lines`) and, for ``-o`` and colour, for the matches inside
one line (:meth:`Searcher.matches`). Two engines give the same answers:
Hyperscan when it is importable (set ``COBUS_NO_HYPERSCAN=1`` to refuse it),
and Python's ``re`` over decoded text, which is always there.

Discussion: Hyperscan's part. One ``scan`` of a whole block runs every pattern
at once in linear time and calls back with the end of each match. On ASCII
text bytes and characters agree, so a database without UTF-8 mode (cheap to
build, fast to run, no validation) serves every ASCII block; the UTF-8 one,
whose Unicode classes take a while to build, is built only when a block of
other text comes. A ``bytewise`` pattern (ASCII literals, digits ...) needs
no UTF-8 database at all: the other one serves all its blocks. The
expressions are built (see :mod:`cobus.grepsyntax`) so that no match crosses a
newline, so a match end names its line. Where the expression is only an
approximation (back-references, ``\\<``), the named lines are
candidates and the exact Python pattern confirms each one alone; lines that
Hyperscan does not name are never looked at by Python. A block that is not
valid UTF-8 (Hyperscan's UTF-8 mode needs valid input) is searched by the
fallback, so invalid bytes still pass through, matched as grep would.

Discussion: the fallback. The block is decoded with ``surrogateescape`` (which
encodes back to the very same bytes). An ASCII block is searched whole with
one ``re`` pass, offsets being the same in bytes and characters; any other
block is searched line by line. Python's backtracking can take exponential
time on a pattern such as ``(a+)+$``: Hyperscan never does, which is why it
serves every pattern it can.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .grepsyntax import PatternError, Translation, translate

__all__ = ["PatternError", "Searcher", "hyperscan_module", "patterns_of"]

Span = tuple[int, int]
_PENDING = object()


def hyperscan_module() -> Any:
    """The hyperscan module, or None when it is missing or refused (COBUS_NO_HYPERSCAN=1)."""
    if os.environ.get("COBUS_NO_HYPERSCAN", "") not in ("", "0"):
        return None
    try:
        import hyperscan
    except ImportError:
        return None
    return hyperscan


def patterns_of(pattern: str | None, regexps: Sequence[str], files: Sequence[str]) -> list[str]:
    """grep's patterns: every -e, every line of every -f FILE, else PATTERN; newlines split."""
    given = list(regexps)
    for name in files:
        text = Path(name).read_bytes().decode("utf-8", "surrogateescape")
        if text:  # an empty file gives no pattern (nothing matches); "\n" gives one empty one
            given.extend(text.removesuffix("\n").split("\n"))
    if not regexps and not files and pattern is not None:
        given.append(pattern)
    return [line for p in given for line in p.split("\n")]


@dataclass(frozen=True)
class _Database:
    """A compiled Hyperscan database; ``tailed``: its expressions end in ``.*$``."""

    db: Any
    tailed: bool
    #: More than one pattern: one line's end can be reported once per pattern.
    several: bool


@dataclass(frozen=True)
class _Options:
    dialect: str
    ignore_case: bool
    word: bool
    line: bool


class Searcher:
    """grep's patterns, compiled once for both engines.

    ``dialect`` is G, E, F or P; ``word`` and ``line`` are ``-w`` and ``-x``.
    Raises :class:`PatternError` for a pattern that does not compile.
    """

    def __init__(
        self,
        patterns: Sequence[str],
        *,
        dialect: str = "G",
        ignore_case: bool = False,
        word: bool = False,
        line: bool = False,
        scan: bool = True,
    ) -> None:
        self.options = _Options(dialect, ignore_case, word, line)
        translations: list[Translation] = []
        groups = 0
        for pattern in patterns:
            t = translate(pattern, dialect, group_base=groups)
            groups += t.groups
            translations.append(t)
        self.regex = self._python(translations)
        self._search = self.regex.search
        self._translations = translations
        #: For -o: the top-level alternatives, compiled when first needed (see ``matches``).
        self._branches: list[re.Pattern[str]] | None = None
        self.exact = all(t.exact for t in translations)
        # On ASCII text, bytes mean what characters mean: a database without UTF-8
        # mode serves every ASCII block, and every block for a bytewise pattern.
        ascii_only = all(t.bytewise for t in translations) and (not ignore_case or _folds_ascii(translations))
        self.bytewise = ascii_only and not word
        #: -w of ASCII words: the ASCII database finds every line, and some more (see ``chosen``).
        self._ascii_words = ascii_only and word and self.exact
        self._hs = self._hyperscan(translations, utf8=False) if scan else None
        self._pre = self._prefilter(translations) if self._hs is not None and self._hs.tailed else None
        self._hs_utf8: _Database | object | None = None if self.bytewise or self._hs is None else _PENDING

    @property
    def engine(self) -> str:
        """Which engine scans blocks: 'hyperscan' or 're'."""
        return "re" if self._hs is None else "hyperscan"

    # -- compiling

    def _python(self, translations: list[Translation]) -> re.Pattern[str]:
        o = self.options
        if not translations:  # no pattern at all (an empty -f file) matches nothing
            return re.compile("(?!)")
        source = "|".join(f"(?:{t.python})" for t in translations)
        if o.line:
            source = f"^(?:{source})$"
        elif o.word:
            source = f"(?<!\\w)(?:{source})(?!\\w)"
        flags = re.MULTILINE | (re.IGNORECASE if o.ignore_case else 0)
        try:
            return re.compile(source, flags)
        except re.error as exc:  # what grepsyntax let through (-P aside) always compiles
            raise PatternError(exc.msg, exc.pos or 0) from None

    def _hyperscan(self, translations: list[Translation], *, utf8: bool) -> _Database | None:
        """A Hyperscan database for the patterns, in UTF-8 mode or not; None if it cannot be.

        Each expression gets a ``.*$`` tail when Hyperscan takes it (it refuses a
        ``$`` inside an expression): the match then runs on to the end of its
        line, so a line is reported once, not once per match in it. Without the
        tail, an expression that can match the empty string would report at
        every byte, so then such a pattern is left to the fallback.
        """
        hs = hyperscan_module()
        if hs is None or not translations or any(t.hyperscan is None for t in translations):
            return None
        o = self.options
        base = hs.HS_FLAG_MULTILINE
        if utf8:
            base |= hs.HS_FLAG_UTF8 | hs.HS_FLAG_UCP
        if o.ignore_case:
            base |= hs.HS_FLAG_CASELESS
        plain, flags = [], []
        for t in translations:
            assert t.hyperscan is not None
            expression = t.hyperscan
            if o.line:
                expression = f"^(?:{expression})$"
            elif o.word and _wordy(t.literal):  # a word: \\b either side says the same, cheaper
                expression = f"\\b{expression}\\b"
            elif o.word:  # grep -w, exactly: an occurrence with no word character either side
                expression = f"(?:^|[^\\w\\n])(?:{expression})(?:[^\\w\\n]|$)"
            plain.append(expression)
            flags.append(base | (hs.HS_FLAG_PREFILTER if t.prefilter else 0))
        ids = list(range(len(plain)))
        tailed = [f"(?:{e}).*$".encode() for e in plain]
        for expressions, extra in ((tailed, hs.HS_FLAG_ALLOWEMPTY), ([e.encode() for e in plain], 0)):
            db = hs.Database(mode=hs.HS_MODE_BLOCK)
            try:
                db.compile(expressions=expressions, ids=ids, flags=[f | extra for f in flags])
            except hs.error:  # a $ inside, an empty match without the tail, too big
                continue
            return _Database(db, expressions is tailed, len(ids) > 1)
        return None

    def _prefilter(self, translations: list[Translation]) -> _Database | None:
        """A database for the beginning of the one pattern (see ``Translation.prefix``), or None.

        Only where the ASCII database serves every block and nothing wraps
        the pattern (-w, -x): there a line matching the pattern is a line
        matching its beginning.
        """
        o = self.options
        if len(translations) != 1 or not self.bytewise or not self.exact or o.word or o.line:
            return None
        prefix = translations[0].prefix
        hs = hyperscan_module()
        if prefix is None or hs is None:
            return None
        flags = hs.HS_FLAG_MULTILINE | hs.HS_FLAG_ALLOWEMPTY | (hs.HS_FLAG_CASELESS if o.ignore_case else 0)
        db = hs.Database(mode=hs.HS_MODE_BLOCK)
        try:
            db.compile(expressions=[f"(?:{prefix}).*$".encode()], ids=[0], flags=[flags])
        except hs.error:
            return None
        return _Database(db, True, False)

    def _utf8_db(self) -> _Database | None:
        """The UTF-8 database, built when the first non-ASCII block comes (UCP classes build slowly)."""
        if self._hs_utf8 is _PENDING:
            self._hs_utf8 = self._hyperscan(self._translations, utf8=True)
        assert self._hs_utf8 is None or isinstance(self._hs_utf8, _Database)
        return self._hs_utf8

    # -- searching

    def lines(self, block: bytes) -> list[Span]:
        """(start, end) of each selected line of ``block``, its newline included."""
        ends = self._line_ends(block)
        if ends is None:
            return self._spans(block)
        rfind = block.rfind
        spans = [(rfind(b"\n", 0, end) + 1, end + 1) for end in ends]
        if ends and ends[-1] == len(block):  # a last line without its newline
            spans[-1] = (spans[-1][0], len(block))
        return spans

    def chosen(self, block: bytes) -> list[bytes]:
        """The selected lines of ``block`` themselves, each with its newline if it has one.

        Discussion: -w without looking at the whole block. ``-w`` must know
        whether the text is ASCII (a UTF-8 ``é`` is a word character), and
        ``isascii`` over a block costs as much as the scan. For ASCII words
        it need not: every byte of a non-ASCII character is a non-word byte
        to the ASCII database, so it finds every line that UTF-8 rules would
        select, and perhaps a few more; when the lines it found are all
        ASCII, they are exactly the answer. Otherwise the block goes the
        usual way.
        """
        db = self._hs
        if self._pre is not None and db is not None:
            return self._confirmed(block, self._pre, db)
        if self._ascii_words and db is not None and db.tailed:
            rfind = block.rfind
            lines = [block[rfind(b"\n", 0, end) + 1 : end + 1] for end in self._scan(block, db)]
            if b"".join(lines).isascii():
                return lines
        ends = self._line_ends(block)
        if ends is None:
            return [block[s:e] for s, e in self._spans(block)]
        rfind = block.rfind
        return [block[rfind(b"\n", 0, end) + 1 : end + 1] for end in ends]

    def count(self, block: bytes) -> int:
        """How many lines of ``block`` are selected."""
        if self._pre is not None and self._hs is not None:
            return len(self._confirmed(block, self._pre, self._hs))
        ends = self._line_ends(block)
        return len(self._spans(block) if ends is None else ends)

    def _confirmed(self, block: bytes, pre: _Database, db: _Database) -> list[bytes]:
        """The lines that match the pattern's beginning (``pre``), then those of them matching it all.

        The lines found first are joined and scanned again as one small
        block, so the whole expression runs only over them. A beginning
        that finds many more lines than the pattern selects (``e`` of
        ``e[0-9]``) costs Python work per line: after such a block, every
        block is scanned for the whole expression at once.
        """
        rfind = block.rfind
        found = [block[rfind(b"\n", 0, end) + 1 : end + 1] for end in self._scan(block, pre)]
        if not found:
            return found
        joined = b"".join(found)
        ends = self._scan(joined, db)
        if len(found) > 2 * len(ends) + 64:
            self._pre = None
        if len(ends) == len(found):
            return found
        rfind = joined.rfind
        return [joined[rfind(b"\n", 0, end) + 1 : end + 1] for end in ends]

    def _database(self, block: bytes) -> _Database | None:
        """The Hyperscan database for this block, or None: the fallback searches it."""
        if self._hs is None:
            return None
        if self.bytewise or block.isascii():
            return self._hs
        return self._utf8_db() if _valid_utf8(block) else None

    def _line_ends(self, block: bytes) -> list[int] | None:
        """Where each selected line's text ends (its newline, or the block's end); None: ask ``_spans``.

        Discussion: the fast path. With the ``.*$`` tail every match ends
        where its line's text ends, so the match ends are the answer once
        repeats are dropped: Hyperscan reports one end once per pattern,
        in order, so only several patterns can repeat one. No Python runs
        per line but the callback; the line starts are found later by
        ``rfind`` in C. An end at the very end of a block that ends with a
        newline is an empty match after the last line: no line is there.
        It serves exact patterns only; a candidate line that must be
        confirmed goes the long way, through ``_spans``.
        """
        db = self._database(block)
        if db is None or not db.tailed or not self.exact:
            return None
        return self._scan(block, db)

    @staticmethod
    def _scan(block: bytes, db: _Database) -> list[int]:
        """The line ends a tailed database reports for ``block``, each once, in order."""
        ends: list[int] = []
        add = ends.append
        db.db.scan(block, match_event_handler=lambda _id, _start, end, _flags, _ctx: add(end))
        if db.several and ends:
            ends = sorted(set(ends))
        if ends and ends[-1] == len(block) and block.endswith(b"\n"):
            ends.pop()
        return ends

    def _spans(self, block: bytes) -> list[Span]:
        db = self._database(block)
        if db is not None:
            return self._hs_lines(block, db.db)
        if block.isascii():
            return self._ascii_lines(block)
        return self._each_line(block)

    def _hs_lines(self, block: bytes, db: Any) -> list[Span]:
        ends: list[int] = []
        add = ends.append
        db.scan(block, match_event_handler=lambda _id, _start, end, _flags, _ctx: add(end))
        spans: list[Span] = []
        if not ends:
            return spans
        find, rfind = block.find, block.rfind
        size = len(block)
        exact, search = self.exact, self._search
        done = -1
        # A match holds no newline, so the newlines around its end bound its line
        # (with the ``.*$`` tail it ends at the newline itself); an empty match
        # (``^$``) ends where its line starts, or at its newline.
        for end in ends:
            if end < done:  # another match on a line already taken
                continue
            start = rfind(b"\n", 0, end) + 1
            if start == size:  # an empty match after the last newline: no line there
                break
            newline = find(b"\n", end)
            stop = size if newline < 0 else newline
            done = stop + 1
            if exact or search(block[start:stop].decode("utf-8", "surrogateescape")) is not None:
                spans.append((start, min(done, size)))
        return spans

    def _ascii_lines(self, block: bytes) -> list[Span]:
        text = block.decode("ascii")
        search = self._search
        find, rfind = text.find, text.rfind
        size = len(text)
        spans: list[Span] = []
        pos = 0
        while pos < size:
            m = search(text, pos)
            if m is None:
                break
            hit = m.start()
            if hit >= size:  # an empty match after the last newline: no line there
                break
            start = rfind("\n", 0, hit) + 1
            newline = find("\n", hit)
            content_end = size if newline < 0 else newline
            end = size if newline < 0 else newline + 1
            # A match that runs past its line counts only if the line matches alone.
            if m.end() <= content_end or search(text, start, content_end) is not None:
                spans.append((start, end))
            pos = end
        return spans

    def _each_line(self, block: bytes) -> list[Span]:
        search = self._search
        spans: list[Span] = []
        start = 0
        for line in block.split(b"\n"):
            stop = start + len(line)
            if stop == len(block) and not line:
                break
            if search(line.decode("utf-8", "surrogateescape")) is not None:
                spans.append((start, min(stop + 1, len(block))))
            start = stop + 1
        return spans

    def matches(self, line: bytes) -> list[Span]:
        """Byte spans of the non-empty matches in one line (without its newline), as ``-o`` prints them.

        Discussion: the longest match, as grep takes it. POSIX matching (G,
        E, F) takes the longest of the matches that start leftmost: ``-o -E
        'a|ab'`` prints ``ab``, where Python's ``re`` stops at ``a``. Each
        top-level alternative (and each ``-e`` pattern) is compiled alone,
        and at every match start the one reaching furthest wins. An
        alternation nested in a group stays leftmost-first; ``-P`` is Perl's
        leftmost-first by definition.
        """
        text = line.decode("utf-8", "surrogateescape")
        if self._branches is None:
            self._branches = self._alternatives()
        if self._branches:
            found = self._longest(text, self._branches)
        else:
            found = [m.span() for m in self.regex.finditer(text) if m.end() > m.start()]
        if not found or text.isascii():
            return found
        return [(_width(text[:s]), _width(text[:e])) for s, e in found]

    def _alternatives(self) -> list[re.Pattern[str]]:
        """Each top-level alternative as its own pattern (none when there is one, or for -P)."""
        o = self.options
        if o.dialect == "P":
            return []
        sources = [b for t in self._translations for b in _top_branches(t.python)]
        if len(sources) < 2:
            return []
        if o.line:
            sources = [f"^(?:{b})$" for b in sources]
        elif o.word:
            sources = [f"(?<!\\w)(?:{b})(?!\\w)" for b in sources]
        return [re.compile(b, self.regex.flags) for b in sources]

    def _longest(self, text: str, branches: list[re.Pattern[str]]) -> list[Span]:
        """The non-empty leftmost-longest matches of a line, left to right."""
        found: list[Span] = []
        search = self.regex.search
        pos = 0
        while pos <= len(text):
            m = search(text, pos)
            if m is None:
                break
            start = m.start()
            end = max(e.end() for e in (b.match(text, start) for b in branches) if e is not None)
            if end > start:
                found.append((start, end))
                pos = end
            else:
                pos = start + 1
        return found


def _top_branches(source: str) -> list[str]:
    """A Python pattern's top-level alternatives: ``a|b(c|d)`` -> ``["a", "b(c|d)"]``.

    >>> _top_branches("ab|[|]c|(x|y)z")
    ['ab', '[|]c', '(x|y)z']
    """
    branches: list[str] = []
    depth = 0
    at = 0
    i = 0
    while i < len(source):
        c = source[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":  # a class: up to its closing bracket (one right after [ or [^ is literal)
            i += 2 if source[i + 1 : i + 2] == "^" else 1
            i += 1 if source[i : i + 1] == "]" else 0
            while i < len(source) and source[i] != "]":
                i += 2 if source[i] == "\\" else 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            branches.append(source[at:i])
            at = i + 1
        i += 1
    branches.append(source[at:])
    return branches


#: The ASCII letters that ``-i`` matches to other characters too (U+0130, U+0131, U+212A, U+017F).
_WIDE_FOLDS = frozenset("iks")


def _folds_ascii(translations: list[Translation]) -> bool:
    """Whether ``-i`` matches ASCII text only for these patterns: literals free of i, k and s."""
    return all(t.literal is not None and not _WIDE_FOLDS & set(t.literal.lower()) for t in translations)


def _wordy(literal: str | None) -> bool:
    """A literal that starts and ends with a word character (then ``-w`` is ``\\b...\\b``)."""
    if not literal:
        return False
    return all(c.isalnum() or c == "_" for c in (literal[0], literal[-1]))


def _valid_utf8(block: bytes) -> bool:
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _width(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))
