"""The inline pipeline language: text -> a tree of stages, with columns.

    pipeline := stage ( "|" stage )*
    stage    := NAME ( WORD | "[" pipeline "]" )*

Words are shell-like: single or double quotes group (and may stand inside a
word, as in ``direction="North Bound"``), a backslash escapes the next
character outside single quotes. ``|``, ``[`` and ``]`` are operators unless
quoted. Every node keeps the column of its text so errors can point at it.
This module knows the syntax only; what the names mean is for the registry.
Its records are NamedTuples, not dataclasses: as immutable, and defined in a
tenth of the time, which every start of cobus pays.
"""

from __future__ import annotations

from typing import NamedTuple

from ..errors import SpecError

__all__ = ["MAX_NESTING", "MAX_STAGES", "Pipeline", "Stage", "Word", "parse", "tokenize"]

_OPERATORS = "|[]"

#: Limits on what one pipeline may hold. A batch goes down the chain as nested
#: ``send`` calls, a few Python frames per stage, so a chain of a thousand
#: stages would exhaust the interpreter's stack in the middle of a run; and
#: every level of ``[ ... ]`` may be a thread or a process. Both are far past
#: any real pipeline, and refused here, where ``cobus check`` sees them.
MAX_STAGES = 256
MAX_NESTING = 8


class Word(NamedTuple):
    """One word of a stage's text, with where it stands in the pipeline text."""

    text: str
    column: int
    width: int
    quoted: bool = False


class Token:
    """A word or an operator (internal to the parser: a plain class, quick to define)."""

    __slots__ = ("kind", "word")

    def __init__(self, kind: str, word: Word) -> None:
        self.kind = kind  # "word", "|", "[", "]", "end"
        self.word = word


class Stage(NamedTuple):
    """One stage as written: its name, its words, its ``[ ... ]`` branches."""

    name: Word
    words: tuple[Word, ...]
    branches: tuple[Pipeline, ...]
    text: str

    def source_text(self) -> str:
        """The stage's own text, as written (branches included)."""
        end = self.name.column + self.name.width
        for w in self.words:
            end = max(end, w.column + w.width)
        for b in self.branches:
            end = max(end, b.end + 1)
        return self.text[self.name.column : end]


class Pipeline(NamedTuple):
    stages: tuple[Stage, ...]
    text: str
    start: int
    end: int

    def source_text(self) -> str:
        return self.text[self.start : self.end].strip()


def tokenize(text: str) -> list[Token]:
    """Split pipeline text into words and operators, keeping columns."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in _OPERATORS:
            tokens.append(Token(c, Word(c, i, 1)))
            i += 1
            continue
        start = i
        out: list[str] = []
        quoted = c in "'\""
        while i < n and not text[i].isspace() and text[i] not in _OPERATORS:
            c = text[i]
            if c in "'\"":
                close = text.find(c, i + 1)
                while c == '"' and close > 0 and text[close - 1] == "\\":
                    close = text.find(c, close + 1)
                if close < 0:
                    raise SpecError("unclosed quote", text=text, column=i)
                body = text[i + 1 : close]
                out.append(body.replace('\\"', '"') if c == '"' else body)
                i = close + 1
            elif c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
            else:
                out.append(c)
                i += 1
        tokens.append(Token("word", Word("".join(out), start, i - start, quoted)))
    tokens.append(Token("end", Word("", n, 1)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.stages = 0
        self.depth = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def fail(self, message: str, tok: Token) -> SpecError:
        return SpecError(message, text=self.text, column=tok.word.column, width=tok.word.width)

    def pipeline(self, closing: Token | None) -> Pipeline:
        start = self.peek().word.column
        stages = [self.stage(closing)]
        while self.peek().kind == "|":
            bar = self.take()
            if self.peek().kind != "word":
                raise self.fail("a stage name must follow '|'", bar)
            stages.append(self.stage(closing))
        end = self.peek().word.column
        return Pipeline(tuple(stages), self.text, start, end)

    def stage(self, closing: Token | None) -> Stage:
        tok = self.take()
        if tok.kind != "word":
            if tok.kind == "end":
                what = "an empty branch '[ ]'" if closing else "an empty pipeline"
                raise self.fail(f"expected a stage name, found {what}", closing or tok)
            raise self.fail(f"expected a stage name, found {tok.word.text!r}", tok)
        if tok.word.quoted:
            raise self.fail("a stage name cannot be quoted", tok)
        self.stages += 1
        if self.stages > MAX_STAGES:
            raise self.fail(f"too many stages: a pipeline holds at most {MAX_STAGES}", tok)
        words: list[Word] = []
        branches: list[Pipeline] = []
        while True:
            nxt = self.peek()
            if nxt.kind == "word":
                words.append(self.take().word)
            elif nxt.kind == "[":
                opening = self.take()
                if self.peek().kind == "]":
                    raise self.fail("empty branch '[ ]'", opening)
                if self.depth == MAX_NESTING:
                    too_deep = f"branches nested too deep: at most {MAX_NESTING} levels of '[ ]'"
                    raise self.fail(too_deep, opening)
                self.depth += 1
                branch = self.pipeline(opening)
                self.depth -= 1
                end = self.peek()
                if end.kind != "]":
                    raise self.fail("unbalanced '[': no matching ']'", opening)
                self.take()
                branches.append(branch)
            else:
                break
        return Stage(tok.word, tuple(words), tuple(branches), self.text)


def parse(text: str) -> Pipeline:
    """Parse inline pipeline text, or raise SpecError pointing at the culprit."""
    parser = _Parser(text)
    if parser.peek().kind == "end":
        raise SpecError("the pipeline is empty", text=text, column=0)
    pipeline = parser.pipeline(None)
    tok = parser.peek()
    if tok.kind == "]":
        raise parser.fail("unbalanced ']': no '[' opens it", tok)
    if tok.kind != "end":  # pragma: no cover - the grammar leaves nothing else
        raise parser.fail(f"unexpected {tok.word.text!r}", tok)
    return pipeline
