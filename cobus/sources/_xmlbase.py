"""What the xml source needs of its parser drivers without importing them.

The drivers (``_xmlparsers``) import lxml and xml.sax, which cost a few tens
of milliseconds; the ``xml`` stage imports them only when a pipeline uses it,
so ``cat | grep`` starts without them.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Driver", "XmlProblem", "unknown_encoding"]


class XmlProblem(Exception):
    """Malformed or refused XML: a message and, when known, where (1-based)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        #: Where the problem is in the bytes last fed (expat only), for --recover.
        self.offset: int | None = None


class Driver(Protocol):
    def feed(self, data: bytes) -> bytes | None: ...
    def take(self) -> list[Any]: ...
    def close(self) -> None: ...


def unknown_encoding(exc: LookupError) -> XmlProblem:
    """expat's ``LookupError`` for an encoding Python lacks, worded as lxml words it."""
    name = str(exc).removeprefix("unknown encoding: ")
    return XmlProblem(f"Unsupported encoding: {name}", 1)
