"""The wire between a pipeline and its worker processes: length-prefixed frames.

A frame is one kind byte, a 4-byte big-endian payload length, then the
payload. Batches of lines travel as their raw bytes, records and events as
JSON (UTF-8); control frames carry nothing or a small JSON object. Nothing
received is ever executed: no pickle, no eval, only ``json.loads`` and a
shape check. A frame that breaks these rules raises :class:`WireError`.

    parent -> worker (the worker's stdin)    L R V   one batch each
                                             B       a delivery barrier (cobus.delivery)
    worker -> parent (an extra pipe fd)      L R V   output batches
                                             P       one batch's partial aggregate (JSON)
                                             O       bytes the branch's sinks wrote to stdout
                                             S       the oldest batch sent is fully processed
                                             A       b"1"/b"0": the barrier passed; all delivered / held
                                             Q       the branch wants no more input (Done)
                                             E       {"message": "..."}: the branch failed
                                             Z       the branch closed cleanly (last frame)

Discussion: partials keep their keys. A ``P`` frame is ``[total, pairs,
skipped]`` (:class:`cobus.steps.Partial`). Group keys are str, int, float,
None or tuples of them: JSON keeps each of those apart (``1`` and ``1.0``,
NaN and infinities as Python writes them), and an array in a key's place is
read back as the tuple it was. Values are numbers, arrays of numbers or null.

Discussion: what JSON loses. Tuples become lists (an event's own tuple is
restored, not the tuples inside it), and a value JSON cannot hold (bytes, a
datetime) arrives as its ``str()``. Records from the XML stages hold strings.
"""

from __future__ import annotations

import json
import struct
import threading
from typing import IO, Any, Final

from ..columns import Columns
from ..core import Batch
from ..steps import Partial

__all__ = [
    "ACK",
    "BARRIER",
    "DATA_KINDS",
    "END",
    "ERROR",
    "EVENTS",
    "LINES",
    "MAX_PAYLOAD",
    "PARTIAL",
    "QUIT",
    "RECORDS",
    "STDOUT",
    "SYNC",
    "FrameWriter",
    "WireError",
    "decode_batch",
    "decode_error",
    "encode_batch",
    "encode_error",
    "read_frame",
]

LINES: Final = b"L"
RECORDS: Final = b"R"
EVENTS: Final = b"V"
PARTIAL: Final = b"P"
STDOUT: Final = b"O"
SYNC: Final = b"S"
QUIT: Final = b"Q"
ERROR: Final = b"E"
END: Final = b"Z"
BARRIER: Final = b"B"
ACK: Final = b"A"

DATA_KINDS: Final = frozenset((LINES, RECORDS, EVENTS, PARTIAL))
_KINDS: Final = frozenset((LINES, RECORDS, EVENTS, PARTIAL, STDOUT, SYNC, QUIT, ERROR, END, BARRIER, ACK))
#: What a key or a number inside a partial may be (never a bool: JSON true is not 1).
_SCALARS: Final = frozenset((str, int, float, type(None)))
_NUMBERS: Final = frozenset((int, float))

_HEADER = struct.Struct(">cI")
#: The largest payload a 4-byte length can announce.
MAX_PAYLOAD: Final = (1 << 32) - 1
#: A payload is read in pieces of at most this size, so a forged length costs
#: memory only as far as the bytes really sent.
_READ_PIECE = 4 << 20
#: Payloads below this are joined with their header into one write.
_SMALL = 1 << 16


class WireError(Exception):
    """A malformed frame, or a batch that cannot be framed."""


class FrameWriter:
    """Writes whole frames to a binary stream; safe to share between threads.

    The lock keeps two threads' frames from interleaving (a branch may hold
    its own ``threaded`` stage whose output leaves from another thread).
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def write(self, kind: bytes, payload: bytes = b"") -> None:
        """Send one frame and flush it; raises OSError when the reader is gone."""
        if len(payload) > MAX_PAYLOAD:
            raise WireError(f"a batch of {len(payload)} bytes is too large for one frame")
        header = _HEADER.pack(kind, len(payload))
        with self._lock:
            if len(payload) < _SMALL:
                self.stream.write(header + payload)
            else:
                # No copy of a large payload: a buffered stream writes it through.
                self.stream.write(header)
                self.stream.write(payload)
            self.stream.flush()

    def close(self) -> None:
        with self._lock:
            self.stream.close()


def read_frame(stream: IO[bytes]) -> tuple[bytes, bytes] | None:
    """The next ``(kind, payload)`` of a stream, or None at a clean end of stream.

    Raises :class:`WireError` for an unknown kind or a frame cut short.
    """
    header = _read_exact(stream, _HEADER.size)
    if not header:
        return None
    if len(header) < _HEADER.size:
        raise WireError(f"the stream ends inside a frame header ({len(header)} of 5 bytes)")
    kind, size = _HEADER.unpack(header)
    if kind not in _KINDS:
        raise WireError(f"unknown frame kind {kind!r}")
    payload = _read_exact(stream, size)
    if len(payload) < size:
        raise WireError(f"the stream ends inside a {kind.decode()} frame ({len(payload)} of {size} bytes)")
    return kind, payload


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    """Up to ``size`` bytes; fewer only at the end of the stream."""
    if size <= _READ_PIECE:
        first = stream.read(size)
        if len(first) == size or not first:
            return first
        pieces = [first]
        got = len(first)
    else:
        pieces, got = [], 0
    while got < size:
        piece = stream.read(min(size - got, _READ_PIECE))
        if not piece:
            break
        pieces.append(piece)
        got += len(piece)
    return b"".join(pieces)


def encode_batch(batch: Batch) -> tuple[bytes, bytes]:
    """The frame ``(kind, payload)`` of a batch of lines, records or events, or of a partial."""
    if isinstance(batch, bytes | bytearray | memoryview):
        return LINES, bytes(batch)
    if isinstance(batch, Partial):
        text = json.dumps(list(batch), ensure_ascii=False, separators=(",", ":"))
        return PARTIAL, text.encode("utf-8", "surrogatepass")
    if type(batch) is Columns:  # a worker's branch may end in columns: they cross as records
        batch = batch.records()
    if not isinstance(batch, list):
        raise WireError(f"cannot send a {type(batch).__name__} to a worker")
    kind = EVENTS if batch and isinstance(batch[0], tuple) else RECORDS
    text = json.dumps(batch, ensure_ascii=False, separators=(",", ":"), default=str)
    return kind, text.encode("utf-8", "surrogatepass")


def decode_batch(kind: bytes, payload: bytes) -> Batch:
    """The batch (or partial) a data frame carries, its shape checked."""
    if kind == LINES:
        if payload and not payload.endswith(b"\n"):
            raise WireError("a lines frame must end with a newline")
        return payload
    if kind == PARTIAL:
        return _partial(_json(payload, kind))
    if kind not in (RECORDS, EVENTS):
        raise WireError(f"a {kind.decode()} frame is not a batch")
    items = _json(payload, kind)
    if not isinstance(items, list):
        raise WireError(f"a {kind.decode()} frame must hold a JSON array")
    if kind == RECORDS:
        if not all(isinstance(r, dict) for r in items):
            raise WireError("a records frame must hold an array of objects")
        return items
    if not all(isinstance(e, list) for e in items):
        raise WireError("an events frame must hold an array of arrays")
    return [tuple(e) for e in items]


def _partial(obj: Any) -> Partial:
    """A decoded P frame as the :class:`Partial` it was, its shape checked."""
    if not (isinstance(obj, list) and len(obj) == 3 and isinstance(obj[1], list)):
        raise WireError("a P frame must hold [total, pairs, skipped]")
    total, pairs, skipped = obj
    if type(total) not in _SCALARS or isinstance(total, str) or type(skipped) is not int:
        raise WireError("a P frame's total must be a number or null, its skipped count an integer")
    restored: list[tuple[Any, Any]] = []
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2):
            raise WireError("a P frame's pairs must be [key, value] arrays")
        key, value = pair
        if type(key) is list:
            if not all(type(k) in _SCALARS for k in key):
                raise WireError("a P frame's key must be made of strings, numbers and nulls")
            key = tuple(key)
        elif type(key) not in _SCALARS:
            raise WireError("a P frame's key must be made of strings, numbers and nulls")
        if type(value) is list:
            if not all(type(v) in _NUMBERS for v in value):
                raise WireError("a P frame's values must be numbers")
        elif value is not None and type(value) not in _NUMBERS:
            raise WireError("a P frame's values must be numbers")
        restored.append((key, value))
    return Partial(total, restored, skipped)


def encode_error(message: str) -> bytes:
    """The payload of an E frame."""
    return json.dumps({"message": message}, ensure_ascii=False).encode("utf-8", "surrogatepass")


def decode_error(payload: bytes) -> str:
    """The message of an E frame."""
    obj = _json(payload, ERROR)
    if not isinstance(obj, dict) or not isinstance(obj.get("message"), str):
        raise WireError('an error frame must hold {"message": "..."}')
    message: str = obj["message"]
    return message


def _json(payload: bytes, kind: bytes) -> Any:
    try:
        return json.loads(payload.decode("utf-8", "surrogatepass"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"a {kind.decode()} frame holds bad JSON: {exc}") from None
