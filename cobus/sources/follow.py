"""``follow``: read files as they grow, by name, like ``tail -F``; one kernel task per file.

A :class:`_Follower` task owns one name: it polls the file behind it, sends
each block of new whole lines on, and notices rotation (the name now points
to another file), deletion and truncation. The ``follow`` task expands globs
(rescanning them for new files), starts a follower per name, checkpoints
``--state`` and closes the shared target last. Nothing here knows sinks or
the pipeline text; reading stays in bytes.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Annotated, Any

from ..context import RunContext
from ..core import LINES, Done, Target
from ..errors import SourceError
from ..kernel import NewTask, Sleep, TaskGen, WaitTask
from ..registry import Arg, Opt, ParamError, stage
from ._tailstart import Start, parse_count, pid_alive

__all__ = ["Cursor", "follow"]

BLOCK_SIZE = 1 << 18  # one read, one batch
MAX_HELD = 1 << 20  # a partial line longer than this is sent on as a line of its own
HEAD_SIZE = 1024  # bytes of a file's start that tell it from another with a reused inode
RESCAN_EVERY = 1.0  # seconds between glob rescans and --state checkpoints


@dataclass(frozen=True)
class Cursor:
    """How far a file was delivered, and which file it was (inode, device, first bytes)."""

    dev: int
    ino: int
    offset: int
    head_len: int
    head_hash: str

    def identifies(self, fd: int, st: os.stat_result) -> bool:
        """Whether the open file ``fd`` is the file this cursor was taken in."""
        return (
            (st.st_dev, st.st_ino) == (self.dev, self.ino)
            and st.st_size >= self.offset
            and _hash(os.pread(fd, self.head_len, 0)) == self.head_hash
        )


def _hash(head: bytes) -> str:
    return hashlib.blake2b(head, digest_size=16).hexdigest()


#: Seconds between the empty batches an idle follow sends down the pipeline.
TICK_EVERY = 0.25


class _Outlet:
    """The target every follower sends into; remembers when downstream wants no more."""

    def __init__(self, target: Target, clock: Callable[[], float]) -> None:
        self.target = target
        self.done = False
        #: Set when the run is to end (--pid): each follower reads what is there, then stops.
        self.ending = False
        self.clock = clock
        self.ticked = clock()

    def send(self, block: bytes) -> None:
        if self.done:
            return
        try:
            self.target.send(block)
        except (Done, StopIteration):
            self.done = True

    def tick(self) -> None:
        """While idle, send an empty batch now and then (see cobus.core: ticks)."""
        now = self.clock()
        if now - self.ticked >= TICK_EVERY:
            self.ticked = now
            self.send(b"")


class _Follower:
    """Follows one name: the file behind it now, then the next one after a rotation.

    ``pos`` is the next byte to read; ``held`` is a last line still waiting for
    its newline, so ``pos - len(held)`` is how far output went.

    Discussion: why the old file is read to its end before the name is opened
    again. After a rename (logrotate's default), the lines appended between our
    last poll and the rename exist only in the old file, and the writer keeps
    appending there until it reopens its log. Reading that file until it has no
    more, and only then opening the new file from its start, delivers every
    line once and in order: nothing in the new file can be older than the rest
    of the old one. Reopening first would drop those lines or deliver them after
    newer ones. What a writer puts into the old file after we let go of it is
    lost, as with ``tail -F``; programs that never reopen their log need
    copytruncate, which is detected as a file that got shorter.

    Discussion: a partial last line at exit. Without ``--state`` it is sent with
    a newline added, so nothing is lost. With ``--state`` it is held back and the
    checkpoint stops before it, so the next run delivers the line whole.
    """

    def __init__(
        self,
        path: str,
        outlet: _Outlet,
        ctx: RunContext,
        *,
        skip_existing: bool,
        saved: Cursor | None,
        keep_partial: bool,
        interval: float,
        prefix: bytes,
        start: Start | None = None,
    ) -> None:
        self.path = path
        self.start = start
        self.outlet = outlet
        self.ctx = ctx
        self.skip_existing = skip_existing
        self.saved = saved
        self.keep_partial = keep_partial
        self.interval = interval
        self.prefix = prefix
        self.first = True  # the next open is the first attempt
        self.fd: int | None = None
        self.ident = (0, 0)
        self.pos = 0
        self.held = b""
        self.head = b""
        self.last = saved  # the checkpoint of the last file we let go of

    def run(self) -> TaskGen:
        """The kernel task: poll, read, detect rotation, until downstream is done."""
        try:
            while not self.outlet.done:
                ending = self.outlet.ending  # read before looking: what is there now is read first
                if self.fd is None and not self._open():
                    if ending:
                        return
                    yield Sleep(self.interval)
                    continue
                assert self.fd is not None
                size = os.fstat(self.fd).st_size
                if size > self.pos:
                    self._read_block()
                    if size > self.pos:
                        yield Sleep(0)  # more to read: let the other files have a turn
                elif size < self.pos:
                    self._truncated()
                elif self._replaced():
                    yield from self._let_go()
                elif ending:
                    return
                else:
                    self.outlet.tick()
                    yield Sleep(self.interval)
        except OSError as exc:
            raise SourceError(f"{self.path}: {exc.strerror or exc}") from exc
        finally:
            self._stop()

    def checkpoint(self) -> Cursor | None:
        """Where the next run should resume this name."""
        if self.fd is None:
            return self.last
        if len(self.head) < HEAD_SIZE:
            self.head = os.pread(self.fd, HEAD_SIZE, 0)
        dev, ino = self.ident
        return Cursor(dev, ino, self.pos - len(self.held), len(self.head), _hash(self.head))

    # -- opening --------------------------------------------------------------------

    def _open(self) -> bool:
        first, self.first = self.first, False
        if first and self.saved is not None:
            return self._resume(self.saved)
        fd = self._open_name()
        if fd is None:
            return False
        st = os.fstat(fd)
        self._attach(fd, st, self._start_at(fd, st) if first and self.skip_existing else 0)
        return True

    def _start_at(self, fd: int, st: os.stat_result) -> int:
        """Where a file that exists when following begins is read from: its end, or -n/-c."""
        if self.start is None or not stat.S_ISREG(st.st_mode):
            return st.st_size
        return self.start.offset(fd, st.st_size)

    def _resume(self, saved: Cursor) -> bool:
        """Go on where the last run stopped, even if that file was rotated away meanwhile."""
        fd = self._open_name()
        if fd is not None:
            st = os.fstat(fd)
            if saved.identifies(fd, st):
                self._attach(fd, st, saved.offset)
                return True
            os.close(fd)
        found = _find_rotated(self.path, saved)
        if found is not None:  # the main loop reads its rest, then switches to the name
            self._attach(*found, saved.offset)
            return True
        return self._open()  # a new file: lines written while we were down, from the start

    def _open_name(self) -> int | None:
        try:
            return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None

    def _attach(self, fd: int, st: os.stat_result, pos: int) -> None:
        if stat.S_ISDIR(st.st_mode):
            os.close(fd)
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        self.fd, self.ident, self.pos, self.head = fd, (st.st_dev, st.st_ino), pos, b""

    # -- reading --------------------------------------------------------------------

    def _read_block(self) -> bool:
        assert self.fd is not None
        data = os.pread(self.fd, BLOCK_SIZE, self.pos)
        self.pos += len(data)
        self._deliver(data)
        return bool(data)

    def _deliver(self, data: bytes, *, flush: bool = False) -> None:
        """Send the whole lines of held + data on; hold the rest (or flush it as a line)."""
        if self.held:
            data = self.held + data
        cut = data.rfind(b"\n") + 1
        if cut < len(data) and (flush or len(data) - cut > MAX_HELD):
            data += b"\n"
            cut = len(data)
        self.held = data[cut:]
        if cut:
            self._send(data[:cut] if cut < len(data) else data)

    def _send(self, block: bytes) -> None:
        if self.prefix:
            p = self.prefix
            block = p + block[:-1].replace(b"\n", b"\n" + p) + b"\n"
        self.outlet.send(block)

    # -- what happened to the file --------------------------------------------------

    def _truncated(self) -> None:
        self.ctx.warn(f"{self.path}: file truncated, reading it from the start")
        self._deliver(b"", flush=True)
        self.pos, self.head = 0, b""

    def _replaced(self) -> bool:
        """Whether the name is gone or now belongs to another file."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (st.st_dev, st.st_ino) != self.ident

    def _let_go(self) -> TaskGen:
        """Read the old file to its end (see the Discussion above), then close it."""
        while self._read_block():
            yield Sleep(0)
        self._deliver(b"", flush=True)  # nothing more will come to it by this name
        self._close()

    def _close(self) -> None:
        assert self.fd is not None
        try:
            self.last = self.checkpoint()
        finally:
            os.close(self.fd)
            self.fd = None

    def _stop(self) -> None:
        if self.fd is None:
            return
        try:
            if not self.keep_partial:
                self._deliver(b"", flush=True)
        finally:
            self._close()


def _find_rotated(path: str, saved: Cursor) -> tuple[int, os.stat_result] | None:
    """The file ``saved`` was taken in, if it was renamed within the same directory."""
    folder, name = os.path.split(os.path.abspath(path))
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return None
    for entry in entries:
        if entry.name == name or entry.inode() != saved.ino:
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        st = os.fstat(fd)
        if saved.identifies(fd, st):
            return fd, st
        os.close(fd)
    return None


class _State:
    """The ``--state`` file: a cursor per followed path (absolute), replaced atomically."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.cursors = _load_state(path)
        self._written = dict(self.cursors)

    def save(self, followers: dict[str, _Follower]) -> None:
        """Write the followers' checkpoints if they moved (a temporary file, then rename)."""
        try:
            for key, follower in followers.items():
                cursor = follower.checkpoint()
                if cursor is not None:
                    self.cursors[key] = cursor
            if self.cursors == self._written:
                return
            files = {key: asdict(c) for key, c in sorted(self.cursors.items())}
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as out:
                json.dump({"version": 1, "files": files}, out, indent=1)
                out.flush()
                os.fsync(out.fileno())  # a crash must leave the old state or the new, never half
            os.replace(tmp, self.path)
        except OSError as exc:
            raise SourceError(f"{exc.filename or self.path}: {exc.strerror or exc}") from exc
        self._written = dict(self.cursors)


def _load_state(path: str) -> dict[str, Cursor]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return {key: Cursor(**fields) for key, fields in data["files"].items()}
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SourceError(f"{path}: {exc.strerror or exc}") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SourceError(f"{path}: not a follow state file") from exc


def _names(patterns: list[str]) -> Iterator[str]:
    """Each literal path (followed even before it exists), and what each glob matches now."""
    for pattern in patterns:
        if glob.has_magic(pattern):
            yield from sorted(glob.glob(pattern))
        else:
            yield pattern


def _check(params: dict[str, Any]) -> None:
    if params.get("interval", 1.0) <= 0:
        raise ParamError("interval", "--interval must be more than 0 seconds")
    given = [name for name in ("lines", "bytes", "from_start") if params.get(name)]
    if len(given) > 1:
        raise ParamError(given[1], "give only one of -n, -c and --from-start")
    for name in ("lines", "bytes"):
        if params.get(name) is not None:
            try:
                parse_count(params[name], name)
            except ValueError as exc:
                raise ParamError(name, str(exc)) from None
    if params.get("pid") is not None and params["pid"] <= 0:
        raise ParamError("pid", "--pid must be a process id (more than 0)")


@stage(
    "follow",
    role="source",
    produces=LINES,
    check=_check,
    examples=(
        "follow /var/log/app.log | grep ERROR | print",
        'follow --from-start --with-filename "logs/*.log" | grep -i timeout | print',
        "follow --state ~/.cache/cobus/app.state app.log | grep ERROR | write errors.log",
        "follow -n 20 app.log | print",
    ),
)
def follow(
    target: Target,
    *,
    paths: Annotated[list[str], Arg("files, or quoted globs, to follow by name", metavar="FILE")],
    from_start: Annotated[bool, Opt("", "read files that exist now from their start")] = False,
    with_filename: Annotated[bool, Opt("-H", "prefix each line with its file name and ':'")] = False,
    state: Annotated[
        str | None, Opt("", "keep offsets in FILE; a restart resumes there", metavar="FILE")
    ] = None,
    interval: Annotated[float, Opt("", "seconds between two looks at an idle file", metavar="SECONDS")] = 0.1,
    lines: Annotated[
        str | None, Opt("-n", "begin with the last N lines of each file (+K: from line K on)", metavar="N")
    ] = None,
    bytes: Annotated[  # named as GNU tail's --bytes
        str | None, Opt("-c", "begin with the last N bytes of each file (+K: from byte K on)", metavar="N")
    ] = None,
    pid: Annotated[
        int | None, Opt("", "end once process PID has ended, after reading all it wrote", metavar="PID")
    ] = None,
    ctx: RunContext,
) -> TaskGen:
    """Read files as they grow, by name, like tail -F (rotation, truncation, new files).

    Files that exist at the start are read from their end (all of them with
    --from-start, their last N lines with -n N, from line K with -n +K, as
    tail does; -n 0 is the default); a file that appears later, or replaces a
    rotated one, is read from its start. With --pid, follow ends once that
    process has ended and every file has been read to its end. With --state,
    each file resumes where the last run's output stopped, and lines written
    meanwhile are delivered, none twice.
    """
    return _follow(
        target,
        [os.path.expanduser(p) for p in paths],
        ctx,
        state=_State(os.path.expanduser(state)) if state else None,
        from_start=from_start,
        with_filename=with_filename,
        interval=interval,
        start=_start(lines, bytes),
        pid=pid,
    )


def _start(lines: str | None, count_bytes: str | None) -> Start | None:
    """-n/-c as a :class:`Start` (None: the files' ends, the default)."""
    if lines is not None:
        return parse_count(lines, "lines")
    if count_bytes is not None:
        return parse_count(count_bytes, "bytes")
    return None


def _follow(
    target: Target,
    patterns: list[str],
    ctx: RunContext,
    *,
    state: _State | None,
    from_start: bool,
    with_filename: bool,
    interval: float,
    start: Start | None = None,
    pid: int | None = None,
) -> TaskGen:
    """The follow task: start a follower per new name, checkpoint, close the target last.

    When it is killed, the kernel closes the followers first (they are its
    children), so the checkpoint written here includes their last lines.
    """
    outlet = _Outlet(target, ctx.clock)
    followers: dict[str, _Follower] = {}
    tids: list[int] = []
    first_scan = True
    next_scan = ctx.clock()
    try:
        while not outlet.done:
            if ctx.clock() >= next_scan:
                for path in _names(patterns):
                    key = os.path.abspath(path)
                    if key in followers:
                        continue
                    followers[key] = follower = _Follower(
                        path,
                        outlet,
                        ctx,
                        skip_existing=first_scan and not from_start,
                        saved=state.cursors.get(key) if state else None,
                        keep_partial=state is not None,
                        interval=interval,
                        prefix=os.fsencode(path) + b":" if with_filename else b"",
                        start=start,
                    )
                    tids.append((yield NewTask(follower.run(), name=f"follow {path}")))
                first_scan = False
                if state is not None:
                    state.save(followers)
                next_scan = ctx.clock() + RESCAN_EVERY
            if pid is not None and not pid_alive(pid):
                outlet.ending = True  # the followers read to the end, then stop
                break
            yield Sleep(interval)
        for tid in tids:
            yield WaitTask(tid)
    finally:
        try:
            if state is not None:
                state.save(followers)
        finally:
            target.close()
