"""``xadd URL STREAM``: every item becomes an entry of a Redis stream, a batch per round trip.

A block of lines becomes one entry per line, the line (without its newline)
in one field, ``line`` unless ``--field`` says otherwise; a record becomes an
entry with its fields (values that are not text as JSON, see
:func:`cobus.broker.record_fields`). A batch goes out as one pipelined write
of ``XADD`` commands (2000 at most), and the replies of one write are read
while the server works on the next: about one round trip per batch, never
one per line. Behind a live source (``follow``) a batch's replies are all
read before ``send`` returns, as a quiet source may send nothing more for a
while; otherwise the last write's replies are read with the next batch, at
the end, or by the delivery barrier (``ctx.delivery.output``), so a source
that confirms delivery knows its entries are in the stream. The connection is in
:mod:`cobus.redisconn`; nothing here reads input.

Discussion: packing a line. An ``XADD`` differs from the next only in its
value, so the fixed part is encoded once (:func:`cobus.redisconn.bulk`) and
each line costs a length and two concatenations: about 0.3 us, where
redis-py's packer takes 10 (see cobus.redisconn, Discussion: packing).
Reading the replies stays with redis-py, whose hiredis reader does one in
about a microsecond.

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
from collections import deque
from typing import Annotated, Any

from ..broker import Backoff, record_fields
from ..context import RunContext
from ..core import StageGen, coroutine, iter_lines
from ..errors import SinkError
from ..formats import item_line
from ..redisconn import URL_HELP, Lost, Server, bulk, check_url, pack
from ..registry import Arg, Opt, ParamError, stage

__all__ = ["xadd"]

#: Entries per pipelined write; a bigger batch goes in several.
CHUNK = 2000
#: Chunks in flight at most: the server adds one while the next is packed and sent.
WINDOW = 2

_MAXLEN = re.compile(r"(~?)\s*(\d+)")


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
        self.line_head = b"*%d\r\n" % (len(head) + 1) + b"".join(map(bulk, head)) + b"$"
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
            pack(*fixed, *e) if isinstance(e, list) else head + b"%d\r\n" % len(e) + e + b"\r\n"
            for e in entries
        )


class _Shipper:
    """Writes entries through one link: a window of chunks in flight, resent after a fault."""

    def __init__(self, server: Server, packer: _Packer, stream: str, ctx: RunContext) -> None:
        self.server = server
        self.packer = packer
        self.who = f"xadd {stream}"
        self.backoff = Backoff(ctx.warn, ctx.clock)
        #: Chunks sent whose replies are not all read yet, oldest first.
        self.inflight: deque[list[Any]] = deque()
        #: A live source may send nothing more for a while: confirm each batch before returning.
        self.live = ctx.live
        try:
            self.link = server.connect(SinkError, self.who)
        except Lost as lost:
            raise SinkError(f"{self.who}: cannot reach redis at {server.where}: {lost.reason}") from None

    def write(self, entries: list[Any]) -> None:
        """Send the entries; unless live, the replies of the last chunk may still be on their way."""
        for start in range(0, len(entries), CHUNK):
            chunk = entries[start : start + CHUNK]
            self.inflight.append(chunk)
            try:
                self.link.send_packed(self.packer.pack(chunk))
            except Lost as lost:
                self._recover(str(lost))
            while len(self.inflight) >= WINDOW:
                self._settle()
        if self.live:
            self.flush()

    def flush(self) -> None:
        """Read every reply on its way: then every entry sent is in the stream."""
        while self.inflight:
            self._settle()

    def _settle(self) -> None:
        """Read the replies of the oldest chunk in flight."""
        chunk = self.inflight[0]
        replies: list[Any] = []
        try:
            self.link.replies(len(chunk), replies)
        except Lost as lost:
            self._check(replies)
            self.inflight[0] = chunk[len(replies) :]
            self._recover(str(lost))
            return
        self._check(replies)
        self.inflight.popleft()

    def _check(self, replies: list[Any]) -> None:
        for reply in replies:
            if isinstance(reply, Exception):
                raise SinkError(f"{self.who}: redis at {self.server.where}: {self.server.safe(reply)}")

    def _recover(self, why: str) -> None:
        """Reconnect, pausing longer each time, and send again every chunk not confirmed."""
        while True:
            time.sleep(self.backoff.failed(why))
            try:
                link = self.server.connect(SinkError, self.who)
                for chunk in self.inflight:
                    link.send_packed(self.packer.pack(chunk))
            except Lost as lost:
                why = str(lost)
                continue
            self.link = link
            self.backoff.recovered(f"{self.who}: reconnected to redis at {self.server.where}")
            return

    def close(self) -> None:
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
) -> StageGen:
    """Append every item to a Redis stream: a line as one field, a record as its fields.

    Entries go in pipelined batches, one round trip per batch. If the server
    goes away, cobus waits and reconnects (a notice on stderr), then sends
    what was not confirmed: an entry may then arrive twice, never not at all.
    """
    packer = _Packer(stream, maxlen, field)
    shipper = _Shipper(Server(url), packer, stream, ctx)
    ctx.delivery.output(shipper.who, shipper.flush)  # a barrier reads the replies on their way
    try:
        while True:
            batch = yield
            entries = packer.entries(batch)
            if entries:
                shipper.write(entries)
    finally:
        try:
            shipper.flush()
        finally:
            shipper.close()
        if packer.skipped:
            ctx.warn(f"xadd {stream}: {packer.skipped} empty record(s) skipped (an entry needs a field)")
