"""``follow``: read files as they grow, by name, like ``tail -F``; one kernel task per file.

A :class:`_Follower` task owns one name: it waits for news of the file behind
it (inotify events, else polling: :mod:`._watch`), sends each block of new
whole lines on, and notices rotation (the name now points to another file),
deletion and truncation. The ``follow`` task expands globs (again when a
watched directory gets a new name), starts a follower per name, sends ticks,
checkpoints ``--state`` once the run confirms delivery (:mod:`cobus.delivery`)
and closes the shared target last. Cursors and the state file live in
:mod:`._cursor`. Nothing here knows sinks or the pipeline text; reading
stays in bytes.
"""

from __future__ import annotations

import errno
import glob
import os
import resource
import stat
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from ..concurrency import aborting
from ..context import RunContext
from ..core import LINES, Done, Target
from ..errors import SourceError
from ..kernel import KillTask, NewTask, Notify, ReadWait, Sleep, TaskGen, Wait, WaitTask
from ..registry import Arg, Opt, ParamError, stage
from ._cursor import HEAD_SIZE, Cursor, State, find_copy, find_rotated, head_hash
from ._tailstart import Start, parse_count, pid_alive
from ._watch import Watch, Watcher, hangup_watch

__all__ = ["Cursor", "follow"]

BLOCK_SIZE = 1 << 18  # one read, one batch
MAX_HELD = 1 << 20  # a partial line longer than this is sent on as a line of its own
RESCAN_EVERY = 1.0  # seconds between glob rescans and --state checkpoints
#: Seconds between the empty batches an idle follow sends down the pipeline.
TICK_EVERY = 0.25
#: Bytes before the read position that must match in a file taken for logrotate's copy.
TAIL_SIZE = 256
#: Seconds a rotated file is still read while its writer has not moved to the new one.
LINGER = 1.0
LINGER_POLL = 0.02
#: Descriptors left for everything but followed files (stdout, sockets, workers' pipes).
FD_RESERVE = 64
_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: a FIFO opens at once


class _Outlet:
    """The target every follower sends into; remembers when downstream wants no more.

    ``clean`` turns False when a send (or a delivery barrier) failed: the
    output is broken, and nothing sent may be confirmed any more.
    """

    def __init__(self, target: Target, clock: Callable[[], float]) -> None:
        self.target = target
        self.done = False
        self.clean = True
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
        except BaseException:
            self.clean = False
            raise

    def tick(self) -> None:
        """Send an empty batch now and then (see cobus.core: ticks)."""
        now = self.clock()
        if now - self.ticked >= TICK_EVERY:
            self.ticked = now
            self.send(b"")


class _Files:
    """How many followed files may be open at once: the descriptor limit, raised if allowed.

    Past it, an idle follower closes its file and reopens it by name when
    there is news (see :meth:`_Follower._park`).
    """

    def __init__(self) -> None:
        self.limit = max(16, _raise_fd_limit() - FD_RESERVE)
        self.open = 0

    @property
    def over(self) -> bool:
        return self.open > self.limit


def _raise_fd_limit() -> int:
    """Raise the soft limit on descriptors as far as the hard one allows; the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1 << 16 if hard == resource.RLIM_INFINITY else min(hard, 1 << 16)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return 1 << 16 if soft == resource.RLIM_INFINITY else int(soft)


class _Follower:
    """Follows one name: the file behind it now, then the next one after a rotation.

    ``pos`` is the next byte to read; ``held`` is a last line still waiting
    for its newline; ``sent`` is how far lines went into the pipeline (a send
    returned); ``head`` is the file's first ``min(pos, HEAD_SIZE)`` bytes.

    Discussion: why the old file is read to its end before the name is opened
    again. After a rename (logrotate's default), the lines appended between our
    last look and the rename exist only in the old file, and the writer keeps
    appending there until it reopens its log. Reading that file until it has no
    more, and only then opening the new file from its start, delivers every
    line once and in order: nothing in the new file can be older than the rest
    of the old one. Reopening first would drop those lines or deliver them after
    newer ones. The writer reopens its log a moment after the rename (on
    logrotate's postrotate signal), so the old file is only let go once the
    new one has data, or after a second of quiet; what a writer puts into
    the old file after that is lost, as with ``tail -F``.

    Discussion: truncation (copytruncate). logrotate copies the file, then
    truncates it while the writer keeps it open; the writer's next lines land
    at the start. The file is shorter than ``pos`` unless the writer was
    quick with a burst longer than the old file, so size alone is not enough:
    the file's first bytes are compared with ``head`` too, and either change
    means "read again from the start". Before that, the lines written after
    our last read that logrotate managed to copy are read from the copy
    (``app.log.1``: same first bytes, same bytes before ``pos``), so only
    those written between the copy and the truncation are lost (tail -F
    loses the others too).

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
        watch: Watch,
        files: _Files,
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
        self.watch = watch
        self.files = files
        self.skip_existing = skip_existing
        self.saved = saved
        self.keep_partial = keep_partial
        self.interval = interval
        self.prefix = prefix
        self.first = True  # the next open is the first attempt
        self.fd: int | None = None
        self.fifo = False
        self.ident = (0, 0)
        self.pos = 0
        self.held = b""
        self.sent = 0
        self.head = b""
        self.tail = b""  # the last bytes read, up to TAIL_SIZE (to recognise a copy)
        self.last = saved  # the checkpoint of the last file we let go of
        self.parked: Cursor | None = None  # closed for want of descriptors: reopen here
        self.noticed = False  # the user was told the name is a directory

    def run(self) -> TaskGen:
        """The kernel task: wait for news, read, detect rotation, until downstream is done."""
        try:
            while not self.outlet.done:
                ending = self.outlet.ending  # read before looking: what is there now is read first
                if self.fd is None and not self._open():
                    if ending:
                        return
                    yield self.watch.wait_for_name(self.interval)
                    continue
                assert self.fd is not None
                if self.fifo:
                    if ending:
                        self.drain_fifo()
                        return
                    yield from self._read_fifo()
                    continue
                size = os.fstat(self.fd).st_size
                if size < self.pos or self._head_changed():
                    self._truncated()
                elif size > self.pos:
                    self._read_block()
                    if size > self.pos:
                        yield from self._pause(Sleep(0))  # more to read: let the other files have a turn
                elif self._replaced():
                    yield from self._let_go()
                elif ending:
                    return
                else:
                    yield from self._pause(self.watch.wait(self.interval))
        except OSError as exc:
            if not self.outlet.clean:
                raise  # raised downstream: it is no fault of this file
            raise SourceError(f"{self.path}: {exc.strerror or exc}") from exc
        finally:
            self._stop()

    def checkpoint(self) -> Cursor | None:
        """Where the next run should resume this name (as far as lines were sent)."""
        if self.fd is None or self.fifo:
            return self.parked or self.last
        dev, ino = self.ident
        return Cursor(dev, ino, self.sent, len(self.head), head_hash(self.head))

    # -- opening --------------------------------------------------------------------

    def _open(self) -> bool:
        if self.parked is not None:
            parked, self.parked = self.parked, None
            return self._resume(parked)
        first, self.first = self.first, False
        if first and self.saved is not None:
            return self._resume(self.saved)
        fd = self._open_name()
        if fd is None:
            return False
        st = os.fstat(fd)
        return self._attach(fd, st, self._start_at(fd, st) if first and self.skip_existing else 0)

    def _start_at(self, fd: int, st: os.stat_result) -> int:
        """Where a file that exists when following begins is read from: its end, or -n/-c."""
        if self.start is None or not stat.S_ISREG(st.st_mode):
            return st.st_size
        return self.start.offset(fd, st.st_size)

    def _resume(self, saved: Cursor) -> bool:
        """Go on at ``saved``, even if that file was rotated away meanwhile."""
        fd = self._open_name()
        if fd is not None:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and saved.identifies(fd, st):
                return self._attach(fd, st, saved.offset)
            os.close(fd)
        found = find_rotated(self.path, saved)
        if found is not None:  # the main loop reads its rest, then switches to the name
            return self._attach(*found, saved.offset)
        return self._open()  # a new file: lines written while we were away, from the start

    def _open_name(self) -> int | None:
        try:
            return os.open(self.path, _OPEN_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                self.files.limit = max(16, self.files.open - 1)  # try again once others closed
                return None
            raise

    def _attach(self, fd: int, st: os.stat_result, pos: int) -> bool:
        if stat.S_ISDIR(st.st_mode):
            os.close(fd)
            if not self.noticed:
                self.noticed = True
                self.ctx.warn(f"{self.path}: is a directory; skipped (followed again if it becomes a file)")
            return False
        self.noticed = False
        self.fifo = stat.S_ISFIFO(st.st_mode)
        if self.fifo:
            fd = self._fifo_for_reading(fd)
        self.files.open += 1
        self.fd, self.ident = fd, (st.st_dev, st.st_ino)
        self.pos = self.sent = 0 if self.fifo else pos
        self.head = b"" if self.fifo else os.pread(fd, min(pos, HEAD_SIZE), 0)
        self.tail = b"" if self.fifo else os.pread(fd, min(pos, TAIL_SIZE), pos - min(pos, TAIL_SIZE))
        self.watch.arm(self.path)
        return True

    def _fifo_for_reading(self, fd: int) -> int:
        """A FIFO opened for writing too, so it never reads as ended between two writers."""
        try:
            both = os.open(self.path, os.O_RDWR | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            return fd  # not ours to write: reads end when the last writer leaves; we poll then
        os.close(fd)
        return both

    # -- reading --------------------------------------------------------------------

    def _read_block(self) -> bool:
        assert self.fd is not None
        at = self.pos
        data = os.pread(self.fd, BLOCK_SIZE, at)
        self.pos += len(data)
        if at == len(self.head) < HEAD_SIZE:
            self.head += data[: HEAD_SIZE - at]
        if data:
            self.tail = (self.tail + data)[-TAIL_SIZE:]
        self._deliver(data)
        return bool(data)

    def _read_fifo(self) -> TaskGen:
        """A FIFO has no size, no rotation: read what comes, wait when nothing does."""
        assert self.fd is not None
        try:
            data = os.read(self.fd, BLOCK_SIZE)
        except BlockingIOError:
            yield ReadWait(self.fd)
            return
        if data:
            self._deliver(data)
        else:  # every writer left a FIFO we could not open for writing
            yield Sleep(self.interval)

    def drain_fifo(self) -> None:
        """Read what the FIFO holds now and stop there (--pid: its writer has ended)."""
        assert self.fd is not None
        try:
            while data := os.read(self.fd, BLOCK_SIZE):
                self._deliver(data)
        except BlockingIOError:
            pass

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
        self.sent = self.pos - len(self.held)

    def _send(self, block: bytes) -> None:
        if self.prefix:
            p = self.prefix
            block = p + block[:-1].replace(b"\n", b"\n" + p) + b"\n"
        self.outlet.send(block)

    # -- what happened to the file --------------------------------------------------

    def _head_changed(self) -> bool:
        """Whether the first bytes we read are no longer there (truncated, then rewritten)."""
        assert self.fd is not None
        return bool(self.head) and os.pread(self.fd, len(self.head), 0) != self.head

    def _truncated(self) -> None:
        self.ctx.warn(f"{self.path}: file truncated, reading it from the start")
        copy = find_copy(self.path, self.head, self.tail, self.pos) if self.head and self.tail else None
        if copy is not None:  # copytruncate: the lines we had not read yet are in the copy
            try:
                while data := os.pread(copy, BLOCK_SIZE, self.pos):
                    self.pos += len(data)
                    self._deliver(data)
            finally:
                os.close(copy)
        self._deliver(b"", flush=True)
        self.pos, self.sent, self.head, self.tail = 0, 0, b"", b""

    def _replaced(self) -> bool:
        """Whether the name is gone or now belongs to another file."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (st.st_dev, st.st_ino) != self.ident

    def _let_go(self) -> TaskGen:
        """Read the old file to its end (see the Discussion above), then close it.

        Its end is when the writer has moved on: the new file at the name has
        data, or the old one stayed quiet for :data:`LINGER` seconds.
        """
        quiet_since = self.ctx.clock()
        while not self.outlet.done:
            if self._read_block():
                quiet_since = self.ctx.clock()
                yield Sleep(0)
            elif self._name_has_data() or self.ctx.clock() - quiet_since >= LINGER:
                break
            else:  # the old file's watch wakes us for its writes; the new file is polled
                yield Wait(self.watch.flag, min(self.interval, LINGER_POLL))
        self._deliver(b"", flush=True)  # nothing more will come to it by this name
        self._close()

    def _name_has_data(self) -> bool:
        try:
            return os.stat(self.path).st_size > 0
        except FileNotFoundError:
            return False

    def _pause(self, call: Sleep | Wait) -> TaskGen:
        """Wait; first close the file if too many are open (it is reopened by name)."""
        if self.files.over and self.fd is not None and not self.fifo:
            self._park()
        yield call

    def _park(self) -> None:
        """Close the file, remembering where and which it was, to reopen it by name later."""
        self.held = b""  # read again from ``sent`` when reopened
        self.pos = self.sent
        cursor = self.checkpoint()
        self._close()
        self.parked = cursor

    def _close(self) -> None:
        assert self.fd is not None
        try:
            self.last = self.checkpoint()
        finally:
            os.close(self.fd)
            self.fd = None
            self.files.open -= 1

    def _stop(self) -> None:
        if self.fd is None:
            return
        try:
            if not self.keep_partial:
                self._deliver(b"", flush=True)
        finally:
            self._close()


def _names(
    patterns: list[str], known: dict[str, _Follower], ctx: RunContext, skipped: set[str]
) -> Iterator[str]:
    """Each literal path (followed even before it exists), and what each glob matches now.

    Only names not ``known`` yet. A glob's match that is a directory is
    skipped, with one notice.
    """
    for pattern in patterns:
        if not glob.has_magic(pattern):
            if os.path.abspath(pattern) not in known:
                yield pattern
            continue
        for path in sorted(glob.glob(pattern)):
            if os.path.abspath(path) in known:
                continue
            if not os.path.isdir(path):
                yield path
            elif path not in skipped:
                skipped.add(path)
                ctx.warn(f"{path}: is a directory; skipped")


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
    interval: Annotated[
        float, Opt("", "seconds between two looks at a file inotify cannot watch", metavar="SECONDS")
    ] = 0.1,
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
    rotated one, is read from its start. Changes are seen through inotify
    where it works, else by polling every --interval. With --pid, follow ends
    once that process has ended and every file has been read to its end. With
    --state, each file resumes where the last run's output stopped: offsets are
    saved only for lines the sinks have written, so lines written meanwhile are
    delivered, none lost, none twice.
    """
    return _follow(
        target,
        [os.path.expanduser(p) for p in paths],
        ctx,
        state=State(os.path.expanduser(state)) if state else None,
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
    state: State | None,
    from_start: bool,
    with_filename: bool,
    interval: float,
    start: Start | None = None,
    pid: int | None = None,
    inotify: bool = True,
) -> TaskGen:
    """The follow task: start a follower per new name, tick, checkpoint, close the target last.

    When it is killed, the kernel closes the followers first (they are its
    children), so the checkpoint written here includes their last lines.
    ``inotify=False`` polls as where inotify is missing (for tests).
    """
    outlet = _Outlet(target, ctx.clock)
    watcher = Watcher(inotify=inotify)
    files = _Files()
    followers: dict[str, _Follower] = {}
    skipped: set[str] = set()
    tids: list[int] = []
    running: dict[str, int] = {}  # the followers' tasks
    first_scan = True
    next_scan = ctx.clock()
    try:
        if watcher.active:
            tids.append((yield NewTask(watcher.task(), name="follow: inotify")))
        hangup = hangup_watch(ctx.stdout)
        if hangup is not None:
            tids.append((yield NewTask(hangup, name="follow: stdout")))
        for pattern in patterns:
            if glob.has_magic(pattern):  # a new match is noticed at once
                watcher.watch_dir(os.path.dirname(pattern) or ".")
        while not outlet.done:
            if ctx.clock() >= next_scan:
                for path in _names(patterns, followers, ctx, skipped):
                    key = os.path.abspath(path)
                    followers[key] = follower = _Follower(
                        path,
                        outlet,
                        ctx,
                        watch=watcher.watch(path),
                        files=files,
                        skip_existing=first_scan and not from_start,
                        saved=state.cursors.get(key) if state else None,
                        keep_partial=state is not None,
                        interval=interval,
                        prefix=os.fsencode(path) + b":" if with_filename else b"",
                        start=start,
                    )
                    running[key] = yield NewTask(follower.run(), name=f"follow {path}")
                    tids.append(running[key])
                first_scan = False
                if state is not None:
                    _checkpoint(state, followers, outlet, ctx)
                next_scan = ctx.clock() + RESCAN_EVERY
            if pid is not None and not pid_alive(pid):
                yield from _wind_up(outlet, followers, running)
                break
            outlet.tick()
            if (yield Wait(watcher.new_names, TICK_EVERY)):
                next_scan = min(next_scan, ctx.clock())  # a watched directory has a new name
        for tid in reversed(tids):
            yield KillTask(tid)  # their finally blocks flush what they hold
    finally:
        try:
            _finish(target, state, followers, outlet, ctx)
        finally:
            watcher.close()


def _wind_up(outlet: _Outlet, followers: dict[str, _Follower], running: dict[str, int]) -> TaskGen:
    """--pid: the process has ended; each follower reads to the end of its file, then stops.

    Followers wait for news on their flag, so they are told now rather than
    at their next look. A follower of a FIFO waits on its descriptor instead:
    it is emptied from here, then stopped.
    """
    outlet.ending = True
    for key, follower in followers.items():
        if follower.fifo and follower.fd is not None:
            follower.drain_fifo()
            yield KillTask(running[key])
        else:
            yield Notify(follower.watch.flag)
    for tid in running.values():
        yield WaitTask(tid)


def _checkpoint(state: State, followers: dict[str, _Follower], outlet: _Outlet, ctx: RunContext) -> None:
    """Save where each follower's sent lines end, if the run confirms they are delivered."""
    cursors = _cursors(followers)
    try:
        delivered = ctx.delivery.confirm()
    except BaseException:
        outlet.clean = False  # an output or a branch failed: confirm nothing more
        raise
    if delivered:
        state.save(cursors)


def _cursors(followers: dict[str, _Follower]) -> dict[str, Cursor]:
    found = {}
    for key, follower in followers.items():
        cursor = follower.checkpoint()
        if cursor is not None:
            found[key] = cursor
    return found


def _finish(
    target: Target, state: State | None, followers: dict[str, _Follower], outlet: _Outlet, ctx: RunContext
) -> None:
    """Close the target last; save only what the run confirmed (see cobus.delivery).

    A failed send or barrier (``outlet.clean`` False) means the output is
    broken: nothing more is confirmed. When the run is stopped by a signal the
    barrier still runs first, so SIGTERM and SIGHUP keep everything written
    until then; after the close, what aggregates printed last is confirmed
    too, unless a concurrency stage may have dropped queued batches while
    aborting.
    """
    if state is None:
        target.close()
        return
    cursors = _cursors(followers)
    saved = False
    try:
        if outlet.clean and ctx.delivery.confirm():
            state.save(cursors)
            saved = True
    finally:
        target.close()
    if not saved and outlet.clean and ctx.delivery.confirm() and not (aborting() and ctx.delivery.concurrent):
        state.save(cursors)
