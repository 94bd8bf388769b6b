"""Time on an axis: ``count [by F] per D`` on real runs, its buckets, its errors and its chart."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from util import needs_data

from cobus.sinks._chart import BucketChart
from cobus.sinks.aggregate import View
from cobus.timebuckets import Bucket, Bucketer, split_per


def apache(when: str, status: int, host: str = "h") -> str:
    """One access-log line at ``when`` (``24/Feb/2008:10:00:05 -0600``)."""
    return f'{host} - - [{when}] "GET /a HTTP/1.1" {status} 10\n'


#: Several minutes, two offsets (11:03:10 -0500 is 10:03:10 -0600), out of
#: order at the end, a line whose month is unknown (no ts) and one that is
#: not an access-log line at all.
APACHE = [
    apache("24/Feb/2008:10:00:05 -0600", 200),
    apache("24/Feb/2008:10:00:40 -0600", 404),
    apache("24/Feb/2008:10:00:59 -0600", 200),
    apache("24/Feb/2008:10:01:00 -0600", 200),
    apache("24/Feb/2008:10:02:30 -0600", 500),
    apache("24/Feb/2008:11:03:10 -0500", 200),
    apache("24/Feb/2008:10:03:50 -0600", 404),
    apache("24/Foo/2008:10:04:00 -0600", 200),
    "not an access-log line\n",
    apache("24/Feb/2008:09:59:59 -0600", 301),
]


@pytest.fixture
def access_log(tmp_path: Path) -> Path:
    path = tmp_path / "access.log"
    path.write_text("".join(APACHE))
    return path


def test_count_by_status_per_minute_piped(cli, access_log: Path) -> None:
    r = cli("run", f"cat {access_log} | parse apache | count by status per 1m")
    assert r.exit_code == 0
    assert r.stdout == (
        "2008-02-24T09:59:00-06:00\t301\t1\n"
        "2008-02-24T10:00:00-06:00\t200\t2\n"
        "2008-02-24T10:00:00-06:00\t404\t1\n"
        "2008-02-24T10:01:00-06:00\t200\t1\n"
        "2008-02-24T10:02:00-06:00\t500\t1\n"
        "2008-02-24T11:03:00-05:00\t200\t1\n"  # one instant, shown in the offset it first came with
        "2008-02-24T11:03:00-05:00\t404\t1\n"
    )
    assert sorted(r.stderr.splitlines()) == [
        "cobus: count per 1m: 1 record(s) without a time in ts were skipped",  # the month "Foo"
        "cobus: parse apache: 1 line(s) did not parse (first: line 9); skipped; --keep passes them on",
    ]


def test_count_per_five_minutes_without_by_and_as_csv(cli, access_log: Path) -> None:
    r = cli("run", f"cat {access_log} | parse apache | count per 5m")
    assert (r.exit_code, r.stdout) == (0, "2008-02-24T09:55:00-06:00\t1\n2008-02-24T10:00:00-06:00\t7\n")
    r = cli("run", f"cat {access_log} | parse apache | count by host,status per 2m --csv")
    assert r.exit_code == 0
    assert r.stdout == (
        "bucket,host,status,count\n"
        "2008-02-24T09:58:00-06:00,h,301,1\n"
        "2008-02-24T10:00:00-06:00,h,200,3\n"
        "2008-02-24T10:00:00-06:00,h,404,1\n"
        "2008-02-24T10:02:00-06:00,h,200,1\n"  # 11:03:10 -0500 falls in 10:02-10:04 -0600
        "2008-02-24T10:02:00-06:00,h,404,1\n"
        "2008-02-24T10:02:00-06:00,h,500,1\n"
    )


def test_within_a_bucket_rows_sort_as_count_by_sorts(cli, tmp_path: Path) -> None:
    lines = [apache("24/Feb/2008:10:00:01 -0600", s) for s in (404, 200, 500, 200, 500, 301, 200)]
    (tmp_path / "a.log").write_text("".join(lines))
    per = cli("run", f"cat {tmp_path / 'a.log'} | parse apache | count by status per 1h")
    plain = cli("run", f"cat {tmp_path / 'a.log'} | parse apache | count by status")
    assert per.stdout == "".join(f"2008-02-24T10:00:00-06:00\t{row}\n" for row in plain.stdout.splitlines())
    assert plain.stdout == "200\t3\n500\t2\n301\t1\n404\t1\n"


JSON_LINES: list[Any] = [
    {"t": 1709287230, "level": "info"},  # 2024-03-01T10:00:30Z
    {"t": 1709287290.5, "level": "error"},  # 10:01:30.5Z
    {"t": "1709287200", "level": "info"},  # epoch seconds as text: 10:00:00Z
    {"t": "2024-03-01T10:00:30Z", "level": "error"},
    {"t": "2024-03-01T15:31:10+05:30", "level": "info"},  # 10:01:10Z, bucket 15:31 +05:30 = 10:01Z
    {"t": "2024-03-01 10:02:00", "level": "info"},  # no offset: shown without one
    {"t": "yesterday", "level": "info"},
    {"t": None, "level": "info"},
    {"t": True, "level": "info"},
    {"level": "info"},
    {"t": 1e300, "level": "info"},
    {"t": {"a": 1}, "level": "info"},
]


@pytest.fixture
def json_log(tmp_path: Path) -> Path:
    path = tmp_path / "app.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in JSON_LINES))
    return path


def test_json_epoch_and_iso_times_with_time_field(cli, json_log: Path) -> None:
    r = cli("run", f"cat {json_log} | parse json | count by level per 1m --time t")
    assert r.exit_code == 0
    assert r.stdout == (
        "2024-03-01T10:00:00+00:00\tinfo\t2\n"
        "2024-03-01T10:00:00+00:00\terror\t1\n"
        "2024-03-01T10:01:00+00:00\terror\t1\n"
        "2024-03-01T10:01:00+00:00\tinfo\t1\n"
        "2024-03-01T10:02:00\tinfo\t1\n"
    )
    assert r.stderr == "cobus: count per 1m: 6 record(s) without a time in t were skipped\n"


def test_without_time_field_every_record_is_skipped_not_a_crash(cli, json_log: Path) -> None:
    r = cli("run", f"cat {json_log} | parse json | count per 1m")
    assert (r.exit_code, r.stdout) == (0, "")
    assert r.stderr == (
        "cobus: count per 1m: 12 record(s) without a time in ts were skipped"
        " (--time FIELD names the field holding the time)\n"
    )


def test_buckets_start_on_the_logs_local_clock() -> None:
    hour = Bucketer(3600)
    assert str(hour.bucket("2024-03-01T10:45:00+05:30")) == "2024-03-01T10:00:00+05:30"
    day = Bucketer(86400)
    assert str(day.bucket("2008-02-24T23:59:59-06:00")) == "2008-02-24T00:00:00-06:00"
    assert str(day.bucket(86399.9)) == "1970-01-01T00:00:00+00:00"
    minute = Bucketer(60)
    first = minute.bucket("2008-02-24T10:03:10-06:00")
    assert minute.bucket("2008-02-24T11:03:59-05:00") is first  # one instant, one bucket
    assert minute.bucket(" 1203868990 ") == first
    assert [minute.bucket(v) for v in ("", "nan", "1e5", "99999999999999", True, [1])] == [None] * 6


def test_memoized_and_slow_paths_agree() -> None:
    values = ["2008-02-24T10:00:05-06:00", 1203868805, None, "2008-02-24T10:00:05-06:00", "x"]
    one = Bucketer(60)
    first = one.starts(values)  # fills the memo on the slow path
    assert one.starts(values) == first == [Bucketer(60).start(v) for v in values]
    assert first[0] == first[1] == 1203868800 and first[2] is None and first[4] is None


def test_the_minute_memo_never_lends_a_bucket_to_bad_text() -> None:
    minute = Bucketer(60)
    assert minute.starts(["2008-02-24T10:00:30-06:00"]) == [1203868800]
    batch = [
        "2008-02-24T10:00:59-06:00",  # the same minute: found by its key
        "2008-02-24T10:00:xx-06:00",
        "2008-02-24T10:00:60-06:00",  # no 60th second in fromisoformat
        "2008-02-24T10:00:-06:00",  # fromisoformat reads 10:00 (not a memo key: whole)
        "2008-02-24T10:00:59-05:00",  # another offset: another key, another minute
        "2008-02-24T10:00:59.5-06:00",
    ]
    assert minute.starts(batch) == [1203868800, None, None, 1203868800, 1203865200, 1203868800]
    assert minute.starts(batch) == [Bucketer(60).start(v) for v in batch]  # now all from the memo
    seconds = Bucketer(7)  # not whole minutes: every text is its own key
    assert seconds.starts(batch[:2]) == [1203868853, None]  # 7 s buckets on the local clock


@pytest.mark.parametrize(
    ("words", "split"),
    [
        (("by", "status", "per", "1m"), (("by", "status"), "1m")),
        (("per", "5m"), ((), "5m")),
        (("by", "status"), (("by", "status"), None)),
        (("by", "per"), (("by", "per"), None)),  # a field called per
        (("by", "per", "per", "1h"), (("by", "per"), "1h")),
    ],
)
def test_split_per(words: tuple[str, ...], split: Any) -> None:
    assert split_per(words) == split


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ("count per", "count: per needs a duration, e.g. per 1m"),
        ("count by status per", "count: per needs a duration"),
        ("count per 1m by status", "count: per DURATION comes last, e.g. count by status per 1m"),
        ("count per 1.5s", "count: per takes whole seconds (1s, 5m, 1h), not '1.5s'"),
        ("count per 10x", "count: not a duration: '10x'"),
        ("count by status --chart", "count: --chart needs per DURATION"),
        ("count --time t", "count: --time needs per DURATION"),
        ("count by per 1m", "count: 'by' needs at least one field"),
    ],
)
def test_bad_per_words_exit_2(cli, stage: str, message: str) -> None:
    r = cli("check", f"cat x | parse apache | {stage}")
    assert (r.exit_code, r.stdout) == (2, "")
    assert message in r.stderr


def test_the_planner_reads_the_time_field(cli) -> None:
    r = cli("explain", "cat x | parse json | count by level per 1m --time t")
    assert r.exit_code == 0
    assert "reads level, t" in r.stdout
    r = cli("explain", "cat x | parse apache | count per 1m")
    assert "reads ts" in r.stdout


def test_real_access_log_per_hour(cli) -> None:
    path = needs_data("access-log")
    per = cli("run", f"cat {path} | parse apache | count per 1h")
    assert (per.exit_code, per.stderr) == (0, "")
    rows = [line.split("\t") for line in per.stdout.splitlines()]
    assert sum(int(n) for _, n in rows) == 7298  # every record has a time
    assert [b for b, _ in rows] == sorted(b for b, _ in rows)


def test_chart_piped_writes_the_rows(cli, access_log: Path) -> None:
    chart = cli("run", f"cat {access_log} | parse apache | count by status per 1m --chart")
    rows = cli("run", f"cat {access_log} | parse apache | count by status per 1m")
    assert (chart.exit_code, chart.stdout) == (0, rows.stdout)


def render(chart: Any, *, width: int = 60, height: int = 25) -> str:
    console = Console(file=io.StringIO(), width=width, height=height, force_terminal=True, color_system=None)
    console.print(chart)
    return console.file.getvalue()  # type: ignore[attr-defined,no-any-return]


def view(rows: list[tuple[Any, ...]], *keys: str) -> View:
    return View(("bucket", *keys), "count", rows)


def minute(hhmm: str, offset: int = -6 * 3600) -> Bucket:
    b = Bucketer(60).bucket(f"2008-02-24T{hhmm}:00{'-06:00' if offset == -21600 else '-05:00'}")
    assert b is not None
    return b


def test_chart_one_series_with_gaps_drawn_and_folded() -> None:
    rows = [(minute("10:00"), 4), (minute("10:01"), 8), (minute("10:03"), 2), (minute("10:09"), 1)]
    assert render(BucketChart(view(rows), width=60, per="1m"), width=40) == (
        "count per 1m · 2008-02-24 · -06:00\n"
        "10:00  4 ████████████████\n"
        "10:01  8 ███████████████████████████████\n"
        "10:02  0 \n"
        "10:03  2 ████████\n"
        "    ⋮  5 buckets not shown\n"
        "10:09  1 ████\n"
    )


def test_chart_by_value_stacks_the_top_values_and_the_rest_as_other() -> None:
    rows = [
        (minute("10:00"), 200, 6),
        (minute("10:00"), 404, 2),
        (minute("10:00"), 500, 1),
        (minute("10:00"), 301, 1),
        (minute("10:00"), 302, 1),
        (minute("10:01"), 200, 2),
        (minute("10:01"), 301, 1),
        (minute("10:01"), None, 1),
    ]
    # 200: 8, then 301 and 404: 2 (ties by text), the rest (500, 302, none) as other.
    assert render(BucketChart(view(rows, "status"), width=60, per="1m"), width=50) == (
        "count by status per 1m · 2008-02-24 · -06:00\n"
        "█ 200  ▓ 301  ▒ 404  ░ other\n"
        "10:00  11 " + "█" * 22 + "▓" * 3 + "▒" * 8 + "░" * 7 + "\n"
        "10:01   4 " + "█" * 8 + "▓" * 3 + "░" * 4 + "\n"
    )


def test_chart_labels_carry_the_date_and_offset_when_they_differ() -> None:
    rows = [(minute("10:59"), 1), (minute("12:00", offset=-5 * 3600), 1)]
    text = render(BucketChart(view(rows), width=60, per="1m"), width=50)
    assert text.splitlines() == [
        "count per 1m · 2008-02-24",
        "10:59-06:00  1 " + "█" * 35,  # 50 columns: 11 + 2 + 1 + 1, and 35 for the bar
        "12:00-05:00  1 " + "█" * 35,
    ]


def test_live_chart_shows_the_latest_buckets_that_fit() -> None:
    rows = [(Bucket.at(1203868800 + 60 * i, -21600), i + 1) for i in range(30)]
    text = render(BucketChart(view(rows), width=60, per="1m", window=True), width=40, height=10)
    lines = text.splitlines()
    assert len(lines) == 9
    assert lines[:2] == ["count per 1m · 2008-02-24 · -06:00", "    ⋮  23 buckets not shown"]
    assert lines[2].startswith("10:23  24 ") and lines[-1].startswith("10:29  30 ")


pexpect = pytest.importorskip("pexpect")


def _spawn(pipeline: str) -> Any:
    # NO_COLOR: the bars' fill characters still tell the series apart, and no escape splits the text.
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "80", "LINES": "24", "NO_COLOR": "1"}
    return pexpect.spawn(
        sys.executable,
        ["-m", "cobus", "run", pipeline],
        env=env,
        timeout=60,
        dimensions=(24, 80),
        encoding="utf-8",
    )


def test_on_a_terminal_the_chart_is_printed_once(access_log: Path) -> None:
    child = _spawn(f"cat {access_log} | parse apache | count by status per 1m --chart")
    child.expect(pexpect.EOF)
    child.close()
    screen = child.before
    assert child.exitstatus == 0, screen
    assert "count by status per 1m · 2008-02-24" in screen
    assert "█ 200" in screen and "▓ 404" in screen
    for label in ("09:59-06:00", "10:00-06:00", "10:01-06:00", "10:02-06:00", "11:03-05:00"):
        assert screen.count(label) == 1, label


def test_on_a_terminal_a_followed_chart_is_redrawn_live(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("".join(apache(f"24/Feb/2008:10:00:{s:02d} -0600", 200) for s in range(3)))
    child = _spawn(f"follow --from-start {log} | parse apache | count per 1m --chart")
    try:
        child.expect("count per 1m", timeout=30)
        child.expect("10:00  3 █", timeout=30)
        with open(log, "a") as f:
            f.write("".join(apache(f"24/Feb/2008:10:02:{s:02d} -0600", 404) for s in range(6)))
        child.expect("10:01  0", timeout=30)  # a new frame: the empty minute drawn, then the new bucket
        child.expect("10:02  6 █", timeout=30)
        assert child.isalive()
    finally:
        child.kill(15)
        child.expect(pexpect.EOF, timeout=30)
        child.close()
