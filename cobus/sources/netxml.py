"""``listen | xml``: each TCP connection parsed as its own stream of XML documents.

Bytes from different clients must never meet in one parser: a line of one
client's document between two lines of another's is garbage to both. So
``listen | xml`` is fused into one source whose client tasks each own a
document reader (:class:`~cobus.sources.xml.Documents` over expat). Their
events share one output; whenever the connection whose events are sent
changes, a ``("stream", "tcp://HOST:PORT")`` event comes first, and the
stages that keep state across events (``records``, ``events``) keep one
state per stream (:mod:`cobus.xmlrecords`).

A client that sends something that is not XML at all (``GET / HTTP/1.0``)
is named on stderr and dropped with ``--recover``; the run goes on and later
clients are accepted. A malformed document is skipped, as ``xml --recover``
does, and the client goes on with its next document. Without ``--recover``
either ends the run, naming the client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..context import RunContext
from ..core import Target
from ..errors import SourceError
from ..kernel import TaskGen
from ..steps import Fused, Step
from ..xmlrecords import STREAM
from ._framing import BadClient, Framing, make_framer
from ._tcp import MAX_LINE, Intake, parse_address, serve
from .xml import Documents

__all__ = ["absorb_xml", "listen_xml"]


class _Switch:
    """The shared output: says which stream the next events belong to when it changes."""

    def __init__(self, outlet: Intake) -> None:
        self.outlet = outlet
        self.current: str | None = None

    def sender(self, name: str) -> Callable[[list[Any]], None]:
        def send(items: list[Any]) -> None:
            if self.current != name:
                self.current = name
                items = [(STREAM, name), *items]
            self.outlet.send(items)

        return send


class _XmlStream:
    """One connection's bytes (unframed when octet-counted) into its own document reader."""

    def __init__(
        self,
        name: str,
        switch: _Switch,
        framing: Framing,
        *,
        recover: bool,
        allow_entities: bool,
        ctx: RunContext,
    ) -> None:
        from ._xmlparsers import make_driver

        outlet = switch.outlet
        self.framer = None
        if framing != "newline":
            self.framer = make_framer(framing, outlet.max_line, outlet.count_cut)
        self.recover = recover
        self.documents = Documents(
            switch.sender(name),
            lambda: make_driver("expat", allow_entities=allow_entities, multi=True),
            name=name,
            multi=True,
            recover=recover,
            warn=ctx.warn,
        )

    def feed(self, data: bytes) -> None:
        if self.framer is not None:
            data = self.framer.feed(data)
        self._call(self.documents.feed, data)

    def close(self) -> None:
        if self.framer is not None:
            self._call(self.documents.feed, self.framer.flush())
        self._call(self.documents.close)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except SourceError as exc:
            if self.recover:  # not XML at all: drop this client, keep the others
                raise BadClient(str(exc)) from None
            raise


def listen_xml(
    target: Target,
    *,
    address: str,
    max_line: int = MAX_LINE,
    framing: Framing = "newline",
    recover: bool = False,
    allow_entities: bool = False,
    ctx: RunContext,
) -> TaskGen:
    """``listen ADDRESS | xml``: XML events, each connection parsed on its own."""
    host, port = parse_address(address)
    outlet = Intake(target, ctx, max_line)
    switch = _Switch(outlet)

    def open_stream(name: str) -> _XmlStream:
        return _XmlStream(name, switch, framing, recover=recover, allow_entities=allow_entities, ctx=ctx)

    return serve(target, address, host, port, outlet, open_stream)


def absorb_xml(listen_args: Mapping[str, Any], step: Step) -> Fused:
    """The plan of ``listen | xml`` (``listen`` declares it takes over XML parsing)."""
    params = {
        **listen_args,
        "recover": bool(step.args.get("recover")),
        "allow_entities": bool(step.args.get("allow_entities")),
    }
    return Fused(listen_xml, params, "each connection parsed as its own stream of XML documents (expat)")
