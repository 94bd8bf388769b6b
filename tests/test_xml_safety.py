"""XML safety and bad input, for every parser: XXE, external DTDs, entity bombs, malformed, empty, not XML."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

PARSERS = ["expat", "lxml", "sax"]
SECRET = "TOP-SECRET-4242"

LAUGHS = "".join(
    f' <!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, 10)
)  # each level ten times the one before: 10**9 "lol"s
BILLION_LAUGHS = (
    f'<?xml version="1.0"?>\n<!DOCTYPE r [\n <!ENTITY lol0 "lol">\n{LAUGHS}]>\n'
    "<r><bus><id>&lol9;</id></bus></r>\n"
)


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    return path


def run(cli, tmp_path: Path, doc: str | bytes, parser: str, *options: str) -> tuple[int, str, str]:
    path = tmp_path / "doc.xml"
    path.write_bytes(doc.encode() if isinstance(doc, str) else doc)
    r = cli("run", f"xml --parser {parser} {' '.join(options)} {path} | records bus | csv id")
    return r.exit_code, r.stdout, r.stderr.replace(str(path), "DOC")


def one_error_line(stderr: str) -> str:
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("cobus: error: ")
    return stderr.removeprefix("cobus: error: ").rstrip("\n")


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("allow", [False, True])
def test_external_entity_never_leaks_a_local_file(
    cli, tmp_path: Path, secret: Path, parser: str, allow: bool
) -> None:
    doc = f'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "file://{secret}">]>\n<r><bus><id>&xxe;</id></bus></r>\n'
    code, out, err = run(cli, tmp_path, doc, parser, *(["--allow-entities"] if allow else []))
    assert code == 1
    assert SECRET not in out + err
    assert out == "id\n"  # csv writes its header whatever happens
    line = one_error_line(err)
    assert line.startswith("DOC:")
    assert "entity" in line.lower()


@pytest.mark.parametrize("parser", PARSERS)
def test_external_dtd_is_never_loaded(cli, tmp_path: Path, secret: Path, parser: str) -> None:
    doc = f'<?xml version="1.0"?>\n<!DOCTYPE r SYSTEM "file://{secret}">\n<r><bus><id>1</id></bus></r>\n'
    code, out, err = run(cli, tmp_path, doc, parser)
    assert (code, out) == (1, "id\n")
    assert "external DTD" in one_error_line(err)
    assert SECRET not in err
    # with --allow-entities the document is read, the DTD still is not (it is not even valid DTD text)
    assert run(cli, tmp_path, doc, parser, "--allow-entities") == (0, "id\n1\n", "")


@pytest.mark.parametrize("parser", PARSERS)
def test_billion_laughs_is_refused_fast(cli, tmp_path: Path, parser: str) -> None:
    for options in ((), ("--allow-entities",)):
        started = time.monotonic()
        code, out, err = run(cli, tmp_path, BILLION_LAUGHS, parser, *options)
        elapsed = time.monotonic() - started
        assert (code, out) == (1, "id\n"), options
        assert one_error_line(err).startswith("DOC:")
        assert elapsed < 2.0, (options, elapsed)  # a safety bound, not a speed test


@pytest.mark.parametrize("parser", PARSERS)
def test_declared_entities_need_opt_in(cli, tmp_path: Path, parser: str) -> None:
    doc = '<!DOCTYPE r [<!ENTITY co "Chicago &amp; Co">]>\n<r><bus><id>&co;</id></bus></r>\n'
    code, out, err = run(cli, tmp_path, doc, parser)
    assert (code, out) == (1, "id\n")
    line = one_error_line(err)
    assert "declares the entity 'co'" in line and "--allow-entities" in line
    assert run(cli, tmp_path, doc, parser, "--allow-entities") == (0, "id\nChicago & Co\n", "")


@pytest.mark.parametrize("parser", PARSERS)
def test_undefined_entity_is_an_error(cli, tmp_path: Path, parser: str) -> None:
    code, out, err = run(cli, tmp_path, "<r><bus><id>1&nope;</id></bus></r>", parser)
    assert (code, out) == (1, "id\n")
    assert one_error_line(err).startswith("DOC:1:")


MALFORMED = {
    "truncated": b"<r>\n<bus><id>1</id></bus>\n<bus><id>2</id></bus>\n<bus><id>3",
    "mismatched": b"<r>\n<bus><id>1</id></bus>\n<bus><id>2</id></bus>\n<bus><id>3</id></bux>\n</r>\n",
    "bad byte": b"<r>\n<bus><id>1</id></bus>\n<bus><id>2</id></bus>\n<bus><id>\xff</id></bus></r>\n",
}


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("kind", list(MALFORMED))
def test_malformed_keeps_records_before_the_error(cli, tmp_path: Path, parser: str, kind: str) -> None:
    code, out, err = run(cli, tmp_path, MALFORMED[kind], parser)
    assert code == 1
    assert out == "id\n1\n2\n"
    line = one_error_line(err)
    location, _, message = line.partition(": ")
    file, row, column = location.split(":")
    assert (file, row) == ("DOC", "4")
    assert int(column) >= 1 and message


@pytest.mark.parametrize("parser", PARSERS)
def test_malformed_records_reach_a_real_process_stdout(tmp_path: Path, parser: str) -> None:
    from util import run_cobus

    path = tmp_path / "bad.xml"
    path.write_bytes(MALFORMED["mismatched"])
    p = run_cobus(["run", f"xml --parser {parser} {path} | records bus | csv id"])
    assert p.returncode == 1
    assert p.stdout == b"id\n1\n2\n"
    assert p.stderr.decode().startswith(f"cobus: error: {path}:4:")
    assert p.stderr.count(b"\n") == 1


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(("doc", "expected"), [
    (b"", "DOC: no XML document (the input is empty)"),
    (b"  \n\n", "DOC: no XML document (the input is empty)"),
    (b"GET / HTTP/1.1 200\n", "DOC:1: not an XML document (it starts with 'GET / HTTP/1.1 200\\n')"),
])  # fmt: skip
def test_empty_or_not_xml(cli, tmp_path: Path, parser: str, doc: bytes, expected: str) -> None:
    code, out, err = run(cli, tmp_path, doc, parser)
    assert (code, out) == (1, "id\n")
    assert one_error_line(err) == expected


def test_missing_file(cli, tmp_path: Path) -> None:
    r = cli("run", f"xml {tmp_path / 'nope.xml'} | records bus | count")
    assert r.exit_code == 1
    assert "nope.xml: No such file or directory" in one_error_line(r.stderr)
