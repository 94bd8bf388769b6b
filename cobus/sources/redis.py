"""``xread URL STREAM``: the entries of a Redis stream as lines or records, alone or in a group.

Without ``--group`` the task reads what is added after it starts (all of it
with ``--from-start``) and goes on as entries arrive, like ``follow``. With
``--group`` many cobus processes share the stream, each entry going to one of
them: the task creates the group if it is missing, re-delivers what this
consumer had read and not acknowledged, claims what a dead consumer left
pending longer than ``--claim-idle``, then reads new entries; an entry is
acknowledged (``XACK``) only once the sinks downstream have written it. The
connection, its faults and URLs are in :mod:`cobus.redisconn`; nothing here
writes output.

Discussion: waiting without stalling the other sources. A read is sent with
``BLOCK 250`` and the task then waits for the reply with the kernel's
``ReadWait`` on the connection's socket, as ``listen`` waits for a client, so
``broadcast [follow a.log] [xread ...]`` keeps following while the stream is
quiet, in one thread. Only a reply that has begun to arrive is read in one
go (a reply of 1000 entries is out of the server in well under a millisecond).
A thread per stream would need a second connection for acknowledgements and a
hand-off for every batch, and could not be stopped in the middle of a wait.
The server's 250 ms timeout doubles as the tick of an idle live source (see
cobus.core: ticks): a quiet stream still lets ``multiline`` and the
aggregates look at the clock.

Discussion: acknowledging. Entries sent downstream wait in ``sent`` until
``ctx.delivery.confirm()`` says every sink has written (and flushed) them; it
is asked once a second, and whenever the task has caught up with the stream
and is about to wait. Confirmed ids go out as one ``XACK`` in the same write
as the next read, so an acknowledgement costs no round trip of its own. A
send that raised means an output is broken: nothing sent after the last
confirmation is acknowledged, so those entries stay pending and another
consumer claims them. A crash therefore re-delivers at most the last second
or so of entries: at least once, duplicates only after a crash.

Discussion: claiming. ``XAUTOCLAIM`` hands this consumer the entries that
others (or an earlier run under the same name) left pending longer than
``--claim-idle``; it runs when the task starts and then every half of that
time. An entry this task already holds is not delivered twice, and while
entries wait for a confirmation (an aggregate that prints only at the end)
their idle time is reset with ``XCLAIM ... JUSTID``, so a slow but live
consumer is not robbed by the others.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from ..broker import Backoff, Tally, fields_record
from ..context import RunContext
from ..core import LINES, RECORDS, Outlet, Target, aborting
from ..errors import SourceError
from ..formats import parse_duration
from ..kernel import ReadWait, Sleep, TaskGen
from ..redisconn import URL_HELP, Link, Lost, Server, check_url
from ..registry import Arg, Opt, ParamError, stage

__all__ = ["xread"]

#: Entries asked for in one read.
COUNT = 1000
#: Milliseconds the server holds a read while the stream is quiet (the idle tick).
BLOCK_MS = 250
#: Seconds between two confirmations while entries keep coming.
CONFIRM_EVERY = 1.0
#: Most ids in one XACK or XCLAIM command.
IDS_PER_COMMAND = 10_000


@dataclass(frozen=True)
class _Options:
    stream: str
    group: str | None
    consumer: str
    from_start: bool
    claim_idle: float
    records: bool
    field: str


def _chunks(ids: list[bytes]) -> list[list[bytes]]:
    return [ids[i : i + IDS_PER_COMMAND] for i in range(0, len(ids), IDS_PER_COMMAND)]


class _Reader:
    """One consumer: the reading loop, the ids waiting for confirmation and for XACK."""

    def __init__(self, target: Target, server: Server, opts: _Options, ctx: RunContext) -> None:
        self.outlet = Outlet(target)  # done: downstream wants no more; not clean: confirm nothing more
        self.server = server
        self.opts = opts
        self.ctx = ctx
        self.who = f"xread {opts.stream}"
        self.tally = Tally()
        self.backoff = Backoff(ctx.warn, ctx.clock)
        self.link: Link | None = None
        self.sent: list[bytes] = []  # sent downstream, not yet confirmed
        self.unsent = 0  # read after downstream had enough (head): left pending for others
        self.acks: list[bytes] = []  # confirmed, XACK not yet answered
        self.last = b"0-0" if opts.from_start else b"$"  # without a group: read after this id
        self.history: bytes | None = b"0"  # a group's own pending entries: read after this id
        self.claim_from: bytes | None = b"0-0"  # XAUTOCLAIM's cursor while a round runs
        self.next_claim = 0.0
        self.next_confirm = ctx.clock() + CONFIRM_EVERY
        self.next_touch = ctx.clock() + self._claim_every
        #: Replies on their way, oldest first: the command's name and what handles its reply.
        self.expect: deque[tuple[str, Callable[[Any], Any]]] = deque()
        self.empty: bytes | list[Any] = [] if opts.records else b""
        self.field = opts.field.encode()
        if ctx.stats is not None:
            ctx.notes.append(self._note)
        if ctx.progress is not None:  # on a terminal: the counts below the progress bars
            ctx.progress.note(self._note)

    def _note(self) -> str:
        """What ``--stats`` shows below its table."""
        if self.opts.group is None:
            return f"{self.who}: read {self.tally.read:,}"
        return f"{self.who} (group {self.opts.group}, consumer {self.opts.consumer}): {self.tally.summary()}"

    @property
    def _claim_every(self) -> float:
        return max(0.05, self.opts.claim_idle / 2)

    # -- the task -----------------------------------------------------------------

    def run(self) -> TaskGen:
        try:
            self._start()
            while not self.outlet.done:
                try:
                    yield from self._round()
                except Lost as lost:
                    self.expect.clear()
                    yield from self._reconnect(str(lost))
        finally:
            self._finish()

    def _start(self) -> None:
        try:
            self.link = self.server.connect(SourceError, self.who)
        except Lost as lost:
            raise SourceError(
                f"{self.who}: cannot reach redis at {self.server.where}: {lost.reason}"
            ) from None
        self._prepare(self.link)

    def _prepare(self, link: Link) -> None:
        """On each new connection: the group exists, own pending entries come first."""
        if self.opts.group is not None:
            self._create_group(link)
            self.history = b"0"
            self.claim_from = b"0-0"
        elif self.last == b"$":  # the id of the last entry now, so nothing added later is missed
            newest = link.call("XREVRANGE", self.opts.stream, "+", "-", "COUNT", 1)
            self.last = newest[0][0] if newest else b"0-0"

    def _create_group(self, link: Link) -> None:
        start = "0" if self.opts.from_start else "$"
        link.send(("XGROUP", "CREATE", self.opts.stream, self.opts.group, start, "MKSTREAM"))
        reply = link.reply()
        if isinstance(reply, Exception) and not str(reply).startswith("BUSYGROUP"):
            link.fail(reply)

    def _reconnect(self, why: str) -> TaskGen:
        while True:
            yield Sleep(self.backoff.failed(why))
            try:
                link = self.server.connect(SourceError, self.who)
                self._prepare(link)
            except Lost as lost:
                why = str(lost)
                continue
            self.link = link
            self.backoff.recovered(f"{self.who}: reconnected to redis at {self.server.where}")
            return

    # -- commands and replies -------------------------------------------------------

    def _round(self) -> TaskGen:
        """Handle the oldest reply on its way (sending the next commands first if none is)."""
        link = self.link
        assert link is not None
        if not self.expect:
            self._send_next(link)
        while not link.ready():
            yield ReadWait(link.socket)
        reply = link.reply()
        _, handle = self.expect.popleft()
        if self.ctx.progress is not None:
            self.ctx.progress.poke()
        if isinstance(reply, Exception):
            if str(reply).startswith("NOGROUP"):  # the server lost it (a restart without persistence)
                self.ctx.warn(f"{self.who}: group {self.opts.group} is gone; creating it again")
                link.close()
                raise Lost(f"{self.who}: group {self.opts.group} is gone", "the group is gone")
            link.fail(reply)
        if handle(reply) and self.sent:  # caught up: about to wait, so acknowledge now
            self._confirm()

    def _send_next(self, link: Link) -> None:
        """Send the XACK that is due and the next read in one write."""
        now = self.ctx.clock()
        commands: list[tuple[Any, ...]] = []
        if self.opts.group is not None:
            if now >= self.next_confirm:
                self._confirm()
            if now >= self.next_touch:
                commands += self._touch()
        acking = len(self.acks[:IDS_PER_COMMAND])
        if acking:
            commands.append(("XACK", self.opts.stream, self.opts.group, *self.acks[:acking]))
            self.expect.append(("XACK", lambda reply: self._acked(acking)))
        read, handle = self._next_read(now)
        commands.append(read)
        self.expect.append((str(read[0]), handle))
        link.send(*commands)

    def _next_read(self, now: float) -> tuple[tuple[Any, ...], Callable[[Any], bool]]:
        o = self.opts
        if o.group is None:
            return ("XREAD", "COUNT", COUNT, "BLOCK", BLOCK_MS, "STREAMS", o.stream, self.last), self._on_read
        head = ("XREADGROUP", "GROUP", o.group, o.consumer, "COUNT", COUNT)
        if self.history is not None:
            return (*head, "STREAMS", o.stream, self.history), self._on_history
        if now >= self.next_claim:
            if self.claim_from is None:
                self.claim_from = b"0-0"
            idle_ms = int(o.claim_idle * 1000)
            claim = ("XAUTOCLAIM", o.stream, o.group, o.consumer, idle_ms, self.claim_from, "COUNT", COUNT)
            return claim, self._on_claim
        return (*head, "BLOCK", BLOCK_MS, "STREAMS", o.stream, ">"), self._on_read

    def _on_read(self, reply: Any) -> bool:
        """New entries (XREAD, XREADGROUP ``>``); True when caught up with the stream."""
        if not reply:  # the server's timeout: nothing new
            self._send(self.empty)
            return True
        entries = reply[0][1]
        if self.opts.group is None:
            self.last = entries[-1][0]
        full = len(entries) >= COUNT
        if full and not self.outlet.done and self.link is not None:
            # More is likely waiting: let the server make the next batch while this one is handled.
            self._send_next(self.link)
        self._deliver(entries)
        return not full

    def _on_history(self, reply: Any) -> bool:
        entries = reply[0][1] if reply else []
        if not entries:
            self.history = None  # own pending entries done: on to claiming and new ones
            return False
        self.history = entries[-1][0]
        self._deliver(entries)
        return False

    def _on_claim(self, reply: Any) -> bool:
        cursor, entries, deleted = reply[0], reply[1], reply[2] if len(reply) > 2 else []
        fresh = self._not_held(entries)
        self.tally.claimed += len(fresh)
        if deleted:  # gone from the stream (trimmed) while pending: nothing to deliver
            self.tally.read += len(deleted)
            self.tally.skip(f"{deleted[0].decode()} (deleted)", len(deleted))
            self._hold(deleted)
        self._deliver(fresh)
        if cursor == b"0-0":
            self.claim_from = None
            self.next_claim = self.ctx.clock() + self._claim_every
        else:
            self.claim_from = cursor
        return False

    # -- delivering and acknowledging -------------------------------------------------

    def _deliver(self, entries: list[Any]) -> None:
        if not entries:
            return
        self.tally.read += len(entries)
        if self.outlet.done:  # read ahead, but downstream has had enough: not sent, so never acknowledged
            self.unsent += len(entries)
            return
        if self.opts.records:
            batch: bytes | list[Any] = [fields_record(f) for _, f in entries if f]
            missing = len(entries) - len(batch)
        else:
            field = self.field
            values = [f[1] for _, f in entries if f and f[0] == field]
            if len(values) < len(entries):
                values = self._values(entries)
            missing = len(entries) - len(values)
            batch = b"\n".join(values) + b"\n" if values else b""
        if missing:
            first = next(e[0] for e in entries if not self._has_field(e[1]))
            self.tally.skip(first.decode(), missing)
        if self.opts.group is not None:
            self._hold([e[0] for e in entries])
        if batch:
            self._send(batch)

    def _has_field(self, fields: list[bytes] | None) -> bool:
        if not fields:
            return False
        return True if self.opts.records else self.field in fields[::2]

    def _values(self, entries: list[Any]) -> list[bytes]:
        """The slow path: the field is not first in some entry, or missing."""
        out = []
        for _, fields in entries:
            if fields:
                names = fields[::2]
                if self.field in names:
                    out.append(fields[2 * names.index(self.field) + 1])
        return out

    def _send(self, batch: bytes | list[Any]) -> None:
        self.outlet.offer(batch)  # once done (head), what was consumed counts as delivered

    def _not_held(self, entries: list[Any]) -> list[Any]:
        """Claimed entries less those this task holds already (sent, not yet acknowledged)."""
        if not entries or not (self.sent or self.acks):
            return entries
        held = {*self.sent, *self.acks}
        return [e for e in entries if e[0] not in held]

    def _hold(self, ids: list[bytes]) -> None:
        self.sent.extend(ids)

    def _confirm(self) -> bool:
        """Ask whether every sink has written what was sent; if so, those ids are to be acked."""
        self.next_confirm = self.ctx.clock() + CONFIRM_EVERY
        if not self.outlet.clean or not self.sent:
            return not self.sent
        try:
            delivered = self.ctx.delivery.confirm()
        except BaseException as exc:
            self.outlet.fail(exc)  # an output or a branch failed: confirm nothing more
            raise
        if delivered:
            self.acks.extend(self.sent)
            self.sent.clear()
        return delivered

    def _acked(self, n: int) -> None:
        del self.acks[:n]
        self.tally.acked += n

    def _touch(self) -> list[tuple[Any, ...]]:
        """XCLAIMs that reset the idle time of entries waiting for a confirmation (Discussion: claiming)."""
        self.next_touch = self.ctx.clock() + self._claim_every
        o = self.opts
        commands = [
            ("XCLAIM", o.stream, o.group, o.consumer, 0, *ids, "JUSTID") for ids in _chunks(self.sent)
        ]
        self.expect.extend(("XCLAIM", _ignore) for _ in commands)
        return commands

    # -- the end ----------------------------------------------------------------------

    def _finish(self) -> None:
        """Read what is on its way, confirm, close the target, XACK; say what was left.

        As for ``follow --state`` (see cobus.delivery): the barrier runs before
        the target is closed, so a signal keeps everything written until then;
        after the close, what an aggregate printed last is confirmed too, unless
        a concurrency stage may have dropped queued batches while aborting.
        """
        try:
            confirmed = False
            try:
                self._drain()
                confirmed = self._confirm() if self.opts.group is not None else True
            finally:
                self.outlet.close()
            if not confirmed and not (aborting() and self.ctx.delivery.concurrent):
                self._confirm()
        finally:
            try:
                self._ack_all()
            finally:
                if self.link is not None:
                    self.link.close()
                self._report()

    def _drain(self) -> None:
        """The replies to commands already sent: an XACK's, a read's (whose entries are ours now)."""
        link = self.link
        try:
            while self.expect and link is not None and link.connected:
                kind, handle = self.expect.popleft()
                reply = link.reply(timeout=BLOCK_MS / 1000 + 5)
                if isinstance(reply, Exception):
                    continue
                if kind == "XACK":
                    handle(reply)
                elif kind == "XAUTOCLAIM":
                    self._deliver(self._not_held(reply[1]))
                elif kind in ("XREAD", "XREADGROUP") and reply:
                    self._deliver(reply[0][1])
        except Lost:
            pass  # what was read stays pending for this consumer; others claim it

    def _ack_all(self) -> None:
        if not self.acks or self.opts.group is None:
            return
        link = self.link
        try:
            if link is None or not link.connected:
                link = self.link = self.server.connect(SourceError, self.who)
            o = self.opts
            chunks = _chunks(list(self.acks))
            link.send(*(("XACK", o.stream, o.group, *ids) for ids in chunks))  # one write, then the replies
            for ids in chunks:
                reply = link.reply()
                if isinstance(reply, Exception):
                    link.fail(reply)
                self._acked(len(ids))
        except Lost as lost:
            self.ctx.warn(f"{lost!s}; {len(self.acks)} entries stay pending (another consumer claims them)")

    def _report(self) -> None:
        t = self.tally
        if t.skipped:
            what = "field" if self.opts.records else f"{self.opts.field!r} field"
            self.ctx.warn(
                f"{self.who}: {t.skipped} entries had no {what} (first: {t.first_skipped}); skipped"
            )
        pending = len(self.sent) + len(self.acks) + self.unsent
        if pending and self.opts.group is not None and self.outlet.clean:
            self.ctx.warn(f"{self.who}: {pending} entries were not acknowledged; they stay pending")


def _ignore(reply: Any) -> None:
    """The reply of a command sent for its effect only."""


def _default_consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _check(params: dict[str, Any]) -> None:
    if "url" in params:
        try:
            check_url(params["url"])
        except ValueError as exc:
            raise ParamError("url", str(exc)) from None
    for name in ("stream", "group", "consumer", "field"):
        if params.get(name, "x") == "":
            raise ParamError(
                name, f"--{name} needs a name" if name != "stream" else "the stream needs a name"
            )
    if "claim_idle" in params:
        try:
            parse_duration(params["claim_idle"])
        except ValueError as exc:
            raise ParamError("claim_idle", f"--claim-idle: {exc}") from None
    for name in ("consumer", "claim_idle"):
        if name in params and not params.get("group"):
            raise ParamError(name, f"--{name.replace('_', '-')} needs --group")


@stage(
    "xread",
    role="source",
    live=True,
    produces=LINES,
    produces_if=lambda params: RECORDS if params.get("records") else LINES,
    check=_check,
    examples=(
        "xread redis://broker:6379/0 logs | grep ERROR | print",
        "xread redis://broker:6379/0 logs --group parsers | parse apache | where status>=500 | write err.log",
        "xread --records --from-start redis://broker/0 requests | jsonl",
    ),
)
def xread(
    target: Target,
    *,
    url: Annotated[str, Arg(URL_HELP, metavar="URL")],
    stream: Annotated[str, Arg("the stream's key", metavar="STREAM")],
    group: Annotated[
        str | None, Opt("-g", "share the stream in this consumer group (created if missing)", metavar="G")
    ] = None,
    consumer: Annotated[
        str | None, Opt("", "this consumer's name in the group (default: host-pid)", metavar="NAME")
    ] = None,
    from_start: Annotated[bool, Opt("", "read the stream from its first entry")] = False,
    claim_idle: Annotated[
        str, Opt("", "claim entries another consumer left pending this long", metavar="DURATION")
    ] = "30s",
    records: Annotated[bool, Opt("-r", "make records of all fields instead of lines")] = False,
    field: Annotated[str, Opt("", "the field that holds the line", metavar="NAME")] = "line",
    ctx: RunContext,
) -> TaskGen:
    """Read a Redis stream as it grows; with --group, share it among many cobus processes.

    Lines come from one field of each entry (line, or --field); --records makes
    a record of all fields. With --group, each entry goes to one consumer of
    the group and is acknowledged once the sinks downstream have written it;
    entries a dead consumer left pending are claimed after --claim-idle. An
    entry without the field is counted and skipped, like a line that does not
    parse.
    """
    opts = _Options(
        stream=stream,
        group=group,
        consumer=consumer or _default_consumer(),
        from_start=from_start,
        claim_idle=parse_duration(claim_idle),
        records=records,
        field=field,
    )
    reader = _Reader(target, Server(url), opts, ctx)
    return reader.run()
