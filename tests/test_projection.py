"""The records engine's projection: ``parse`` makes only the fields read, as columns where it can.

Every test holds the projected path against the full one: the fast
apache block parser against the full regex's records, and whole pipelines
(``count``, ``where``, ``sum``, ``top``, ``uniq`` on columns) against what
the records written by ``jsonl`` (a sink that reads every field, so nothing
is projected) say.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cobus.columns import Columns
from cobus.fields import MISSING
from cobus.stages._apache import APACHE, FAST, UNICODE_SPACES, ApacheColumns, Dates, Zones, apache_records

re2 = pytest.importorskip("re2", reason="the fast path needs google-re2 (the full path is tested elsewhere)")

GOOD = [
    '1.2.3.4 - - [24/Feb/2008:00:08:59 -0600] "GET /a HTTP/1.0" 404 302',
    'h.example.com - bob [01/Mar/2008:23:59:01 +0100] "POST /x?y=1 HTTP/1.1" 200 -',
    'h - - [24/Feb/2008:00:09:20 -0600] "-" 408 0',
    'h - - [24/Feb/2008:00:09:20 -0600] "GET / HTTP/1.1" 200 5 "http://r/" "Mozilla 5.0"',
    'h - - [24/Feb/2008:00:09:20 -0600] "GET /\\" 200 5 x" 500 7',  # a \\" inside the request
    'x" 123 - [24/Feb/2008:00:09:20 -0600] "GET / HTTP/1.1" 301 9',  # a quote in the host
    'h - - [24/Feb/2008:00:09:20 -0600] "GET / HTTP/1.1" 200 5 "-" "agent \\" 404 1 x"',
    'h - - [24/Feb/2008:00:09:20 -0600] "GET / HTTP/1.1" 200 5\r',
    'h - - [24/Feb/2008:00:09:20 -0600] "GET /caf\u00e9 HTTP/1.1" 200 5',
    'h\u00e9 - - [24/Feb/2008:00:09:20 +0530] "GET / HTTP/1.1" 200 5 \t',
    'h - - [24/Feb/2008:00:09:20 -0600] "GET / HTTP/1.1" \u0662\u0660\u0660 5',  # Arabic digits: \d
    'h - - [24/Feb/2008:00:09:20 -0600] "GET\t/ HTTP/1.1" 200 5',  # not METHOD PATH: all is the path
    'h - - [24/Feb/2008:00:09:20 -0600] "GET /a b c" 200 5',  # four words: all is the path
    'h - - [24/Feb/2008:00:09:20 -0600] "GET /a " 200 5',
    'h - - [24/Feb/2008:00:09:20 -0600] "" 400 0',
    'h - - [24/Feb/2008:00:09:20 -0600] "GET" 400 0',
    'h - - [24/Feb/2008:00:09:20 -0600] "GET /a\\b HTTP/1.0" 200 5',
    'h - - [24/Feb/2008:00:09:20 -0600] "GET /\\"x\\" HTTP/1.0" 200 5',
    'h - - [24/Xyz/2008:00:09:20 -0600] "GET / HTTP/1.1" 200 5',  # an unknown month: ts is ""
]
BAD = [
    "",
    "not a log line",
    'h - - [24/Feb/2008:00:09:20 -0600] "GET / HTTP/1.1" 2000 5',
    'h\u00a0x - - [24/Feb/2008:00:09:20 -0600] "GET / HTTP/1.1" 200 5',  # NBSP is \s to Python
    'h\x1c - - [24/Feb/2008:00:09:20 -0600] "GET / HTTP/1.1" 200 5',
]


def full_columns(block: bytes, names: frozenset[str]) -> Columns | None:
    """What the full parse makes of a block, as columns; None when a line does not parse."""
    text = block.decode("utf-8", "replace")
    rows = APACHE.findall(text)
    if len(rows) != text.count("\n"):
        return None
    return Columns.from_records(apache_records(rows, Dates(), Zones()), names)


def as_dict(cols: Columns | None, names: frozenset[str]) -> dict[str, list[Any]] | None:
    return None if cols is None else {n: cols.column(n) for n in sorted(names)}


def test_the_unicode_spaces_are_those_python_matches() -> None:
    spaces = {chr(c) for c in range(0x80, 0x110000) if re.match(r"\s", chr(c))}
    assert spaces == set(UNICODE_SPACES)


@pytest.mark.parametrize("names", [{"status"}, {"bytes"}, {"host", "status"}, {"ts", "user"}, set(FAST)])
def test_the_fast_path_gives_what_the_full_parse_gives(names: set[str]) -> None:
    wanted = frozenset(names)
    fast = ApacheColumns(wanted, Dates(), Zones())
    assert fast.fast
    rng = random.Random(7)
    for _ in range(300):
        lines = rng.choices(GOOD + BAD[:1] + BAD, k=rng.randint(1, 6))
        lines = rng.sample(GOOD, 1) + lines if rng.random() < 0.5 else lines
        block = ("\n".join(lines) + "\n").encode()
        got = fast.block(block)
        expected = full_columns(block, wanted)
        if got is not None:  # when the fast path answers, it is exactly the full parse's answer
            assert expected is not None, block
            assert as_dict(got, wanted) == as_dict(expected, wanted), block
        elif expected is not None:  # it may only decline on blocks with a doubt
            doubts = (b'\\"', b'x"', b"\xc3", b"\r", b"\t", b"Xyz", b'"-" "', b"\xd9")
            assert any(x in block for x in doubts), block


def test_a_block_of_plain_lines_takes_the_fast_path() -> None:
    plain = [line for line in GOOD if "\\" not in line and 'x"' not in line and "\u0662" not in line]
    block = ("\n".join(plain * 50) + "\n").encode()
    cols = ApacheColumns(frozenset({"status", "host", "ts"}), Dates(), Zones()).block(block)
    assert cols is not None and len(cols) == len(plain) * 50
    assert cols.column("ts")[0] == "2008-02-24T00:08:59-06:00"
    assert cols.column("status")[:2] == [404, 200]
    assert cols.column("method") == [MISSING] * len(cols)  # not made: reads as absent


def test_invalid_utf8_and_bad_lines_decline_the_fast_path() -> None:
    fast = ApacheColumns(frozenset({"host"}), Dates(), Zones())
    assert all(APACHE.match(line) is None for line in BAD)
    assert fast.block(b'h\xff - - [24/Feb/2008:00:09:20 -0600] "GET / HTTP/1.1" 200 5\n') is not None
    for bad in BAD:
        assert fast.block((GOOD[0] + "\n" + bad + "\n").encode()) is None


# -- whole pipelines -------------------------------------------------------------------------------


def make_log(path: Path, n: int = 3000, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    hosts = ["a.example.com", "b.example.org", "10.0.0.1", "c\u00e9.example", 'x"y']
    lines = []
    for i in range(n):
        if i % 97 == 5:
            lines.append(rng.choice(BAD[1:]))
            continue
        host, status = rng.choice(hosts), rng.choice([200, 200, 304, 404, 500])
        size = rng.choice(["-", str(rng.randint(0, 99999))])
        when = f"24/Feb/2008:00:{i % 60:02d}:{i % 59:02d} -0600"
        line = f'{host} - - [{when}] "GET /p{i % 7} HTTP/1.1" {status} {size}'
        if i % 5 == 0:
            line += ' "http://ref/" "Mozilla \\"quoted\\" 200 5"'
        lines.append(line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


def all_records(cli: Any, log: Path) -> list[dict[str, Any]]:
    r = cli("run", f"cat {log} | parse apache | jsonl")
    assert r.exit_code == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def tsv(counter: Counter[Any] | dict[Any, Any]) -> str:
    rows = sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return "".join(f"{k}\t{v}\n" for k, v in rows)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "access.log"
    make_log(path)
    return path


def test_count_by_status_on_columns_matches_the_records(cli: Any, log: Path) -> None:
    records = all_records(cli, log)
    r = cli("run", f"cat {log} | parse apache | count by status")
    assert r.exit_code == 0
    assert r.stdout == tsv(Counter(rec["status"] for rec in records))
    # the parse failures are reported as the full path reports them
    full = cli("run", f"cat {log} | parse apache | jsonl")
    assert r.stderr == full.stderr and "did not parse" in r.stderr


def test_where_and_count_by_two_fields_on_columns(cli: Any, log: Path) -> None:
    records = all_records(cli, log)
    r = cli("run", f"cat {log} | parse apache | where status>=300 host!=10.0.0.1 | count by host,status")
    assert r.exit_code == 0
    kept = Counter(
        (rec["host"], rec["status"]) for rec in records if rec["status"] >= 300 and rec["host"] != "10.0.0.1"
    )
    rows = sorted(kept.items(), key=lambda kv: (-kv[1], f"{kv[0][0]}\x00{kv[0][1]}"))
    assert r.stdout == "".join(f"{h}\t{s}\t{n}\n" for (h, s), n in rows)


def test_sum_top_uniq_and_count_on_columns(cli: Any, log: Path) -> None:
    records = all_records(cli, log)
    sums: dict[str, int] = {}
    for rec in records:
        sums[rec["host"]] = sums.get(rec["host"], 0) + rec["bytes"]
    r = cli("run", f"cat {log} | parse apache | sum bytes by host")
    assert r.stdout == tsv(sums)
    r = cli("run", f"cat {log} | parse apache | where ts~T00:1 | top 2 host")
    top = Counter(rec["host"] for rec in records if "T00:1" in rec["ts"])
    assert r.stdout == tsv(dict(sorted(top.items(), key=lambda kv: (-kv[1], kv[0]))[:2]))
    r = cli("run", f"cat {log} | parse apache | uniq -l host")
    assert r.stdout == "".join(f"{h}\n" for h in dict.fromkeys(rec["host"] for rec in records))
    r = cli("run", f"cat {log} | parse apache | where status=500 | count")
    assert r.stdout == f"{sum(rec['status'] == 500 for rec in records)}\n"


def test_keep_passes_failures_on_as_records_without_the_fields(cli: Any, log: Path) -> None:
    records = all_records(cli, log)
    r = cli("run", f"cat {log} | parse apache --keep | count by status")
    bad = sum(1 for line in log.read_text(encoding="utf-8").split("\n") if line and not APACHE.match(line))
    expected = Counter(rec["status"] for rec in records)
    rows = tsv(expected) + f"\t{bad}\n"  # the failures count under an empty value
    assert sorted(r.stdout.splitlines()) == sorted(rows.splitlines())


def test_json_records_become_columns_with_the_same_results(cli: Any, tmp_path: Path) -> None:
    rng = random.Random(5)
    rows = [
        {"level": rng.choice(["error", "info", None, True]), "service": rng.choice(["api", "db", {"n": 1}])}
        for _ in range(2000)
    ]
    for row in rows[::17]:
        del row["service"]
    path = tmp_path / "app.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n", encoding="utf-8")
    r = cli("run", f"cat {path} | parse json | where level=error | count by service")

    def key(row: dict[str, Any]) -> Any:
        service = row.get("service")
        return json.dumps(service, separators=(",", ":")) if isinstance(service, dict) else service

    expected = Counter(key(row) for row in rows if row["level"] == "error")
    got = {}
    for line in r.stdout.splitlines():
        key, n = line.rsplit("\t", 1)
        got[key] = int(n)
    assert got == {("" if k is None else k): v for k, v in expected.items()}
    assert "1 line(s) did not parse" in r.stderr


def test_explain_shows_the_plan_and_when_it_stops_at_records(cli: Any) -> None:
    r = cli("explain", "cat x | parse apache | where status>=400 | count by status")
    assert "planned: parse makes only status, as columns, by the block" in r.stdout
    r = cli("explain", "cat x | parse apache | head 5 | count by status")
    assert "planned: parse makes only status, as records" in r.stdout
    r = cli("explain", "cat x | parse apache | where status>=400 | print")
    assert "planned" not in r.stdout  # print reads every field
    r = cli("explain", "cat x | parse regex (?P<a>.) | head 3 | csv a")
    assert "planned" not in r.stdout  # the records would be the same
    r = cli("explain", "cat x | parse regex (?P<a>.) | count by a")
    assert "planned: hands on a as columns, by the block" in r.stdout


def test_fields_the_fast_path_does_not_make_come_from_the_full_regex(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "clean.log"
    lines = [line for line in make_log(path) if APACHE.match(line)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    records = all_records(cli, path)
    r = cli("run", f"cat {path} | parse apache | where referer~ref | count by method,path,agent")
    referred = [rec for rec in records if "ref" in rec.get("referer", "")]
    expected = Counter((rec["method"], rec["path"], rec["agent"]) for rec in referred)
    rows = sorted(expected.items(), key=lambda kv: (-kv[1], "\x00".join(map(str, kv[0]))))
    assert r.stdout == "".join(f"{m}\t{p}\t{a}\t{n}\n" for (m, p, a), n in rows)
    assert r.stderr == ""


def test_without_re2_the_results_are_the_same(cli: Any, log: Path) -> None:
    import subprocess
    import sys

    pipeline = f"cat {log} | parse apache | where status>=300 | count by host,status"
    hide = "import sys; sys.modules['re2'] = None; from cobus.cli import main; main()"
    slow = subprocess.run(
        [sys.executable, "-c", hide, "run", pipeline], capture_output=True, text=True, check=False
    )
    fast = cli("run", pipeline)
    assert (slow.returncode, slow.stdout, slow.stderr) == (fast.exit_code, fast.stdout, fast.stderr)
    assert fast.stdout.count("\n") > 5


def test_json_fields_are_decoded_alone_and_paths_from_whole_records(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "app.jsonl"
    lines = [
        '{"level": "error", "service": "api", "request": {"method": "GET"}, "n": 1}',
        '{"level": "error", "request": {"method": "PUT"}, "n": 2.5}',
        '{"level": "info", "service": null, "n": "3"}',
        '{"level": "error", "level": "info", "service": "dup"}',  # the last key wins, as in a dict
        "[1, 2]",
        "",
        '{"level": "error", "service": "api\\u00e9", "n": NaN}',  # NaN: only the standard library reads it
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = cli("run", f"cat {path} | parse json | where level=error | count by service")
    assert r.stdout == "\t1\napi\t1\napi\u00e9\t1\n"
    assert "1 line(s) did not parse (first: line 5)" in r.stderr
    r = cli("run", f"cat {path} | parse json | sum n by service")
    assert sorted(r.stdout.splitlines()) == ["\t2.5", "api\t1", "api\u00e9\tnan", "null\t3"]
    assert "sum n: 1 record(s) without a number in n were skipped" in r.stderr
    r = cli("run", f"cat {path} | parse json | where request.method=PUT | count by n")
    assert r.stdout == "2.5\t1\n"
    good = "\n".join(lines[:4]) + "\n"
    path.write_text(good, encoding="utf-8")
    assert cli("run", f"cat {path} | parse json | csv level,service").stdout == (
        "level,service\nerror,api\nerror,\ninfo,null\ninfo,dup\n"
    )
    r = cli("explain", f"cat {path} | parse json | head 9 | csv level,service")
    assert "planned: parse makes only level, service, as records" in r.stdout
    assert cli("run", f"cat {path} | parse json | head 9 | csv level,service").stdout == (
        "level,service\nerror,api\nerror,\ninfo,null\ninfo,dup\n"
    )


def test_logfmt_block_scan_gives_the_records_fields(cli: Any, tmp_path: Path) -> None:
    from cobus.stages._logfmt import logfmt_columns, logfmt_record

    lines = [
        'ts=1 level=error msg="a \\"quoted\\" b=2 word" service=api ok',
        "level=info service=db service=auth dotted.key=x",
        'level=error msg="\\x41 unknown escape" service="with space" ok=',
        'level=error =lonely "stray quote service=q',
        'level=error msg="unterminated service=z',
        "ok level=error",
    ]
    text = "\n".join(lines) + "\n"
    names = frozenset({"level", "service", "msg", "ok", "dotted.key", "missing"})
    cols = logfmt_columns(names)(text)
    assert cols is not None
    expected = Columns.from_records([logfmt_record(line) or {} for line in lines], names)
    assert as_dict(cols, names) == as_dict(expected, names)
    assert logfmt_columns(names)(text + "no pairs here\n") is None
    assert logfmt_columns(names)(text + "\n") is None  # a blank line: the line path skips it

    path = tmp_path / "app.log"
    path.write_text(text + "no pairs here\n" + text, encoding="utf-8")
    r = cli("run", f"cat {path} | parse logfmt | where level=error | count by service")
    assert r.stdout == "\t2\napi\t2\nq\t2\nwith space\t2\nz\t2\n"
    assert "1 line(s) did not parse (first: line 7)" in r.stderr


def test_columns_pass_through_broadcast_and_join_again(cli: Any, log: Path) -> None:
    records = all_records(cli, log)
    pipeline = f"cat {log} | parse apache | broadcast [where status=404] [where status=200] | count by host"
    assert "parse makes only host, status, as columns" in cli("explain", pipeline).stdout
    r = cli("run", pipeline)
    assert r.stdout == tsv(Counter(rec["host"] for rec in records if rec["status"] in (200, 404)))


@pytest.mark.parametrize(
    "tail",
    [
        "csv host,ts,bytes",
        "where status>=400 | table host,status",
        "csv --no-header status,nothing",
        "where bytes>1000 | count by host,status",
    ],
)
def test_csv_and_table_on_columns_write_what_they_write_from_records(cli: Any, log: Path, tail: str) -> None:
    """``head`` takes no columns, so with it in front the same sink gets whole records."""
    columns = cli("run", f"cat {log} | parse apache | {tail}")
    assert "as columns" in cli("explain", f"cat {log} | parse apache | {tail}").stdout
    records = cli("run", f"cat {log} | parse apache | head 1000000 | {tail}")
    same = (records.exit_code, records.stdout, records.stderr)
    assert (columns.exit_code, columns.stdout, columns.stderr) == same
    assert columns.stdout.count("\n") > 10


@pytest.mark.parametrize(
    "tail",
    [
        "count by status",
        "where status>=400 | count by host,status",
        "sum bytes by ident",
        "where ts~T0.:0 | top 5 host",
        "where method=GET | top 5 path",
        "uniq -l user",
        "csv time,ts,agent",
    ],
)
@pytest.mark.parametrize("name", ["samples", "real"])
def test_real_logs_give_the_same_on_both_paths(cli: Any, tail: str, name: str) -> None:
    from util import DATA, SAMPLES

    path = SAMPLES / "access.log" if name == "samples" else DATA / "access-log"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    columns = cli("run", f"cat {path} | parse apache | {tail}")
    records = cli("run", f"cat {path} | parse apache | head 100000000 | {tail}")
    same = (records.exit_code, records.stdout, records.stderr)
    assert (columns.exit_code, columns.stdout, columns.stderr) == same
    assert columns.exit_code == 0 and columns.stdout


def test_time_buckets_count_columns_as_they_count_records(cli: Any, log: Path) -> None:
    tail = "where status>=300 | count by status per 10m"
    assert (
        "parse makes only status, ts, as columns"
        in cli("explain", f"cat {log} | parse apache | {tail}").stdout
    )
    columns = cli("run", f"cat {log} | parse apache | {tail}")
    records = cli("run", f"cat {log} | parse apache | head 100000000 | {tail}")
    assert (columns.exit_code, columns.stdout, columns.stderr) == (
        records.exit_code,
        records.stdout,
        records.stderr,
    )
    assert columns.stdout.count("\n") > 5


@pytest.mark.parametrize(
    "branched",
    [
        "threaded [parse apache | where path~p1] | count by host",
        "subprocess [parse apache] | where status>=400 | csv host,bytes",
        "parallel 2 [parse apache | where bytes>100] | csv status,ts",
    ],
)
def test_a_branch_reads_only_what_is_read_after_its_stage(cli: Any, log: Path, branched: str) -> None:
    """The branch (and a worker rebuilding it, told by --reads) parses only those fields."""
    explained = cli("explain", f"cat {log} | {branched}").stdout
    assert "planned: parse makes only" in explained
    inline = branched.replace("threaded [", "").replace("subprocess [", "").replace("parallel 2 [", "")
    inline = inline.replace("]", "")
    got = cli("run", f"cat {log} | {branched}")
    expected = cli("run", f"cat {log} | {inline}")
    assert (got.exit_code, got.stdout) == (expected.exit_code, expected.stdout)
    assert got.stdout.count("\n") >= 5


def test_a_worker_plans_its_branch_with_the_fields_it_is_told() -> None:
    from cobus.spec import load_branch

    graph = load_branch("parse apache | where status>=400", "lines", reads=frozenset({"host"}))
    assert graph.nodes[0].needs == {"host", "status"}
    assert graph.nodes[0].plan is not None
    assert load_branch("parse apache", "lines").nodes[0].plan is None


@pytest.mark.parametrize("stage", ["threaded", "subprocess", "parallel 2"])
def test_branches_may_end_in_columns_and_hand_on_the_same(cli: Any, log: Path, stage: str) -> None:
    """threaded passes a branch's columns on; a worker's cross the wire as records."""
    for tail in ("count by status", "csv host,status"):
        branched = f"cat {log} | {stage} [parse apache | where status>=300] | {tail}"
        assert "as columns" in cli("explain", branched).stdout or tail.startswith("csv")
        got = cli("run", branched)
        expected = cli("run", f"cat {log} | parse apache | head 100000000 | where status>=300 | {tail}")
        assert (got.exit_code, got.stdout) == (expected.exit_code, expected.stdout)
