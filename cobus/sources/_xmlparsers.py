"""The XML drivers behind ``xml``: expat and sax here, lxml's in ``_xmllxml``; ``make_driver``.

A driver is fed raw bytes (``feed``), collects what it makes in a list that
:meth:`take` hands over, and raises :class:`XmlProblem` (message, line,
column) for malformed or refused input; the items made before the problem stay
takeable, so they are sent before the error is reported. Every safety setting
lives here and in ``_xmllxml``: no DTD or external entity is ever loaded, and a document that
declares entities, names an external DTD or uses an undefined entity is
refused unless ``allow_entities`` (then only internal entities are expanded,
bounded by the parsers' amplification limits). No stage is registered here.

Discussion: identical events. The three parsers cut character data
differently (expat at its buffer size and at every ``Parse`` call, sax per
callback, lxml around comments), so text pieces are gathered in a list and
become one ``("text", ...)`` event only when a tag starts or ends; comments
and processing instructions are dropped by all three, so text around them
joins up. expat reports only attributes written in the document
(``specified_attributes``), as lxml does when it loads no DTD: defaults a
DTD declares are applied by none of the three (a decision the README states).
"""

from __future__ import annotations

import pyexpat
import xml.sax
import xml.sax.expatreader
import xml.sax.handler
from collections.abc import Sequence
from typing import Any

from ..conditions import Condition
from ..xmlrecords import END, START, TEXT, Event
from ._xmlbase import (
    Driver,
    XmlProblem,
    refuse_declaration,
    refuse_dtd,
    take_all,
    undefined,
    unknown_encoding,
)
from ._xmllxml import LxmlDriver, LxmlRecordDriver

__all__ = ["PARSERS", "Driver", "XmlProblem", "make_driver", "make_record_driver"]

PARSERS = ("expat", "lxml", "sax")

#: expat's character buffer: text runs up to this size arrive in one callback.
_EXPAT_BUFFER = 1 << 20


class _Refusal(Exception):
    """Raised inside a parser callback; carries the location it was raised at."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.problem = XmlProblem(message, line, column)


def _read_nothing(context: Any, base: Any, system_id: Any, public_id: Any) -> int:
    """expat's hook for external entities: succeed without reading anything."""
    return 1


def _guard(p: Any, allow: bool) -> None:
    """Put the safety settings and refusing handlers on a pyexpat parser (expat and sax)."""
    p.buffer_text = True
    p.buffer_size = _EXPAT_BUFFER
    p.specified_attributes = True
    if allow:
        # Expand internal parameter entities (as lxml does); anything external
        # (the DTD a DOCTYPE names) is "read" as empty: nothing is ever loaded.
        p.SetParamEntityParsing(pyexpat.XML_PARAM_ENTITY_PARSING_ALWAYS)
        p.ExternalEntityRefHandler = _read_nothing
    else:
        # Never read an external DTD or parameter entity.
        p.SetParamEntityParsing(pyexpat.XML_PARAM_ENTITY_PARSING_NEVER)

    def refuse(message: str) -> None:
        raise _Refusal(message, p.CurrentLineNumber, p.CurrentColumnNumber + 1)

    def entity_decl(name: str, is_pe: int, value: Any, base: Any, *external: Any) -> None:
        # external: system id, public id, notation name (an unparsed entity).
        why = refuse_declaration(name, bool(is_pe), any(external), allow)
        if why:
            refuse(why)

    def doctype(name: str, system_id: str | None, public_id: str | None, internal: int) -> None:
        why = refuse_dtd(system_id, public_id, allow)
        if why:
            refuse(why)

    def skipped(name: str, is_pe: int) -> None:
        refuse(undefined(name))

    p.EntityDeclHandler = entity_decl
    # expat tells an unparsed (NDATA) entity to this handler instead, when set
    # (the sax reader sets it): every declaration must reach entity_decl.
    p.UnparsedEntityDeclHandler = None
    p.StartDoctypeDeclHandler = doctype
    p.SkippedEntityHandler = skipped


# --------------------------------------------------------------------------
# expat


class ExpatDriver:
    """pyexpat with namespaces, buffered text and the safety handlers.

    With ``multi`` the input may hold several documents back to back: once
    the root element has closed, whatever follows is returned by :meth:`feed`
    as the start of the next document instead of being an error.
    """

    def __init__(self, *, allow_entities: bool, multi: bool = False) -> None:
        self._allow = allow_entities
        self._fed = 0
        self._block_start = 0
        self._events: list[Event] = []
        self._multi = multi
        self._depth = 0
        #: Multi: the blocks fed since (and with) the one where the root closed.
        self._current = b""
        self._epilog: list[bytes] | None = None
        self._epilog_start = 0
        self._parser = self._create()

    def _create(self) -> Any:
        p = pyexpat.ParserCreate(namespace_separator="}")
        _guard(p, self._allow)
        events = self._events
        append = events.append
        pieces: list[str] = []
        names: dict[str, str] = {}

        def clark(name: str) -> str:
            tag = names.get(name)
            if tag is None:
                tag = names[name] = "{" + name if "}" in name else name
            return tag

        def start(name: str, attrs: dict[str, str]) -> None:
            if pieces:
                append((TEXT, "".join(pieces)))
                pieces.clear()
            if attrs and any("}" in k for k in attrs):
                attrs = {clark(k): v for k, v in attrs.items()}
            append((START, names.get(name) or clark(name), attrs))

        def end(name: str) -> None:
            if pieces:
                append((TEXT, "".join(pieces)))
                pieces.clear()
            append((END, names.get(name) or clark(name)))

        if self._multi:

            def start_counted(name: str, attrs: dict[str, str]) -> None:
                self._depth += 1
                start(name, attrs)

            def end_counted(name: str) -> None:
                self._depth -= 1
                end(name)
                if self._depth == 0:
                    self._epilog = [self._current]
                    self._epilog_start = self._block_start

            p.StartElementHandler = start_counted
            p.EndElementHandler = end_counted
        else:
            p.StartElementHandler = start
            p.EndElementHandler = end
        p.CharacterDataHandler = pieces.append
        return p

    def feed(self, data: bytes) -> bytes | None:
        self._block_start = self._fed
        self._fed += len(data)
        if self._epilog is not None:
            self._epilog.append(data)
        self._current = data
        try:
            self._parser.Parse(data, False)
        except pyexpat.ExpatError as exc:
            # Only once a root has closed is junk the next document; before
            # that (a second <?xml before any element) it is an error.
            if self._epilog is not None and self._depth == 0 and exc.code in _NEXT_DOCUMENT:
                return self._next_document()
            raise self._problem(exc) from None
        except _Refusal as exc:
            raise exc.problem from None
        except LookupError as exc:
            raise unknown_encoding(exc) from None
        except ValueError as exc:  # pyexpat: an encoding it cannot decode
            raise _encoding_problem(exc) from None
        return None

    def _next_document(self) -> bytes:
        """The bytes from where the junk after the root begins: the next document.

        Discussion: expat may have held back the start of that junk (a ``<r``
        cut by the end of a block) from earlier calls, so the error's byte
        index can lie before the current block. Every block fed since the one
        in which the root closed is kept (normally a few bytes of epilog) to
        cut the next document from.
        """
        assert self._epilog is not None
        kept = b"".join(self._epilog)
        return kept[self._parser.ErrorByteIndex - self._epilog_start :]

    def _problem(self, exc: pyexpat.ExpatError) -> XmlProblem:
        problem = XmlProblem(pyexpat.ErrorString(exc.code) or str(exc), exc.lineno, exc.offset + 1)
        problem.offset = self._parser.ErrorByteIndex - self._block_start
        return problem

    def take(self) -> list[Event]:
        return take_all(self._events)

    def close(self) -> None:
        try:
            self._parser.Parse(b"", True)
        except pyexpat.ExpatError as exc:
            raise self._problem(exc) from None
        except _Refusal as exc:
            raise exc.problem from None
        except LookupError as exc:
            raise unknown_encoding(exc) from None
        except ValueError as exc:
            raise _encoding_problem(exc) from None


def _encoding_problem(exc: ValueError) -> XmlProblem:
    return XmlProblem(f"{exc} by expat (the document's encoding); --parser lxml reads it")


_NEXT_DOCUMENT = frozenset(
    {pyexpat.errors.codes[pyexpat.errors.XML_ERROR_JUNK_AFTER_DOC_ELEMENT],
     pyexpat.errors.codes[pyexpat.errors.XML_ERROR_MISPLACED_XML_PI]}
)  # fmt: skip


# --------------------------------------------------------------------------
# sax


class _SaxEvents(xml.sax.handler.ContentHandler):
    def __init__(self, events: list[Event]) -> None:
        super().__init__()
        self.append = events.append
        self.pieces: list[str] = []
        self.characters = self.pieces.append  # type: ignore[assignment]

    def _flush(self) -> None:
        self.append((TEXT, "".join(self.pieces)))
        self.pieces.clear()

    def startElementNS(self, name: tuple[str | None, str], qname: Any, attrs: Any) -> None:
        if self.pieces:
            self._flush()
        fields = {_sax_name(k): v for k, v in attrs.items()} if attrs.getLength() else {}
        self.append((START, _sax_name(name), fields))

    def endElementNS(self, name: tuple[str | None, str], qname: Any) -> None:
        if self.pieces:
            self._flush()
        self.append((END, _sax_name(name)))


def _sax_name(name: tuple[str | None, str]) -> str:
    uri, local = name
    return local if not uri else f"{{{uri}}}{local}"


class _SafeExpatReader(xml.sax.expatreader.ExpatParser):
    """The standard sax reader with cobus's safety handlers on its expat parser."""

    def __init__(self, allow_entities: bool) -> None:
        super().__init__(namespaceHandling=1)
        self._allow = allow_entities

    def reset(self) -> None:
        super().reset()
        # The reader's expat parser, made anew for each document by reset().
        _guard(self._parser, self._allow)  # type: ignore[attr-defined]


class SaxDriver:
    """xml.sax (its expat reader) fed incrementally, events gathered by a handler."""

    def __init__(self, *, allow_entities: bool) -> None:
        self._events: list[Event] = []
        self._reader = _SafeExpatReader(allow_entities)
        self._reader.setContentHandler(_SaxEvents(self._events))
        self._reader.setFeature(xml.sax.handler.feature_external_ges, False)
        self._reader.setFeature(xml.sax.handler.feature_external_pes, False)

    def feed(self, data: bytes) -> bytes | None:
        self._call(self._reader.feed, data)
        return None

    def _call(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except xml.sax.SAXParseException as exc:
            column = exc.getColumnNumber()
            raise XmlProblem(
                exc.getMessage(), exc.getLineNumber(), None if column is None else column + 1
            ) from None
        except _Refusal as exc:
            raise exc.problem from None
        except LookupError as exc:
            raise unknown_encoding(exc) from None
        except ValueError as exc:
            raise _encoding_problem(exc) from None

    def take(self) -> list[Event]:
        return take_all(self._events)

    def close(self) -> None:
        self._call(self._reader.close)


def make_driver(parser: str, *, allow_entities: bool, multi: bool = False) -> Driver:
    """An event driver by parser name (``multi``: documents back to back, expat only)."""
    if parser == "expat":
        return ExpatDriver(allow_entities=allow_entities, multi=multi)
    if multi:
        raise ValueError("only the expat driver reads documents back to back")
    if parser == "lxml":
        return LxmlDriver(allow_entities=allow_entities, fallback=lambda: ExpatDriver(allow_entities=True))
    if parser == "sax":
        return SaxDriver(allow_entities=allow_entities)
    raise ValueError(f"unknown XML parser {parser!r}")


def make_record_driver(tag: str, *, allow_entities: bool, conditions: Sequence[Condition] = ()) -> Driver:
    """The fused lxml driver that yields records of ``tag`` (passing ``conditions``)."""
    return LxmlRecordDriver(tag=tag, allow_entities=allow_entities, conditions=conditions)
