"""XML events and the rule that turns an element into a record, shared by ``xml`` and ``records``.

An XML event is a tuple: ``("start", tag, attrs)``, ``("text", text)`` or
``("end", tag)``; ``("abort", message)`` says the document in progress was
malformed and abandoned (``xml --recover``): its open elements end there.
``("stream", name)`` says the events that follow belong to the input stream
``name`` (``listen | xml``: one per connection), until the next such event;
a consumer that keeps state across events keeps one per stream.
Tags and attribute names are in Clark notation (``{uri}local`` when
namespaced, else plain). ``text`` is the whole run of
character data between two tags (CDATA and entities merged in, never two text
events in a row); comments, processing instructions and the prolog make no
events. This module holds the event constants and the record rule, applied
either to events (:class:`RecordBuilder`, for the ``records`` stage) or to a
finished lxml element (:func:`element_record`, for the fused ``xml | records``);
both must give the same records. It registers no stage and does no I/O.

The record rule, for each outermost element whose tag matches ``TAG``:

- each attribute of the element becomes a field ``@name`` (local name);
- each child element becomes a field named by its local name, holding the
  child's whole text content (its descendants' text included), with
  surrounding whitespace stripped;
- a child name that repeats holds a list of those texts, in document order;
- an element with no child elements holds its own text under its own local
  name (``records route`` gives ``{"route": "22"}``);
- a ``TAG`` element nested inside a record is only part of that record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

__all__ = [
    "ABORT",
    "END",
    "START",
    "STREAM",
    "TEXT",
    "Event",
    "Record",
    "RecordBuilder",
    "add_field",
    "element_record",
    "local_name",
    "tag_matcher",
]

START = "start"
TEXT = "text"
END = "end"
ABORT = "abort"
STREAM = "stream"

Event: TypeAlias = tuple[Any, ...]
Record: TypeAlias = dict[str, Any]


def local_name(tag: str) -> str:
    """``{uri}name`` -> ``name``; a plain name stays as it is."""
    return tag.rpartition("}")[2] if tag[:1] == "{" else tag


def tag_matcher(tag: str) -> Callable[[str], bool]:
    """A test for event tags: ``{uri}name`` matches exactly, ``name`` by local name."""
    if tag.startswith("{"):
        return tag.__eq__
    suffix = "}" + tag

    def matches(candidate: str) -> bool:
        return candidate == tag or candidate.endswith(suffix)

    return matches


def add_field(record: Record, name: str, value: str) -> None:
    """Set a field; a name seen before turns into a list of values (document order)."""
    if name not in record:
        record[name] = value
        return
    old = record[name]
    if isinstance(old, list):
        old.append(value)
    else:
        record[name] = [old, value]


def _attr_fields(attrs: dict[str, str]) -> Record:
    return {"@" + local_name(k): v for k, v in attrs.items()}


class RecordBuilder:
    """Feed it batches of events; it returns the records completed in each.

    Discussion: state spans batches. A record may start in one batch and end
    in a later one (a batch is cut wherever a read block ended), so the open
    record, the depth inside it and the text gathered so far live here, not
    in a local of one call. Depth 1 is the record element itself, depth 2 a
    child whose text becomes a field, deeper levels add to that child's text.
    """

    def __init__(self, tag: str) -> None:
        self._matches = tag_matcher(tag)
        self._record: Record | None = None
        self._depth = 0
        self._child = ""
        self._texts: list[str] = []
        self._own: list[str] = []
        self._has_children = False
        self._names: dict[str, str] = {}
        #: ``("stream", key)`` events: the open records of the other streams.
        self._key: str | None = None
        self._saved: dict[str | None, tuple[Any, ...]] = {}

    def feed(self, events: Iterable[Event]) -> list[Record]:
        """The records that end in this batch of events, in document order."""
        out: list[Record] = []
        matches = self._matches
        names = self._names
        record, depth, texts = self._record, self._depth, self._texts
        for event in events:
            kind = event[0]
            if record is None:
                if kind == START and matches(event[1]):
                    record = _attr_fields(event[2]) if event[2] else {}
                    depth = 1
                    self._own = []
                    self._has_children = False
                elif kind == STREAM:
                    record, depth, texts = self._switch(event[1], record, depth, texts)
                continue
            if kind == TEXT:
                if depth >= 2:
                    texts.append(event[1])
                else:
                    self._own.append(event[1])
            elif kind == START:
                depth += 1
                if depth == 2:
                    tag = event[1]
                    name = names.get(tag)
                    if name is None:
                        name = names[tag] = local_name(tag)
                    self._child = name
                    texts = []
                    self._has_children = True
            elif kind == END:
                depth -= 1
                if depth == 1:
                    add_field(record, self._child, "".join(texts).strip())
                elif depth == 0:
                    if not self._has_children:
                        add_field(record, local_name(event[1]), "".join(self._own).strip())
                    out.append(record)
                    record = None
            elif kind == ABORT:
                # The document was abandoned mid-record: drop what was built.
                record, depth = None, 0
            elif kind == STREAM:
                record, depth, texts = self._switch(event[1], record, depth, texts)
        self._record, self._depth, self._texts = record, depth, texts
        return out

    def _switch(self, key: str, record: Record | None, depth: int, texts: list[str]) -> tuple[Any, ...]:
        """Put the open record of the current stream aside and take up ``key``'s.

        Only a stream with a record open keeps saved state, so a stream that
        ended between records (every connection does) leaves nothing behind.
        """
        if record is not None:
            self._saved[self._key] = (record, depth, texts, self._child, self._own, self._has_children)
        self._key = key
        saved = self._saved.pop(key, None)
        if saved is None:
            return None, 0, []
        record, depth, texts, self._child, self._own, self._has_children = saved
        return record, depth, texts


def element_record(element: Any, names: dict[Any, str]) -> Record:
    """The record of a finished lxml element (same rule as :class:`RecordBuilder`).

    ``names`` caches tag -> local name across calls. The element's tree must
    hold no comments or processing instructions (parse with them removed), so
    that ``.text`` is the whole text of a child without children.

    Discussion: the fast path. Most records are flat: distinct, unprefixed
    children holding only text, and no attributes. For those the record is
    a plain ``{tag: text.strip()}`` loop in one pass over the children (each
    pass makes a Python proxy per child, the main cost), checked afterwards
    by C-level tests: a size mismatch means a repeated child, a ``{`` a
    namespace. Anything else takes the general path.
    """
    record: Record = {}
    for child in element:
        if len(child):
            return _general_record(element, names)
        text = child.text
        record[child.tag] = text.strip() if text else ""
    try:
        if record and len(record) == len(element) and "{" not in "".join(record) and not element.attrib:
            return record
    except TypeError:  # a tag that is not text: an entity reference node
        pass
    return _general_record(element, names)


def _general_record(element: Any, names: dict[Any, str]) -> Record:
    attrib = element.attrib
    record: Record = {"@" + local_name(k): v for k, v in attrib.items()} if attrib else {}
    has_children = False
    for child in element:
        has_children = True
        tag = child.tag
        name = names.get(tag)
        if name is None:
            name = names[tag] = _checked_local_name(tag)
        text = "".join(_itertext(child)) if len(child) else child.text or ""
        add_field(record, name, text.strip())
    if not has_children:
        add_field(record, _checked_local_name(element.tag), (element.text or "").strip())
    return record


class EntityNode(ValueError):
    """An unexpanded entity reference was found in an lxml tree."""


def _checked_local_name(tag: Any) -> str:
    if not isinstance(tag, str):
        # lxml keeps a reference to an entity it could not resolve (one an
        # external DTD would define) as a node; expat refuses it, so must we.
        raise EntityNode("reference to an undefined entity (external DTDs are never loaded)")
    return local_name(tag)


def _itertext(element: Any) -> Iterable[str]:
    for node in element.iter():
        _checked_local_name(node.tag)
    return element.itertext()
