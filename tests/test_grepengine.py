"""The scan engine: Hyperscan and the re fallback select the same lines, block after block."""

from __future__ import annotations

import random

import pytest

from cobus.grepengine import Searcher, hyperscan_module
from cobus.grepsyntax import translate

needs_hyperscan = pytest.mark.skipif(hyperscan_module() is None, reason="hyperscan not importable")

BLOCKS = [
    b"plain ascii python line\nanother line\n\nGET /api/ 200 5123\n",
    "café au lait\nCAFÉ python\nnaïve words\n".encode(),
    b"\xff\xfe invalid python\nok line\n",
    b"python at the end without newline",
    # Next to a UTF-8 letter "python" is no word; the Kelvin sign and the long s fold to k and s.
    "pythoné\népython\n(python)\nPYTHON é\n\u212aI\u017f\u017f me\nkiss\n".encode(),
    # Lines that begin a match of [0-9]{3} 5[0-9]{2} and do not end one, between lines that do.
    b"GET / 200 512\n200 5\nab1 x\nab\n123 5a1 ab7\n 404 599\n200 57",
]

PATTERNS = [
    (["python"], {}),
    (["python"], {"ignore_case": True}),
    (["caf."], {}),
    (["CAFÉ"], {"ignore_case": True}),
    (["caf"], {"word": True}),
    (["[[:alpha:]]\\+ [[:digit:]]\\{3\\}"], {}),
    (["^$"], {}),
    (["line$"], {}),
    (["api", "lait"], {"word": True}),
    (["\\(o\\)\\1"], {}),
    (["[^a-z ]"], {"dialect": "E"}),
    (["another line"], {"line": True}),
    (["python", "pyt", "line"], {}),  # several patterns on one line: the line once
    (["x*"], {"dialect": "E"}),  # matches the empty string: every line
    (["python"], {"word": True}),
    (["python"], {"word": True, "ignore_case": True}),
    (["kiss"], {"ignore_case": True}),
    (["[0-9]{3} 5[0-9]{2}"], {"dialect": "E"}),  # scanned for its beginning, then confirmed
    (["AB[0-9]"], {"ignore_case": True}),
]


def selected(searcher: Searcher, block: bytes) -> list[bytes]:
    return [block[s:e] for s, e in searcher.lines(block)]


@needs_hyperscan
@pytest.mark.parametrize(("patterns", "options"), PATTERNS)
def test_both_engines_select_the_same_lines(
    monkeypatch: pytest.MonkeyPatch, patterns: list[str], options: dict[str, object]
) -> None:
    fast = Searcher(patterns, **options)  # type: ignore[arg-type]
    monkeypatch.setenv("COBUS_NO_HYPERSCAN", "1")
    slow = Searcher(patterns, **options)  # type: ignore[arg-type]
    assert (fast.engine, slow.engine) == ("hyperscan", "re")
    for block in BLOCKS:
        assert selected(fast, block) == selected(slow, block), block
        # The lines themselves and their count say the same as the spans, in both engines.
        for searcher in (fast, slow):
            assert searcher.chosen(block) == selected(slow, block)
            assert searcher.count(block) == len(selected(slow, block))


@needs_hyperscan
def test_random_text_selects_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(9)
    alphabet = "ab é\tÉ-_1"
    block = "".join(
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 10))) + "\n" for _ in range(2000)
    ).encode()
    cases = [("a\\+b", {}), ("é", {"ignore_case": True}), ("ab", {"word": True}), ("[[:digit:]]", {})]
    for pattern, options in cases:
        fast = Searcher([pattern], **options)  # type: ignore[arg-type]
        monkeypatch.setenv("COBUS_NO_HYPERSCAN", "1")
        slow = Searcher([pattern], **options)  # type: ignore[arg-type]
        monkeypatch.delenv("COBUS_NO_HYPERSCAN")
        assert selected(fast, block) == selected(slow, block), pattern


def test_the_fallback_is_used_when_hyperscan_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COBUS_NO_HYPERSCAN", "1")
    assert Searcher(["python"]).engine == "re"


@needs_hyperscan
def test_a_pathological_pattern_is_scanned_in_linear_time() -> None:
    # (a+)+$ backtracks exponentially in re; Hyperscan never looks back.
    searcher = Searcher(["(a+)+$"], dialect="E")
    block = (b"a" * 41 + b"b\n") * 1000
    assert searcher.lines(block) == []


def test_matches_are_byte_spans_of_characters() -> None:
    line = "naïve café".encode()
    assert [line[s:e] for s, e in Searcher(["caf."]).matches(line)] == ["café".encode()]


@pytest.mark.parametrize(
    ("pattern", "dialect", "prefix"),
    [
        ("[0-9]{3} 5[0-9]{2}", "E", "[0-9]{3}\\x205"),
        ("ab[0-9]\\{2\\}", "G", "ab"),
        ("python", "G", None),  # nothing to drop
        ("timeout|refused|python", "E", None),  # no one beginning
        ("[0-9]+", "E", None),  # no literal left to find
        ("(ab)\\1[0-9]", "E", None),  # back-references confirm anyway
    ],
)
def test_the_beginning_a_scan_looks_for_first(pattern: str, dialect: str, prefix: str | None) -> None:
    assert translate(pattern, dialect).prefix == prefix


@needs_hyperscan
def test_a_beginning_that_finds_too_much_is_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    block = b"".join(b"a line %d\n" % i for i in range(500)) + b"e7 here\n"
    fast = Searcher(["e[0-9]"])
    assert fast._pre is not None  # "e" first: nearly every line has one
    assert fast.chosen(block) == [b"e7 here\n"]
    assert fast._pre is None  # 501 lines found, 1 selected: the whole expression from now on
    assert fast.chosen(block) == [b"e7 here\n"]
    monkeypatch.setenv("COBUS_NO_HYPERSCAN", "1")
    assert Searcher(["e[0-9]"]).chosen(block) == [b"e7 here\n"]
