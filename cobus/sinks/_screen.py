"""A rich Console on stdout for the sinks that draw live views (aggregates, table).

Only when stdout is a terminal: piped, the sinks write plain text and rich is
never loaded. Lives apart so that no sink imports another.
"""

from __future__ import annotations

import shutil
from typing import IO, Any, cast

from ..context import RunContext, is_terminal

__all__ = ["terminal_console"]


class _TextOut:
    """A text file on top of the binary stdout, for a rich Console."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out

    def write(self, text: str) -> int:
        self._out.write(text.encode("utf-8", "replace"))
        return len(text)

    def flush(self) -> None:
        self._out.flush()

    def isatty(self) -> bool:
        return True


def terminal_console(ctx: RunContext) -> Any:
    """A rich Console on stdout when stdout is a terminal, else None."""
    tty = is_terminal(ctx.stdout)
    if not tty:
        return None
    from rich.console import Console

    text_out = cast(IO[str], _TextOut(ctx.stdout))
    return Console(file=text_out, force_terminal=True, width=shutil.get_terminal_size().columns)
