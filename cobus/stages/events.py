"""``events``: show XML events as readable lines, indented by depth.

One line per event, for ``xml F | events | print``, ``grep`` and eyes::

    start bus id="7589"
      text "route 22"
    end bus

Names are written as parsed (``{uri}local`` in a namespace); text and
attribute values are JSON-quoted, so newlines and quotes stay on one line.
Whitespace-only text (indentation) is left out unless ``--all``. The depth
carries across batches. Nothing here parses XML; it only formats events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated

from ..core import EVENTS, LINES, StageGen, Target, coroutine
from ..registry import Opt, stage
from ..xmlrecords import ABORT, END, START, STREAM, TEXT, Event

__all__ = ["event_lines", "events"]

#: Characters of output sent at a time (a deep document makes long lines).
BLOCK = 1 << 20


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


class _Formatter:
    """Event -> line, remembering the depth between batches."""

    def __init__(self, show_blank: bool, indent: str = "  ") -> None:
        self.depth = 0
        self.show_blank = show_blank
        self.indent = indent
        self.key: str | None = None
        self.saved: dict[str | None, int] = {}

    def blocks(self, batch: list[Event]) -> Iterator[bytes]:
        """The lines of a batch as blocks of about ``BLOCK`` characters at most.

        Discussion: memory linear in depth. A line is indented by its depth,
        so a batch of deeply nested events makes far more text than it holds
        (20,000 levels: 1.4 GB for one batch); cutting the output into
        blocks keeps at most one block and one line in memory.
        """
        out: list[str] = []
        size = 0
        for line in self._lines(batch):
            out.append(line)
            size += len(line)
            if size >= BLOCK:
                yield _encode(out)
                out, size = [], 0
        if out:
            yield _encode(out)

    def _lines(self, batch: list[Event]) -> Iterator[str]:
        indent = self.indent
        for event in batch:
            kind = event[0]
            if kind == START:
                attrs = "".join(f" {k}={_quoted(v)}" for k, v in event[2].items())
                yield f"{indent * self.depth}start {event[1]}{attrs}"
                self.depth += 1
            elif kind == END:
                self.depth -= 1
                yield f"{indent * self.depth}end {event[1]}"
            elif kind == TEXT:
                if self.show_blank or event[1].strip():
                    yield f"{indent * self.depth}text {_quoted(event[1])}"
            elif kind == ABORT:
                self.depth = 0
                yield f"abort {_quoted(event[1])}"
            elif kind == STREAM:
                # Another input stream (a connection): its own depth.
                if self.depth:
                    self.saved[self.key] = self.depth
                self.key = event[1]
                self.depth = self.saved.pop(self.key, 0)
                yield f"stream {event[1]}"
            else:
                yield f"{indent * self.depth}{' '.join(map(str, event))}"


def _encode(lines: list[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")


def event_lines(batch: list[Event], *, show_blank: bool = False) -> bytes:
    """A block of lines for one batch of events (depth counted from 0)."""
    return b"".join(_Formatter(show_blank).blocks(batch))


@stage(
    "events",
    consumes=EVENTS,
    produces=LINES,
    examples=(
        "xml allroutes.xml | events | head 20 | print",
        "xml feed.xml | events | grep -F route | print",
    ),
)
@coroutine
def events(
    target: Target,
    *,
    all: Annotated[bool, Opt("-a", "also show whitespace-only text (indentation)")] = False,
) -> StageGen:
    """Show XML events as readable lines: start TAG attr="v", text "...", end TAG."""
    blocks = _Formatter(all).blocks
    send = target.send
    try:
        while True:
            for block in blocks((yield)):
                send(block)
    finally:
        target.close()
