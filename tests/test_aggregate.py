"""Aggregating sinks: count [by], top, sum [by], uniq; their text, CSV, table and live output."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from util import needs_data

from cobus.context import RunContext
from cobus.core import drain
from cobus.errors import StageError
from cobus.sinks.aggregate import Report, View, count, parse_duration, rich_table, sum_, top, uniq

RECORDS = [
    {"status": 200, "host": "a", "bytes": 10},
    {"status": 404, "host": "b", "bytes": "5"},
    {"status": 200, "host": "b", "bytes": 7},
    {"status": 200, "host": "a"},
    {"status": 301, "host": "c\td", "bytes": "n/a"},
]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run_sink(factory: Any, batches: list[Any], **params: Any) -> str:
    out = io.BytesIO()
    drain(batches, factory(ctx=RunContext(stdout=out), **params))
    return out.getvalue().decode()


def test_count_without_by_counts_any_items() -> None:
    assert run_sink(count, [b"a\nb\n", b"c\n"]) == "3\n"
    assert run_sink(count, [RECORDS, RECORDS[:1]]) == "6\n"


def test_count_by_one_field_sorted_by_count_then_value() -> None:
    assert run_sink(count, [RECORDS[:2], RECORDS[2:]], by=["by", "status"]) == "200\t3\n301\t1\n404\t1\n"


def test_count_by_two_fields_missing_field_and_escaped_tab() -> None:
    text = run_sink(count, [[*RECORDS, {"status": 500}]], by=["by", "host,", "status"])
    assert text == "a\t200\t2\n\t500\t1\nb\t200\t1\nb\t404\t1\nc\\td\t301\t1\n"


def test_count_by_list_values_groups_by_the_whole_list() -> None:
    text = run_sink(count, [[{"tag": ["x", "y"]}, {"tag": ["x", "y"]}, {"tag": "x"}]], by=["by", "tag"])
    assert text == "x;y\t2\nx\t1\n"


def test_count_by_csv() -> None:
    text = run_sink(count, [RECORDS], by=["by", "host"], csv=True)
    assert text == "host,count\na,2\nb,2\nc\td,1\n"


def test_count_by_on_lines_is_a_stage_error() -> None:
    with pytest.raises(StageError, match="count by needs records"):
        run_sink(count, [b"x\n"], by=["by", "status"])


def test_top_limits_rows() -> None:
    assert run_sink(top, [RECORDS], n=2, field="host") == "a\t2\nb\t2\n"


def test_sum_total_and_by_with_skips(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_sink(sum_, [RECORDS], field="bytes") == "22\n"
    assert run_sink(sum_, [RECORDS], field="bytes", by=["by", "host"]) == "b\t12\na\t10\n"
    assert capsys.readouterr().err.count("sum bytes: 2 record(s) without a number in bytes were skipped") == 2
    assert run_sink(sum_, [[{"x": "1.5"}, {"x": 2}]], field="x") == "3.5\n"


def test_uniq_counts_or_lists_distinct_values() -> None:
    assert run_sink(uniq, [RECORDS[:3], RECORDS[3:]], field="host") == "3\n"
    assert run_sink(uniq, [RECORDS], field="host", values=True) == "a\nb\nc\\td\n"
    assert (
        run_sink(uniq, [RECORDS], field="host,status", values=True) == "a\t200\nb\t404\nb\t200\nc\\td\t301\n"
    )


def test_parse_duration() -> None:
    assert [parse_duration(t) for t in ("10s", "500ms", "2m", "1h", "3")] == [10, 0.5, 120, 3600, 3]
    for bad in ("", "0", "-1s", "10x"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)


def test_every_prints_snapshots_separated_by_a_blank_line() -> None:
    out, clock = io.BytesIO(), Clock()
    ctx = RunContext(stdout=out, clock=clock)
    sink = count(by=["by", "status"], every="10s", ctx=ctx)
    sink.send(RECORDS[:2])
    clock.now += 9
    sink.send(RECORDS[2:3])  # not due yet
    assert out.getvalue() == b""
    clock.now += 1
    sink.send(RECORDS[3:4])
    assert out.getvalue() == b"200\t3\n404\t1\n"
    sink.close()
    assert out.getvalue() == b"200\t3\n404\t1\n\n200\t3\n404\t1\n"


def test_rich_table_exact_text() -> None:
    console = Console(file=io.StringIO(), width=40, force_terminal=True, color_system=None)
    view = View.ranked(["host", "status"], "count", {("a", 200): 2, (None, 404): 1})
    console.print(rich_table(view))
    assert console.file.getvalue() == (  # type: ignore[attr-defined]
        "host    status  count\na       200         2\n(none)  404         1\n"
    )


def test_live_report_redraws_at_most_twice_a_second() -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=40, force_terminal=True, color_system=None)
    clock = Clock()
    report = Report(io.BytesIO(), clock=clock, console=console, live=True)
    draws = 0
    for step in range(10):  # 10 batches, 0.2 s apart: drawn at 0, 0.6, 1.2, 1.8
        clock.now += 0.2 if step else 0
        if report.due():
            report.show(View.single("count", step))
            draws += 1
    report.final(View.single("count", 99))
    assert draws == 4
    assert buf.getvalue().endswith("\r\x1b[2K99\n\x1b[?25h")
    assert "\x1b[" in buf.getvalue()  # cursor movement: redrawn in place


def test_terminal_without_live_source_prints_the_table_once() -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=40, force_terminal=True, color_system=None)
    report = Report(io.BytesIO(), clock=Clock(), console=console, live=False)
    assert not report.due()
    report.final(View.ranked(["status"], "count", {200: 3}))
    assert buf.getvalue() == "status  count\n200         3\n"


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ("count status", "count: expected 'by FIELD[,FIELD]', not 'status'"),
        ("count by", "count: 'by' needs at least one field"),
        ("count by status --every 10x", "count: not a duration: '10x'"),
        ("top 0 path", "top: needs a count of 1 or more"),
        ("top path", "n takes a number, not 'path'"),
        ("sum bytes per host", "sum: expected 'by FIELD[,FIELD]', not 'per host'"),
    ],
)
def test_bad_parameters_exit_2(cli, stage: str, message: str) -> None:
    result = cli("check", f"cat x | parse apache | {stage}")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr


def test_cli_count_by_lines_is_an_error(cli, tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x\n")
    result = cli("run", f"cat {tmp_path / 'a'} | count by status")
    assert result.exit_code == 2  # caught when the pipeline is validated, before it runs
    assert result.stdout == ""
    assert "count takes records, but lines arrive here (put parse or records before it)" in result.stderr


def test_real_access_log_status_counts(cli) -> None:
    path = needs_data("access-log")
    result = cli("run", f"cat {path} | parse apache | count by status")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout == "200\t4676\n404\t2053\n304\t328\n302\t89\n301\t83\n206\t51\n403\t18\n"


@pytest.mark.parametrize(
    ("sink", "expected"),
    [
        ("uniq host", "1353\n"),
        ("sum bytes", "230741830\n"),
        ("count by method --csv", "method,count\nGET,7117\nPOST,165\nHEAD,16\n"),
    ],
)
def test_real_access_log_facts(cli, sink: str, expected: str) -> None:
    path = needs_data("access-log")
    result = cli("run", f"cat {path} | parse apache | {sink}")
    assert (result.exit_code, result.stdout, result.stderr) == (0, expected, "")


def test_real_access_log_robots_txt(cli) -> None:
    path = needs_data("access-log")
    result = cli("run", f"cat {path} | parse apache | count by path")
    assert result.exit_code == 0 and result.stderr == ""
    rows = dict(line.split("\t") for line in result.stdout.splitlines())
    assert rows["/robots.txt"] == "191"
