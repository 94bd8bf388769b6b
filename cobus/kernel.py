"""The cooperative scheduler: tasks are generators, system calls are small objects.

A task is a generator that yields system calls (:class:`Sleep`, :class:`ReadWait`,
:class:`WriteWait`, :class:`NewTask`, :class:`WaitTask`, :class:`KillTask`,
:class:`GetTid`, :class:`Wait` and :class:`Notify` on a :class:`Flag`); the
:class:`Kernel` performs each call and sends its value back, or throws its
error into the task. A task calls a sub-coroutine with ``yield from``, so the
kernel only ever sees system calls. One kernel runs in one thread; other
threads reach it only through :meth:`Kernel.call_soon_threadsafe`. Nothing
here knows stages or files.

Discussion: task lifetime. A task's result waits, like a Unix zombie, until a
``WaitTask`` collects it, unless the task was started ``detached`` (a listener
starts one task per client and never waits for them, so keeping every result
would leak over weeks). Killing a task first kills the tasks it started, newest
first, and so does the shutdown after an error or Ctrl-C: a parent's ``finally``
block (closing the target its children share) always runs after theirs.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import selectors
import time
from collections import deque
from collections.abc import Callable, Generator
from typing import Any, Protocol, TypeAlias

from .errors import CobusError, TaskError

__all__ = [
    "FileLike",
    "Flag",
    "GetTid",
    "Kernel",
    "KillTask",
    "NewTask",
    "Notify",
    "ReadWait",
    "Sleep",
    "SysCall",
    "TaskGen",
    "Wait",
    "WaitTask",
    "WriteWait",
]


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


FileLike: TypeAlias = int | _HasFileno


class _Call:
    """What every system call is: an immutable record, shown and compared by its fields.

    Discussion: why not frozen dataclasses. They say the same in fewer lines,
    but making ten of them (each one compiles its ``__init__``, ``__eq__``,
    ``__repr__``, ``__hash__`` and ``__setattr__`` and, slotted, builds its
    class twice) was a tenth of cobus's start-up, paid by every run, even
    ``cat | head | print``. These classes behave as those did: equal when of
    one class with equal fields, hashable, ``Sleep(seconds=0.5)`` as a repr,
    positional in a ``match``, and frozen (assigning a field raises
    AttributeError).
    """

    __slots__: tuple[str, ...] = ()  # a subclass's: its fields, in order

    def __init_subclass__(cls) -> None:
        type.__setattr__(cls, "__match_args__", cls.__slots__)  # as a dataclass: Sleep(s) in a case

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__qualname__}({fields})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")


_set = object.__setattr__  # how a system call's __init__ fills its frozen fields


class Sleep(_Call):
    """Resume after ``seconds``; ``Sleep(0)`` lets every other ready task run first."""

    __slots__ = ("seconds",)
    seconds: float

    def __init__(self, seconds: float) -> None:
        _set(self, "seconds", seconds)


class ReadWait(_Call):
    """Resume when ``fileobj`` (a socket, pipe or descriptor) is readable."""

    __slots__ = ("fileobj",)
    fileobj: FileLike

    def __init__(self, fileobj: FileLike) -> None:
        _set(self, "fileobj", fileobj)


class WriteWait(_Call):
    """Resume when ``fileobj`` is writable."""

    __slots__ = ("fileobj",)
    fileobj: FileLike

    def __init__(self, fileobj: FileLike) -> None:
        _set(self, "fileobj", fileobj)


class NewTask(_Call):
    """Start ``gen`` as a child task; the value is its task id.

    ``may_fail``: its error goes to whoever waits for it instead of ending the
    run. ``detached``: nobody will wait for it, so its result is dropped.
    """

    __slots__ = ("gen", "name", "may_fail", "detached")  # noqa: RUF023 - the fields' order
    gen: TaskGen
    name: str
    may_fail: bool
    detached: bool

    def __init__(self, gen: TaskGen, name: str = "", may_fail: bool = False, detached: bool = False) -> None:
        _set(self, "gen", gen)
        _set(self, "name", name)
        _set(self, "may_fail", may_fail)
        _set(self, "detached", detached)


class WaitTask(_Call):
    """Resume when task ``tid`` has ended; the value is its return value.

    A killed task returns None; a ``may_fail`` task's error is thrown in.
    """

    __slots__ = ("tid",)
    tid: int

    def __init__(self, tid: int) -> None:
        _set(self, "tid", tid)


class KillTask(_Call):
    """Close task ``tid`` and the tasks it started; the value is False if it had ended."""

    __slots__ = ("tid",)
    tid: int

    def __init__(self, tid: int) -> None:
        _set(self, "tid", tid)


class GetTid(_Call):
    """The value is the calling task's id."""

    __slots__ = ()


class Flag:
    """Something tasks wait for with :class:`Wait` and raise with :class:`Notify`.

    A notification that finds nobody waiting is kept: the next ``Wait``
    returns at once (so a task that was busy when its event came misses
    nothing). Touched only in the kernel's thread.
    """

    __slots__ = ("pending", "waiters")

    def __init__(self) -> None:
        self.pending = False
        self.waiters: list[_Task] = []


class Wait(_Call):
    """Resume when ``flag`` is notified (value True) or after ``timeout`` seconds (False)."""

    __slots__ = ("flag", "timeout")  # the fields' order (repr, match)
    flag: Flag
    timeout: float | None

    def __init__(self, flag: Flag, timeout: float | None = None) -> None:
        _set(self, "flag", flag)
        _set(self, "timeout", timeout)


class Notify(_Call):
    """Wake every task waiting on ``flag``, or keep the notification for the next ``Wait``."""

    __slots__ = ("flag",)
    flag: Flag

    def __init__(self, flag: Flag) -> None:
        _set(self, "flag", flag)


SysCall: TypeAlias = Sleep | ReadWait | WriteWait | NewTask | WaitTask | KillTask | GetTid | Wait | Notify
TaskGen: TypeAlias = Generator[SysCall, Any, Any]

_READ, _WRITE = 0, 1  # slots in a selector key's waiters list
_EVENTS = ((_READ, selectors.EVENT_READ), (_WRITE, selectors.EVENT_WRITE))


class _Task:
    """The kernel's record of one task: where it is parked and who waits for it."""

    __slots__ = (
        "alive",
        "children",
        "detached",
        "flag",
        "gen",
        "io",
        "joining",
        "may_fail",
        "name",
        "parent",
        "tid",
        "waiters",
        "wake",
    )

    def __init__(
        self, tid: int, gen: TaskGen, name: str, may_fail: bool, detached: bool, parent: _Task | None
    ) -> None:
        self.tid = tid
        self.gen = gen
        self.name = name
        self.may_fail = may_fail
        self.detached = detached
        self.parent = parent
        self.alive = True
        self.children: dict[int, _Task] = {}
        self.waiters: list[_Task] = []
        self.wake = -1  # sequence number of the timer that may wake it; -1: none
        self.io: tuple[FileLike, int] | None = None  # (file object, _READ or _WRITE)
        self.joining: _Task | None = None  # the task it waits for
        self.flag: Flag | None = None  # the flag it waits on


class _Fatal(Exception):
    """Carries the error that ends the run out of the kernel's inner calls."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


def _user_error(name: str, exc: Exception) -> Exception:
    """The error a run ends with: a CobusError as is, anything else named after its task."""
    if isinstance(exc, CobusError):
        return exc
    error = TaskError(f"task {name}: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


class Kernel:
    """Runs tasks until none remains.

    >>> def greet(name):
    ...     yield Sleep(0.01)
    ...     return f"hello {name}"
    >>> def main(out):
    ...     tid = yield NewTask(greet("world"))
    ...     out.append((yield WaitTask(tid)))
    >>> out = []
    >>> with Kernel() as kernel:
    ...     tid = kernel.spawn(main(out), name="main")
    ...     kernel.run()
    >>> out
    ['hello world']

    The kernel owns ``selector`` (closed by :meth:`close`); ``clock`` drives the
    timers and must agree with the selector's timeouts (tests pass fakes).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        selector: selectors.BaseSelector | None = None,
    ) -> None:
        self._clock = clock
        self._selector = selector if selector is not None else selectors.DefaultSelector()
        self._tasks: dict[int, _Task] = {}
        self._zombies: dict[int, tuple[Any, Exception | None]] = {}
        self._ready: deque[tuple[_Task, Any, BaseException | None]] = deque()
        self._timers: list[tuple[float, int, _Task]] = []
        self._stale: list[FileLike] = []  # registrations that may have lost their waiters
        self._seq = itertools.count()
        self._tids = itertools.count(1)
        self._callbacks: deque[Callable[[], object]] = deque()
        # A pipe, not a socketpair: the wake-up needs no socket module (a quicker start).
        # As file objects, a write after close fails on the object, never on a reused fd.
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        self._wake_r, self._wake_w = open(r, "rb", buffering=0), open(w, "wb", buffering=0)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._closed = False
        self._handlers: dict[type[Any], Callable[[_Task, Any], None]] = {
            Sleep: self._sys_sleep,
            ReadWait: self._sys_read_wait,
            WriteWait: self._sys_write_wait,
            NewTask: self._sys_new_task,
            WaitTask: self._sys_wait_task,
            KillTask: self._sys_kill_task,
            GetTid: self._sys_get_tid,
            Wait: self._sys_wait,
            Notify: self._sys_notify,
        }

    # -- public API -------------------------------------------------------------

    def spawn(self, gen: TaskGen, *, name: str = "", may_fail: bool = False, detached: bool = False) -> int:
        """Start ``gen`` as a top-level task and return its id (it runs in :meth:`run`)."""
        return self._start(gen, name, may_fail, detached, parent=None).tid

    def run(self) -> None:
        """Run until no task remains.

        If a task not marked ``may_fail`` raises, every other task is closed and
        the error is raised here: a CobusError as is, any other exception as a
        TaskError naming the task. KeyboardInterrupt and SystemExit close every
        task and go on up.
        """
        if self._closed:
            raise RuntimeError("the kernel is closed")
        failure: Exception | None = None
        try:
            while self._tasks:
                # Phase 1: wait for I/O and for other threads, at most until the next timer.
                self._wait_io(self._timeout())
                # Phase 2: fire the timers that are due.
                self._fire_timers()
                # Phase 3: run each task that was ready, up to its next system call.
                self._run_ready()
        except _Fatal as fatal:
            failure = fatal.error
        except BaseException:
            self._abort(None)
            raise
        if failure is not None:
            self._abort(failure)
            raise failure

    def kill(self, tid: int) -> bool:
        """Close task ``tid`` and the tasks it started, newest first; False if it had ended.

        For a task, this is the ``KillTask`` system call; from another thread,
        ``call_soon_threadsafe(lambda: kernel.kill(tid))``. If a task's
        ``finally`` block fails, its error is raised as :meth:`run` would.
        """
        try:
            return self._kill(tid)
        except _Fatal as fatal:
            raise fatal.error from None

    def call_soon_threadsafe(self, fn: Callable[[], object]) -> None:
        """Run ``fn()`` in the kernel's thread soon; the one way in from other threads.

        An exception from ``fn`` ends the run like the error of a task.
        """
        if self._closed:
            raise RuntimeError("the kernel is closed")
        self._callbacks.append(fn)
        with contextlib.suppress(BlockingIOError):  # buffer full: a wake-up is pending anyway
            self._wake_w.write(b"\0")  # None, not an error, when the pipe is full

    def close(self) -> None:
        """Close every remaining task, then the selector; safe to call twice."""
        if self._closed:
            return
        self._abort(None)
        self._closed = True
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the three phases -------------------------------------------------------

    def _timeout(self) -> float | None:
        if self._ready or self._callbacks:
            return 0.0
        timers = self._timers
        while timers and timers[0][2].wake != timers[0][1]:
            heapq.heappop(timers)  # the sleeper was killed: do not wake up for it
        return max(0.0, timers[0][0] - self._clock()) if timers else None

    def _wait_io(self, timeout: float | None) -> None:
        self._drop_stale()
        for key, mask in self._selector.select(timeout):
            waiters = key.data
            if waiters is None:
                self._run_callbacks()
                continue
            for slot, event in _EVENTS:
                task = waiters[slot]
                if mask & event and task is not None:
                    waiters[slot] = None
                    task.io = None
                    self._schedule(task)
            self._stale.append(key.fileobj)

    def _fire_timers(self) -> None:
        timers = self._timers
        now = self._clock()
        while timers and timers[0][0] <= now:
            _, seq, task = heapq.heappop(timers)
            if task.wake == seq:
                task.wake = -1
                if task.flag is not None:  # a Wait that timed out
                    task.flag.waiters.remove(task)
                    task.flag = None
                    self._schedule(task, False)
                else:
                    self._schedule(task)

    def _run_ready(self) -> None:
        # Only the tasks ready now: one that keeps yielding Sleep(0) cannot starve I/O.
        for _ in range(len(self._ready)):
            task, value, error = self._ready.popleft()
            if task.alive:
                self._step(task, value, error)

    def _run_callbacks(self) -> None:
        while self._wake_r.read(4096):  # None once the pipe is empty
            pass
        for _ in range(len(self._callbacks)):
            fn = self._callbacks.popleft()
            try:
                fn()
            except _Fatal:
                raise
            except Exception as exc:
                raise _Fatal(_user_error(f"callback {fn!r}", exc)) from exc

    # -- stepping tasks ---------------------------------------------------------

    def _start(self, gen: TaskGen, name: str, may_fail: bool, detached: bool, parent: _Task | None) -> _Task:
        if not isinstance(gen, Generator):
            raise TypeError(f"a task is a generator, not {type(gen).__name__}")
        tid = next(self._tids)
        task = _Task(tid, gen, name or getattr(gen, "__qualname__", f"#{tid}"), may_fail, detached, parent)
        self._tasks[tid] = task
        if parent is not None:
            parent.children[tid] = task
        self._schedule(task)
        return task

    def _schedule(self, task: _Task, value: Any = None, error: BaseException | None = None) -> None:
        self._ready.append((task, value, error))

    def _step(self, task: _Task, value: Any, error: BaseException | None) -> None:
        try:
            call = task.gen.send(value) if error is None else task.gen.throw(error)
        except StopIteration as stop:
            self._end(task, stop.value, None)
        except Exception as exc:
            self._end(task, None, exc)
        else:
            handler = self._handlers.get(type(call))
            try:
                if handler is None:
                    raise TypeError(f"a task yields system calls, not {call!r}")
                handler(task, call)
            except _Fatal:
                raise
            except Exception as exc:  # the call failed: the caller gets the error
                self._schedule(task, None, exc)

    def _end(self, task: _Task, result: Any, error: Exception | None) -> None:
        task.alive = False
        del self._tasks[task.tid]
        if task.parent is not None:
            task.parent.children.pop(task.tid, None)
        for child in task.children.values():
            child.parent = None
        if error is not None and not task.may_fail:
            raise _Fatal(_user_error(task.name, error))
        for waiter in task.waiters:
            waiter.joining = None
            self._schedule(waiter, result, error)
        if not task.waiters and not task.detached:
            self._zombies[task.tid] = (result, error)

    def _kill(self, tid: int) -> bool:
        task = self._tasks.get(tid)
        if task is None:
            return False
        for victim in sorted(self._family(task), key=lambda t: t.tid, reverse=True):
            if victim.alive:
                self._close_task(victim)
        return True

    def _close_task(self, task: _Task) -> None:
        self._unpark(task)
        try:
            task.gen.close()
        except Exception as exc:  # its finally block failed
            self._end(task, None, exc)
        else:
            self._end(task, None, None)

    def _family(self, task: _Task) -> list[_Task]:
        found = [task]
        for child in task.children.values():
            found.extend(self._family(child))
        return found

    def _unpark(self, task: _Task) -> None:
        """Forget whatever ``task`` waits for, so nothing wakes a closed task."""
        task.wake = -1
        if task.io is not None:
            fileobj, slot = task.io
            self._selector.get_key(fileobj).data[slot] = None
            self._stale.append(fileobj)
            task.io = None
        if task.joining is not None:
            task.joining.waiters.remove(task)
            task.joining = None
        if task.flag is not None:
            task.flag.waiters.remove(task)
            task.flag = None

    def _abort(self, failure: Exception | None) -> None:
        """Close every task, newest first; later errors become notes on ``failure``."""
        for task in sorted(self._tasks.values(), key=lambda t: t.tid, reverse=True):
            self._unpark(task)
            task.alive = False
            try:
                task.gen.close()
            except Exception as exc:
                if failure is not None:
                    failure.add_note(f"while closing task {task.name}: {exc!r}")
        self._tasks.clear()
        self._ready.clear()
        self._timers.clear()
        self._drop_stale()

    # -- system calls -----------------------------------------------------------

    def _sys_sleep(self, task: _Task, call: Sleep) -> None:
        if call.seconds <= 0:
            self._schedule(task)
            return
        task.wake = next(self._seq)
        heapq.heappush(self._timers, (self._clock() + call.seconds, task.wake, task))

    def _sys_read_wait(self, task: _Task, call: ReadWait) -> None:
        self._park_io(task, call.fileobj, _READ)

    def _sys_write_wait(self, task: _Task, call: WriteWait) -> None:
        self._park_io(task, call.fileobj, _WRITE)

    def _sys_new_task(self, task: _Task, call: NewTask) -> None:
        child = self._start(call.gen, call.name, call.may_fail, call.detached, parent=task)
        self._schedule(task, child.tid)

    def _sys_wait_task(self, task: _Task, call: WaitTask) -> None:
        if call.tid in self._zombies:
            result, error = self._zombies.pop(call.tid)
            self._schedule(task, result, error)
            return
        other = self._tasks.get(call.tid)
        if other is None:
            raise LookupError(f"no task {call.tid} to wait for")
        if other is task:
            raise RuntimeError("a task cannot wait for itself")
        other.waiters.append(task)
        task.joining = other

    def _sys_kill_task(self, task: _Task, call: KillTask) -> None:
        self._schedule(task, self._kill(call.tid))  # a task that kills itself is not resumed

    def _sys_get_tid(self, task: _Task, call: GetTid) -> None:
        self._schedule(task, task.tid)

    def _sys_wait(self, task: _Task, call: Wait) -> None:
        flag = call.flag
        if flag.pending:
            flag.pending = False
            self._schedule(task, True)
            return
        flag.waiters.append(task)
        task.flag = flag
        if call.timeout is not None:
            task.wake = next(self._seq)
            heapq.heappush(self._timers, (self._clock() + max(0.0, call.timeout), task.wake, task))

    def _sys_notify(self, task: _Task, call: Notify) -> None:
        flag = call.flag
        if not flag.waiters:
            flag.pending = True
        for waiter in flag.waiters:
            waiter.flag = None
            waiter.wake = -1
            self._schedule(waiter, True)
        flag.waiters.clear()
        self._schedule(task)

    # -- selector bookkeeping ---------------------------------------------------

    def _park_io(self, task: _Task, fileobj: FileLike, slot: int) -> None:
        event = _EVENTS[slot][1]
        selector = self._selector
        try:
            key: selectors.SelectorKey | None = selector.get_key(fileobj)
        except KeyError:
            key = None
        if key is not None and key.fileobj is not fileobj:
            # A closed object whose descriptor was reused before _drop_stale ran.
            if any(key.data):
                raise RuntimeError(f"descriptor {key.fd} was closed while a task waited on it")
            selector.unregister(key.fileobj)
            key = None
        if key is None:
            waiters: list[_Task | None] = [None, None]
            selector.register(fileobj, event, waiters)
        else:
            waiters = key.data
            other = waiters[slot]
            if other is not None:
                raise RuntimeError(f"task {other.name} already waits on {fileobj!r}")
            if not key.events & event:
                selector.modify(fileobj, key.events | event, waiters)
        waiters[slot] = task
        task.io = (fileobj, slot)

    def _drop_stale(self) -> None:
        """Unregister events nobody waits for any more.

        Done lazily, just before the selector is asked: a task that is woken and
        waits on the same socket again costs no system call.
        """
        selector = self._selector
        for fileobj in self._stale:
            try:
                key = selector.get_key(fileobj)
            except (KeyError, ValueError):
                continue
            if key.fileobj is not fileobj:
                continue
            wanted = sum(event for slot, event in _EVENTS if key.data[slot] is not None)
            if not wanted:
                selector.unregister(fileobj)
            elif wanted != key.events:
                try:
                    selector.modify(fileobj, wanted, key.data)
                except (OSError, ValueError) as exc:  # closed under a waiting task
                    self._fail_waiters(fileobj, key.data, exc)
        self._stale.clear()

    def _fail_waiters(self, fileobj: FileLike, waiters: list[_Task | None], exc: Exception) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(fileobj)
        for task in waiters:
            if task is not None:
                task.io = None
                self._schedule(task, None, exc)
