"""TCP intake shared by ``listen`` and ``listen | xml``: addresses, the accept loop, client tasks.

The listen task accepts connections and starts a detached client task for
each; a client task sends only whole lines of its own connection, so lines of
different clients are never mixed. A line longer than the limit is cut (its
first bytes are kept) rather than buffered without bound. Binds to 127.0.0.1
unless an address says otherwise. Nothing here registers a stage.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..context import RunContext
from ..core import Outlet, Target
from ..errors import SourceError
from ..kernel import GetTid, KillTask, NewTask, ReadWait, TaskGen
from ._framing import BadClient, Framing, make_framer

__all__ = ["MAX_LINE", "Intake", "LineStream", "Stream", "parse_address", "peer_name", "serve"]

MAX_LINE = 1 << 20
RECV_SIZE = 1 << 18
DEFAULT_HOST = "127.0.0.1"


def parse_address(text: str) -> tuple[str, int]:
    """``tcp://HOST:PORT``, ``tcp://:PORT``, ``HOST:PORT`` or ``PORT`` -> (host, port).

    >>> parse_address("tcp://:5140")
    ('127.0.0.1', 5140)
    >>> parse_address("tcp://[::1]:5140")
    ('::1', 5140)
    """
    if text.isdigit():
        text = f":{text}"
    try:
        parts = urlsplit(text if "://" in text else f"tcp://{text}")
    except ValueError:  # an unclosed [ of an IPv6 host
        raise ValueError(f"{text!r} is not tcp://HOST:PORT (an IPv6 host is written [::1])") from None
    if parts.scheme != "tcp":
        raise ValueError(f"only tcp:// addresses are supported, not {parts.scheme}://")
    if parts.path or parts.query or parts.fragment:
        raise ValueError(f"{text!r} is not tcp://HOST:PORT")
    try:
        port = parts.port
    except ValueError:  # urllib's words ("Port could not be cast to integer value") are not ours
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535") from None
    if port is None:
        raise ValueError(f"{text!r} has no port (tcp://HOST:PORT)")
    return parts.hostname or DEFAULT_HOST, port


class Intake:
    """What every client task shares: the :class:`~cobus.core.Outlet`, and the count of cut lines."""

    def __init__(self, target: Target, ctx: RunContext, max_line: int) -> None:
        self.outlet = Outlet(target)
        self.ctx = ctx
        self.max_line = max_line
        self.cut = 0

    @property
    def done(self) -> bool:
        return self.outlet.done

    def send(self, block: bytes | list[Any]) -> None:
        if block:
            self.outlet.offer(block)

    def count_cut(self, n: int) -> None:
        if n and not self.cut:
            self.ctx.warn(f"listen: cutting lines longer than {self.max_line} bytes (--max-line)")
        self.cut += n


class Stream(Protocol):
    """What one connection's bytes go into; raises :class:`BadClient` to drop the client."""

    def feed(self, data: bytes) -> None: ...
    def close(self) -> None: ...


class LineStream:
    """A connection's messages, framed, sent on as blocks of whole lines."""

    def __init__(self, outlet: Intake, framing: Framing) -> None:
        self.outlet = outlet
        self.framer = make_framer(framing, outlet.max_line, outlet.count_cut)

    def feed(self, data: bytes) -> None:
        self.outlet.send(self.framer.feed(data))

    def close(self) -> None:
        self.outlet.send(self.framer.flush())


def peer_name(peer: Any) -> str:
    """A client's address as ``tcp://HOST:PORT`` (IPv6 in brackets), for messages."""
    host, port = peer[0], peer[1]
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    try:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((host, port))
        server.listen(socket.SOMAXCONN)
        server.setblocking(False)
    except BaseException:
        server.close()
        raise
    return server


def serve(
    target: Target, address: str, host: str, port: int, outlet: Intake, open_stream: Callable[[str], Stream]
) -> TaskGen:
    """The listen task: accept connections and start a client task for each.

    ``open_stream`` makes what a connection's bytes go into, given the
    client's name (:func:`peer_name`).
    """
    server: socket.socket | None = None
    try:
        me = yield GetTid()
        server = _bind(host, port)
        if port == 0:
            shown = f"[{host}]" if ":" in host else host
            outlet.ctx.warn(f"listening on tcp://{shown}:{server.getsockname()[1]}")
        while True:
            yield ReadWait(server)
            try:
                conn, peer = server.accept()
            except (BlockingIOError, ConnectionAbortedError):
                continue  # another task or the client was quicker
            conn.setblocking(False)
            name = peer_name(peer)
            client = _client(conn, open_stream(name), name, outlet, me)
            yield NewTask(client, name=f"listen {name}", detached=True)
    except OSError as exc:
        raise SourceError(f"{address}: {exc.strerror or exc}") from exc
    finally:
        if server is not None:
            server.close()
        if outlet.cut:
            outlet.ctx.warn(f"listen: {outlet.cut} lines longer than {outlet.max_line} bytes were cut")
        target.close()


def _client(conn: socket.socket, stream: Stream, name: str, outlet: Intake, server: int) -> TaskGen:
    """One connection: its bytes go into its own stream until it hangs up or is dropped."""
    try:
        while True:
            yield ReadWait(conn)
            try:
                data = conn.recv(RECV_SIZE)
            except BlockingIOError:
                continue
            except ConnectionError:
                data = b""  # reset by the peer: the same as hanging up
            if not data:
                break
            try:
                stream.feed(data)
            except BadClient as exc:
                outlet.ctx.warn(f"listen: {_named(name, exc)}; client dropped")
                return
            if outlet.done:  # downstream has enough: end the listener (and so this task)
                yield KillTask(server)
    finally:
        try:
            stream.close()
        except BadClient as exc:
            outlet.ctx.warn(f"listen: {_named(name, exc)}")
        finally:
            conn.close()


def _named(name: str, exc: BadClient) -> str:
    message = str(exc)
    return message if message.startswith(name) else f"{name}: {message}"
