"""Errors a user can cause, each with its exit code; the CLI is the only place that exits.

    CobusError (1)              something the user can fix; one line on stderr
     +-- SpecError (2)          bad pipeline text or parameters; points at a column
     +-- SourceError (1)        a file or socket that cannot be read, malformed input
     +-- StageError (1)         a stage failed while running (a worker crashed ...)
     |    +-- TaskError (1)     a kernel task raised something else; names the task
     +-- SinkError (1)          output that cannot be written
    CobusInternalError (70)     a bug in cobus; the traceback is shown with --debug

Third-party exceptions (``OSError``, ``ExpatError``, ``XMLSyntaxError``) are
translated where they happen, with ``raise SourceError(...) from exc``.
"""

from __future__ import annotations

__all__ = [
    "CobusError",
    "CobusInternalError",
    "SinkError",
    "SourceError",
    "SpecError",
    "StageError",
    "TaskError",
]


class CobusError(Exception):
    """An error the user can act on. ``str(exc)`` is the whole message."""

    exit_code = 1


class SpecError(CobusError):
    """The pipeline text or a parameter is wrong.

    ``text`` is the pipeline text (or one stage's text of a TOML file) and
    ``column``/``width`` locate the culprit in it (0-based), so the CLI can
    draw a ``^`` under it. ``where`` names the file and stage for TOML.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        text: str | None = None,
        column: int | None = None,
        width: int = 1,
        where: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.text = text
        self.column = column
        self.width = max(1, width)
        self.where = where

    def located(self, text: str, column: int, width: int = 1) -> SpecError:
        """This error, pointed at a place in ``text`` unless it already is."""
        if self.text is None:
            self.text, self.column, self.width = text, column, max(1, width)
        return self

    def __str__(self) -> str:
        head = f"{self.where}: " if self.where else ""
        if self.column is not None:
            return f"{head}{self.message} (column {self.column + 1})"
        return head + self.message

    def caret_lines(self) -> list[str]:
        """The pipeline text and a ``^`` line under the culprit, or nothing."""
        if self.text is None or self.column is None or "\n" in self.text:
            return []
        return ["  " + self.text, "  " + " " * self.column + "^" * self.width]


class SourceError(CobusError):
    """A source cannot be read, or what it reads is malformed."""


class StageError(CobusError):
    """A stage failed while the pipeline ran."""


class TaskError(StageError):
    """A task (a source, a callback) raised an error that is not a CobusError.

    The kernel raises it, naming the task, with the original as its cause; it
    knows nothing of stages.
    """


class SinkError(CobusError):
    """Output cannot be written."""


class CobusInternalError(Exception):
    """A bug in cobus, not in what the user asked."""

    exit_code = 70
