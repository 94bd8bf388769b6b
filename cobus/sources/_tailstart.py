"""Where tail-like reading starts: ``-n N``, ``-n +K``, ``-c N``, found without reading a whole file.

:func:`parse_count` reads the words GNU tail takes (``10``, ``+5``, ``-3``,
``2K``) into a :class:`Start`; :meth:`Start.offset` says where in a seekable
file the output begins, reading backwards from the end in blocks for "the
last N lines", so ``-n 10`` on a 10 GB file costs one or two reads;
:meth:`Start.select` does the same for a stream that cannot seek (a pipe,
stdin), keeping only what the last N lines may still need. Nothing here
writes output or knows about following.
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

__all__ = ["Start", "parse_count", "pid_alive"]

Unit = Literal["lines", "bytes"]

#: Bytes per backward read: large enough that ten lines need one read, small enough to be instant.
BLOCK_SIZE = 1 << 16

#: GNU tail's multiplier suffixes: b (512), K/KiB, kB, M/MiB, MB ... (powers of 1024 or 1000).
_SUFFIXES: dict[str, int] = {"": 1, "b": 512}
for _power, _letter in enumerate("KMGTPEZYRQ", start=1):
    _SUFFIXES[_letter] = _SUFFIXES[_letter + "iB"] = 1024**_power
    _SUFFIXES[_letter + "B"] = 1000**_power
_SUFFIXES["k"], _SUFFIXES["kB"] = 1024, 1000

_COUNT = re.compile(r"([+-]?)(\d+)([A-Za-z]*)")


@dataclass(frozen=True)
class Start:
    """Where output begins: the last ``count`` lines or bytes, or (``from_start``) from number ``count`` on.

    ``from_start`` counts from 1 like GNU tail: ``+1`` (and ``+0``) is the whole
    file, ``+3`` skips two lines. ``count`` 0 without ``from_start`` is "only
    what comes next", following's default.
    """

    count: int
    unit: Unit = "lines"
    from_start: bool = False
    #: What ends a line: a newline, or NUL for ``tail -z``.
    delimiter: bytes = b"\n"

    def offset(self, fd: int, size: int) -> int:
        """The byte of the open, seekable file ``fd`` (``size`` bytes now) where output begins."""
        return self._offset(lambda pos, n: os.pread(fd, n, pos), size)

    def select(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """What to output of a stream that cannot seek, read chunk by chunk.

        From the start, output flows as the chunks come; the last N lines or
        bytes can only be known at the end, so only the chunks they may still
        need are kept meanwhile.
        """
        if self.from_start:
            yield from self._skip(chunks)
            return
        kept: deque[bytes] = deque()
        held = 0  # bytes (or delimiters) in kept
        need = self.count + 1 if self.unit == "lines" else self.count
        for chunk in chunks:
            if not chunk:
                continue
            kept.append(chunk)
            held += self._measure(chunk)
            while len(kept) > 1 and held - self._measure(kept[0]) >= need:
                held -= self._measure(kept.popleft())
        data = b"".join(kept)
        yield data[self._offset(_reader(data), len(data)) :]

    # -- the search -----------------------------------------------------------------

    def _measure(self, chunk: bytes) -> int:
        return chunk.count(self.delimiter) if self.unit == "lines" else len(chunk)

    def _offset(self, read: Callable[[int, int], bytes], size: int) -> int:
        delimiter = self.delimiter
        if self.unit == "bytes":
            if self.from_start:
                return min(size, max(self.count - 1, 0))
            return max(size - self.count, 0)
        if self.from_start:
            return _after_lines(read, size, max(self.count - 1, 0), delimiter)
        return _last_lines(read, size, self.count, delimiter)

    def _skip(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The stream from line (or byte) ``count`` on."""
        delimiter = self.delimiter
        skip = max(self.count - 1, 0)
        for chunk in chunks:
            if skip > 0:
                found = len(chunk) if self.unit == "bytes" else chunk.count(delimiter)
                if found < skip:
                    skip -= found
                    continue
                if self.unit == "bytes":
                    chunk = chunk[skip:]
                else:
                    chunk = chunk[_after_lines(_reader(chunk), len(chunk), skip, delimiter) :]
                skip = 0
            if chunk:
                yield chunk


def _reader(data: bytes) -> Callable[[int, int], bytes]:
    """``read(pos, n)`` over bytes in memory, as :func:`os.pread` is over a file."""
    return lambda pos, n: data[pos : pos + n]


def _last_lines(read: Callable[[int, int], bytes], size: int, count: int, delimiter: bytes) -> int:
    """Where the last ``count`` lines begin, reading backwards from ``size`` in blocks.

    Discussion: the delimiter at the very end. It ends the last line rather
    than starting an empty one, so it is not counted: the output begins just
    after the ``count``-th delimiter before it. A last line without one is a
    line all the same (GNU tail counts it too), so nothing needs skipping then.
    """
    if count <= 0:
        return size
    pos = size
    need = count
    end_skipped = False
    while pos > 0:
        take = min(BLOCK_SIZE, pos)
        pos -= take
        block = read(pos, take)
        end = len(block)
        if not end_skipped:
            end_skipped = True
            if block.endswith(delimiter):
                end -= len(delimiter)
        found = block.count(delimiter, 0, end)
        if found < need:
            need -= found
            continue
        for _ in range(need):
            end = block.rindex(delimiter, 0, end)
        return pos + end + len(delimiter)
    return 0


def _after_lines(read: Callable[[int, int], bytes], size: int, skip: int, delimiter: bytes) -> int:
    """The byte just after the ``skip``-th delimiter from the start (``size`` if there are fewer)."""
    pos = 0
    while skip > 0 and pos < size:
        block = read(pos, BLOCK_SIZE)
        if not block:
            break
        found = block.count(delimiter)
        if found < skip:
            skip -= found
            pos += len(block)
            continue
        at = -1
        for _ in range(skip):
            at = block.index(delimiter, at + 1)
        return pos + at + len(delimiter)
    return size if skip > 0 else 0


def parse_count(text: str, unit: Unit, delimiter: bytes = b"\n") -> Start:
    """GNU tail's count: ``N`` or ``-N`` (the last N), ``+K`` (from number K on), with a suffix.

    Raises ValueError with tail's wording (``invalid number of lines: 'abc'``).
    """
    match = _COUNT.fullmatch(text.strip())
    multiplier = _SUFFIXES.get(match.group(3)) if match else None
    if match is None or multiplier is None:
        raise ValueError(f"invalid number of {unit}: {text!r}")
    return Start(int(match.group(2)) * multiplier, unit, match.group(1) == "+", delimiter)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (``--pid``); a zombie counts as running until reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True
