"""Record sinks: csv (quoting, header, lists), jsonl, table (plain when piped), print."""

from __future__ import annotations

import io
import json
from typing import Any

from util import SAMPLES

from cobus.context import RunContext
from cobus.core import drain
from cobus.sinks.records import csv, jsonl, split_fields, table

BUSES = SAMPLES / "buses.xml"
RECORDS = [
    {"id": "1", "name": 'say "hi", then go', "stops": ["a", "b"]},
    {"id": "2", "name": "line\nbreak", "extra": "x"},
    {"id": 3, "name": None},
]


def output(factory: Any, batches: list[list[dict[str, Any]]], **params: Any) -> str:
    out = io.BytesIO()
    drain(batches, factory(ctx=RunContext(stdout=out), **params))
    return out.getvalue().decode()


def test_split_fields() -> None:
    assert split_fields(["id,route", "run", " a , ,b "]) == ["id", "route", "run", "a", "b"]


def test_csv_quotes_and_joins() -> None:
    text = output(csv, [RECORDS[:2], RECORDS[2:]], fields=["id,name,stops"])
    assert text == 'id,name,stops\n1,"say ""hi"", then go",a;b\n2,"line\nbreak",\n3,null,\n'  # JSON null


def test_csv_without_header_and_default_fields() -> None:
    assert output(csv, [RECORDS[:1]], no_header=True, fields=["id"]) == "1\n"
    assert output(csv, [RECORDS[1:2]]) == 'id,name,extra\n2,"line\nbreak",x\n'


def test_csv_with_no_records_writes_the_header() -> None:
    assert output(csv, [], fields=["id,route"]) == "id,route\n"
    assert output(csv, [], fields=["id"], no_header=True) == ""


def test_jsonl_one_object_per_line() -> None:
    text = output(jsonl, [RECORDS[:2], [], RECORDS[2:]])
    assert [json.loads(line) for line in text.splitlines()] == RECORDS
    assert "\u00e9" in output(jsonl, [[{"c": "caf\u00e9"}]])  # UTF-8, not \\u escapes


def test_table_when_piped_is_plain_and_unwrapped() -> None:
    text = output(
        table, [[{"id": "1", "route": "22"}], [{"id": "10", "route": "9", "x": "y"}]], fields=["id,route"]
    )
    assert text == (
        "┏━━━━┳━━━━━━━┓\n┃ id ┃ route ┃\n┡━━━━╇━━━━━━━┩\n│ 1  │ 22    │\n│ 10 │ 9     │\n└────┴───────┘\n"
    )
    assert "\x1b[" not in text


def test_cli_csv_jsonl_table_print(cli) -> None:
    base = f"xml {BUSES} | records bus | where route=22 | head 2"
    r = cli("run", f"{base} | csv id,route")
    assert (r.exit_code, r.stderr) == (0, "")
    rows = r.stdout.splitlines()
    assert rows[0] == "id,route" and len(rows) == 3 and all(x.endswith(",22") for x in rows[1:])
    r = cli("run", f"{base} | jsonl")
    assert (r.exit_code, r.stderr) == (0, "")
    assert [json.loads(x)["route"] for x in r.stdout.splitlines()] == ["22", "22"]
    r = cli("run", f"{base} | table id,route")
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout.count("│ 22") == 2
    r = cli("run", f"{base} | print")
    assert (r.exit_code, r.stderr) == (0, "")
    assert all(x.startswith("id=") and " route=22 " in x for x in r.stdout.splitlines())
