"""The XML drivers behind ``xml``: expat, lxml, sax, and lxml building records directly.

A driver is fed raw bytes (``feed``), collects what it makes in a list that
:meth:`take` hands over, and raises :class:`XmlProblem` (message, line,
column) for malformed or refused input; the items made before the problem stay
takeable, so they are sent before the error is reported. Every safety setting
lives here: no DTD or external entity is ever loaded, and a document that
declares entities, names an external DTD or uses an undefined entity is
refused unless ``allow_entities`` (then only internal entities are expanded,
bounded by the parsers' amplification limits). No stage is registered here.

Discussion: identical events. The three parsers cut character data
differently (expat at its buffer size and at every ``Parse`` call, sax per
callback, lxml around comments), so text pieces are gathered in a list and
become one ``("text", ...)`` event only when a tag starts or ends; comments
and processing instructions are dropped by all three, so text around them
joins up. expat reports only attributes written in the document
(``specified_attributes``), as lxml does when it loads no DTD.
"""

from __future__ import annotations

import pyexpat
import re
import xml.sax
import xml.sax.expatreader
import xml.sax.handler
from collections.abc import Callable, Sequence
from typing import Any

from lxml import etree

from ..conditions import Condition, compile_conditions
from ..xmlrecords import END, START, TEXT, EntityNode, Event, element_record, local_name
from ._xmlbase import Driver, XmlProblem, unknown_encoding

__all__ = ["PARSERS", "Driver", "XmlProblem", "make_driver", "make_record_driver"]

PARSERS = ("expat", "lxml", "sax")

#: expat's character buffer: text runs up to this size arrive in one callback.
_EXPAT_BUFFER = 1 << 20

#: Field names lxml's path syntax takes as they are (others skip the pre-test).
_SIMPLE_NAME = re.compile(r"[A-Za-z_][\w.\-]*")

_ENTITIES_HINT = "use --allow-entities to accept internal entities"


def _refuse_declaration(name: str, is_parameter: bool, external: bool, allow: bool) -> str | None:
    """Why an entity declaration is refused, or None when it may stand."""
    kind = "parameter entity" if is_parameter else "entity"
    if external:
        return f"document declares the external {kind} {name!r}; external entities are never resolved"
    if not allow:
        return f"document declares the {kind} {name!r}; {_ENTITIES_HINT}"
    return None


def _refuse_dtd(system_id: str | None, public_id: str | None, allow: bool) -> str | None:
    if (system_id or public_id) and not allow:
        named = system_id or public_id
        return f"document names an external DTD ({named}), which is never loaded; {_ENTITIES_HINT}"
    return None


def _undefined(name: str) -> str:
    return f"undefined entity {name!r} (external DTDs are never loaded)"


class _Refusal(Exception):
    """Raised inside a parser callback; carries the location it was raised at."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.problem = XmlProblem(message, line, column)


def _guard(p: Any, allow: bool) -> None:
    """Put the safety settings and refusing handlers on a pyexpat parser (expat and sax)."""
    p.buffer_text = True
    p.buffer_size = _EXPAT_BUFFER
    p.specified_attributes = True
    # Never read an external DTD or parameter entity.
    p.SetParamEntityParsing(pyexpat.XML_PARAM_ENTITY_PARSING_NEVER)

    def refuse(message: str) -> None:
        raise _Refusal(message, p.CurrentLineNumber, p.CurrentColumnNumber + 1)

    def entity_decl(name: str, is_pe: int, value: Any, base: Any, *external: Any) -> None:
        # external: system id, public id, notation name (an unparsed entity).
        why = _refuse_declaration(name, bool(is_pe), any(external), allow)
        if why:
            refuse(why)

    def doctype(name: str, system_id: str | None, public_id: str | None, internal: int) -> None:
        why = _refuse_dtd(system_id, public_id, allow)
        if why:
            refuse(why)

    def skipped(name: str, is_pe: int) -> None:
        refuse(_undefined(name))

    p.EntityDeclHandler = entity_decl
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
            if self._multi and self._depth == 0 and exc.code in _NEXT_DOCUMENT:
                return self._next_document()
            raise self._problem(exc) from None
        except _Refusal as exc:
            raise exc.problem from None
        except LookupError as exc:
            raise unknown_encoding(exc) from None
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
        out = self._events.copy()
        self._events.clear()
        return out

    def close(self) -> None:
        try:
            self._parser.Parse(b"", True)
        except pyexpat.ExpatError as exc:
            raise self._problem(exc) from None
        except _Refusal as exc:
            raise exc.problem from None
        except LookupError as exc:
            raise unknown_encoding(exc) from None


_NEXT_DOCUMENT = frozenset(
    {pyexpat.errors.codes[pyexpat.errors.XML_ERROR_JUNK_AFTER_DOC_ELEMENT],
     pyexpat.errors.codes[pyexpat.errors.XML_ERROR_MISPLACED_XML_PI]}
)  # fmt: skip


# --------------------------------------------------------------------------
# lxml

_LOCATION_SUFFIX = re.compile(r",? line \d+, column \d+$")


def _lxml_problem(exc: etree.XMLSyntaxError) -> XmlProblem:
    if exc.position == (0, 0):
        # Some errors surface as a vague "no element found" at 0:0 while the
        # log holds the real first error: report that one. (The thread's log
        # is cleared when each parser is made, so it is this document's.)
        for entry in exc.error_log:  # type: ignore[attr-defined]
            if entry.level >= etree.ErrorLevels.ERROR:
                return XmlProblem(entry.message, entry.line or None, entry.column or None)
        return XmlProblem(_LOCATION_SUFFIX.sub("", exc.msg or str(exc)).strip())
    line, column = exc.position
    return XmlProblem(_LOCATION_SUFFIX.sub("", exc.msg or str(exc)).strip(), line, column)


def _feed_lxml(parser: Any, data: bytes, drain: Callable[[], None]) -> None:
    """Feed lxml, then take its events; on a syntax error take them first."""
    try:
        parser.feed(data)
    except etree.XMLSyntaxError as exc:
        drain()
        raise _lxml_problem(exc) from None
    drain()


def _lxml_parser(allow: bool, **kwargs: Any) -> Any:
    # Never add collect_ids=False: with lxml 6.1 / libxml2 2.14 it makes the
    # parser read the external DTD a DOCTYPE names (seen with strace), which
    # the safety test on external DTDs catches.
    etree.clear_error_log()
    return etree.XMLPullParser(
        resolve_entities="internal" if allow else False,  # type: ignore[arg-type]  # lxml >= 5
        load_dtd=False,
        no_network=True,
        remove_comments=True,
        remove_pis=True,
        huge_tree=False,
        **kwargs,
    )


def _check_lxml_document(tree: Any, allow: bool) -> None:
    """Refuse what expat refuses in the prolog: entity declarations, an external DTD."""
    info = tree.docinfo
    why = _refuse_dtd(info.system_url, info.public_id, allow)
    dtd = info.internalDTD
    if why is None and dtd is not None:
        for entity in dtd.iterentities():
            external = bool(entity.system_url)
            why = _refuse_declaration(entity.name, False, external, allow)
            if why:
                break
    if why:
        raise XmlProblem(why)


class LxmlDriver:
    """lxml's pull parser, turned into the flat event stream.

    Discussion: text in an lxml tree hangs off elements (``.text`` before the
    first child, ``.tail`` after an element), so the text before a start tag
    is the previous sibling's tail (or the parent's text), and the text before
    an end tag is the last child's tail (or the element's own text). Both are
    complete when the event arrives. Memory stays flat: an element is cleared
    at its end (its tail kept, the next sibling still needs it) and removed
    from its parent when that next sibling starts.
    """

    def __init__(self, *, allow_entities: bool) -> None:
        self._allow = allow_entities
        self._parser = _lxml_parser(allow_entities, events=("start", "end"))
        self._events: list[Event] = []

    def feed(self, data: bytes) -> bytes | None:
        _feed_lxml(self._parser, data, self._drain)
        return None

    def _drain(self) -> None:
        append = self._events.append
        for event, element in self._parser.read_events():
            if event == "start":
                parent = element.getparent()
                if parent is None:
                    _check_lxml_document(element.getroottree(), self._allow)
                    text = None
                else:
                    previous = element.getprevious()
                    if previous is None:
                        text = parent.text
                    else:
                        _check_node(previous)
                        text = previous.tail
                        del parent[0]
                if text:
                    append((TEXT, text))
                append((START, element.tag, dict(element.attrib)))
            else:
                if len(element):
                    last = element[-1]
                    _check_node(last)
                    text = last.tail
                else:
                    text = element.text
                if text:
                    append((TEXT, text))
                append((END, element.tag))
                element.clear(keep_tail=True)

    def take(self) -> list[Event]:
        out = self._events.copy()
        self._events.clear()
        return out

    def close(self) -> None:
        try:
            self._parser.close()
        except etree.XMLSyntaxError as exc:
            self._drain()
            raise _lxml_problem(exc) from None
        self._drain()


def _check_node(node: Any) -> None:
    if not isinstance(node.tag, str):
        raise XmlProblem(_undefined(node.name if hasattr(node, "name") else "?"))


class LxmlRecordDriver:
    """``xml | records TAG [| where ...]`` fused: lxml's C-level tag filter builds records.

    Only elements matching ``tag`` reach Python, each once, at its end; it is
    turned into a record (:func:`~cobus.xmlrecords.element_record`, the rule
    the ``records`` stage applies to events), cleared, and the siblings before
    it are deleted, so memory stays flat. The start events only count depth,
    so that a ``tag`` nested in a record stays part of it.

    Discussion: conditions before records. With ``conditions`` (fused
    ``where`` stages) a record is first tested on the few children the
    conditions name, found by lxml in C, and built only if it may pass; the
    built record is then tested exactly. The pre-test sees the same values
    the record would hold (every child of that local name, text stripped), so
    it only rejects records the exact test would reject; where it cannot be
    sure (a child with children of its own, an ``@attribute``, the element's
    own name) it lets the record through to the exact test.
    """

    def __init__(self, *, tag: str, allow_entities: bool, conditions: Sequence[Condition] = ()) -> None:
        self._allow = allow_entities
        lxml_tag = tag if tag.startswith("{") else "{*}" + tag
        self._parser = _lxml_parser(allow_entities, events=("start", "end"), tag=lxml_tag)
        self._records: list[dict[str, Any]] = []
        self._names: dict[Any, str] = {}
        self._depth = 0
        self._checked = False
        own = local_name(tag)
        self._keep = compile_conditions(conditions) if conditions else None
        self._pretests = [
            ("{*}" + field, field, compile_conditions([(field, op, value)]))
            for field, op, value in conditions
            if field != own and _SIMPLE_NAME.fullmatch(field)
        ]

    def _may_pass(self, element: Any) -> bool:
        for path, field, holds in self._pretests:
            values = []
            for child in element.iterchildren(path):
                if len(child):
                    return True  # its text is more than .text: let the record decide
                text = child.text
                values.append(text.strip() if text else "")
            if not values:
                return False  # a missing field never matches
            if not holds({field: values[0] if len(values) == 1 else values}):
                return False
        return True

    def feed(self, data: bytes) -> bytes | None:
        _feed_lxml(self._parser, data, self._drain)
        return None

    def _drain(self) -> None:
        append = self._records.append
        names = self._names
        depth = self._depth
        keep = self._keep
        may_pass = self._may_pass if self._pretests else None
        for event, element in self._parser.read_events():
            if event == "start":
                depth += 1
                continue
            depth -= 1
            if depth:
                continue
            if not self._checked:
                _check_lxml_document(element.getroottree(), self._allow)
                self._checked = True
            if may_pass is None or may_pass(element):
                try:
                    record = element_record(element, names)
                except EntityNode as exc:
                    raise XmlProblem(str(exc)) from None
                if keep is None or keep(record):
                    append(record)
            element.clear(keep_tail=False)
            parent = element.getparent()
            if parent is not None:
                while element.getprevious() is not None:
                    del parent[0]
        self._depth = depth

    def take(self) -> list[dict[str, Any]]:
        out = self._records
        self._records = []
        return out

    def close(self) -> None:
        try:
            root = self._parser.close()
        except etree.XMLSyntaxError as exc:
            self._drain()
            raise _lxml_problem(exc) from None
        self._drain()
        if not self._checked and root is not None:
            _check_lxml_document(root.getroottree(), self._allow)


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

    def take(self) -> list[Event]:
        out = self._events.copy()
        self._events.clear()
        return out

    def close(self) -> None:
        self._call(self._reader.close)


def make_driver(parser: str, *, allow_entities: bool, multi: bool = False) -> Driver:
    """An event driver by parser name (``multi``: documents back to back, expat only)."""
    if parser == "expat":
        return ExpatDriver(allow_entities=allow_entities, multi=multi)
    if multi:
        raise ValueError("only the expat driver reads documents back to back")
    if parser == "lxml":
        return LxmlDriver(allow_entities=allow_entities)
    if parser == "sax":
        return SaxDriver(allow_entities=allow_entities)
    raise ValueError(f"unknown XML parser {parser!r}")


def make_record_driver(tag: str, *, allow_entities: bool, conditions: Sequence[Condition] = ()) -> Driver:
    """The fused lxml driver that yields records of ``tag`` (passing ``conditions``)."""
    return LxmlRecordDriver(tag=tag, allow_entities=allow_entities, conditions=conditions)
