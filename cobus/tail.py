"""``cobus tail``: GNU tail's common cases, byte for byte, with ``-F`` on cobus's follow engine.

:func:`tail` prints the end (``-n``/``-c``, found by :mod:`cobus.sources._tailstart`
without reading whole files) of each file with tail's ``==> FILE <==``
headers, its messages and its exit status, then follows: ``-f`` keeps the
descriptors it opened and polls them here; ``-F`` runs one ``follow`` task
per name on a kernel (rotation, truncation, files that appear later). Output
goes to a binary stream, messages to a text stream; nothing here exits or
knows click: :mod:`cobus.cli` parses the options and exits with what
:func:`tail` returns.
"""

from __future__ import annotations

import glob
import io
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Literal

from .context import RunContext
from .core import Target, coroutine
from .errors import SinkError
from .kernel import Kernel, KillTask, NewTask, TaskGen, WaitTask
from .sources._tailstart import Start, parse_count, pid_alive
from .sources._watch import hangup_watch
from .sources.follow import follow

__all__ = ["TailOptions", "UsageError", "modern_args", "options", "tail"]

#: Bytes per read while copying a file's end and while following.
BLOCK_SIZE = 1 << 20

#: Exit status for a bad option value (cobus's usage errors; GNU tail says 1).
EXIT_USAGE = 2

Following = Literal["", "descriptor", "name"]
#: Writes one ``cobus tail: ...`` line on stderr.
_Complain = Callable[[str], None]


class UsageError(ValueError):
    """A bad option value; ``str(exc)`` is tail's wording, one line."""


@dataclass(frozen=True)
class TailOptions:
    """What the command line asked for, checked."""

    start: Start
    follow: Following = ""
    #: ``==> FILE <==`` before each file's output: None means "when there are several files".
    headers: bool | None = None
    interval: float = 1.0
    pid: int | None = None
    #: The -n/-c text as given, for the follow engine (which parses it again).
    count_text: str = "10"


def options(
    *,
    lines: str | None = None,
    count_bytes: str | None = None,
    follow: Following = "",
    quiet: bool = False,
    verbose: bool = False,
    interval: float = 1.0,
    pid: int | None = None,
    zero: bool = False,
) -> TailOptions:
    """Check the options as GNU tail reads them; raise :class:`UsageError` otherwise."""
    delimiter = b"\0" if zero else b"\n"
    unit: Literal["lines", "bytes"] = "bytes" if count_bytes is not None else "lines"
    text = count_bytes if count_bytes is not None else lines if lines is not None else "10"
    try:
        start = parse_count(text, unit, delimiter)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if interval < 0:
        raise UsageError(f"invalid number of seconds: '{interval}'")
    if zero and follow == "name":
        raise UsageError("-z cannot be combined with -F yet (the follow engine splits lines at newlines)")
    headers = False if quiet else True if verbose else None
    return TailOptions(start, follow, headers, interval, pid, text)


#: The obsolete count words: ``-20``, ``-5c``, ``-3f``, ``+2``, ``+1cf``.
_OBSOLETE = re.compile(r"(?:-(\d+)|\+(\d*))([bcl]?)(f?)")


#: ``--follow=HOW`` spelled out, as the flags cobus tail has (name: always with retry).
_SPELLED = {"--follow=name": "-F", "--follow=descriptor": "-f"}


def modern_args(args: Sequence[str]) -> list[str]:
    """GNU tail's obsolete ``tail -20 FILE`` (``-Nc``, ``+N``, ``-Nf``) as ``-n``/``-c``/``-f`` words.

    As with GNU tail, only when the count is the first word and at most one
    file follows: ``tail -20 a b`` is refused, not guessed at. ``--follow=name``
    and ``--follow=descriptor`` become ``-F`` and ``-f``.
    """
    args = [_SPELLED.get(word, word) for word in args]
    match = _OBSOLETE.fullmatch(args[0]) if 1 <= len(args) <= 2 else None
    if match is None or (len(args) == 2 and args[1].startswith("-") and args[1] != "-"):
        return list(args)
    minus, plus, unit, follow_too = match.groups()
    digits = minus if minus is not None else plus or "10"
    count = ("+" if minus is None else "") + digits + ("b" if unit == "b" else "")
    modern = ["-c" if unit in ("b", "c") else "-n", count]
    return modern + (["-f"] if follow_too else []) + list(args[1:])


def quote(name: str) -> str:
    """A file name in messages as GNU tail quotes it: 'name', a quote inside as '\\''."""
    return "'" + name.replace("'", "'\\''") + "'"


class _Output:
    """The output stream and its headers: one before a file's first bytes, and again on each switch."""

    def __init__(self, stream: IO[bytes], headers: bool) -> None:
        self.stream = stream
        self.headers = headers
        self.shown: str | None = None  # whose header came last
        self.started = False

    def header(self, name: str) -> None:
        if self.headers:
            gap = b"\n" if self.started else b""
            self._put(gap + b"==> " + os.fsencode(name) + b" <==\n")
            self.started = True
        self.shown = name

    def write(self, name: str, data: bytes) -> None:
        if not data:
            return
        if name != self.shown:
            self.header(name)
        self._put(data)

    def flush(self) -> None:
        self._put(b"")

    def _put(self, data: bytes) -> None:
        """Write (flush, given nothing); a failure is the output's, not the file being read."""
        try:
            if data:
                self.stream.write(data)
            else:
                self.stream.flush()
        except OSError as exc:  # a closed pipe too: cobus.cli ends quietly when it is the cause
            raise SinkError(f"write error: {exc.strerror or exc}") from exc


@dataclass
class _Open:
    """A file tail printed the end of and may follow by descriptor."""

    name: str  # as shown in headers and messages
    fd: int
    pos: int


def tail(files: Sequence[str], opts: TailOptions, out: IO[bytes], err: IO[str]) -> int:
    """Print the end of each file, follow if asked; the exit status (0, or 1 if a file failed)."""
    names = list(files) or ["-"]
    output = _Output(out, opts.headers if opts.headers is not None else len(names) > 1)

    def complain(message: str) -> None:
        output.flush()  # what came before the message stays before it
        err.write(f"cobus tail: {message}\n")
        err.flush()

    if opts.follow == "name":
        return _follow_names(names, opts, output, complain)
    status = 0
    kept: list[_Open] = []
    for name in names:
        opened = _print_end(name, opts.start, output, complain)
        if opened is None:
            status = 1
        elif opts.follow == "descriptor" and opened.fd >= 0:
            kept.append(opened)
        elif opened.fd > 0:
            os.close(opened.fd)
    output.flush()
    if kept:
        try:
            _follow_descriptors(kept, opts, output, complain)
        finally:
            for f in kept:
                if f.fd > 0:
                    os.close(f.fd)
    return status


def _print_end(name: str, start: Start, output: _Output, complain: _Complain) -> _Open | None:
    """Print one file's end after its header; the file (fd -1: not to follow), None if it failed."""
    shown = "standard input" if name == "-" else name
    if name == "-":
        fd = 0
    else:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            complain(f"cannot open {quote(name)} for reading: {exc.strerror}")
            return None
    output.header(shown)
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            pos = start.offset(fd, st.st_size)
            pos = _copy(fd, pos, shown, output)
            return _Open(shown, fd, pos)
        for data in start.select(_chunks(fd)):
            output.write(shown, data)
    except OSError as exc:
        complain(f"error reading {quote(shown)}: {exc.strerror}")
        if fd > 0:
            os.close(fd)
        return None
    if fd > 0:
        os.close(fd)
    return _Open(shown, -1, 0)  # a pipe or a device: read to its end, nothing to follow


def _copy(fd: int, pos: int, shown: str, output: _Output) -> int:
    """Write the file from ``pos`` to its end now; where that end was."""
    while data := os.pread(fd, BLOCK_SIZE, pos):
        output.write(shown, data)
        pos += len(data)
    return pos


def _chunks(fd: int) -> Iterator[bytes]:
    while data := os.read(fd, BLOCK_SIZE):
        yield data


def _follow_descriptors(kept: list[_Open], opts: TailOptions, output: _Output, complain: _Complain) -> None:
    """``-f``: poll the open files, print what they grew by; a file that shrank is read again from 0.

    With --pid, the last look comes after the process was seen gone, so all
    it wrote is printed.
    """
    while True:
        ending = opts.pid is not None and not pid_alive(opts.pid)
        for f in kept:
            size = os.fstat(f.fd).st_size
            if size < f.pos:
                complain(f"{f.name}: file truncated")
                f.pos = 0
            f.pos = _copy(f.fd, f.pos, f.name, output)
        output.flush()
        if ending:
            return
        time.sleep(opts.interval)


def _follow_names(names: list[str], opts: TailOptions, output: _Output, complain: _Complain) -> int:
    """``-F``: one ``follow`` task per name on one kernel, each writing through the headers.

    A name that cannot be opened now is reported as tail does, and followed
    all the same: it is read from its start once it appears. Standard input
    cannot be followed by name and is only read to its end.

    Discussion: one follow task per name, not one for all the names. A header
    must name the file each block comes from, and a follow task sends the
    blocks of all its names into one target; with a task per name, each
    target knows its file. On one kernel they take turns as one follow's
    files would, and --pid ends each once its file has been read to the end.
    """
    status = 0
    # The follow tasks get no stdout to watch: one task watches it for all (see _supervise).
    ctx = RunContext(stdout=io.BytesIO(), live=True, live_source=True)
    tasks: list[tuple[str, TaskGen]] = []
    count = opts.start
    by_lines = count.unit == "lines"
    for name in names:
        if name == "-":
            if _print_end(name, count, output, complain) is None:
                status = 1
            continue
        if not os.path.exists(name):
            complain(f"cannot open {quote(name)} for reading: No such file or directory")
            status = 1
        task = follow(
            _into(output, name),
            paths=[glob.escape(name)],  # a name, not a pattern (the shell has expanded those)
            ctx=ctx,
            interval=opts.interval or 0.01,
            pid=opts.pid,
            lines=opts.count_text if by_lines else None,
            bytes=None if by_lines else opts.count_text,
        )
        tasks.append((f"tail -F {name}", task))
    output.flush()
    kernel = Kernel()
    try:
        kernel.spawn(_supervise(tasks, output.stream), name="tail -F")
        kernel.run()
    finally:
        kernel.close()
        output.flush()
    return status


def _supervise(tasks: list[tuple[str, TaskGen]], out: IO[bytes]) -> TaskGen:
    """Run the follow tasks until they end (--pid), and end the run when the reader of stdout goes.

    A descriptor is waited on by one task at a time, so the hangup of a piped
    stdout (``cobus tail -F x | head -1``) is watched here once, not by each
    follow task.
    """
    tids = []
    for name, task in tasks:
        tids.append((yield NewTask(task, name=name)))
    hangup = hangup_watch(out)
    watching = None if hangup is None else (yield NewTask(hangup, name="tail: stdout"))
    for tid in tids:
        yield WaitTask(tid)
    if watching is not None:
        yield KillTask(watching)


@coroutine
def _into(output: _Output, name: str) -> Target:
    """The target of one name's follow task: its blocks, after its header when another file spoke last."""
    while True:
        block = yield
        if block:
            output.write(name, block)
            output.flush()
