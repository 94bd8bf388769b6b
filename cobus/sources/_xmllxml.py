"""The lxml drivers behind ``xml``: events from lxml's pull parser, and records built directly.

Both follow the driver contract of :mod:`._xmlparsers` (``feed``, ``take``,
``close``, :class:`XmlProblem` for malformed or refused input) and its safety
rules: nothing external is ever read (:class:`_RefuseExternal`), and a
document declaring entities or naming an external DTD is refused unless
entities are allowed, checked once its DTD is known. No stage is registered
here.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from lxml import etree

from ..conditions import Condition, compile_conditions
from ..xmlrecords import END, START, TEXT, EntityNode, Event, element_record, local_name
from ._xmlbase import Driver, XmlProblem, refuse_declaration, refuse_dtd, take_all, undefined

__all__ = ["LxmlDriver", "LxmlRecordDriver"]


def _lxml_proxy_noise(error: BaseException | None) -> bool:
    return isinstance(error, AssertionError) and str(error) == "Tried to unregister unknown proxy"


def _quiet_lxml_proxy_noise() -> None:
    """Keep lxml's "Tried to unregister unknown proxy" tracebacks off the user's terminal.

    Discussion: when a document whose entity holds markup is malformed
    (``<!ENTITY e "<foo>">`` then ``<doc>&e;</doc>``), libxml2 frees that
    entity's elements with the document while lxml's parser still holds
    Python proxies for them; freeing those later makes lxml print an ignored
    AssertionError (through ``sys.excepthook`` and ``sys.unraisablehook``)
    although nothing went wrong for cobus, which has already reported the
    document as malformed. Only that exact error is silenced.
    """
    unraisable, excepthook = sys.unraisablehook, sys.excepthook

    def quiet_unraisable(info: Any) -> None:
        if not _lxml_proxy_noise(info.exc_value):
            unraisable(info)

    def quiet_excepthook(kind: type[BaseException], error: BaseException, tb: Any) -> None:
        if not _lxml_proxy_noise(error):
            excepthook(kind, error, tb)

    sys.unraisablehook = quiet_unraisable
    sys.excepthook = quiet_excepthook


_quiet_lxml_proxy_noise()

#: Field names lxml's path syntax takes as they are (others skip the pre-test).
_SIMPLE_NAME = re.compile(r"[A-Za-z_][\w.\-]*")


_LOCATION_SUFFIX = re.compile(r",? line \d+, column \d+$")


def _wellformedness_errors(exc: etree.XMLSyntaxError) -> list[Any]:
    """The errors that make the document malformed; validity errors (a duplicate ID) are none.

    libxml2 checks a few validity constraints even when not validating, and
    whether a namespace name is a URI, and reports them as errors; expat and
    xmllint accept such documents, and a well-formedness parser must too.
    """
    return [
        entry
        for entry in exc.error_log  # type: ignore[attr-defined]
        if entry.level >= etree.ErrorLevels.ERROR
        and entry.domain != etree.ErrorDomains.VALID
        and entry.type not in _NOT_MALFORMED
    ]


_NOT_MALFORMED = frozenset({etree.ErrorTypes.WAR_NS_URI, etree.ErrorTypes.WAR_NS_URI_RELATIVE})


def _lxml_problem(exc: etree.XMLSyntaxError, errors: list[Any]) -> XmlProblem:
    if errors and (exc.position == (0, 0) or errors[0].message.strip() != (exc.msg or "").strip()):
        # The exception names the first error, which may be a validity one, or
        # a vague "no element found" at 0:0 while the log holds the real
        # first error: report that one. (The thread's log is cleared when
        # each parser is made, so it is this document's.)
        entry = errors[0]
        return XmlProblem(
            _LOCATION_SUFFIX.sub("", entry.message).strip(), entry.line or None, entry.column or None
        )
    if exc.position == (0, 0):
        return XmlProblem(_LOCATION_SUFFIX.sub("", exc.msg or str(exc)).strip())
    line, column = exc.position
    return XmlProblem(_LOCATION_SUFFIX.sub("", exc.msg or str(exc)).strip(), line, column)


def _feed_lxml(parser: Any, data: bytes | None, drain: Callable[[], None]) -> Any:
    """Feed lxml (``None``: close it), then take its events; on a syntax error take them first.

    Returns what ``close`` returns. A syntax error made only of validity
    errors is no error (see :func:`_wellformedness_errors`).
    """
    result = None
    try:
        result = parser.close() if data is None else parser.feed(data)
    except etree.XMLSyntaxError as exc:
        drain()
        errors = _wellformedness_errors(exc)
        if errors or not exc.error_log:
            raise _lxml_problem(exc, errors) from None
        return None
    drain()
    return result


class _RefuseExternal(etree.Resolver):
    """Answers every request for an external resource with nothing: no file or URL is read.

    Needed because lxml's ``resolve_entities="internal"`` does not expand
    internal parameter entities; with ``True`` and this resolver, internal
    entities of both kinds expand and nothing external is ever read.
    Documents that declare external entities are refused anyway, once their
    DTD is known (:func:`_check_lxml_document`).
    """

    def resolve(self, system_url: str, public_id: str, context: Any = None) -> Any:
        return self.resolve_string("", context, base_url=None)


def _lxml_parser(allow: bool, **kwargs: Any) -> Any:
    # Never add collect_ids=False: with lxml 6.1 / libxml2 2.14 it makes the
    # parser read the external DTD a DOCTYPE names (seen with strace), which
    # the safety test on external DTDs catches.
    etree.clear_error_log()
    parser = etree.XMLPullParser(
        resolve_entities=allow,
        load_dtd=False,
        no_network=True,
        remove_comments=True,
        remove_pis=True,
        # Deep nesting (to 2048, libxml2's hard limit) and text nodes over
        # 10 MB, as expat allows; entity expansion stays bounded by libxml2's
        # amplification limit, which huge_tree does not lift.
        huge_tree=True,
        **kwargs,
    )
    parser.resolvers.add(_RefuseExternal())
    return parser


def _check_lxml_document(tree: Any, allow: bool) -> None:
    """Refuse what expat refuses in the prolog: entity declarations, an external DTD."""
    info = tree.docinfo
    why = refuse_dtd(info.system_url, info.public_id, allow)
    dtd = info.internalDTD
    if why is None and dtd is not None:
        for entity in dtd.iterentities():
            external = bool(entity.system_url)
            why = refuse_declaration(entity.name, False, external, allow)
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

    Discussion: elements from entities (``--allow-entities``, an entity
    whose value holds markup). libxml2 reports the elements of an entity's
    first reference from a detached copy (no parent), and those of later
    references not at all; the tree itself holds every one in place. So
    events of detached elements are ignored, and the children of an open
    element that no event reported (``_catch_up``) are walked in the tree
    when the next event under that element arrives. Each open element keeps
    the last child reported, which tells them apart.

    Discussion: carriage returns from entities. libxml2 line-end normalizes
    an entity's replacement text when it is referenced instead of when it
    is declared, so a CR that ``&#13;`` put in an entity's value comes out
    as LF in text, and an entity value's CRLF as two spaces in an attribute
    (expat follows the XML spec: CR, and one space). Such a document, known
    at its root's start (before any event), is handed to ``fallback`` (an
    expat driver) with every byte fed so far; those bytes are kept only
    until the root starts.
    """

    def __init__(self, *, allow_entities: bool, fallback: Callable[[], Driver] | None = None) -> None:
        self._allow = allow_entities
        self._parser = _lxml_parser(allow_entities, events=("start", "end"))
        self._events: list[Event] = []
        #: The open elements, outermost first, each with its last child reported.
        self._open: list[list[Any]] = []
        #: Depth inside a detached element from an entity, whose events are ignored.
        self._detached = 0
        self._fallback = fallback
        #: The bytes fed until the root has started (for the fallback), then None.
        self._prolog: list[bytes] | None = [] if allow_entities and fallback else None
        self._handed: Driver | None = None

    def feed(self, data: bytes) -> bytes | None:
        if self._handed is not None:
            return self._handed.feed(data)
        if self._prolog is not None:
            self._prolog.append(data)
        try:
            _feed_lxml(self._parser, data, self._drain)
        except _HandOver:
            self._hand_over()
        return None

    def _hand_over(self) -> None:
        assert self._fallback is not None and self._prolog is not None
        self._handed = self._fallback()
        prolog, self._prolog = b"".join(self._prolog), None
        self._handed.feed(prolog)

    def _drain(self) -> None:
        append = self._events.append
        stack = self._open
        for event, element in self._parser.read_events():
            if self._detached:
                self._detached += 1 if event == "start" else -1
                continue
            if event == "start":
                if not stack:
                    tree = element.getroottree()
                    _check_lxml_document(tree, self._allow)
                    if self._prolog is not None:
                        if _entity_holds_cr(tree):
                            raise _HandOver
                        self._prolog = None
                    text = None
                else:
                    entry = stack[-1]
                    if element.getparent() is None:
                        self._detached = 1  # from an entity: the tree has its copy
                        continue
                    parent = entry[0]
                    previous = element.getprevious()
                    if previous is None:
                        text = parent.text
                    else:
                        if previous is not entry[1]:
                            self._catch_up(entry, element)
                        _check_node(previous)
                        text = previous.tail
                        while element.getprevious() is not None:
                            del parent[0]
                    entry[1] = element
                stack.append([element, None])
                if text:
                    append((TEXT, text))
                append((START, element.tag, dict(element.attrib)))
            else:
                entry = stack.pop()
                if len(element):
                    last = element[-1]
                    if last is not entry[1]:
                        self._catch_up(entry, None)
                    _check_node(last)
                    text = last.tail
                else:
                    text = element.text
                if text:
                    append((TEXT, text))
                append((END, element.tag))
                element.clear(keep_tail=True)

    def _catch_up(self, entry: list[Any], until: Any) -> None:
        """Events for the children of ``entry``'s element no event reported, up to ``until``."""
        parent, last = entry
        child = parent[0] if last is None else last.getnext()
        append = self._events.append
        while child is not None and child is not until:
            _check_node(child)
            text = parent.text if last is None else last.tail
            if text:
                append((TEXT, text))
            for event, node in etree.iterwalk(child, events=("start", "end")):
                _check_node(node)
                if event == "start":
                    append((START, node.tag, dict(node.attrib)))
                    if node.text:
                        append((TEXT, node.text))
                else:
                    append((END, node.tag))
                    if node is not child and node.tail:
                        append((TEXT, node.tail))
            last, child = child, child.getnext()
        entry[1] = last

    def take(self) -> list[Event]:
        if self._handed is not None:
            return self._handed.take()
        return take_all(self._events)

    def close(self) -> None:
        if self._handed is None:
            try:
                _feed_lxml(self._parser, None, self._drain)
                return
            except _HandOver:
                self._hand_over()
        assert self._handed is not None
        self._handed.close()


class _HandOver(Exception):
    """The document is one lxml gets wrong: the fallback driver takes it over."""


def _entity_holds_cr(tree: Any) -> bool:
    dtd = tree.docinfo.internalDTD
    return dtd is not None and any("\r" in (entity.content or "") for entity in dtd.iterentities())


def _check_node(node: Any) -> None:
    if not isinstance(node.tag, str):
        raise XmlProblem(undefined(node.name if hasattr(node, "name") else "?"))


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
        return take_all(self._records)

    def close(self) -> None:
        root = _feed_lxml(self._parser, None, self._drain)
        if not self._checked and root is not None:
            _check_lxml_document(root.getroottree(), self._allow)
