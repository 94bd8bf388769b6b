"""``cobus grep``: a drop-in GNU grep over files, on the engine of the ``grep`` stage.

:func:`grep_files` reads each named file (``-`` is stdin, ``-r`` walks
directories) in large blocks of whole lines, hands them to a
:class:`~cobus.grepoutput.Selection` and writes what grep would: ``FILE:``
prefixes when there are several files, ``-c``/``-l``/``-L`` per file, grep's
messages for files that cannot be read (and it goes on), a "binary file
matches" notice instead of lines holding NUL bytes or invalid UTF-8 unless
``-a``. It returns grep's exit status; cli.py parses the options and exits.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from .errors import SourceError
from .grepengine import PatternError, Searcher, patterns_of
from .grepoutput import Format, Selection, file_label
from .inputs import line_blocks

__all__ = ["GrepOptions", "grep_command", "grep_files"]


@dataclass(frozen=True)
class GrepOptions:
    patterns: list[str]
    dialect: str = "G"
    ignore_case: bool = False
    word: bool = False
    line: bool = False
    fmt: Format = field(default_factory=Format)
    count: bool = False
    quiet: bool = False
    files_with_matches: bool = False
    files_without_match: bool = False
    #: True -H, False -h, None: prefix when there are several files.
    with_filename: bool | None = None
    no_messages: bool = False
    recursive: bool = False
    text: bool = False


def grep_files(files: list[str], opts: GrepOptions, out: IO[bytes], err: IO[str]) -> int:
    """Search ``files`` as GNU grep does; the exit status (0 selected, 1 none, 2 trouble)."""
    try:
        searcher = Searcher(
            opts.patterns, dialect=opts.dialect, ignore_case=opts.ignore_case, word=opts.word, line=opts.line
        )
    except PatternError as exc:
        pattern = "\n".join(opts.patterns)
        err.write(f"cobus grep: {exc.message} at position {exc.position} in {pattern!r}\n")
        return 2
    names = files or (["."] if opts.recursive else ["-"])
    label = opts.with_filename if opts.with_filename is not None else (len(names) > 1 or opts.recursive)
    trouble = False
    any_selected = False
    for name in _walk(names, opts, err):
        if name is None:
            trouble = True
            continue
        shown = "(standard input)" if name == "-" else name
        fmt = opts.fmt
        if label:
            fmt = Format(**{**fmt.__dict__, "label": os.fsencode(shown)})
        selected = _one_file(name, shown, searcher, fmt, opts, out, err)
        if selected is None:
            trouble = True
            continue
        any_selected = any_selected or selected > 0
        if opts.quiet and any_selected:
            return 0
    out.flush()
    if trouble and not (opts.quiet and any_selected):
        return 2
    return 0 if any_selected else 1


def _walk(names: list[str], opts: GrepOptions, err: IO[str]) -> Iterator[str | None]:
    """The files to read, in order; None after a message for one that cannot be."""
    for name in names:
        if name != "-" and os.path.isdir(name):
            if not opts.recursive:
                if not opts.no_messages:
                    err.write(f"grep: {name}: Is a directory\n")
                continue
            for root, dirs, found in os.walk(name):
                dirs.sort()
                for f in sorted(found):
                    path = os.path.join(root, f)
                    yield path[2:] if name == "." and path.startswith("./") else path
            continue
        yield name


def _one_file(
    name: str, shown: str, searcher: Searcher, fmt: Format, opts: GrepOptions, out: IO[bytes], err: IO[str]
) -> int | None:
    """Search one file; its selected lines (counted as Selection.selected counts), or None if unreadable."""
    try:
        stream = sys.stdin.buffer if name == "-" else open(name, "rb", buffering=0)
    except OSError as exc:
        if not opts.no_messages:
            err.write(f"grep: {name}: {exc.strerror}\n")
        return None
    listing = opts.files_with_matches or opts.files_without_match
    emit = not (opts.count or opts.quiet or listing)
    selection = Selection(searcher, fmt)
    binary = False
    hidden = False
    try:
        for block in line_blocks(stream, name):
            binary = binary or (not opts.text and b"\0" in block)
            before = selection.selected
            text = selection.feed(block, emit=emit and not binary)
            if binary and emit:
                if selection.selected > before:
                    hidden = True
                    break
                continue
            if text and not opts.text and not text.isascii():
                text, dropped = _drop_invalid(text)
                hidden = hidden or dropped
            if text:
                out.write(text)
            if selection.done or ((opts.quiet or listing) and selection.selected):
                break
    except SourceError as exc:  # a read failed: named as grep names it
        if not opts.no_messages:
            err.write(f"grep: {exc}\n")
        return None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    head = os.fsencode(shown)
    if opts.count:
        prefix = file_label(head, b":", color=fmt.color) if fmt.label is not None else b""
        out.write(prefix + b"%d\n" % selection.selected)
    if (opts.files_with_matches and selection.selected) or (
        opts.files_without_match and not selection.selected
    ):
        out.write(file_label(head, b"\n", color=fmt.color))
    if hidden:
        out.flush()
        err.write(f"grep: {shown}: binary file matches\n")
    return selection.selected


def _drop_invalid(text: bytes) -> tuple[bytes, bool]:
    """Output lines without those holding invalid UTF-8 (grep calls them binary)."""
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return text, False
    kept = []
    for line in text.split(b"\n")[:-1]:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            continue
        kept.append(line + b"\n")
    return b"".join(kept), True


def grep_options(patterns: list[str], flags: dict[str, Any], *, color_tty: bool) -> GrepOptions:
    """GrepOptions from the command line's flags (names as cli.py spells them)."""
    color = flags["color"] == "always" or (flags["color"] == "auto" and color_tty)
    context = int(flags["context"] or 0)
    fmt = Format(
        invert=bool(flags["invert_match"]),
        number=bool(flags["line_number"]),
        only=bool(flags["only_matching"]),
        max_count=flags["max_count"],
        before=int(flags["before_context"] or context),
        after=int(flags["after_context"] or context),
        color=color,
    )
    return GrepOptions(
        patterns,
        dialect=str(flags["dialect"] if flags["dialect"] in ("E", "F", "P") else "G"),
        ignore_case=bool(flags["ignore_case"]),
        word=bool(flags["word_regexp"]),
        line=bool(flags["line_regexp"]),
        fmt=fmt,
        count=bool(flags["count"]),
        quiet=bool(flags["quiet"]),
        files_with_matches=bool(flags["files_with_matches"]),
        files_without_match=bool(flags["files_without_match"]),
        with_filename=flags["with_filename"],
        no_messages=bool(flags["no_messages"]),
        recursive=bool(flags["recursive"]),
        text=bool(flags["text"]),
    )


def grep_command(
    words: list[str],
    regexps: Sequence[str],
    pattern_files: Sequence[str],
    flags: dict[str, Any],
    tty: bool,
    out: IO[bytes],
    err: IO[str],
) -> int:
    """``cobus grep`` once click has parsed it: PATTERN unless -e/-f, then the files; the exit status."""
    pattern = None
    if not regexps and not pattern_files:
        if not words:
            err.write("Usage: cobus grep [OPTIONS] PATTERN [FILE]...\n")
            return 2
        pattern = words.pop(0)
    try:
        patterns = patterns_of(pattern, regexps, pattern_files)
    except OSError as exc:
        err.write(f"grep: {exc.filename}: {exc.strerror}\n")
        return 2
    return grep_files(words, grep_options(patterns, flags, color_tty=tty), out, err)
