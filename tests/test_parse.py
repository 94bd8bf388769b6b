"""parse: apache, json, logfmt and regex lines become records; bad lines are counted, kept or fatal."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from util import collect, needs_data

from cobus.context import RunContext
from cobus.errors import StageError
from cobus.stages.parse import logfmt_record, parse

COMMON = b'140.180.132.213 - - [24/Feb/2008:00:08:59 -0600] "GET /ply/ply.html HTTP/1.1" 200 97238\n'
COMBINED = (
    b'1.2.3.4 - frank [10/Oct/2000:13:55:36 +0200] "GET /a.gif HTTP/1.0" 304 - '
    b'"http://example.com/" "Mozilla/4.08 (\\"quoted\\" part)"\r\n'
)


def run_parse(*blocks: bytes, **params: Any) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """Records sent on (flattened) and the batches as sent."""
    batches: list[list[dict[str, Any]]] = []
    p = parse(collect(batches), ctx=RunContext(stdout=io.BytesIO()), **params)
    try:
        for block in blocks:
            p.send(block)
    finally:
        p.close()
    return [r for b in batches for r in b], batches


def test_apache_common_fields() -> None:
    records, _ = run_parse(COMMON, format="apache")
    assert records == [
        {
            "host": "140.180.132.213",
            "ident": "-",
            "user": "-",
            "time": "24/Feb/2008:00:08:59 -0600",
            "ts": "2008-02-24T00:08:59-06:00",
            "method": "GET",
            "path": "/ply/ply.html",
            "protocol": "HTTP/1.1",
            "status": 200,
            "bytes": 97238,
        }
    ]


def test_apache_combined_adds_referer_and_agent_and_dash_bytes_is_zero() -> None:
    (rec,), _ = run_parse(COMBINED, format="apache")
    assert rec["user"] == "frank"
    assert rec["ts"] == "2000-10-10T13:55:36+02:00"
    assert (rec["status"], rec["bytes"]) == (304, 0)
    assert rec["referer"] == "http://example.com/"
    assert rec["agent"] == 'Mozilla/4.08 ("quoted" part)'


def test_apache_odd_request_is_kept_whole_in_path() -> None:
    line = b'10.0.0.1 - - [01/Jan/2020:00:00:00 +0000] "-" 408 -\n'
    (rec,), _ = run_parse(line, format="apache")
    assert (rec["method"], rec["path"], rec["protocol"], rec["status"]) == ("", "-", "", 408)


def test_apache_slow_path_gives_the_same_records_as_the_fast_path() -> None:
    # A bad line sends the block line by line; good lines must not change.
    fast, _ = run_parse(COMMON + COMBINED, format="apache")
    slow, _ = run_parse(COMMON + b"junk\n" + COMBINED, format="apache")
    assert slow == fast


def test_bad_lines_are_counted_and_reported_once(capsys: pytest.CaptureFixture[str]) -> None:
    records, batches = run_parse(COMMON + b"junk one\n\n", b"junk two\n" + COMMON, format="apache")
    assert len(records) == 2 and len(batches) == 2
    err = capsys.readouterr().err
    assert err == (
        "cobus: parse apache: 2 line(s) did not parse (first: line 2); skipped; --keep passes them on\n"
    )


def test_keep_passes_bad_lines_on_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    records, _ = run_parse(COMMON + b"junk\r\n" + COMMON, format="apache", keep=True)
    assert [r.get("_raw") for r in records] == [None, "junk", None]
    assert "passed on as _raw" in capsys.readouterr().err


def test_strict_names_the_line_number_across_blocks() -> None:
    with pytest.raises(StageError, match=r"parse apache: line 4 does not parse: 'oops'"):
        run_parse(COMMON * 2, COMMON + b"oops\n", format="apache", strict=True)


def test_invalid_utf8_is_replaced() -> None:
    records, _ = run_parse(b'{"msg": "caf\xc3\xa9 \xff"}\n', format="json")
    assert records == [{"msg": "café \ufffd"}]


def test_json_fast_and_slow_paths(capsys: pytest.CaptureFixture[str]) -> None:
    records, _ = run_parse(b'{"a": 1}\n{"a": 2, "b": [1]}\r\n', format="json")
    assert records == [{"a": 1}, {"a": 2, "b": [1]}]
    records, _ = run_parse(b'{"a": 1}\n\n[1, 2]\n{"a": \n{"a": 3}\n', format="json", keep=True)
    assert records == [{"a": 1}, {"_raw": "[1, 2]"}, {"_raw": '{"a": '}, {"a": 3}]
    assert "2 line(s) did not parse (first: line 3)" in capsys.readouterr().err


def test_logfmt() -> None:
    line = 'ts=2024-01-01T10:00:00Z level=info msg="hello \\"world\\"" duration_ms=512 cached empty='
    assert logfmt_record(line) == {
        "ts": "2024-01-01T10:00:00Z",
        "level": "info",
        "msg": 'hello "world"',
        "duration_ms": "512",
        "cached": True,
        "empty": "",
    }
    assert logfmt_record("just some words") is None
    records, _ = run_parse(b"a=1 b=2\nnot logfmt\n", format="logfmt")
    assert records == [{"a": "1", "b": "2"}]


def test_regex_named_groups_searched_in_each_line() -> None:
    pattern = r"(?P<ip>\S+) .* (?P<code>\d{3}) \d+(?: (?P<extra>x))?"
    records, _ = run_parse(COMMON + b"nothing here\n", format="regex", pattern=pattern)
    assert records == [{"ip": "140.180.132.213", "code": "200", "extra": None}]


def test_cli_parse_to_print(cli, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"level=error msg=boom\nlevel=info msg=ok\n")
    result = cli("run", f"cat {log} | parse logfmt | print")
    assert result.exit_code == 0
    assert result.stdout == "level=error msg=boom\nlevel=info msg=ok\n"
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ("parse", "parse needs FORMAT"),
        ("parse xml", "--format must be one of apache, json, logfmt, regex"),
        ("parse regex", "parse: regex needs a pattern"),
        ('parse regex "(\\d+)"', "parse: the pattern needs named groups"),
        ('parse regex "(?P<x"', "parse: bad regular expression"),
        ("parse json x", "parse: json takes no pattern"),
    ],
)
def test_bad_parameters_exit_2(cli, stage: str, message: str) -> None:
    result = cli("check", f"cat x | {stage} | print")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr


def test_strict_error_exits_1_and_flushes_what_came_before(cli, tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(COMMON + b"bad line\n")
    result = cli("run", f"cat {log} | parse apache --strict | count")
    assert result.exit_code == 1
    assert result.stdout == "1\n"
    assert "parse apache: line 2 does not parse: 'bad line'" in result.stderr


def test_real_access_log_parses_every_line(cli) -> None:
    path = needs_data("access-log")
    result = cli("run", f"cat {path} | parse apache --strict | count")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "7298\n", "")


REGEX_LINES = [
    "GET /a 200",
    "     ",
    "",
    "   ",
    "\t\r",
    "POST /caf\u00e9 404",
    "no match here",
    "GET /b 500\r",
    "GET /c 5000",
    "\u00a0",
    "HEAD /d 301 tail",
]


@pytest.mark.parametrize(
    "pattern",
    [
        r"GET (?P<path>\S+) (?P<code>\d{3})$",
        r"(?P<all>.*)GET",
        r"^(?P<word>\w+) /ca",
        r"(?P<code>\d{3})",  # no literal to look for: every line is searched
        r"(?P<blank>   )",  # a literal of white space: blank lines are picked
    ],
)
@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("invalid", [False, True])
def test_parse_regex_scanned_gives_what_the_line_path_gives(
    tmp_path: Path, pattern: str, keep: bool, invalid: bool
) -> None:
    """The Hyperscan-picked lines against COBUS_NO_HYPERSCAN=1 (every line searched by re)."""
    from util import run_cobus

    from cobus.grepengine import hyperscan_module
    from cobus.grepsyntax import required_literal
    from cobus.stages.parse import _regex

    body = ("\n".join(REGEX_LINES * 3) + "\n").encode() + (b"GET /\xff 200\n" if invalid else b"")
    scan = _regex(pattern).scan
    if hyperscan_module() is not None and not invalid and required_literal(pattern):
        assert scan is not None and scan(body) is not None  # this block takes the scanned path
    log = tmp_path / "x.log"
    log.write_bytes(body + ("\n".join(REGEX_LINES) + "\n").encode())
    pipeline = f"cat {log} | parse {'--keep ' if keep else ''}regex '{pattern}' | jsonl"
    scanned = run_cobus(["run", pipeline])
    plain = run_cobus(["run", pipeline], env={"COBUS_NO_HYPERSCAN": "1"})
    assert (scanned.returncode, scanned.stdout, scanned.stderr) == (
        plain.returncode,
        plain.stdout,
        plain.stderr,
    )
    assert scanned.stdout
