"""grep's pattern dialects, translated for the two engines that run them.

:func:`translate` turns one pattern, in one of grep's dialects (``G`` basic,
``E`` extended, ``F`` fixed, ``P`` Perl-style, which here is Python's own
syntax), into a :class:`Translation`: the source of a Python ``re`` pattern
over ``str`` (exact, used by the fallback and to confirm candidates) and,
where Hyperscan can serve it, the source of a Hyperscan expression with a
word on how faithful it is. Nothing here scans text or imports hyperscan.

Discussion: why two outputs from one parse. Lines are decoded from UTF-8 with
``surrogateescape`` for Python, so an invalid byte is a lone surrogate there;
grep's ``.`` and ``[^x]`` never match an invalid byte, so the Python output
spells them ``[^\\n\\udc80-\\udcff]``. Hyperscan scans the bytes of whole
blocks in UTF-8 mode and must never match across a newline (a match end is
mapped to the line it falls in), so its negated classes and ``\\s`` exclude
``\\n`` explicitly. Where Hyperscan has no equivalent (back-references, grep's
``\\<``), it gets a looser expression and ``exact`` is False: its matches
only name candidate lines, which Python confirms.

Discussion: GNU's rules kept here. In a basic expression ``\\( \\) \\| \\{ \\}
\\+ \\?`` are operators and ``+ ? | ( ) {`` are literal; ``*`` at the start of
an expression (or of a group or branch) is literal, ``^`` is an anchor only at
the start and ``$`` only at the end. In an extended expression a repetition
with nothing before it is ignored, as GNU grep does, and a ``{`` that does not
open a valid interval is literal. Inside brackets a backslash is literal.
"""

from __future__ import annotations

import functools
import re
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["PatternError", "Translation", "required_literal", "translate"]

#: A character grep's ``.`` matches: anything on the line but an invalid byte.
_PY_ANY = "[^\\n\\udc80-\\udcff]"
#: Characters that may be operators in one dialect or the other.
_OPERATORS = frozenset(".[]*^$\\+?{}()|")
#: Classes whose members go beyond ASCII in a UTF-8 locale.
_UNICODE_CLASSES = ("alpha", "alnum", "upper", "lower", "space", "print", "graph")
_CLASSES = frozenset(
    (*_UNICODE_CLASSES, "digit", "blank", "punct", "cntrl", "xdigit"),
)
#: Python fragments for a bracket: (inside a positive class, or a class to negate).
_PY_CLASS: dict[str, tuple[str, str]] = {
    "digit": ("0-9", ""),
    "xdigit": ("0-9A-Fa-f", ""),
    "space": ("\\s", ""),
    "blank": (" \\t", ""),
    "cntrl": ("\\x00-\\x1f\\x7f", ""),
    "punct": (re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"), ""),
    "alpha": ("", "\\W\\d_"),
    "alnum": ("", "\\W_"),
    "print": ("", "\\x00-\\x1f\\x7f\\udc80-\\udcff"),
    "graph": ("", "\\s\\x00-\\x1f\\x7f\\udc80-\\udcff"),
}


class PatternError(ValueError):
    """A pattern that does not compile: GNU grep's message and the 0-based position."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass(frozen=True)
class Translation:
    """One pattern for both engines.

    ``hyperscan`` is None where Hyperscan cannot serve the pattern at all;
    ``exact`` says whether its matches are exactly the pattern's, and
    ``prefilter`` whether it needs Hyperscan's prefilter mode (back-references).
    ``groups`` counts the capturing groups of ``python``. ``bytewise`` says
    that the Hyperscan expression means the same on bytes as on characters
    (ASCII literals, digits ...): it can then scan without UTF-8 mode, which
    needs no validation of the block and runs faster.
    """

    python: str
    hyperscan: str | None
    exact: bool
    prefilter: bool = False
    groups: int = 0
    bytewise: bool = False
    #: The text itself when the pattern is a plain literal (no operator at all), else None.
    literal: str | None = None
    #: A Hyperscan expression that every match of this one starts with: the pattern
    #: without the classes it ends with (``[0-9]{3} 5`` for ``[0-9]{3} 5[0-9]{2}``), or None.
    prefix: str | None = None


def translate(pattern: str, dialect: str = "G", group_base: int = 0) -> Translation:
    """Translate ``pattern`` of ``dialect`` (G, E, F or P); raise PatternError if it is bad.

    ``group_base`` numbers the groups after those of earlier patterns, so that
    several patterns can be joined into one Python alternation.

    >>> translate("python\\\\|swig").python
    'python|swig'
    >>> translate("c++").python
    'c\\\\+\\\\+'
    >>> translate("[[:digit:]]+", "E").hyperscan
    '[[:digit:]]+'
    """
    if dialect == "F":
        hs = _hs_literal(pattern)
        return Translation(
            re.escape(pattern), hs, exact=hs is not None, bytewise=pattern.isascii(), literal=pattern
        )
    if dialect == "P":
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise PatternError(exc.msg, exc.pos or 0) from None
        return Translation(pattern, None, exact=False, groups=compiled.groups)
    parser = _Parser(pattern, extended=dialect == "E", group_base=group_base)
    py, hs = parser.parse()
    return Translation(
        py,
        hs if parser.hs_ok else None,
        exact=parser.exact,
        prefilter=parser.backrefs,
        groups=parser.groups,
        bytewise=parser.bytewise,
        literal=None if _OPERATORS & set(pattern) else pattern,
        prefix=parser.prefix() if parser.exact and parser.hs_ok else None,
    )


def _is_literal(atom: list[str]) -> bool:
    """An atom that is one literal character, not repeated."""
    hs = atom[1]
    return not atom[2] and ((len(hs) == 1 and hs not in "^$.") or bool(re.fullmatch(r"\\x[0-9a-f]{2}", hs)))


def _hs_char(c: str) -> str | None:
    """One literal character for Hyperscan (UTF-8 mode); None for an invalid byte."""
    if "\udc80" <= c <= "\udcff":
        return None
    if c.isascii() and not c.isalnum():
        return f"\\x{ord(c):02x}"
    return c


def _hs_literal(text: str) -> str | None:
    parts = [_hs_char(c) for c in text]
    return None if None in parts else "".join(p for p in parts if p is not None)


def _py_class_char(c: str) -> str:
    return "\\" + c if c in "\\]^-[" else c


@functools.cache
def _py_case_ranges(upper: bool) -> str:
    """Every upper (or lower) case letter, as class ranges (built once, when first asked)."""
    test = str.isupper if upper else str.islower
    parts: list[str] = []
    start = -1
    for code in range(sys.maxunicode + 2):
        inside = code <= sys.maxunicode and test(chr(code))
        if inside and start < 0:
            start = code
        elif not inside and start >= 0:
            last = code - 1
            parts.append(re.escape(chr(start)) + ("-" + re.escape(chr(last)) if last > start else ""))
            start = -1
    return "".join(parts)


class _Parser:
    """A recursive-descent parse of a basic or extended expression into both outputs."""

    def __init__(self, text: str, *, extended: bool, group_base: int) -> None:
        self.text = text
        self.pos = 0
        self.ere = extended
        self.base = group_base
        self.groups = 0
        self.closed: set[int] = set()
        self.hs_ok = True
        self.bytewise = True
        self.exact = True
        self.backrefs = False
        #: The atoms of each branch at the top level: [python, hyperscan, quantified?].
        self.top: list[list[list[str]]] = []

    def fail(self, message: str, at: int | None = None) -> PatternError:
        return PatternError(message, self.pos if at is None else at)

    def parse(self) -> tuple[str, str]:
        py, hs = self.alternation(depth=0)
        if self.pos < len(self.text):  # only an unmatched ")" stops the top level
            raise self.fail("Unmatched ) or \\)")
        return py, hs

    def _peek_op(self) -> str | None:
        """The operator at the cursor (``(``, ``)``, ``|``, ``{``), dialect aside."""
        t, i = self.text, self.pos
        if self.ere:
            return t[i] if i < len(t) and t[i] in "()|{" else None
        if t.startswith("\\", i) and i + 1 < len(t) and t[i + 1] in "()|{":
            return t[i + 1]
        return None

    def _take_op(self) -> None:
        self.pos += 1 if self.ere else 2

    def alternation(self, depth: int) -> tuple[str, str]:
        branches = [self.sequence(depth)]
        while self._peek_op() == "|":
            self._take_op()
            branches.append(self.sequence(depth))
        return "|".join(b[0] for b in branches), "|".join(b[1] for b in branches)

    def sequence(self, depth: int) -> tuple[str, str]:
        atoms: list[list[str]] = []  # [python, hyperscan, quantified?]
        t = self.text
        while self.pos < len(t):
            op = self._peek_op()
            if op == "|":
                break
            if op == ")":
                if depth == 0 and self.ere:  # GNU: a lone ")" in -E is literal
                    self._take_op()
                    atoms.append([re.escape(")"), "\\)", ""])
                    continue
                break
            at_start = all(a[1] == "^" for a in atoms)
            if self._quantifier(atoms, at_start):
                continue
            atoms.append(self.atom(depth, at_start, atoms))
        if depth == 0:
            self.top.append(atoms)
        return "".join(a[0] for a in atoms), "".join(a[1] for a in atoms)

    def prefix(self) -> str | None:
        """The expression without the classes it ends with, if that leaves a literal to find.

        Discussion: why. Hyperscan turns classes at the end of an expression
        into every string they spell (``5[0-9]{2}``: 100 literals) and then
        scans several times slower than for the part before them. A line
        that matches the whole expression matches its beginning, so a scan
        for the beginning finds every line (and perhaps a few more, which the
        whole expression then confirms): GNU grep, too, looks for a part it
        must find before it runs its full matcher on a line.
        """
        if len(self.top) != 1:  # an alternation at the top: no one beginning
            return None
        atoms = self.top[0]
        keep = len(atoms)
        while keep and (atoms[keep - 1][1].startswith("[") or atoms[keep - 1][1].startswith(".")):
            keep -= 1
        if keep == len(atoms) or not any(_is_literal(a) for a in atoms[:keep]):
            return None
        return "".join(a[1] for a in atoms[:keep])

    def _quantifier(self, atoms: list[list[str]], at_start: bool) -> bool:
        """Apply a repetition at the cursor to the last atom; False if there is none here."""
        t, i = self.text, self.pos
        c = t[i]
        if (self.ere and c in "*+?") or (not self.ere and c == "*"):
            spelled, width = c, 1
        elif not self.ere and t.startswith(("\\+", "\\?"), i):
            spelled, width = t[i + 1], 2
        elif self._peek_op() == "{":
            interval = self._interval()
            if interval is None:
                return False
            spelled, width = interval
        else:
            return False
        if at_start or not atoms:
            if self.ere:  # GNU ignores a repetition of nothing
                self.pos += width
                return True
            return False  # literal in a basic expression
        self.pos += width
        last = atoms[-1]
        if last[2]:  # a repetition of a repetition: group it first, as Python requires
            last[0], last[1] = f"(?:{last[0]})", f"(?:{last[1]})"
        last[0] += spelled
        last[1] += spelled
        last[2] = "q"
        return True

    def _interval(self) -> tuple[str, int] | None:
        """``{m,n}`` at the cursor: (Python spelling, width), None if literal in -E."""
        t, open_at = self.text, self.pos
        body_at = open_at + (1 if self.ere else 2)
        close = "}" if self.ere else "\\}"
        end = t.find(close, body_at)
        body = t[body_at:end] if end >= 0 else ""
        m = re.fullmatch(r"(\d*)(,?)(\d*)", body) if end >= 0 else None
        if m is None or not (m.group(1) or (m.group(2) and m.group(3)) or m.group(2)):
            if self.ere:
                return None
            if end < 0:
                raise self.fail("Unmatched \\{", open_at)
            raise self.fail("Invalid content of \\{\\}", open_at)
        low, comma, high = m.groups()
        if high and int(low or 0) > int(high):
            raise self.fail("Invalid content of \\{\\}", open_at)
        spelled = "{" + (low or "0") + comma + high + "}"
        return spelled, end + len(close) - open_at

    def atom(self, depth: int, at_start: bool, atoms: list[list[str]]) -> list[str]:
        t = self.text
        i = self.pos
        c = t[i]
        if self._peek_op() == "(":
            self._take_op()
            self.groups += 1
            number = self.groups
            py, hs = self.alternation(depth + 1)
            if self._peek_op() != ")":
                raise self.fail("Unmatched ( or \\(", i)
            self._take_op()
            self.closed.add(number)
            return [f"({py})", f"({hs})", ""]  # capturing in both: back-references count them
        if self._peek_op() == "{":  # a literal "{" in -E, or "\{" at a BRE's start
            self._take_op()
            return [re.escape("{"), "\\{", ""]
        self.pos += 1
        if c == "^" and (self.ere or at_start):
            return ["^", "^", ""]
        if c == "$" and (self.ere or self._at_end()):
            return ["$", "$", ""]
        if c == ".":
            self.bytewise = False
            return [_PY_ANY, ".", ""]
        if c == "[":
            return self.bracket(i)
        if c == "\\":
            return self.escape(i)
        hs_c = _hs_char(c)
        if hs_c is None:
            self.hs_ok = False
        self.bytewise = self.bytewise and c.isascii()
        return [re.escape(c), hs_c or "", ""]

    def _at_end(self) -> bool:
        rest = self.text[self.pos :]
        return not rest or rest.startswith(("\\)", "\\|"))

    def escape(self, at: int) -> list[str]:
        t = self.text
        if self.pos >= len(t):
            raise self.fail("Trailing backslash", at)
        c = t[self.pos]
        self.pos += 1
        if c.isdigit() and c != "0":
            n = int(c)
            if n not in self.closed:
                raise self.fail("Invalid back reference", at)
            self.exact = False
            self.backrefs = True
            return [f"(?:\\{n + self.base})", f"\\{n}", ""]
        simple = {
            "w": ("\\w", "\\w"),
            "W": ("[^\\w\\n]", "[^\\w\\n]"),
            "s": ("\\s", "[^\\S\\n]"),
            "S": ("\\S", "\\S"),
            "b": ("\\b", "\\b"),
            "B": ("\\B", "\\B"),
            "`": ("^", "^"),
            "'": ("$", "$"),
        }
        if c in simple:
            py, hs = simple[c]
            self.bytewise = self.bytewise and c in "`'"
            return [py, hs, ""]
        if c in "<>":
            self.exact = self.bytewise = False  # Hyperscan has \b but no look-behind
            return ["\\b(?=\\w)" if c == "<" else "\\b(?<=\\w)", "\\b", ""]
        hs_c = _hs_char(c)
        if hs_c is None:
            self.hs_ok = False
        self.bytewise = self.bytewise and c.isascii()
        return [re.escape(c), hs_c or "", ""]

    def bracket(self, at: int) -> list[str]:
        t = self.text
        negate = t.startswith("^", self.pos)
        if negate:
            self.pos += 1
        chars: list[str] = []  # Python class items
        hs_items: list[str] = []
        complements: list[str] = []
        first = True
        unmatched = "Unmatched [, [^, [:, [., or [="
        while True:
            if self.pos >= len(t):
                raise self.fail(unmatched, at)
            c = t[self.pos]
            if c == "]" and not first:
                self.pos += 1
                break
            first = False
            if c == "[" and t.startswith((":", ".", "="), self.pos + 1):
                kind = t[self.pos + 1]
                end = t.find(kind + "]", self.pos + 2)
                if end < 0:
                    raise self.fail(unmatched, at)
                name = t[self.pos + 2 : end]
                self.pos = end + 2
                if kind == ":":
                    if name not in _CLASSES:
                        raise self.fail("Invalid character class name", at)
                    if name in ("upper", "lower"):
                        inside = _py_case_ranges(name == "upper")
                    else:
                        inside, complement = _PY_CLASS[name]
                        if complement:
                            complements.append(complement)
                    chars.append(inside)
                    hs_items.append(f"[:{name}:]")
                    continue
                c = name[:1] or "]"  # [.x.] and [=x=]: the character itself
            else:
                self.pos += 1
            low = c
            if t.startswith("-", self.pos) and self.pos + 1 < len(t) and t[self.pos + 1] != "]":
                high = t[self.pos + 1]
                self.pos += 2
                if high < low:
                    raise self.fail("Invalid range end", at)
                chars.append(f"{_py_class_char(low)}-{_py_class_char(high)}")
                hs_low, hs_high = _hs_char(low), _hs_char(high)
                if hs_low is None or hs_high is None:
                    self.hs_ok = False
                hs_items.append(f"{hs_low}-{hs_high}")
            else:
                chars.append(_py_class_char(c))
                hs_c = _hs_char(c)
                if hs_c is None:
                    self.hs_ok = False
                hs_items.append(hs_c or "")
        body = t[at + 1 + negate : self.pos - 1]
        if negate or not body.isascii() or any(f"[:{n}:]" in body for n in _UNICODE_CLASSES):
            self.bytewise = False
        if len(body) > 2 and body.startswith(":") and body.endswith(":") and not negate:
            raise self.fail("character class syntax is [[:space:]], not [:space:]", at)
        return [self._py_bracket("".join(chars), complements, negate), self._hs_bracket(hs_items, negate), ""]

    @staticmethod
    def _py_bracket(inside: str, complements: list[str], negate: bool) -> str:
        if negate:
            ahead = "".join(f"(?![^{c}])" for c in complements)
            return f"{ahead}[^{inside}\\n\\udc80-\\udcff]"
        if not complements:
            return f"[{inside}]"
        options = ([f"[{inside}]"] if inside else []) + [f"[^{c}]" for c in complements]
        return "(?:" + "|".join(options) + ")"

    @staticmethod
    def _hs_bracket(items: list[str], negate: bool) -> str:
        return ("[^\\n" if negate else "[") + "".join(items) + "]"


def required_literal(pattern: str, shortest: int = 3) -> str | None:
    """The longest run of literal characters every match of a Python ``re`` pattern holds, or None.

    Only what the top-level sequence (and the groups in it) spells out
    counts: nothing inside an alternative, an optional or repeated part, or
    a pattern that ignores case. A line without it cannot match, so grep's
    engine, asked for the literal alone (``-F``), can pass over such lines.

    >>> required_literal(r"user=(?P<u>\\w+) (?:ok|bad) took (?P<ms>\\d+)ms")
    ' took '
    >>> required_literal(r"(?P<code>\\d{3})") is None
    True
    >>> required_literal(r"(?i)error: (?P<m>.*)") is None
    True
    """
    import re._parser as sre  # type: ignore[import-not-found]  # the parsed form: no public interface

    try:
        parsed = sre.parse(pattern)
    except (re.error, RecursionError):
        return None
    if parsed.state.flags & re.IGNORECASE:
        return None
    runs: list[str] = []
    run: list[str] = []

    def walk(items: Any) -> None:
        for op, arg in items:
            if op is sre.LITERAL:
                run.append(chr(arg))
                continue
            if op is sre.SUBPATTERN and not (arg[1] & re.IGNORECASE):
                walk(arg[3])  # a group in the sequence: its literals are as required
                continue
            runs.append("".join(run))
            run.clear()

    walk(parsed)
    runs.append("".join(run))
    best = max(runs, key=len)
    if len(best) < shortest or "\n" in best:
        return None
    try:
        best.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: never in decoded text
        return None
    return best
