"""The three XML parsers (and the fused lxml records loop) agree, as the README promises.

Hand-made cases from the W3C conformance suite's disagreements, then a
property: random well-formed documents give identical events with expat,
lxml and sax, and identical records built from those events or by the fused
``xml | records`` loop.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _util_live import Ctx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from util import collect

from cobus.context import RunContext
from cobus.errors import SourceError
from cobus.sources._xmlparsers import make_driver, make_record_driver
from cobus.sources.xml import Documents, xml_source
from cobus.stages.events import BLOCK
from cobus.stages.events import events as events_stage
from cobus.xmlrecords import RecordBuilder

PARSERS = ["expat", "lxml", "sax"]


def events(data: bytes, parser: str, *, allow: bool = True, chunk: int = 1 << 15) -> list[Any]:
    """The events of a document fed ``chunk`` bytes at a time (SourceError when malformed)."""
    out: list[Any] = []
    documents = Documents(out.extend, lambda: make_driver(parser, allow_entities=allow), name="doc")
    for start in range(0, len(data), chunk):
        documents.feed(data[start : start + chunk])
    documents.close()
    return out


def fused_records(data: bytes, tag: str, *, allow: bool = True, chunk: int = 1 << 15) -> list[Any]:
    out: list[Any] = []
    documents = Documents(out.extend, lambda: make_record_driver(tag, allow_entities=allow), name="doc")
    for start in range(0, len(data), chunk):
        documents.feed(data[start : start + chunk])
    documents.close()
    return out


def agreed(data: bytes, *, allow: bool = True, chunk: int = 1 << 15) -> list[Any]:
    """The events all three parsers give; fails the test if any differs."""
    found = {parser: events(data, parser, allow=allow, chunk=chunk) for parser in PARSERS}
    assert found["lxml"] == found["expat"]
    assert found["sax"] == found["expat"]
    return found["expat"]


def test_nesting_deeper_than_256() -> None:
    depth = 2000  # libxml2's own hard limit is 2048
    doc = b"<a>" * depth + b"x" + b"</a>" * depth
    assert len(agreed(doc)) == 2 * depth + 1


def test_a_text_node_over_10_mb() -> None:
    text = b"0123456789abcdef" * (11 << 16)
    found = agreed(b"<r>" + text + b"</r>", chunk=1 << 20)
    assert found == [("start", "r", {}), ("text", text.decode()), ("end", "r")]


def test_internal_parameter_entities_expand_with_allow_entities() -> None:
    doc = b"<!DOCTYPE r [<!ENTITY % p \"<!ENTITY e 'hi'>\"> %p;]><r>&e;</r>"
    assert agreed(doc) == [("start", "r", {}), ("text", "hi"), ("end", "r")]
    for parser in PARSERS:
        with pytest.raises(SourceError, match=r"declares the (parameter )?entity 'p'"):
            events(doc, parser, allow=False)


def test_a_duplicate_id_is_no_concern_of_a_wellformedness_parser() -> None:
    doc = b'<!DOCTYPE r [<!ATTLIST a id ID #IMPLIED>]><r><a id="a1"/><a id="a1"/></r>'
    assert [e[0] for e in agreed(doc, allow=False)] == ["start", "start", "end", "start", "end", "end"]


def test_the_error_after_a_duplicate_id_is_the_one_reported() -> None:
    doc = b'<!DOCTYPE r [<!ATTLIST a id ID #IMPLIED>]><r><a id="a1"/><a id="a1"/></q>'
    with pytest.raises(SourceError, match=r"doc:1:\d+: .*(mismatch|[Oo]pening and ending tag)"):
        events(doc, "lxml")


def test_text_before_an_entity_holding_markup_is_kept() -> None:
    doc = (
        b'<!DOCTYPE r [<!ENTITY e "<b>ACME</b>"><!ENTITY f "&e;, <i>x</i>">]>'
        b"<r>Shipped by &e; today, &e; and &f; <c/>&f;</r>"
    )
    for chunk in (1 << 15, 5, 1):
        found = agreed(doc, chunk=chunk)
    assert found[:3] == [("start", "r", {}), ("text", "Shipped by "), ("start", "b", {})]
    built = RecordBuilder("r").feed(found)
    assert fused_records(doc, "r") == built == [{"b": ["ACME"] * 4, "i": ["x", "x"], "c": ""}]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        # &#13; in an entity's value is a CR in its replacement text: kept in text ...
        (b'<!DOCTYPE r [<!ENTITY e "a&#13;b">]><r>&e;</r>', [("text", "a\rb")]),
        # ... and a CR or LF of the replacement text is one space in an attribute.
        (b'<!DOCTYPE r [<!ENTITY e "a\r\nb">]><r x="&e;">&e;</r>', [("text", "a\nb")]),
        (b'<!DOCTYPE r [<!ENTITY e "a&#10;b">]><r x="1&e;2"/>', []),
        (b'<!DOCTYPE r [<!ENTITY e "a&#38;#10;b">]><r x="1&e;2">t&#13;u</r>', [("text", "t\ru")]),
    ],
)
def test_newlines_and_carriage_returns_from_entities(doc: bytes, expected: list[Any]) -> None:
    found = agreed(doc)
    assert found[1:-1] == expected
    attrs = found[0][2]
    assert attrs.get("x", "a b").replace("1", "").replace("2", "") in ("a b", "a\nb")


def test_attribute_defaults_of_an_internal_dtd_are_not_applied() -> None:
    """The decision (README): only attributes written in the document, whatever the DTD says."""
    doc = b'<!DOCTYPE r [<!ATTLIST r x CDATA "default" y CDATA #FIXED "fixed">]><r z="1">t</r>'
    assert agreed(doc, allow=False) == [("start", "r", {"z": "1"}), ("text", "t"), ("end", "r")]
    assert fused_records(doc, "r", allow=False) == [{"@z": "1", "r": "t"}]


def test_malformed_entity_markup_gives_one_error_line_and_no_lxml_noise(tmp_path: Path) -> None:
    path = tmp_path / "bad.xml"
    path.write_bytes(b'<!DOCTYPE doc [\n<!ENTITY e "<foo>">\n]>\n<doc>&e;</foo></doc>\n')
    for parser in PARSERS:
        proc = subprocess.run(
            [sys.executable, "-m", "cobus", "run", f"xml --allow-entities --parser {parser} {path} | count"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 1
        assert proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith(f"cobus: error: {path}:")


def test_an_encoding_expat_cannot_read_is_one_line_not_a_crash() -> None:
    doc = '<?xml version="1.0" encoding="Shift_JIS"?><r>東京</r>'.encode("shift_jis")
    assert events(doc, "lxml") == [("start", "r", {}), ("text", "東京"), ("end", "r")]
    for parser in ("expat", "sax"):
        with pytest.raises(SourceError, match="multi-byte encodings are not supported by expat"):
            events(doc, parser)


def test_sax_refuses_unparsed_entities_like_the_others() -> None:
    doc = b'<!DOCTYPE r [<!NOTATION n SYSTEM "x"><!ENTITY u SYSTEM "u.gif" NDATA n>]><r/>'
    for parser in PARSERS:
        with pytest.raises(SourceError, match="external entity 'u'"):
            events(doc, parser)


def test_xml_source_reads_a_huge_attribute_whole(tmp_path: Path) -> None:
    value = "v" * (5 << 20)
    path = tmp_path / "attr.xml"
    path.write_text(f'<r a="{value}"><c/></r>')
    for parser in PARSERS:
        batches: list[Any] = []
        for _ in xml_source(
            collect(batches), path=str(path), parser=parser, ctx=RunContext(stdout=io.BytesIO())
        ):
            pass
        found = [e for b in batches for e in b]
        assert found == [("start", "r", {"a": value}), ("start", "c", {}), ("end", "c"), ("end", "r")]


# --------------------------------------------------------------------------
# random well-formed documents

_NAMES = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_.-]{0,4}", fullmatch=True).filter(
    lambda n: not n.lower().startswith("xml")
)
_CHARS = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters="\ufffe\uffff",
    min_codepoint=0x09,
).filter(lambda c: c in "\t\n\r" or c >= " ")
_TEXT = st.text(_CHARS, max_size=12)


def _escape(text: str, quote: bool = False) -> str:
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return out.replace('"', "&quot;") if quote else out


@st.composite
def _text_piece(draw: Any, entities: list[str]) -> str:
    text = draw(_TEXT)
    form = draw(st.sampled_from(["plain", "plain", "cdata", "charref", "comment", "pi", "entity"]))
    if form == "cdata" and "]]>" not in text:
        return f"<![CDATA[{text.replace(chr(13), '')}]]>"
    if form == "charref" and text:
        return "".join(f"&#{ord(c)};" if i % 2 else _escape(c) for i, c in enumerate(text))
    if form == "comment" and "--" not in text and not text.endswith("-"):
        return f"<!--{text}-->"
    if form == "pi" and "?>" not in text:
        return f"<?pi {text}?>"
    if form == "entity" and entities:
        return f"&{draw(st.sampled_from(entities))};"
    return _escape(text)


@st.composite
def _element(draw: Any, depth: int, entities: list[str]) -> str:
    name = draw(_NAMES)
    attr_names = draw(st.lists(_NAMES, max_size=3, unique=True))
    attrs = "".join(f' {a}="{_escape(draw(_TEXT), quote=True)}"' for a in attr_names)
    if depth >= 4 or draw(st.booleans()):
        inner = draw(_text_piece(entities)) if draw(st.booleans()) else ""
    else:
        parts = []
        for _ in range(draw(st.integers(0, 4))):
            parts.append(draw(_text_piece(entities)))
            parts.append(draw(_element(depth + 1, entities)))
        parts.append(draw(_text_piece(entities)))
        inner = "".join(parts)
    return f"<{name}{attrs}>{inner}</{name}>" if inner or draw(st.booleans()) else f"<{name}{attrs}/>"


@st.composite
def _document(draw: Any) -> tuple[bytes, bool]:
    entities: list[str] = []
    prolog = draw(st.sampled_from(["", '<?xml version="1.0"?>\n', '<?xml version="1.0" encoding="UTF-8"?>']))
    with_entities = draw(st.booleans())
    if with_entities:

        def value() -> str:  # a % in an entity value would be a parameter entity reference
            return _escape(draw(_TEXT), quote=True).replace("%", "&#37;")

        values = {
            "t": value(),
            "m": f"<em>{value()}</em>",
            "n": "a&#13;b&#10;c",
        }
        chosen = draw(st.lists(st.sampled_from(sorted(values)), min_size=1, unique=True))
        entities = chosen
        decls = "".join(f'<!ENTITY {k} "{values[k]}">' for k in chosen)
        prolog += f"<!DOCTYPE root [{decls}]>\n"
    body = draw(_element(0, entities))
    return (prolog + body + draw(st.sampled_from(["", "\n", "<!-- end -->\n"]))).encode(), with_entities


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_document(), st.sampled_from([1 << 15, 7, 1]))
def test_random_wellformed_documents_agree(document: tuple[bytes, bool], chunk: int) -> None:
    data, allow = document
    found = agreed(data, allow=allow, chunk=chunk)
    root = found[0][1]
    if not allow:  # with entities, xml | records is not fused (see _fuse_records)
        assert fused_records(data, root, allow=allow, chunk=chunk) == RecordBuilder(root).feed(found)


def test_events_output_of_a_deep_document_comes_in_bounded_blocks() -> None:
    """Memory linear in depth: no block much over BLOCK, however deep the document."""
    depth = 2500  # past libxml2's limit: expat
    found = events(b"<a>" * depth + b"x" + b"</a>" * depth, "expat")
    blocks: list[bytes] = []
    stage = events_stage(collect(blocks))
    stage.send(found)
    stage.close()
    assert max(len(b) for b in blocks) <= BLOCK + 2 * depth + 20
    lines = b"".join(blocks).splitlines()
    assert len(lines) == 2 * depth + 1
    assert lines[depth] == b"  " * depth + b'text "x"'


def test_recover_reads_a_huge_attribute_and_still_counts_lines(tmp_path: Path) -> None:
    value = "v" * (3 << 20)
    path = tmp_path / "docs.xml"
    path.write_text(f'<r a="{value}"/>\n\n<bad></x>\n<?xml version="1.0"?>\n<ok/>\n<r a="{value}"/>')
    batches: list[Any] = []
    ctx = Ctx()
    for _ in xml_source(collect(batches), path=str(path), parser="expat", recover=True, ctx=ctx):
        pass
    found = [e for b in batches for e in b]
    big = [("start", "r", {"a": value}), ("end", "r")]
    assert found == [*big, ("start", "bad", {}), ("abort", f"{path}:3:8: mismatched tag"), *found[4:6], *big]
    assert found[4:6] == [("start", "ok", {}), ("end", "ok")]
    assert ctx.warnings == [f"{path}:3:8: mismatched tag (document skipped)"]
