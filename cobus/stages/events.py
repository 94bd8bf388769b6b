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
from typing import Annotated

from ..core import EVENTS, LINES, Target, coroutine
from ..registry import Opt, stage
from ..xmlrecords import ABORT, END, START, STREAM, TEXT, Event

__all__ = ["event_lines", "events"]


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

    def lines(self, batch: list[Event]) -> list[str]:
        out: list[str] = []
        indent = self.indent
        for event in batch:
            kind = event[0]
            if kind == START:
                attrs = "".join(f" {k}={_quoted(v)}" for k, v in event[2].items())
                out.append(f"{indent * self.depth}start {event[1]}{attrs}")
                self.depth += 1
            elif kind == END:
                self.depth -= 1
                out.append(f"{indent * self.depth}end {event[1]}")
            elif kind == TEXT:
                if self.show_blank or event[1].strip():
                    out.append(f"{indent * self.depth}text {_quoted(event[1])}")
            elif kind == ABORT:
                self.depth = 0
                out.append(f"abort {_quoted(event[1])}")
            elif kind == STREAM:
                # Another input stream (a connection): its own depth.
                if self.depth:
                    self.saved[self.key] = self.depth
                self.key = event[1]
                self.depth = self.saved.pop(self.key, 0)
                out.append(f"stream {event[1]}")
            else:
                out.append(f"{indent * self.depth}{' '.join(map(str, event))}")
        return out


def event_lines(batch: list[Event], *, show_blank: bool = False) -> bytes:
    """A block of lines for one batch of events (depth counted from 0)."""
    lines = _Formatter(show_blank).lines(batch)
    return "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")


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
) -> Target:
    """Show XML events as readable lines: start TAG attr="v", text "...", end TAG."""
    formatter = _Formatter(all)
    send = target.send
    try:
        while True:
            lines = formatter.lines((yield))
            if lines:
                send("".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape"))
    finally:
        target.close()
