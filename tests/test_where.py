"""where: condition parsing, numeric/text/regex comparison, missing fields, lists, AND."""

from __future__ import annotations

import pytest
from util import SAMPLES, collect, needs_data

from cobus.conditions import compile_conditions, parse_conditions
from cobus.stages.where import where

BUSES = SAMPLES / "buses.xml"
PARSERS = ["expat", "lxml", "sax"]


def keep(records: list[dict], *words: str) -> list[dict]:
    batches: list[list[dict]] = []
    stage = where(collect(batches), conditions=list(words))
    stage.send(records)
    stage.close()
    return [r for b in batches for r in b]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["route=22"], [("route", "=", "22")]),
        (["route", "=", "22"], [("route", "=", "22")]),
        (["route", "=22"], [("route", "=", "22")]),
        (["route=", "22"], [("route", "=", "22")]),
        (["direction=North Bound"], [("direction", "=", "North Bound")]),
        (["a==1", "b!=2", "c<3", "d<=4", "e>5", "f>=6", "g~^x", "h!~y"],
         [("a", "=", "1"), ("b", "!=", "2"), ("c", "<", "3"), ("d", "<=", "4"),
          ("e", ">", "5"), ("f", ">=", "6"), ("g", "~", "^x"), ("h", "!~", "y")]),
        (["@id=7"], [("@id", "=", "7")]),
        (["name=a=b"], [("name", "=", "a=b")]),
        (["x=", "y=2"], [("x", "=", ""), ("y", "=", "2")]),
        (["longitude<-87.6"], [("longitude", "<", "-87.6")]),
    ],
)  # fmt: skip
def test_parse_conditions(words: list[str], expected: list[tuple[str, str, str]]) -> None:
    assert parse_conditions(words) == expected


@pytest.mark.parametrize("words", [[], ["route"], ["route", "22"]])
def test_parse_conditions_rejects(words: list[str]) -> None:
    with pytest.raises(ValueError):
        parse_conditions(words)


def test_numeric_when_both_sides_are_numbers() -> None:
    records = [{"n": "9"}, {"n": "10"}, {"n": "010"}, {"n": 10}, {"n": 10.5}, {"n": "abc"}]
    assert keep(records, "n>9") == [{"n": "10"}, {"n": "010"}, {"n": 10}, {"n": 10.5}, {"n": "abc"}]
    assert keep(records, "n=10") == [{"n": "10"}, {"n": "010"}, {"n": 10}]
    assert keep(records, "n<=9.5") == [{"n": "9"}]
    # text comparison when VALUE is not a number: "9" > "10" as text
    assert keep([{"s": "9"}, {"s": "10"}], "s>1x") == [{"s": "9"}]


def test_text_and_regex() -> None:
    records = [{"d": "North Bound"}, {"d": "South Bound"}, {"d": "north"}]
    assert keep(records, "d=North Bound") == [{"d": "North Bound"}]
    assert keep(records, "d!=North Bound") == [{"d": "South Bound"}, {"d": "north"}]
    assert keep(records, "d~(?i)^north") == [{"d": "North Bound"}, {"d": "north"}]
    assert keep(records, "d!~Bound$") == [{"d": "north"}]


def test_missing_field_never_matches() -> None:
    records = [{"a": "1"}, {"b": "1"}, {"a": None}]
    assert keep(records, "a!=2") == [{"a": "1"}]
    assert keep(records, "a!~x") == [{"a": "1"}]


def test_list_field_matches_when_any_item_does() -> None:
    records = [{"stop": ["Clark", "Lake"]}, {"stop": ["Howard"]}]
    assert keep(records, "stop=Lake") == [{"stop": ["Clark", "Lake"]}]
    assert keep(records, "stop!=Lake") == [{"stop": ["Howard"]}]


def test_several_conditions_are_and() -> None:
    records = [{"r": "22", "d": "N"}, {"r": "22", "d": "S"}, {"r": "9", "d": "N"}]
    assert keep(records, "r=22", "d=N") == [{"r": "22", "d": "N"}]
    predicate = compile_conditions(parse_conditions(["r=22", "d=S"]))
    assert [predicate(r) for r in records] == [False, True, False]


def test_bad_regex_is_caught_by_check(cli) -> None:
    r = cli("check", f"xml {BUSES} | records bus | where 'route~('")
    assert r.exit_code == 2
    assert "bad regular expression" in r.stderr
    assert r.stdout == ""


def test_not_a_condition_is_caught_by_check(cli) -> None:
    r = cli("check", f"xml {BUSES} | records bus | where route")
    assert r.exit_code == 2
    assert "not a condition" in r.stderr


@pytest.mark.parametrize("parser", PARSERS)
def test_the_course_pipeline_on_the_real_feed(cli, parser: str) -> None:
    path = needs_data("allroutes.xml")
    r = cli(
        "run",
        f'xml --parser {parser} {path} | records bus | where route=22 | where direction="North Bound" '
        "| csv route,id,direction,latitude,longitude",
    )
    assert (r.exit_code, r.stderr) == (0, "")
    lines = r.stdout.splitlines()
    assert lines[0] == "route,id,direction,latitude,longitude"
    ids = [line.split(",")[1] for line in lines[1:]]
    assert ids == [
        "1485", "1629", "1489", "1533", "1779", "1595", "1567", "1795",
        "1543", "1315", "6069", "1891", "1569", "1617", "1821", "1499",
    ]  # fmt: skip
    assert all(line.startswith("22,") and ",North Bound,4" in line for line in lines[1:])


def test_where_on_parsed_log_records(cli) -> None:
    r = cli("run", f"cat {SAMPLES / 'access.log'} | parse apache | where status>=500 | count")
    total = sum(
        1 for line in (SAMPLES / "access.log").read_text().splitlines() if int(line.rsplit(" ", 2)[1]) >= 500
    )
    assert (r.exit_code, r.stderr) == (0 if total else 1, "")
    assert r.stdout == f"{total}\n"


@pytest.mark.parametrize("pattern", [r"time(out)?", r"^GET /py\w+", r"(?i)TIME", r"a.c", r"x{3}yz"])
def test_a_regex_condition_agrees_with_re_search(pattern: str) -> None:
    """The fixed-text check before the search never changes a verdict."""
    import re

    from cobus.conditions import AllOf

    values = [
        "timeout",
        "xtime",
        "TIME",
        "nothing",
        "GET /python",
        "GET /py",
        "abc",
        "xxxyz",
        "xxyz",
        "",
        5,
        True,
    ]
    keep = AllOf.parse([f"v~{pattern}"]).compile()
    for v in values:
        text = v if isinstance(v, str) else ("true" if v is True else str(v))
        assert keep({"v": v}) is (re.search(pattern, text) is not None), (pattern, v)
