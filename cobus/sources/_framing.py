"""How ``listen`` cuts one connection's bytes into messages: newline, octet-counted or either.

A framer is fed a connection's bytes as they arrive and returns a block of
whole messages, each ending in ``\\n`` (the shape of a LINES batch); at hang-up
:meth:`flush` returns the unfinished one. No message is ever longer than
``max_line``: a longer one keeps its first bytes and the rest is dropped as it
arrives, never buffered. Framers know nothing of sockets or stages.

- ``newline``: every line is a message (``_Lines``).
- ``octet``: RFC 6587 octet counting, ``LEN SP MSG`` with LEN in decimal, as
  ``logger --tcp --octet-count`` and many syslog relays send; anything else
  at the start of a frame is a :class:`FramingError`.
- ``auto``: decided per frame: a frame that starts with digits and a space
  is octet-counted, any other is a line.

Discussion: octet-counted messages may hold newlines. They are passed on as
they are, with one ``\\n`` added at the end; a downstream line stage then sees
several lines, exactly the bytes the sender counted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

__all__ = ["FRAMINGS", "BadClient", "Framer", "Framing", "FramingError", "make_framer"]

Framing = Literal["newline", "octet", "auto"]
FRAMINGS: tuple[Framing, ...] = ("newline", "octet", "auto")

#: Longest length prefix read (a billion bytes); more digits is no length.
_MAX_DIGITS = 10
_DIGITS = frozenset(b"0123456789")


class BadClient(Exception):
    """A client sent what cannot be read; it is named on stderr and dropped, the others go on."""


class FramingError(BadClient):
    """The bytes do not follow the framing (a bad octet-count prefix)."""


class Framer(Protocol):
    def feed(self, data: bytes) -> bytes: ...
    def flush(self) -> bytes: ...


class _Lines:
    """Cuts bytes into blocks of whole lines, none over ``max_line`` (``count_cut`` hears of cuts)."""

    def __init__(self, max_line: int, count_cut: Callable[[int], None]) -> None:
        self.max = max_line
        self.count_cut = count_cut
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
            self.count_cut(1)
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
        self.count_cut(long)
        return b"".join(line[: self.max] + b"\n" for line in lines)


class _Frames:
    """Octet-counted frames (``octet``), or frames each either counted or a line (``auto``).

    Discussion: the state between calls is the unread bytes (``held``: a
    length prefix or a line cut by the end of a read, at most ``max_line``
    plus a prefix) and, inside a counted frame, the bytes it still owes
    (``owed``), of which those past ``max_line`` are dropped (``drop``).
    """

    def __init__(self, max_line: int, count_cut: Callable[[int], None], *, auto: bool) -> None:
        self.max = max_line
        self.count_cut = count_cut
        self.auto = auto
        self.held = b""
        self.body: list[bytes] = []  # the counted frame in progress (kept part)
        self.kept = 0
        self.owed = 0  # bytes of the counted frame still to come
        self.line: _Lines | None = None  # auto: a line frame in progress

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        data = self.held + data
        self.held = b""
        at, end = 0, len(data)
        while at < end:
            if self.owed:
                take = min(self.owed, end - at)
                room = self.max - self.kept
                if room > 0:
                    piece = data[at : at + min(take, room)]
                    self.body.append(piece)
                    self.kept += len(piece)
                at += take
                self.owed -= take
                if not self.owed:
                    out.append(self._finish_frame())
                continue
            if self.line is not None:
                nl = data.find(b"\n", at)
                stop = end if nl < 0 else nl + 1
                out.append(self.line.feed(data[at:stop]))
                at = stop
                if nl >= 0:
                    self.line = None
                continue
            # The start of a frame: a length prefix, or (auto) a line.
            digits = at
            while digits < end and digits - at <= _MAX_DIGITS and data[digits] in _DIGITS:
                digits += 1
            if digits == end and digits - at <= _MAX_DIGITS:
                self.held = data[at:]  # the prefix may go on in the next read
                break
            if digits > at and data[digits] == 0x20 and data[at] != 0x30:  # no leading zero
                self.owed = int(data[at:digits])
                at = digits + 1
                self.body, self.kept = [], 0
                if self.owed > self.max:
                    self.count_cut(1)
                continue
            if not self.auto:
                shown = data[at : at + 20].decode("utf-8", "replace")
                raise FramingError(f"not an octet-counted frame (it starts with {shown!r})")
            self.line = _Lines(self.max, self.count_cut)
        return b"".join(out)

    def _finish_frame(self) -> bytes:
        frame = b"".join(self.body)
        self.body, self.kept = [], 0
        return frame + b"\n"

    def flush(self) -> bytes:
        """The unfinished frame of a client that hung up (what arrived of it), with a newline."""
        if self.line is not None:
            line, self.line = self.line, None
            return line.flush()
        rest = b"".join(self.body) if self.owed else self.held
        self.body, self.kept, self.owed, self.held = [], 0, 0, b""
        return rest + b"\n" if rest else b""


def make_framer(framing: Framing, max_line: int, count_cut: Callable[[int], None]) -> Framer:
    """A fresh framer for one connection."""
    if framing == "newline":
        return _Lines(max_line, count_cut)
    if framing in ("octet", "auto"):
        return _Frames(max_line, count_cut, auto=framing == "auto")
    raise ValueError(f"unknown framing {framing!r}")
