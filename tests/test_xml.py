"""xml: the event source (expat, lxml, sax give identical events) and the incremental xml stage."""

from __future__ import annotations

import gzip
import io
import itertools
from pathlib import Path
from typing import Any

import pytest
from util import SAMPLES, collect

from cobus.context import RunContext
from cobus.errors import SourceError
from cobus.sources.xml import xml_source, xml_stream

PARSERS = ["expat", "lxml", "sax"]
BUSES = SAMPLES / "buses.xml"

#: Namespaces, CDATA, entities, attributes, repeated children, comments, PIs, CRLF, UTF-8.
TRICKY = (
    '<?xml version="1.0" encoding="UTF-8"?>\r\n'
    "<!-- a comment before the root -->\r\n"
    '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:geo="http://www.w3.org/2003/01/geo/wgs84_pos#">\r\n'
    '  <bus id="7589" geo:kind="x &amp; y" note=\'single "quoted"\'>\r\n'
    "    <route>22</route>\r\n"
    "    <stop>Clark &amp; Lake</stop>\r\n"
    "    <stop><![CDATA[Belmont <& Halsted>]]></stop>\r\n"
    "    <stop>  Howard &#x2013; Terminal  </stop>\r\n"
    "    <geo:lat>41.9</geo:lat>\r\n"
    "    <desc>mixed <b>bold</b> and <!-- note --> more<?pi data?> text</desc>\r\n"
    "    <empty/>\r\n"
    "    <crlf>a\r\nb</crlf>\r\n"
    "    <uni>Zürich \u2013 東京 🚌</uni>\r\n"
    "  </bus>\r\n"
    '  <bus id="2"><route>9</route><bus><route>nested</route></bus></bus>\r\n'
    "</feed>\r\n"
).encode()

LATIN1 = b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<r><bus><name>caf\xe9</name></bus></r>\n'


def events_of(path: Path, parser: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run the xml source on a file; the events it sent, flattened."""
    batches: list[list[tuple[Any, ...]]] = []
    task = xml_source(
        collect(batches), path=str(path), parser=parser, ctx=RunContext(stdout=io.BytesIO()), **params
    )
    for _ in task:
        pass
    return [e for b in batches for e in b]


def stream_events(chunks: list[bytes], **params: Any) -> list[tuple[Any, ...]]:
    """Push chunks through the xml stage; the events it sent, flattened."""
    batches: list[list[tuple[Any, ...]]] = []
    stage = xml_stream(collect(batches), ctx=RunContext(stdout=io.BytesIO()), **params)
    for chunk in chunks:
        stage.send(chunk)
    stage.close()
    return [e for b in batches for e in b]


def write(tmp_path: Path, data: bytes, name: str = "doc.xml") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_event_shape(tmp_path: Path) -> None:
    path = write(tmp_path, b'<r a="1"><x>hi</x>tail<y/></r>')
    for parser in PARSERS:
        assert events_of(path, parser) == [
            ("start", "r", {"a": "1"}),
            ("start", "x", {}),
            ("text", "hi"),
            ("end", "x"),
            ("text", "tail"),
            ("start", "y", {}),
            ("end", "y"),
            ("end", "r"),
        ], parser


def test_namespaces_in_clark_notation(tmp_path: Path) -> None:
    path = write(tmp_path, b'<r xmlns="urn:a" xmlns:b="urn:b" b:c="1" d="2"><b:x/></r>')
    for parser in PARSERS:
        assert events_of(path, parser) == [
            ("start", "{urn:a}r", {"{urn:b}c": "1", "d": "2"}),
            ("start", "{urn:b}x", {}),
            ("end", "{urn:b}x"),
            ("end", "{urn:a}r"),
        ], parser


@pytest.mark.parametrize("doc", [TRICKY, LATIN1, BUSES.read_bytes()], ids=["tricky", "latin1", "buses"])
def test_all_parsers_emit_identical_events(tmp_path: Path, doc: bytes) -> None:
    path = write(tmp_path, doc)
    expat = events_of(path, "expat")
    assert expat
    assert events_of(path, "lxml") == expat
    assert events_of(path, "sax") == expat
    # text is one event per run: never two in a row
    kinds = [e[0] for e in expat]
    assert all(not (a == b == "text") for a, b in itertools.pairwise(kinds))


def test_text_is_merged_and_decoded(tmp_path: Path) -> None:
    path = write(tmp_path, TRICKY)
    texts = [e[1] for e in events_of(path, "lxml") if e[0] == "text"]
    assert "Belmont <& Halsted>" in texts
    assert "a\nb" in texts  # CRLF normalized, as XML requires
    assert " and  more text" in texts  # comment and PI dropped, text joined
    assert "Zürich \u2013 東京 🚌" in texts
    assert events_of(write(tmp_path, LATIN1, "l.xml"), "sax")[3] == ("text", "café")


def test_big_blocks_with_a_text_run_across_them(tmp_path: Path) -> None:
    # A text run longer than a read block (1 MiB) and expat's buffer.
    long = "x" * (3 << 20)
    path = write(tmp_path, f"<r><a>{long}</a></r>".encode())
    for parser in PARSERS:
        assert events_of(path, parser)[2] == ("text", long), parser


def test_gzip_file(tmp_path: Path) -> None:
    path = tmp_path / "buses.xml.gz"
    path.write_bytes(gzip.compress(BUSES.read_bytes()))
    assert events_of(path, "expat") == events_of(BUSES, "expat")


def test_events_stage_prints_readable_lines(cli, tmp_path: Path) -> None:
    path = write(tmp_path, b'<r>\n  <bus n="1"><id>7</id></bus>\n</r>\n')
    r = cli("run", f"xml {path} | events | print")
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == (
        'start r\n  start bus n="1"\n    start id\n      text "7"\n    end id\n  end bus\nend r\n'
    )
    r = cli("run", f"xml {path} | events --all | head 2 | print")
    assert r.stdout == 'start r\n  text "\\n  "\n'


def test_stdin_source(cli) -> None:
    r = cli("run", "xml - | records bus | head 2 | csv id,route", input=BUSES.read_bytes())
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == "id,route\n7589,197\n7427,101\n"


def test_head_stops_reading_early(cli) -> None:
    for parser in PARSERS:
        r = cli("run", f"xml --parser {parser} {BUSES} | records bus | head 1 | csv id")
        assert (r.exit_code, r.stdout, r.stderr) == (0, "id\n7589\n", ""), parser


def test_trailing_content_is_an_error_without_recover(tmp_path: Path) -> None:
    path = write(tmp_path, b"<r><bus/></r>\n<r/>\n")
    for parser in PARSERS:
        with pytest.raises(SourceError, match=r"doc\.xml:2:1: "):
            events_of(path, parser)


def test_recover_option_needs_expat(cli) -> None:
    r = cli("check", f"xml --recover --parser lxml {BUSES} | records bus")
    assert r.exit_code == 2
    assert "--recover" in r.stderr
    assert r.stdout == ""


# -- the xml stage: bytes arriving in pieces -------------------------------


def test_stage_splits_anywhere_give_the_same_events() -> None:
    doc = '<r a="é"><bus><name>Zürich &amp; 東京</name><x><![CDATA[<&>]]></x></bus></r>\n'.encode()
    whole = stream_events([doc])
    assert whole[0] == ("start", "r", {"a": "é"})
    # every split point: inside tags, entities, CDATA markers and multi-byte characters
    for i in range(1, len(doc)):
        assert stream_events([doc[:i], doc[i:]]) == whole, i
    assert stream_events([bytes([b]) for b in doc]) == whole


def test_stage_sends_each_element_as_its_bytes_arrive() -> None:
    batches: list[list[tuple[Any, ...]]] = []
    stage = xml_stream(collect(batches), ctx=RunContext(stdout=io.BytesIO()))
    stage.send(b"<feed>\n<bus><id>1</id></bus>\n")
    assert ("end", "bus") in batches[-1]
    stage.send(b"<bus><id>2</id></bus>\n")
    assert batches[-1][-1] == ("end", "bus")
    stage.send(b"</feed>\n")
    stage.close()


def test_stage_reads_documents_back_to_back() -> None:
    docs = (
        b'<?xml version="1.0"?>\n<r><bus><id>1</id></bus></r>\n'
        b'<?xml version="1.0"?>\n<r><bus><id>2</id></bus></r>\n'
        b"<r><bus><id>3</id></bus></r><!-- trailing comment -->\n\n"
    )
    for chunks in (
        [docs],
        [docs[:40], docs[40:70], docs[70:]],
        [docs[i : i + 7] for i in range(0, len(docs), 7)],
    ):
        texts = [e[1] for e in stream_events(chunks) if e[0] == "text"]
        assert texts == ["1", "2", "3"]


def test_stage_error_names_the_line_in_the_whole_stream() -> None:
    docs = b"<r>\n<a/>\n</r>\n<r>\n<a>\n</b>\n</r>\n"
    with pytest.raises(SourceError, match=r"^<xml stream>:6:3: mismatched tag$"):
        stream_events([docs])


def test_stage_recover_skips_a_bad_document(capsys: pytest.CaptureFixture[str]) -> None:
    docs = (
        b'<?xml version="1.0"?>\n<r><bus><id>1</id></bus></r>\n'
        b'<?xml version="1.0"?>\n<r><bus><id>2</id></bux></r>\n'
        b'<?xml version="1.0"?>\n<r><bus><id>3</id></bus></r>\n'
    )
    for chunks in ([docs], [docs[i : i + 5] for i in range(0, len(docs), 5)]):
        texts = [e[1] for e in stream_events(chunks, recover=True) if e[0] == "text"]
        assert texts == ["1", "2", "3"]  # "2" was whole before the error
        err = capsys.readouterr().err
        assert err == "cobus: <xml stream>:4:21: mismatched tag (document skipped)\n"


def test_stage_pipeline_with_cat(cli) -> None:
    r = cli("run", f"cat {BUSES} {BUSES} | xml | records bus | count")
    assert (r.exit_code, r.stderr) == (0, "")
    single = cli("run", f"xml {BUSES} | records bus | count").stdout
    assert int(r.stdout) == 2 * int(single)


def test_stage_empty_input_is_no_error() -> None:
    assert stream_events([]) == []
    assert stream_events([b"\n  \n"]) == []


def test_source_recover_skips_bad_documents(cli, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        b'<?xml version="1.0"?>\n<r><bus><id>1</id></bus></r>\n'
        b'<?xml version="1.0"?>\n<r><bus><id>2</bus></r>\n'
        b'<?xml version="1.0"?>\n<r><bus><id>3</id></bus></r>\n',
    )
    r = cli("run", f"xml --recover {path} | records bus | csv id")
    assert r.exit_code == 0
    assert r.stdout == "id\n1\n3\n"
    assert r.stderr.count("\n") == 1
    assert f"{path}:4:16: mismatched tag (document skipped)" in r.stderr
