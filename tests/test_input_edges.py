"""Inputs at their edges, run as a user runs them: missing files, exact XML bytes,
odd encodings, a closed stdin, a mistyped port. Exit status and stderr are
checked on the real ``cobus`` process.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from util import SAMPLES, run_cobus

from cobus.sources.listen import parse_address

LOG = SAMPLES / "access.log"
LINES = LOG.read_bytes().count(b"\n")


def test_cat_reports_a_missing_file_and_goes_on(tmp_path: Path) -> None:
    missing = tmp_path / "missing.log"
    done = run_cobus(["run", f"cat {missing} {LOG} | count"])
    assert (done.returncode, done.stdout) == (1, b"%d\n" % LINES)
    assert done.stderr == f"cobus: error: {missing}: No such file or directory\n".encode()


def test_cat_names_every_file_it_could_not_read(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"not gzip at all\n")
    done = run_cobus(["run", f"cat nope.log {bad} {LOG} | count"])
    assert (done.returncode, done.stdout) == (1, b"%d\n" % LINES)
    [line] = done.stderr.decode().splitlines()
    assert line.startswith("cobus: error: nope.log: No such file or directory; ")
    assert f"{bad}: Not a gzipped file" in line


def test_cat_stops_at_bad_xml_downstream_not_at_the_next_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"<a>\n")
    done = run_cobus(["run", f"cat {bad} {SAMPLES / 'buses.xml'} | xml | events | count"])
    assert done.returncode == 1
    assert done.stderr.startswith(b"cobus: error: <xml stream>:2:1:")


def test_cat_into_xml_parses_the_exact_bytes(tmp_path: Path) -> None:
    """No final newline: cat would add one byte, half a UTF-16 unit."""
    encoding = "utf-16"
    text = '<?xml version="1.0" encoding="UTF-16"?>\n<buses><bus><id>1</id><route>é</route></bus></buses>'
    path = tmp_path / "doc.xml"
    path.write_bytes(text.encode(encoding))
    done = run_cobus(["run", f"cat {path} | xml | records bus | csv id,route"])
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.decode() == "id,route\n1,é\n"
    piped = run_cobus(["run", "cat - | xml | records bus | csv id,route"], input=path.read_bytes())
    assert (piped.returncode, piped.stdout) == (0, done.stdout)


def test_explain_shows_the_exact_bytes_fusion() -> None:
    done = run_cobus(["explain", "cat a.xml | xml | records bus | count"])
    assert done.returncode == 0
    assert b"exactly as they are" in done.stdout


@pytest.mark.parametrize("parser", ["expat", "sax", "lxml"])
def test_an_unknown_encoding_is_one_line(tmp_path: Path, parser: str) -> None:
    path = tmp_path / "enc.xml"
    path.write_bytes(b'<?xml version="1.0" encoding="bogus-enc"?>\n<a><b>1</b></a>\n')
    done = run_cobus(["run", f"xml --parser {parser} {path} | events | count"])
    assert done.returncode == 1
    [line] = done.stderr.decode().splitlines()
    assert line.startswith(f"cobus: error: {path}:1")
    assert line.endswith("Unsupported encoding: bogus-enc")
    streamed = run_cobus(["run", f"cat {path} | xml | events | count"])
    assert streamed.returncode == 1
    assert streamed.stderr == b"cobus: error: <xml stream>:1: Unsupported encoding: bogus-enc\n"


def _close_stdin() -> None:
    os.close(0)


@pytest.mark.parametrize(
    ("pipeline", "name"), [("cat - | count", "-"), ("xml - | events | count", "<stdin>")]
)
def test_a_closed_stdin_is_one_line(pipeline: str, name: str) -> None:
    done = run_cobus(["run", pipeline], stdin=None, preexec_fn=_close_stdin)
    assert done.returncode == 1
    assert done.stderr == f"cobus: error: {name}: Bad file descriptor\n".encode()


@pytest.mark.parametrize(
    "address", ["tcp://127.0.0.1:abc", "tcp://127.0.0.1:99999", "tcp://:-1", "tcp://[::1"]
)
def test_a_bad_port_is_refused_in_our_words(address: str) -> None:
    with pytest.raises(ValueError, match="tcp://") as caught:
        parse_address(address)
    assert "cast to integer" not in str(caught.value) and "Invalid" not in str(caught.value)
    done = run_cobus(["check", f'listen "{address}" | count'])
    assert done.returncode == 2
    assert b"is not tcp://HOST:PORT" in done.stderr or b"the port must be a number" in done.stderr
    assert b"^" in done.stderr


@pytest.mark.parametrize(
    ("pipeline", "says"),
    [
        ("cat a\\u0000b | count", b"cobus: error: 'a\\x00b': a file name cannot hold a NUL byte\n"),
        (
            f"cat {LOG} | write out\\u0000.log",
            b"cobus: error: 'out\\x00.log': a file name cannot hold a NUL byte\n",
        ),
    ],
)
def test_a_nul_byte_in_a_file_name_is_one_line(tmp_path: Path, pipeline: str, says: bytes) -> None:
    """Only a TOML file can write a NUL (as \\u0000); open() would raise a bare ValueError."""
    path = tmp_path / "nul.toml"
    path.write_text(f'pipeline = "{pipeline}"\n')
    done = run_cobus(["run", str(path)], cwd=tmp_path)
    assert (done.returncode, done.stderr) == (1, says)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400"])
def test_an_infinite_number_is_refused_where_it_is_written(value: str) -> None:
    done = run_cobus(["check", f"cat {LOG} | multiline --python --timeout {value} | count"])
    assert done.returncode == 2
    assert done.stderr.startswith(f"cobus: error: timeout takes a finite number, not '{value}'".encode())


@pytest.mark.parametrize(
    ("sink", "want"),
    [
        # Issue 10: objects and arrays group by their compact JSON text.
        ("count by a", '{"c":1}\t2\n[1,{"b":null}]\t1\n'),
        ("uniq -l a", '[1,{"b":null}]\n{"c":1}\n'),
        ("top 1 a", '{"c":1}\t2\n'),
    ],
)
def test_a_json_object_field_groups_by_its_text(tmp_path: Path, sink: str, want: str) -> None:
    """Found by hunting: an object inside a field was an unhashable dict (TypeError)."""
    path = tmp_path / "app.jsonl"
    path.write_text('{"a": [1, {"b": null}]}\n{"a": {"c": 1}}\n{"a": {"c": 1}}\n')
    done = run_cobus(["run", f"cat {path} | parse json | {sink}"])
    assert (done.returncode, done.stdout.decode(), done.stderr) == (0, want, b"")
