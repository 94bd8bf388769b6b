"""``listen``: newline-delimited text from TCP clients; one kernel task per connection.

The listen task accepts connections and starts a detached client task for
each; a client task sends only whole lines of its own connection, so lines of
different clients are never mixed. A line longer than ``--max-line`` is cut
(its first bytes are kept) rather than buffered without bound. Binds to
127.0.0.1 unless an address says otherwise. Nothing here knows files or sinks.
"""

from __future__ import annotations

import socket
from typing import Annotated, Any
from urllib.parse import urlsplit

from ..context import RunContext
from ..core import LINES, Done, Target
from ..errors import SourceError
from ..kernel import GetTid, KillTask, NewTask, ReadWait, TaskGen
from ..registry import Arg, Opt, ParamError, stage

__all__ = ["listen", "parse_address"]

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


class _Outlet:
    """The target every client task sends into, and the count of cut lines."""

    def __init__(self, target: Target, ctx: RunContext, max_line: int) -> None:
        self.target = target
        self.ctx = ctx
        self.max_line = max_line
        self.done = False
        self.cut = 0

    def send(self, block: bytes) -> None:
        if block and not self.done:
            try:
                self.target.send(block)
            except (Done, StopIteration):
                self.done = True

    def count_cut(self, n: int) -> None:
        if n and not self.cut:
            self.ctx.warn(f"listen: cutting lines longer than {self.max_line} bytes (--max-line)")
        self.cut += n


class _Lines:
    """Cuts one connection's bytes into blocks of whole lines, none over ``max_line``."""

    def __init__(self, outlet: _Outlet) -> None:
        self.outlet = outlet
        self.max = outlet.max_line
        self.held = b""  # the unfinished last line, never longer than max
        self.skipping = False  # dropping the rest of a line that was cut

    def feed(self, data: bytes) -> bytes:
        if self.skipping:
            nl = data.find(b"\n")
            if nl < 0:
                return b""
            self.skipping = False
            data = data[nl + 1 :]
        if self.held:
            data = self.held + data
        end = data.rfind(b"\n") + 1
        block, rest = data[:end], data[end:]
        if len(block) > self.max:  # only then can a line in it be too long
            block = self._cut(block)
        if len(rest) > self.max:
            block += rest[: self.max] + b"\n"
            rest = b""
            self.skipping = True
            self.outlet.count_cut(1)
        self.held = rest
        return block

    def flush(self) -> bytes:
        """The unfinished line of a client that hung up, with its newline."""
        held, self.held = self.held, b""
        return held + b"\n" if held else b""

    def _cut(self, block: bytes) -> bytes:
        lines = block.split(b"\n")
        lines.pop()  # the block ends with a newline
        long = sum(len(line) > self.max for line in lines)
        if not long:
            return block
        self.outlet.count_cut(long)
        return b"".join(line[: self.max] + b"\n" for line in lines)


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


def _check(params: dict[str, Any]) -> None:
    if "address" in params:
        try:
            parse_address(params["address"])
        except ValueError as exc:
            raise ParamError("address", str(exc)) from None
    if params.get("max_line", 1) < 1:
        raise ParamError("max_line", "--max-line must be at least 1 byte")


@stage(
    "listen",
    role="source",
    produces=LINES,
    check=_check,
    examples=(
        "listen tcp://127.0.0.1:5140 | grep ERROR | print",
        "listen --max-line 65536 tcp://:5140 | write -a net.log",
    ),
)
def listen(
    target: Target,
    *,
    address: Annotated[str, Arg("tcp://HOST:PORT; HOST defaults to 127.0.0.1", metavar="URL")],
    max_line: Annotated[int, Opt("", "cut lines longer than BYTES", metavar="BYTES")] = MAX_LINE,
    ctx: RunContext,
) -> TaskGen:
    """Read newline-delimited text from any number of TCP clients, each line whole.

    A client that hangs up mid-line has its partial line delivered; port 0
    picks a free port and says which on stderr.
    """
    host, port = parse_address(address)
    return _serve(target, address, host, port, _Outlet(target, ctx, max_line))


def _serve(target: Target, address: str, host: str, port: int, outlet: _Outlet) -> TaskGen:
    """The listen task: accept connections and start a client task for each."""
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
            yield NewTask(_client(conn, outlet, me), name=f"listen {peer}", detached=True)
    except OSError as exc:
        raise SourceError(f"{address}: {exc.strerror or exc}") from exc
    finally:
        if server is not None:
            server.close()
        if outlet.cut:
            outlet.ctx.warn(f"listen: {outlet.cut} lines longer than {outlet.max_line} bytes were cut")
        target.close()


def _client(conn: socket.socket, outlet: _Outlet, server: int) -> TaskGen:
    """One connection: its lines go on whole; its last partial line when it hangs up."""
    lines = _Lines(outlet)
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
            outlet.send(lines.feed(data))
            if outlet.done:  # downstream has enough: end the listener (and so this task)
                yield KillTask(server)
    finally:
        try:
            outlet.send(lines.flush())
        finally:
            conn.close()
