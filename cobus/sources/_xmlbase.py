"""What the xml source needs of its parser drivers without importing them.

The drivers (``_xmlparsers``) import lxml and xml.sax, which cost a few tens
of milliseconds; the ``xml`` stage imports them only when a pipeline uses it,
so ``cat | grep`` starts without them. The wording of every refusal (entity
declarations, external DTDs, undefined entities) is here too, one for all
drivers.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

__all__ = [
    "Driver",
    "XmlProblem",
    "refuse_declaration",
    "refuse_dtd",
    "take_all",
    "undefined",
    "unknown_encoding",
]


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


_T = TypeVar("_T")


def take_all(items: list[_T]) -> list[_T]:
    """A driver's ``take``: what ``items`` holds, emptied in place.

    In place, not swapped for a new list: the parser callbacks hold the bound
    ``append`` of this very list.
    """
    out = items.copy()
    items.clear()
    return out


_ENTITIES_HINT = "use --allow-entities to accept internal entities"


def refuse_declaration(name: str, is_parameter: bool, external: bool, allow: bool) -> str | None:
    """Why an entity declaration is refused, or None when it may stand."""
    kind = "parameter entity" if is_parameter else "entity"
    if external:
        return f"document declares the external {kind} {name!r}; external entities are never resolved"
    if not allow:
        return f"document declares the {kind} {name!r}; {_ENTITIES_HINT}"
    return None


def refuse_dtd(system_id: str | None, public_id: str | None, allow: bool) -> str | None:
    if (system_id or public_id) and not allow:
        named = system_id or public_id
        return f"document names an external DTD ({named}), which is never loaded; {_ENTITIES_HINT}"
    return None


def undefined(name: str) -> str:
    return f"undefined entity {name!r} (external DTDs are never loaded)"


def unknown_encoding(exc: LookupError) -> XmlProblem:
    """expat's ``LookupError`` for an encoding Python lacks, worded as lxml words it."""
    name = str(exc).removeprefix("unknown encoding: ")
    return XmlProblem(f"Unsupported encoding: {name}", 1)
