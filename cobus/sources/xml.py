"""``xml``: parse XML into events, from a file (source) or from arriving bytes (stage).

Events are tuples, sent in lists (one list per 32 KiB of input parsed)::

    ("start", tag, attrs)   attrs: dict of attribute name -> value
    ("text", text)          all character data between two tags, in one piece
    ("end", tag)
    ("abort", message)      --recover: the document in progress was malformed and
                            is abandoned; its open elements get no end event
    ("stream", name)        the events that follow come from input stream name
                            (``listen | xml``: a connection; see ``netxml``)

Tags and attribute names are in Clark notation (``{uri}local`` when in a
namespace). CDATA and entities are merged into the text; comments,
processing instructions and the prolog make no events. The expat, lxml and
sax drivers (``_xmlparsers``) emit exactly the same events. ``xml FILE |
records TAG`` (lxml, the default there) is fused into one lxml loop that
builds records directly, and ``where`` stages right after it are fused too:
their conditions are tested on the element before a record is built
(``explain`` shows it). The source declares what it can take over (the
steps of :mod:`cobus.steps`, never other stages' names); the planner
decides. The record rule is in :mod:`cobus.xmlrecords`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any, Literal

from ..conditions import AllOf
from ..context import RunContext
from ..core import EVENTS, LINES, Done, StageGen, Target, coroutine
from ..errors import SourceError
from ..inputs import open_input, read_blocks
from ..kernel import ReadWait
from ..registry import Arg, Opt, ParamError, stage
from ..steps import FILTER_RECORDS, MAKE_RECORDS, PARSE_XML, Fused, Step
from ..xmlrecords import ABORT
from ._xmlbase import Driver, XmlProblem

__all__ = ["DEFAULT_PARSER", "Documents", "xml_source", "xml_stream"]

#: The parser when none is named, for plain events: expat is the fastest at
#: making events (50 MB feed: 1.7 s of CPU, lxml 2.5, sax 3.4). When
#: ``records`` follows, the fused lxml loop is used instead (3x faster again).
DEFAULT_PARSER = "expat"

Parser = Literal["expat", "lxml", "sax"]

#: Bytes parsed at a time; what they complete is sent as one batch.
SLICE = 1 << 15

_WHITESPACE = b" \t\r\n"
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_DECLARATION = b"<?xml"


class _Holder:
    """Holds bytes back from expat while it is stuck inside one huge token.

    Discussion: linear time on a huge attribute. expat 2.5 (the one Python
    links here) rescans a token that is not complete yet from its start at
    every ``Parse`` call: a 16 MB attribute fed 32 KiB at a time is 512
    rescans of up to 16 MB (3.6 s; 50 MB over 30 s). Once ``_STUCK`` bytes
    have been parsed without anything to send, further bytes are held until
    as many again have arrived, and then parsed in one call: the call sizes
    double, so the rescans add up to a small multiple of the token's size.
    Held bytes are parsed at :meth:`Documents.close` at the latest, so only
    a file source holds (a live stream must not wait for bytes that may not
    come), and only for event drivers (records come too rarely to tell).
    """

    def __init__(self) -> None:
        self.held: list[bytes] = []
        self.size = 0
        self.stuck = 0  # bytes parsed since the last event

    def next(self, data: bytes) -> bytes | None:
        """The bytes to parse now (None: hold them for now)."""
        if self.stuck < _STUCK:
            return data
        self.held.append(data)
        self.size += len(data)
        if self.size < self.stuck:
            return None
        return self.rest()

    def parsed(self, size: int, progressed: bool) -> None:
        self.stuck = 0 if progressed else self.stuck + size

    def rest(self) -> bytes:
        out = b"".join(self.held)
        self.held.clear()
        self.size = 0
        return out


#: Bytes parsed without an event after which the holder starts doubling.
_STUCK = 1 << 20


class Documents:
    """Feeds bytes to a driver, sends what it makes, reports problems as one line.

    With ``multi`` the bytes may hold several documents back to back (expat
    only): a new driver starts where the previous root closed, and line
    numbers in messages count from the start of the whole input. With
    ``recover`` a malformed document is reported on stderr and skipped up to
    the next ``<?xml`` declaration.

    Discussion: why slices. Blocks are read 1 MiB at a time but parsed 32 KiB
    at a time, each slice's events or records sent at once: the slice, the
    parser's fresh objects and the batch then stay in the CPU cache. Measured
    on a 200 MB feed: lxml records 3.3 s of CPU instead of 4.1, expat events
    into records 7.5 s instead of 15.

    Discussion: what is sent before an error. A driver keeps what it made
    before a problem, so :meth:`feed` sends that first and raises after: every
    record completed before the bad byte reaches the sinks, which flush as the
    error closes the pipeline.
    """

    def __init__(
        self,
        send: Callable[[list[Any]], None],
        new_driver: Callable[[], Driver],
        *,
        name: str,
        multi: bool = False,
        recover: bool = False,
        warn: Callable[[str], None] | None = None,
        hold: bool = False,
    ) -> None:
        self._send = send
        self._holder = _Holder() if hold else None
        self._sent = 0  # batches sent: progress, for the holder
        self._new_driver = new_driver
        self._name = name
        self._multi = multi
        self._recover = recover
        self._warn = warn
        self._driver: Driver | None = None
        self._seen_any = False
        #: Newlines before the current document, and inside it so far.
        self._line_base = 0
        self._doc_lines = 0
        self._skipping = False
        self._skip_tail = b""

    def feed(self, data: bytes) -> None:
        """Parse the next bytes of the input, sending what they complete."""
        holder = self._holder
        if holder is not None and holder.stuck >= _STUCK:
            ready = holder.next(data)
            if ready is not None:
                self._parse(ready)
            return
        if len(data) <= SLICE:
            self._parse(data)
            return
        view = memoryview(data)
        for start in range(0, len(data), SLICE):
            self._parse(bytes(view[start : start + SLICE]))

    def _parse(self, data: bytes) -> None:
        if self._holder is None:
            self._feed(data)
            return
        sent = self._sent
        self._feed(data)
        self._holder.parsed(len(data), self._sent > sent)

    def _feed(self, data: bytes) -> None:
        while data:
            if self._skipping:
                data = self._skip(data)
                continue
            if self._driver is None:
                data = self._begin(data)
                if not data:
                    return
            driver = self._driver
            assert driver is not None
            try:
                rest = driver.feed(data)
            except XmlProblem as problem:
                self._flush()
                data = self._failed(problem, data)
                continue
            self._flush()
            if rest is None:
                if self._multi:
                    self._doc_lines += data.count(b"\n")
                return
            # The document ended inside ``data``; the next one starts at ``rest``.
            self._end_document(data[: len(data) - len(rest)])
            data = rest

    def close(self) -> None:
        """The input has ended: finish the document in progress."""
        if self._holder is not None and self._holder.held:
            self._feed(self._holder.rest())
        driver = self._driver
        if driver is not None:
            try:
                driver.close()
            except XmlProblem as problem:
                self._flush()
                self._failed(problem, b"")
                return
            self._flush()
        elif not self._seen_any and not self._multi:
            raise SourceError(f"{self._name}: no XML document (the input is empty)")

    def _flush(self) -> None:
        assert self._driver is not None
        items = self._driver.take()
        if items:
            self._send(items)
            self._sent += 1

    def _begin(self, data: bytes) -> bytes:
        """Start a document at its first non-blank byte; check it looks like XML."""
        if self._multi or not self._seen_any:
            stripped = data.lstrip(_WHITESPACE)
            if self._multi:
                self._line_base += data.count(b"\n", 0, len(data) - len(stripped))
                data = stripped
            if not stripped:
                return b""
            self._seen_any = True
            head = stripped[:3]
            if stripped[:1] != b"<" and not head.startswith(_BOMS):
                raise SourceError(
                    f"{self._name}:{self._line_base + 1}: not an XML document "
                    f"(it starts with {stripped[:20].decode('utf-8', 'replace')!r})"
                )
        self._driver = self._new_driver()
        self._doc_lines = 0
        return data

    def _end_document(self, consumed: bytes) -> None:
        self._line_base += self._doc_lines + consumed.count(b"\n")
        self._doc_lines = 0
        self._driver = None

    def _failed(self, problem: XmlProblem, data: bytes) -> bytes:
        """Raise the problem as one line, or (recovering) warn and skip to the next document."""
        where = self._name
        if problem.line is not None:
            where += f":{self._line_base + problem.line}"
            if problem.column is not None:
                where += f":{problem.column}"
        message = f"{where}: {problem.message}"
        if not self._recover:
            raise SourceError(message)
        if self._warn is not None:
            self._warn(f"{message} (document skipped)")
        self._send([(ABORT, message)])
        # Resume the search for the next document just after the bad byte.
        start = max(1, problem.offset + 1) if problem.offset is not None else 1
        self._line_base += self._doc_lines
        self._doc_lines = 0
        self._driver = None
        self._skipping = True
        self._skip_tail = b""
        self._line_base += data.count(b"\n", 0, min(start, len(data)))
        return data[start:]

    def _skip(self, data: bytes) -> bytes:
        """Drop bytes up to the next ``<?xml``; return what follows from there."""
        joined = self._skip_tail + data
        at = joined.find(_DECLARATION)
        if at < 0:
            self._line_base += data.count(b"\n")
            self._skip_tail = joined[-(len(_DECLARATION) - 1) :]
            return b""
        self._skipping = False
        self._line_base += joined.count(b"\n", len(self._skip_tail), at) if at > len(self._skip_tail) else 0
        self._skip_tail = b""
        return joined[at:]


def _check_source(params: dict[str, Any]) -> None:
    if params.get("recover") and params.get("parser") not in (None, "expat"):
        raise ParamError("parser", "--recover reads documents back to back, which needs --parser expat")


def _parser_of(params: dict[str, Any]) -> str:
    return str(params.get("parser") or DEFAULT_PARSER)


def _absorb_records(args: Mapping[str, Any], step: Step) -> Fused | None:
    # Only the source form, and only when lxml may run it: the loop is lxml's.
    if "tag" in args or args.get("recover") or args.get("parser") not in (None, "lxml"):
        return None
    if args.get("allow_entities"):
        # Entities: the event drivers, one of which hands documents libxml2
        # gets wrong to expat (see _xmllxml.LxmlDriver), build the records.
        return None
    params = {"path": args["path"], "tag": step.args["tag"], "allow_entities": False}
    return Fused(xml_records, params, _note(params))


def _absorb_filter(args: Mapping[str, Any], step: Step) -> Fused | None:
    # Only once the records are made here: then conditions are tested on
    # the element, before a record is built (the same records pass).
    if "tag" not in args:
        return None
    where: AllOf | None = args.get("where")
    conditions: AllOf = step.args["conditions"]
    params = {**args, "where": where & conditions if where is not None else conditions}
    return Fused(xml_records, params, _note(params))


def _note(params: Mapping[str, Any]) -> str:
    note = f"lxml pull parser, tag filter {params['tag']!r}: records built in one loop"
    if params.get("where"):
        note += f"; where {params['where']} tested before a record is built"
    return note


@stage(
    "xml",
    role="source",
    produces=EVENTS,
    check=_check_source,
    absorbs={MAKE_RECORDS: _absorb_records, FILTER_RECORDS: _absorb_filter},
    examples=(
        "xml allroutes.xml | records bus | where route=22 | csv id,route,direction",
        "xml --parser sax feed.xml.gz | records bus | count",
        "xml allroutes.xml | events | print",
        "xml - | records item | jsonl",
    ),
)
def xml_source(
    target: Target,
    *,
    path: Annotated[str, Arg("XML file (.gz/.bz2/.xz read transparently); - is stdin", metavar="FILE")],
    parser: Annotated[
        Parser | None, Opt("-p", "XML parser (default: the fastest: lxml fused with records, else expat)")
    ] = None,
    recover: Annotated[
        bool, Opt("", "the file holds documents back to back; report and skip malformed ones")
    ] = False,
    allow_entities: Annotated[
        bool, Opt("", "accept documents that declare internal entities (never external ones)")
    ] = False,
    ctx: RunContext,
) -> Iterator[object]:
    """Parse an XML file into start/text/end events (expat, lxml or sax).

    Every parser emits the same events: ("start", tag, attrs), ("text", text)
    and ("end", tag), with namespaced names as {uri}local. Nothing external
    is ever loaded: a document that declares entities or names an external
    DTD is refused unless --allow-entities, and even then only internal
    entities are expanded, within the parser's expansion limits. Malformed
    XML ends the run with FILE:LINE:COL: message, after everything parsed
    before it has been sent on.
    """
    name = "<stdin>" if path == "-" else path
    choice = _parser_of({"parser": parser, "recover": recover})
    multi = recover

    def new_driver() -> Driver:
        from ._xmlparsers import make_driver

        return make_driver(choice, allow_entities=allow_entities, multi=multi)

    return _read(target, path, name, new_driver, multi=multi, recover=recover, hold=True, ctx=ctx)


def _read(
    target: Target,
    path: str,
    name: str,
    new_driver: Callable[[], Driver],
    *,
    multi: bool,
    recover: bool,
    hold: bool,
    ctx: RunContext,
) -> Iterator[object]:
    try:
        documents = Documents(
            target.send, new_driver, name=name, multi=multi, recover=recover, warn=ctx.warn, hold=hold
        )
        source = open_input(path)
        try:
            tracker = ctx.track(path, source.size())
            wait = source.waits()
            blocks = read_blocks(source.stream, name)
            while True:
                if wait:
                    # A pipe: let the kernel run other tasks until bytes are ready.
                    yield ReadWait(source.raw)
                block = next(blocks, None)
                if block is None:
                    break
                documents.feed(block)
                tracker.update(source.position())
            documents.close()
            tracker.finish()
        finally:
            source.close()
    except Done:
        return
    finally:
        target.close()


def xml_records(
    target: Target,
    *,
    path: str,
    tag: str,
    allow_entities: bool = False,
    where: AllOf | None = None,
    ctx: RunContext,
) -> Iterator[object]:
    """``xml FILE | records TAG [| where ...]`` fused into lxml's tag-filtered pull parser."""
    name = "<stdin>" if path == "-" else path
    conditions = where.terms if where is not None else ()

    def new_driver() -> Driver:
        from ._xmlparsers import make_record_driver

        return make_record_driver(tag, allow_entities=allow_entities, conditions=conditions)

    return _read(target, path, name, new_driver, multi=False, recover=False, hold=False, ctx=ctx)


def _stream_step(params: Mapping[str, Any]) -> Step:
    return Step(
        PARSE_XML,
        {"recover": bool(params.get("recover")), "allow_entities": bool(params.get("allow_entities"))},
    )


@stage(
    "xml",
    role="filter",
    consumes=LINES,
    produces=EVENTS,
    step=_stream_step,
    examples=(
        "follow feed.xml | xml | records bus | where route=22 | print",
        "listen tcp://127.0.0.1:6000 | xml --recover | records bus | jsonl",
        "cat a.xml b.xml | xml | records bus | count",
    ),
)
@coroutine
def xml_stream(
    target: Target,
    *,
    recover: Annotated[bool, Opt("", "report a malformed document and go on with the next one")] = False,
    allow_entities: Annotated[
        bool, Opt("", "accept documents that declare internal entities (never external ones)")
    ] = False,
    ctx: RunContext,
) -> StageGen:
    """Parse arriving bytes as XML events, document after document (a growing file, a socket).

    Bytes are parsed as they arrive (expat), so each complete element is sent
    on at once. Several documents back to back are parsed one after the
    other; a new one starts once the previous root element has closed. With
    --recover a malformed document is reported on stderr and skipped up to
    the next <?xml declaration; without it, it ends the run.
    """
    from ._xmlparsers import make_driver

    documents = Documents(
        target.send,
        lambda: make_driver("expat", allow_entities=allow_entities, multi=True),
        name="<xml stream>",
        multi=True,
        recover=recover,
        warn=ctx.warn,
    )
    try:
        while True:
            documents.feed((yield))
    except GeneratorExit:
        documents.close()
    finally:
        target.close()
