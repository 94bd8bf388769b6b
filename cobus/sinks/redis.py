"""``xadd URL STREAM``: every item becomes an entry of a Redis stream, a batch per round trip.

A block of lines becomes one entry per line, the line (without its newline)
in one field, ``line`` unless ``--field`` says otherwise; a record becomes an
entry with its fields (values that are not text as JSON, see
:func:`cobus.broker.record_fields`). A batch goes out as one pipelined write
of ``XADD`` commands and its replies are read back before the next batch:
one round trip per batch, and when ``send`` returns, every entry of the batch
is in the stream. The connection is in :mod:`cobus.redisconn`; nothing here
reads input.

Discussion: why the commands are packed here. redis-py packs a command in
about 10 us, which alone would hold a shipper under 100k lines/s; an
``XADD`` differs from the next only in its value, so the fixed part is
encoded once and each line costs a length and two concatenations (RESP is
four lines of spec). Connecting, AUTH, TLS and reading replies stay with
redis-py, whose hiredis reader does a reply in about a microsecond.

Discussion: a server that goes away mid-batch. The replies read so far say
which entries are in; the rest of the batch is sent again once a new
connection is made, after a pause that grows to 5 s (a notice on stderr
when the server is lost and when it is back). An entry whose reply was lost
with the connection may be in the stream already: it is sent again, so a
reader may see it twice (at least once, never lost). Meanwhile the pipeline
waits: nothing upstream is read that could not be written.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

from ..broker import Backoff, record_fields
from ..context import RunContext
from ..core import Target, coroutine, iter_lines
from ..errors import SinkError
from ..formats import item_line
from ..redisconn import URL_HELP, Link, Lost, Server, check_url
from ..registry import Arg, Opt, ParamError, stage

__all__ = ["xadd"]

#: Entries per pipelined write; a bigger batch goes in several round trips.
CHUNK = 2000

_MAXLEN = re.compile(r"(~?)\s*(\d+)")


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _command(args: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(map(_bulk, args))


def _maxlen_args(maxlen: str | None) -> list[bytes]:
    """``~1000`` -> MAXLEN ~ 1000 (approximate, as Redis users expect); ``1000`` -> exact."""
    if not maxlen:
        return []
    m = _MAXLEN.fullmatch(maxlen.strip())
    if m is None:
        raise ValueError(f"--maxlen takes N or ~N (about N entries kept), not {maxlen!r}")
    return [b"MAXLEN", *([b"~"] if m[1] else []), m[2].encode()]


class _Packer:
    """Encodes a batch as pipelined XADD commands (see the Discussion above)."""

    def __init__(self, stream: str, maxlen: str | None, field: str) -> None:
        self.fixed = [b"XADD", stream.encode(), *_maxlen_args(maxlen), b"*"]
        head = [*self.fixed, field.encode()]
        # Everything of a line's command but its value: "*N", the fixed bulks, "$".
        self.line_head = b"*%d\r\n" % (len(head) + 1) + b"".join(map(_bulk, head)) + b"$"
        self.skipped = 0

    def entries(self, batch: Any) -> list[Any]:
        """The batch cut into entries: values (lines) or field lists (records)."""
        if isinstance(batch, bytes):
            if not batch:
                return []
            lines = batch.split(b"\n")
            if lines[-1] == b"":
                lines.pop()
            return lines
        out: list[Any] = []
        for item in batch:
            if isinstance(item, dict):
                if item:
                    out.append(record_fields(item))
                else:
                    self.skipped += 1  # XADD needs a field
            else:
                out.extend(iter_lines(item_line(item).rstrip(b"\n")))
        return out

    def pack(self, entries: list[Any]) -> bytes:
        head = self.line_head
        if entries and isinstance(entries[0], bytes):
            return b"".join([head + b"%d\r\n" % len(v) + v + b"\r\n" for v in entries])
        fixed = self.fixed
        return b"".join(
            _command([*fixed, *e]) if isinstance(e, list) else head + b"%d\r\n" % len(e) + e + b"\r\n"
            for e in entries
        )


class _Shipper:
    """Writes entries through one link, reconnecting when the server goes away."""

    def __init__(self, server: Server, stream: str, ctx: RunContext) -> None:
        self.server = server
        self.who = f"xadd {stream}"
        self.backoff = Backoff(ctx.warn, ctx.clock)
        self.link: Link | None = None
        try:
            self.link = server.connect(SinkError, self.who)
        except Lost as lost:
            raise SinkError(f"{self.who}: cannot reach redis at {server.where}: {lost.reason}") from None

    def write(self, packer: _Packer, entries: list[Any]) -> None:
        for start in range(0, len(entries), CHUNK):
            chunk = entries[start : start + CHUNK]
            while chunk:
                chunk = chunk[self._try(packer, chunk) :]

    def _try(self, packer: _Packer, chunk: list[Any]) -> int:
        """Send ``chunk``; how many of its entries are surely in the stream."""
        replies: list[Any] = []
        try:
            link = self._link()
            link.send_packed(packer.pack(chunk))
            link.replies(len(chunk), replies)
        except Lost as lost:
            time.sleep(self.backoff.failed(str(lost)))
        for reply in replies:
            if isinstance(reply, Exception):
                raise SinkError(f"{self.who}: redis at {self.server.where}: {self.server.safe(reply)}")
        return len(replies)

    def _link(self) -> Link:
        if self.link is None or not self.link.connected:
            self.link = self.server.connect(SinkError, self.who)  # raises Lost while it is away
            self.backoff.recovered(f"{self.who}: reconnected to redis at {self.server.where}")
        return self.link

    def close(self) -> None:
        if self.link is not None:
            self.link.close()


def _check(params: dict[str, Any]) -> None:
    if "url" in params:
        try:
            check_url(params["url"])
        except ValueError as exc:
            raise ParamError("url", str(exc)) from None
    if not params.get("stream", "x"):
        raise ParamError("stream", "the stream needs a name")
    if not params.get("field", "line"):
        raise ParamError("field", "--field needs a name")
    try:
        _maxlen_args(params.get("maxlen"))
    except ValueError as exc:
        raise ParamError("maxlen", str(exc)) from None


@stage(
    "xadd",
    role="sink",
    check=_check,
    examples=(
        "follow /var/log/nginx/access.log | xadd redis://broker:6379/0 logs",
        "follow app.log | xadd --maxlen ~1000000 redis://broker:6379/0 logs",
        "cat access.log | parse apache | xadd redis://:secret@broker/0 requests",
    ),
)
@coroutine
def xadd(
    *,
    url: Annotated[str, Arg(URL_HELP, metavar="URL")],
    stream: Annotated[str, Arg("the stream's key", metavar="STREAM")],
    maxlen: Annotated[
        str | None, Opt("", "trim the stream to about N entries (~N), or exactly N", metavar="~N")
    ] = None,
    field: Annotated[str, Opt("", "the field a line goes into", metavar="NAME")] = "line",
    ctx: RunContext,
) -> Target:
    """Append every item to a Redis stream: a line as one field, a record as its fields.

    Entries go in pipelined batches, one round trip per batch. If the server
    goes away, cobus waits and reconnects (a notice on stderr), then sends
    what was not confirmed: an entry may then arrive twice, never not at all.
    """
    packer = _Packer(stream, maxlen, field)
    shipper = _Shipper(Server(url), stream, ctx)
    try:
        while True:
            batch = yield
            entries = packer.entries(batch)
            if entries:
                shipper.write(packer, entries)
    finally:
        shipper.close()
        if packer.skipped:
            ctx.warn(f"xadd {stream}: {packer.skipped} empty record(s) skipped (an entry needs a field)")
