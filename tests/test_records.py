"""records TAG: the record rule, the same through events (any parser) and through the fused lxml loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_xml import TRICKY
from util import SAMPLES, needs_data

from cobus.spec import load
from cobus.xmlrecords import RecordBuilder

PARSERS = ["expat", "lxml", "sax"]
BUSES = SAMPLES / "buses.xml"

FIRST_TRICKY = {
    "@id": "7589",
    "@kind": "x & y",
    "@note": 'single "quoted"',
    "route": "22",
    "stop": ["Clark & Lake", "Belmont <& Halsted>", "Howard \u2013 Terminal"],
    "lat": "41.9",
    "desc": "mixed bold and  more text",
    "empty": "",
    "crlf": "a\nb",
    "uni": "Zürich \u2013 東京 🚌",
}


def jsonl_of(cli, pipeline: str) -> list[dict[str, Any]]:
    import json

    r = cli("run", pipeline + " | jsonl")
    # grep's rule: exit 1 when nothing reached the sink
    assert (r.exit_code, r.stderr) == (0 if r.stdout else 1, ""), r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_builder_rule_on_events() -> None:
    events = [
        ("start", "r", {}),
        ("start", "bus", {"n": "1"}),
        ("text", "\n "),
        ("start", "id", {}),
        ("text", " 7 "),
        ("end", "id"),
        ("start", "stop", {}),
        ("text", "a"),
        ("end", "stop"),
        ("start", "stop", {}),
        ("start", "em", {}),
        ("text", "b"),
        ("end", "em"),
        ("text", "c"),
        ("end", "stop"),
        ("end", "bus"),
        ("end", "r"),
    ]
    builder = RecordBuilder("bus")
    # cut at every point: a record may span batches
    for i in range(len(events) + 1):
        b = RecordBuilder("bus")
        assert b.feed(events[:i]) + b.feed(events[i:]) == [{"@n": "1", "id": "7", "stop": ["a", "bc"]}]
    assert builder.feed(events) == [{"@n": "1", "id": "7", "stop": ["a", "bc"]}]


def test_abort_drops_a_partial_record() -> None:
    b = RecordBuilder("bus")
    events = [
        ("start", "bus", {}),
        ("start", "id", {}),
        ("text", "1"),
        ("abort", "bad"),
        ("start", "bus", {}),
    ]
    assert b.feed(events) == []
    assert b.feed([("start", "id", {}), ("text", "2"), ("end", "id"), ("end", "bus")]) == [{"id": "2"}]


@pytest.mark.parametrize("parser", PARSERS)
def test_tricky_document_records(cli, tmp_path: Path, parser: str) -> None:
    path = tmp_path / "t.xml"
    path.write_bytes(TRICKY)
    records = jsonl_of(cli, f"xml --parser {parser} {path} | records bus")
    assert records == [FIRST_TRICKY, {"@id": "2", "route": "9", "bus": "nested"}]


@pytest.mark.parametrize("parser", PARSERS)
def test_namespace_match_by_local_name_or_uri(cli, tmp_path: Path, parser: str) -> None:
    path = tmp_path / "ns.xml"
    path.write_bytes(b'<r xmlns:a="urn:a"><a:bus><id>1</id></a:bus><bus><id>2</id></bus></r>')
    ids = [r["id"] for r in jsonl_of(cli, f"xml --parser {parser} {path} | records bus")]
    assert ids == ["1", "2"]
    ids = [r["id"] for r in jsonl_of(cli, f"xml --parser {parser} {path} | records {{urn:a}}bus")]
    assert ids == ["1"]


@pytest.mark.parametrize("parser", PARSERS)
def test_a_leaf_element_keeps_its_text_under_its_name(cli, parser: str) -> None:
    records = jsonl_of(cli, f"xml --parser {parser} {BUSES} | records route | head 2")
    assert records == [{"route": "197"}, {"route": "101"}]


@pytest.mark.parametrize("parser", PARSERS)
def test_a_tag_that_never_occurs_gives_no_records(cli, parser: str) -> None:
    r = cli("run", f"xml --parser {parser} {BUSES} | records train | count")
    assert (r.exit_code, r.stdout, r.stderr) == (1, "0\n", "")  # nothing reached count: exit 1


def test_every_parser_and_the_fusion_give_the_same_records(cli) -> None:
    outputs = {p: cli("run", f"xml --parser {p} {BUSES} | records bus | jsonl").stdout for p in PARSERS}
    # unfused lxml: a stage between xml and records prevents the fusion
    outputs["lxml-events"] = cli(
        "run", f"xml --parser lxml {BUSES} | head 100000 | records bus | jsonl"
    ).stdout
    assert len(set(outputs.values())) == 1
    assert outputs["expat"].count("\n") > 900


def test_fusion_is_shown_by_explain_and_only_for_lxml() -> None:
    fused = load(f"xml {BUSES} | records bus | count")
    assert [n.spec.name for n in fused.nodes] == ["xml", "count"]
    assert "lxml" in fused.nodes[0].fused
    for pipeline in (
        f"xml --parser expat {BUSES} | records bus | count",
        f"xml --recover {BUSES} | records bus | count",
        f"cat {BUSES} | xml | records bus | count",
    ):
        assert "records" in [n.spec.name for n in load(pipeline).nodes], pipeline


def test_records_check_rejects_a_bad_tag(cli) -> None:
    for bad in ("'<bus>'", "{urn:x", "{urn:x}", "a/b"):
        r = cli("check", f"xml {BUSES} | records {bad}")
        assert r.exit_code == 2, bad
        assert "not an element name" in r.stderr
        assert r.stdout == ""
    r = cli("check", f"xml {BUSES} | records {{http://www.w3.org/2005/Atom}}entry")
    assert (r.exit_code, r.stderr) == (0, "")


@pytest.mark.parametrize("parser", PARSERS)
def test_real_feed_every_bus(cli, parser: str) -> None:
    path = needs_data("allroutes.xml")
    r = cli("run", f"xml --parser {parser} {path} | records bus | count")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "863\n", "")
    first = jsonl_of(cli, f"xml --parser {parser} {path} | records bus | head 1")[0]
    assert (first["id"], first["route"], first["finalStop"]) == ("7574", "147", "Paulina & Howard Terminal")


WHERE_CASES = [
    "where route=22",
    "where route!=22",
    'where stop="Clark & Lake"',
    "where stop!=Lake",
    "where stop~Halsted",
    "where desc~bold",
    "where @id=2",
    "where bus=nested",
    "where lat>41",
    "where nope!=1",
    "where route~^2 | where @id!=1",
    "where route>=9 route<=22",
]


@pytest.mark.parametrize("condition", WHERE_CASES)
def test_fused_where_gives_the_same_records(cli, tmp_path: Path, condition: str) -> None:
    path = tmp_path / "t.xml"
    path.write_bytes(TRICKY)
    fused = f"xml {path} | records bus | {condition}"
    assert "where" not in [n.spec.name for n in load(fused).nodes]
    expected = jsonl_of(cli, f"xml --parser expat {path} | records bus | {condition}")
    assert jsonl_of(cli, fused) == expected


def test_fused_where_on_the_sample_feed(cli) -> None:
    for condition in ("where route=22", 'where direction="North Bound" route~^2', "where latitude>41.9"):
        fused = jsonl_of(cli, f"xml {BUSES} | records bus | {condition}")
        assert fused == jsonl_of(cli, f"xml --parser sax {BUSES} | records bus | {condition}")
        assert fused
