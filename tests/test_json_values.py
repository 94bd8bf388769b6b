"""JSON stays JSON: literals and containers in csv/print/table, dotted paths, grouping, where."""

from __future__ import annotations

import csv as csvlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from util import collect, run_cobus

from cobus.context import RunContext
from cobus.fields import MISSING, Field, group_keys, value_text
from cobus.stages import parse as parse_module

LINES = [
    {
        "ts": "t1",
        "t": True,
        "f": False,
        "x": None,
        "request": {"method": "GET", "path": "/a", "h": {"k": 1}},
        "tags": ["a", "b"],
        "nums": [1, 2.5],
        "a.b": {"c": 7},
    },
    {"ts": "t2", "t": False, "request": {"method": "POST", "path": "/b"}, "tags": []},
    {"ts": "t3", "request": "GET /c", "x": 1, "big": 123456789012345678901234567890},
]


@pytest.fixture
def app_log(tmp_path: Path) -> Path:
    path = tmp_path / "app.jsonl"
    text = "\n".join(json.dumps(r) for r in LINES)
    path.write_text(text[: text.index("\n")] + "\n[1, 2]\n" + text[text.index("\n") + 1 :] + '\n"text"\n')
    return path


def run(pipeline: str) -> tuple[str, str]:
    done = run_cobus(["run", pipeline])
    assert done.returncode == 0, done.stderr
    return done.stdout.decode(), done.stderr.decode()


def test_value_text_and_group_keys() -> None:
    assert [value_text(v) for v in (True, False, None, MISSING, 3, 2.5, "s")] == [
        "true",
        "false",
        "null",
        "",
        "3",
        "2.5",
        "s",
    ]
    assert value_text({"a": [1, None]}) == '{"a":[1,null]}'
    assert value_text(["x", "y"]) == "x;y"  # repeated XML children keep their form
    assert value_text([1, "y"]) == '[1,"y"]' and value_text([]) == "[]"
    keys = group_keys(["v"])([{"v": 1}, {"v": True}, {"v": {"a": 1}}, {}, {"v": None}, {"v": "s"}])
    assert keys == [1, "true", '{"a":1}', None, "null", "s"]  # True does not merge with 1
    assert group_keys(["a.b", "c"])([{"a": {"b": [1]}, "c": 2}]) == [("[1]", 2)]


def test_dotted_paths() -> None:
    record = {"r": {"m": "GET", "n": None}, "s": "text", "l": [{"m": 1}], "d.o.t": 1, "q.x": {"y": 2}}
    assert Field("r.m").get(record) == "GET"
    assert Field("r.n").get(record) is None  # present, null
    assert Field("r.z").get(record) is MISSING
    assert Field("s.m").get(record) is MISSING  # into a string
    assert Field("l.m").get(record) is MISSING  # into an array
    assert Field("d.o.t").get(record) == 1  # a key with dots is found as it is
    assert Field('"q.x".y').get(record) == 2  # a quoted part is one key
    assert Field("a..b").get({"a..b": 3}) == 3 and Field("a.").get({}) is MISSING
    batch = [record, {"r": "x"}, {}]
    assert Field("r.m").texts(batch) == ["GET", "", ""]


def test_csv_print_and_jsonl_keep_json(app_log: Path) -> None:
    out, err = run(f"cat {app_log} | parse json | csv ts,t,f,x,request,tags,nums,big,nothing")
    assert "2 line(s) did not parse (first: line 2)" in err  # an array and a string are not records
    rows = list(csvlib.reader(io.StringIO(out)))
    assert rows[1] == [
        "t1",
        "true",
        "false",
        "null",
        '{"method":"GET","path":"/a","h":{"k":1}}',
        "a;b",
        "[1,2.5]",
        "",
        "",
    ]
    assert rows[2] == ["t2", "false", "", "", '{"method":"POST","path":"/b"}', "[]", "", "", ""]
    assert rows[3] == ["t3", "", "", "1", "GET /c", "", "", "123456789012345678901234567890", ""]
    # Every object written as text reads back as the same JSON value.
    assert json.loads(rows[1][4]) == LINES[0]["request"] and json.loads(rows[1][6]) == LINES[0]["nums"]

    out, _ = run(f"cat {app_log} | parse json | print")
    first = out.splitlines()[0]
    assert first.startswith("ts=t1 t=true f=false x=null request=")
    assert 'nums=[1,2.5] a.b="{\\"c\\":7}"' in first

    out, _ = run(f"cat {app_log} | parse json | jsonl")
    assert [json.loads(line) for line in out.splitlines()] == LINES


def test_dotted_paths_through_the_pipeline(app_log: Path) -> None:
    out, _ = run(f"cat {app_log} | parse json | count by request.method")
    assert out == "\t1\nGET\t1\nPOST\t1\n"  # "GET /c" is a string: request.method is missing
    out, _ = run(f"cat {app_log} | parse json | where request.method=GET | csv ts,request.path,request.h.k")
    assert out == "ts,request.path,request.h.k\nt1,/a,1\n"
    out, _ = run(f"""cat {app_log} | parse json | csv '"a.b".c' """)
    assert out.splitlines()[1:] == ["7", '""', '""']  # csv quotes a lone empty field


def test_where_compares_json_literals(app_log: Path) -> None:
    def ts(condition: str) -> list[str]:
        out, _ = run(f"cat {app_log} | parse json | where {condition} | csv --no-header ts")
        return out.split()

    assert ts("t=true") == ["t1"]
    assert ts("t=false") == ["t2"]
    assert ts("t!=true") == ["t2"]
    assert ts("x=null") == ["t1"]  # present and null; t2 has no x
    assert ts("x!=null") == ["t3"]
    assert ts('\'request={"method":"POST","path":"/b"}\'') == ["t2"]


def test_objects_and_arrays_group_by_their_json_text(app_log: Path) -> None:
    out, _ = run(f"cat {app_log} | parse json | count by request")
    assert sorted(out.splitlines()) == [
        "GET /c\t1",
        '{"method":"GET","path":"/a","h":{"k":1}}\t1',
        '{"method":"POST","path":"/b"}\t1',
    ]
    out, _ = run(f"cat {app_log} | parse json | top 5 nums")
    assert sorted(out.splitlines()) == ["\t2", "[1,2.5]\t1"]
    out, _ = run(f"cat {app_log} | parse json | uniq -l tags,t")
    assert out.splitlines() == ["a;b\ttrue", "[]\tfalse", "\t"]


TRICKY = (
    b'{"a": 1, "a": 2}\n{"n": NaN, "i": -Infinity}\n{"s": "\\ud800 lone"}\n{"big": 99999999999999999999999}\n'
    b'{"e": 1e400}\n{"f": 0.1, "g": -0.0, "h": 5e-324}\n\n{"u": "caf\xc3\xa9 \xff"}\n[1]\n{"t": "\t"}\n'
    b'{"deep": {"x": [1, {"y": null}]}}\r\n  {"pad": true}  \n'
)


def parsed(data: bytes, block: int) -> tuple[list[Any], list[str]]:
    batches: list[Any] = []
    warnings: list[str] = []
    ctx = RunContext(stdout=io.BytesIO())
    ctx.warn = warnings.append  # type: ignore[method-assign]
    p = parse_module.parse(collect(batches), format="json", keep=True, ctx=ctx)
    lines = data.splitlines(keepends=True)
    try:
        for i in range(0, len(lines), block):
            p.send(b"".join(lines[i : i + block]))
    finally:
        p.close()
    return [repr(r) for b in batches for r in b], warnings


@pytest.mark.parametrize("block", [1, 3, 100])
def test_msgspec_and_the_standard_library_give_the_same_records(
    block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("msgspec")
    fast = parsed(TRICKY, block)
    monkeypatch.setattr(parse_module, "_fast_json", lambda: None)
    slow = parsed(TRICKY, block)
    assert fast == slow
    records, warnings = fast
    assert "{'big': 99999999999999999999999}" in records  # an int, not a float
    assert "{'_raw': '[1]'}" in records and len(warnings) == 1
