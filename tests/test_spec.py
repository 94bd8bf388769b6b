"""The pipeline language: words, branches, errors with columns, the graph it lowers to."""

from __future__ import annotations

import pytest

from cobus.errors import SpecError
from cobus.spec import load
from cobus.spec.parse import parse, tokenize


def words(text: str) -> list[tuple[str, str]]:
    return [(t.kind, t.word.text) for t in tokenize(text)][:-1]


def test_words_are_shell_like() -> None:
    assert words("grep -i 'a b' x=\"1 2\" \\|") == [
        ("word", "grep"),
        ("word", "-i"),
        ("word", "a b"),
        ("word", "x=1 2"),
        ("word", "|"),
    ]


def test_operators_split_words_unless_quoted() -> None:
    assert words("a|b [c]'|'") == [
        ("word", "a"),
        ("|", "|"),
        ("word", "b"),
        ("[", "["),
        ("word", "c"),
        ("]", "]"),
        ("word", "|"),
    ]


def test_branches_nest() -> None:
    p = parse("cat f | broadcast [grep a | print] [grep b] | count")
    names = [s.name.text for s in p.stages]
    assert names == ["cat", "broadcast", "count"]
    b = p.stages[1].branches
    assert [s.name.text for s in b[0].stages] == ["grep", "print"]
    assert b[1].source_text() == "grep b"


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("cat x | grpe y", "unknown stage 'grpe' (did you mean 'grep'?)", 8),
        ("cat x | broadcast [grep y | print", "unbalanced '['", 18),
        ("cat x | grep y ]", "unbalanced ']'", 15),
        ("cat x | grep", "grep: needs PATTERN", None),
        ("cat x | grep -E '('", "bad regular expression", 16),
        ("cat x |", "a stage name must follow '|'", 6),
        ("cat x | grep 'abc", "unclosed quote", 13),
        ("cat x | head many", "n takes a number, not 'many'", 13),
        ("cat x | grep -Q y", "grep has no option -Q", 13),
        ("grep x", "grep is not a source", 0),
        ("cat x | cat y", "cat is a source and can only start a pipeline", 8),
        ("cat x | print | count", "nothing flows into count", 16),
        ("cat x | broadcast [] ", "empty branch", 18),
    ],
)
def test_errors_point_at_the_culprit(text: str, message: str, column: int | None) -> None:
    with pytest.raises(SpecError) as info:
        load(text)
    err = info.value
    assert message in err.message
    if column is not None:
        assert err.column == column
        assert err.text == text
        caret = err.caret_lines()
        assert caret[1].index("^") - 2 == column


def test_missing_argument_names_the_stage_usage() -> None:
    with pytest.raises(SpecError, match=r"usage: records TAG"):
        load("xml x.xml | records")


def test_key_value_and_long_options_bind() -> None:
    g = load("cat x | grep --ignore-case pattern=python | head n=3")
    grep, head = g.nodes[1], g.nodes[2]
    assert grep.params == {"ignore_case": True, "pattern": "python"}
    assert head.params == {"n": 3}


def test_quoted_words_are_never_options() -> None:
    g = load("cat x | grep '-v'")
    assert g.nodes[1].params == {"pattern": "-v"}


def test_short_flags_cluster() -> None:
    g = load("cat x | grep -iv python")
    assert g.nodes[1].params == {"pattern": "python", "ignore_case": True, "invert": True}


def test_broadcast_lowers_to_fan_out_and_fan_in() -> None:
    g = load("cat f | broadcast [grep a] [grep b | count] [grep c] | print")
    by_text = {n.text: n for n in g.nodes}
    bc = by_text["broadcast [grep a] [grep b | count] [grep c]"]
    assert [c.text for c in g.consumers(bc.id)] == ["grep a", "grep b", "grep c"]
    assert sorted(by_text[t].id for t in ("grep a", "grep c")) == by_text["print"].inputs


def test_open_end_gets_an_implicit_print() -> None:
    g = load("cat f | grep a")
    assert g.nodes[-1].spec.name == "print"
    assert g.nodes[-1].implicit


def test_kinds_are_checked() -> None:
    with pytest.raises(SpecError, match="broadcast takes only"):
        load("cat f | broadcast | print")


def test_toml_graph(tmp_path) -> None:
    f = tmp_path / "p.toml"
    f.write_text(
        """
[stages.logs]
run = "cat a.log"
[stages.py]
from = "logs"
run = "grep python"
[stages.ply]
from = "logs"
run = "grep ply | write ply.log"
[stages.out]
from = ["py"]
run = "head 5 | print"
"""
    )
    g = load(str(f))
    texts = [n.text for n in g.nodes]
    assert texts[0] == "cat a.log"
    logs = g.nodes[0]
    assert sorted(c.text for c in g.consumers(logs.id)) == ["grep ply", "grep python"]
    assert not any(n.implicit for n in g.nodes)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '[stages.a]\nrun = "cat x"\n[stages.b]\nfrom = "nope"\nrun = "print"\n',
            "'from' names no stage 'nope'",
        ),
        ('[stages.a]\nfrom = "b"\nrun = "grep x"\n[stages.b]\nfrom = "a"\nrun = "grep y"\n', "cycle"),
        ('[stages.a]\nrun = "cat x | grpe y"\n', "did you mean 'grep'"),
        ("[stages.a]\nrun = 3\n", 'needs run = "stage text"'),
        ("stages = [", "not valid TOML"),
    ],
)
def test_toml_errors_name_the_file_and_stage(tmp_path, body: str, message: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(body)
    with pytest.raises(SpecError) as info:
        load(str(f))
    assert message in str(info.value)
    assert str(f) in str(info.value)


def test_what_a_stage_takes_can_depend_on_its_parameters() -> None:
    with pytest.raises(SpecError, match=r"count takes records, but lines arrive here \(put parse"):
        load("cat x | count by status")
    assert load("cat x | count").nodes[-1].spec.name == "count"
    assert load("cat x | parse apache | count by status").nodes[-1].input_kind == "records"
