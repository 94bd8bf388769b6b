"""The scheduler: exact event traces on a fake clock, errors, kills, threads, sockets."""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Generator
from typing import Any

import pytest
from _util_live import wait_for, waiting_in

from cobus.errors import SourceError, StageError
from cobus.kernel import (
    Flag,
    GetTid,
    Kernel,
    KillTask,
    NewTask,
    Notify,
    ReadWait,
    Sleep,
    SysCall,
    TaskGen,
    Wait,
    WaitTask,
    WriteWait,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FastForward(selectors.DefaultSelector):
    """A real selector that, when nothing is ready, jumps the fake clock by the timeout."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.calls = 0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        self.calls += 1
        events: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        if not events:
            assert timeout is not None, "the kernel would block forever"
            self.clock.now += timeout
        return events


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def kernel(clock: FakeClock) -> Generator[Kernel, None, None]:
    with Kernel(clock=clock, selector=FastForward(clock)) as k:
        yield k


Trace = list[Any]


def ticker(trace: Trace, clock: FakeClock, name: str, period: float, n: int) -> TaskGen:
    for i in range(n):
        trace.append((clock(), name, i))
        yield Sleep(period)
    return name


# -- scheduling order -----------------------------------------------------------


def test_sleepers_interleave_by_deadline(kernel: Kernel, clock: FakeClock) -> None:
    trace: Trace = []
    kernel.spawn(ticker(trace, clock, "a", 1.0, 3))
    kernel.spawn(ticker(trace, clock, "b", 1.5, 3))
    kernel.run()
    assert trace == [
        (0.0, "a", 0),
        (0.0, "b", 0),
        (1.0, "a", 1),
        (1.5, "b", 1),
        (2.0, "a", 2),
        (3.0, "b", 2),
    ]
    assert clock.now == 4.5  # b's last sleep: run() returns when no task remains


def test_sleep_zero_is_round_robin(kernel: Kernel) -> None:
    trace: list[str] = []

    def spinner(name: str) -> TaskGen:
        for i in range(3):
            trace.append(f"{name}{i}")
            yield Sleep(0)

    kernel.spawn(spinner("a"))
    kernel.spawn(spinner("b"))
    kernel.run()
    assert trace == ["a0", "b0", "a1", "b1", "a2", "b2"]


def test_new_task_wait_task_and_get_tid(kernel: Kernel, clock: FakeClock) -> None:
    trace: Trace = []

    def child(n: int) -> TaskGen:
        me = yield GetTid()
        trace.append((clock(), "child", me))
        yield Sleep(n)
        return n * 10

    def parent() -> TaskGen:
        me = yield GetTid()
        tid = yield NewTask(child(2), name="child")
        trace.append((clock(), "parent", me, "spawned", tid))
        result = yield WaitTask(tid)
        trace.append((clock(), "parent", "got", result))

    kernel.spawn(parent())
    kernel.run()
    assert trace == [
        (0.0, "parent", 1, "spawned", 2),
        (0.0, "child", 2),
        (2.0, "parent", "got", 20),
    ]


def test_wait_for_a_finished_task_collects_its_result_once(kernel: Kernel) -> None:
    trace: Trace = []

    def quick() -> TaskGen:
        return "done"
        yield  # pragma: no cover

    def parent() -> TaskGen:
        tid = yield NewTask(quick())
        yield Sleep(1)  # quick has ended by now
        trace.append(("first", (yield WaitTask(tid))))
        try:
            yield WaitTask(tid)
        except LookupError as exc:
            trace.append(("second", str(exc)))

    kernel.spawn(parent())
    kernel.run()
    assert trace == [("first", "done"), ("second", f"no task {2} to wait for")]


def test_sub_coroutines_are_called_with_yield_from(kernel: Kernel, clock: FakeClock) -> None:
    def nap_twice(seconds: float) -> Generator[SysCall, Any, float]:
        yield Sleep(seconds)
        yield Sleep(seconds)
        return clock()

    def task(out: list[float]) -> TaskGen:
        out.append((yield from nap_twice(0.5)))

    out: list[float] = []
    kernel.spawn(task(out))
    kernel.run()
    assert out == [1.0]


# -- errors of system calls go back into the caller ----------------------------


def test_system_call_errors_are_thrown_into_the_caller(kernel: Kernel) -> None:
    caught: list[str] = []
    closed = socket.socket()
    closed.close()

    def task() -> TaskGen:
        for call in (WaitTask(99), ReadWait(closed), "not a call"):
            try:
                yield call  # type: ignore[misc]
            except (LookupError, ValueError, TypeError) as exc:
                caught.append(type(exc).__name__)
        me = yield GetTid()
        try:
            yield WaitTask(me)
        except RuntimeError as exc:
            caught.append(str(exc))

    kernel.spawn(task())
    kernel.run()
    assert caught == ["LookupError", "ValueError", "TypeError", "a task cannot wait for itself"]


def test_two_readers_of_one_socket_is_an_error_for_the_second(kernel: Kernel) -> None:
    a, b = socket.socketpair()
    trace: list[str] = []

    def reader(name: str) -> TaskGen:
        try:
            yield ReadWait(a)
            trace.append(f"{name} woke: {a.recv(10)!r}")
        except RuntimeError as exc:
            trace.append(f"{name} refused: {exc}")
            b.send(b"x")

    kernel.spawn(reader("first"), name="first")
    kernel.spawn(reader("second"))
    kernel.run()
    expected = [f"second refused: task first already waits on {a!r}", "first woke: b'x'"]
    a.close()
    b.close()
    assert trace == expected


# -- the error policy ------------------------------------------------------------


def sleeper(trace: list[str], name: str) -> TaskGen:
    try:
        yield Sleep(100)
    finally:
        trace.append(f"{name} closed")


def failing(exc: Exception) -> TaskGen:
    yield Sleep(1)
    raise exc


def test_a_failing_task_closes_the_others_and_ends_the_run(kernel: Kernel) -> None:
    trace: list[str] = []
    kernel.spawn(sleeper(trace, "s1"))
    kernel.spawn(failing(ValueError("bad value")), name="boom")
    kernel.spawn(sleeper(trace, "s2"))
    with pytest.raises(StageError) as info:
        kernel.run()
    assert str(info.value) == "task boom: ValueError: bad value"
    assert isinstance(info.value.__cause__, ValueError)
    assert trace == ["s2 closed", "s1 closed"]  # newest first


def test_a_cobus_error_ends_the_run_unchanged(kernel: Kernel) -> None:
    error = SourceError("app.log: Permission denied")
    kernel.spawn(failing(error))
    with pytest.raises(SourceError) as info:
        kernel.run()
    assert info.value is error


def test_a_may_fail_error_goes_to_its_waiter_only(kernel: Kernel) -> None:
    trace: list[str] = []

    def parent() -> TaskGen:
        tid = yield NewTask(failing(OSError("gone")), may_fail=True)
        try:
            yield WaitTask(tid)
        except OSError as exc:
            trace.append(f"caught {exc}")
        trace.append("parent goes on")

    kernel.spawn(parent())
    kernel.run()
    assert trace == ["caught gone", "parent goes on"]


def test_keyboard_interrupt_closes_every_task_and_goes_up(kernel: Kernel) -> None:
    trace: list[str] = []

    def interrupted() -> TaskGen:
        yield Sleep(1)
        raise KeyboardInterrupt

    kernel.spawn(sleeper(trace, "s1"))
    kernel.spawn(interrupted())
    with pytest.raises(KeyboardInterrupt):
        kernel.run()
    assert trace == ["s1 closed"]


def test_an_error_while_closing_is_noted_on_the_first_error(kernel: Kernel) -> None:
    def bad_finally() -> TaskGen:
        try:
            yield Sleep(100)
        finally:
            raise OSError("disk full")

    kernel.spawn(bad_finally(), name="flusher")
    kernel.spawn(failing(SourceError("first")))
    with pytest.raises(SourceError) as info:
        kernel.run()
    assert info.value.__notes__ == ["while closing task flusher: OSError('disk full')"]


# -- killing -----------------------------------------------------------------------


def test_kill_task_closes_it_and_its_children_newest_first(kernel: Kernel, clock: FakeClock) -> None:
    trace: Trace = []

    def parent() -> TaskGen:
        try:
            yield NewTask(sleeper(trace, "child1"))
            yield NewTask(sleeper(trace, "child2"))
            yield Sleep(100)
        finally:
            trace.append("parent closed")

    def killer(tid: int) -> TaskGen:
        waiter = yield NewTask(waiting_for(tid))
        yield Sleep(5)
        trace.append(("kill", (yield KillTask(tid))))
        trace.append(("waiter", (yield WaitTask(waiter))))
        trace.append(("kill again", (yield KillTask(tid)), clock()))

    def waiting_for(tid: int) -> TaskGen:
        return (yield WaitTask(tid))

    tid = kernel.spawn(parent())
    kernel.spawn(killer(tid))
    kernel.run()
    assert trace == [
        "child2 closed",
        "child1 closed",
        "parent closed",
        ("kill", True),
        ("waiter", None),  # a killed task returns None
        ("kill again", False, 5.0),
    ]


def test_a_task_may_kill_its_own_parent(kernel: Kernel) -> None:
    trace: list[str] = []

    def child() -> TaskGen:
        try:
            parent_tid = yield GetTid()
            yield KillTask(parent_tid - 1)
            trace.append("not reached")
        finally:
            trace.append("child closed")

    def parent() -> TaskGen:
        try:
            yield NewTask(child())
            yield Sleep(100)
        finally:
            trace.append("parent closed")

    kernel.spawn(parent())
    kernel.run()
    assert trace == ["child closed", "parent closed"]


def test_detached_results_are_not_kept(kernel: Kernel) -> None:
    errors: list[str] = []

    def parent() -> TaskGen:
        tid = yield NewTask(ticker([], FakeClock(), "x", 1, 1), detached=True)
        yield Sleep(2)
        try:
            yield WaitTask(tid)
        except LookupError as exc:
            errors.append(str(exc))

    kernel.spawn(parent())
    kernel.run()
    assert errors == ["no task 2 to wait for"]


def test_close_closes_tasks_that_never_ran() -> None:
    trace: list[str] = []
    k = Kernel()
    k.spawn(sleeper(trace, "s"))
    k.close()
    k.close()
    assert trace == []  # a generator that never started has no finally to run
    with pytest.raises(RuntimeError):
        k.run()


# -- I/O, idling and other threads ------------------------------------------------


def test_read_wait_and_write_wait_trace(kernel: Kernel) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    trace: list[str] = []

    def reader() -> TaskGen:
        for _ in range(2):
            trace.append("reader waits")
            yield ReadWait(a)
            trace.append(f"reader got {a.recv(100)!r}")

    def writer() -> TaskGen:
        for word in (b"one", b"two"):
            yield WriteWait(b)
            trace.append(f"writer sends {word!r}")
            b.send(word)
            yield Sleep(1)

    kernel.spawn(reader())
    kernel.spawn(writer())
    kernel.run()
    a.close()
    b.close()
    assert trace == [
        "reader waits",
        "writer sends b'one'",
        "reader got b'one'",
        "reader waits",
        "writer sends b'two'",
        "reader got b'two'",
    ]


def test_an_idle_kernel_blocks_until_the_next_timer() -> None:
    with Kernel() as k:
        k.spawn(ticker([], FakeClock(), "t", 0.3, 2))
        cpu, wall = time.process_time(), time.monotonic()
        k.run()
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    assert wall >= 0.3
    assert cpu < 0.1


def test_fast_forward_selector_counts_one_select_per_timer(kernel: Kernel, clock: FakeClock) -> None:
    selector = kernel._selector
    assert isinstance(selector, FastForward)
    kernel.spawn(ticker([], clock, "t", 10, 3))
    kernel.run()
    assert selector.calls <= 4  # one wait per sleep, never a busy loop
    assert clock.now == 30.0


def test_another_thread_wakes_a_blocked_kernel() -> None:
    a, b = socket.socketpair()
    trace: list[str] = []

    running = threading.Event()

    def blocked() -> TaskGen:
        try:
            running.set()
            yield ReadWait(a)  # nothing will ever arrive
        finally:
            trace.append("closed")

    with Kernel() as k:
        tid = k.spawn(blocked())
        runner = threading.Thread(target=k.run)
        started = time.monotonic()
        runner.start()
        # The task waits, and the kernel is in the select that follows (it blocks there).
        wait_for(
            lambda: running.is_set() and waiting_in(runner, "select", "selectors.py"),
            what="the kernel to block",
        )
        k.call_soon_threadsafe(lambda: k.kill(tid))
        runner.join(10)
        assert not runner.is_alive()
        assert time.monotonic() - started < 5
    a.close()
    b.close()
    assert trace == ["closed"]


def test_a_failing_callback_ends_the_run() -> None:
    def boom() -> None:
        raise ValueError("from a thread")

    with Kernel() as k:
        k.spawn(ticker([], FakeClock(), "t", 30, 1))
        k.call_soon_threadsafe(boom)
        with pytest.raises(StageError, match=r"callback .*boom.*: ValueError: from a thread"):
            k.run()


def test_many_descriptors_beyond_select_limit() -> None:
    pairs = [socket.socketpair() for _ in range(600)]  # 1200 descriptors > FD_SETSIZE
    woke: list[int] = []

    def reader(i: int, sock: socket.socket) -> TaskGen:
        yield ReadWait(sock)
        woke.append(i)

    try:
        with Kernel() as k:
            for i, (a, _) in enumerate(pairs):
                k.spawn(reader(i, a))
            for _, b in pairs:
                b.send(b"!")
            k.run()
    finally:
        for a, b in pairs:
            a.close()
            b.close()
    assert sorted(woke) == list(range(600))


# -- the capstone: an echo server for 200 concurrent clients -------------------


def send_all(sock: socket.socket, data: bytes) -> TaskGen:
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view) :]
        except BlockingIOError:
            pass
        if view:
            yield WriteWait(sock)


def echo_server(listener: socket.socket, clients: int) -> TaskGen:
    accepted = 0
    while accepted < clients:
        yield ReadWait(listener)
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            continue
        accepted += 1
        conn.setblocking(False)
        yield NewTask(echo_handler(conn), name=f"echo {accepted}", detached=True)


def echo_handler(conn: socket.socket) -> TaskGen:
    with conn:
        while True:
            yield ReadWait(conn)
            data = conn.recv(65536)
            if not data:
                return
            yield from send_all(conn, data)


def echo_client(port: int, i: int, messages: int, done: list[int]) -> TaskGen:
    with socket.socket() as sock:
        sock.setblocking(False)
        try:
            sock.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        yield WriteWait(sock)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        for j in range(messages):
            message = f"client {i} message {j}\n".encode()
            yield from send_all(sock, message)
            echoed = b""
            while len(echoed) < len(message):
                yield ReadWait(sock)
                chunk = sock.recv(65536)
                assert chunk, "server hung up"
                echoed += chunk
            assert echoed == message
    done.append(i)


def _give_up() -> None:
    raise RuntimeError("the echo test timed out")


def test_echo_server_200_clients_1000_messages_each() -> None:
    clients, messages = 200, 1000
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(clients)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    done: list[int] = []
    errors: list[BaseException] = []

    server = Kernel()
    server.spawn(echo_server(listener, clients), name="echo server")
    client_kernel = Kernel()
    for i in range(clients):
        client_kernel.spawn(echo_client(port, i, messages, done), name=f"client {i}")

    def run(k: Kernel) -> None:
        try:
            k.run()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in (server, client_kernel)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: not any(t.is_alive() for t in threads), timeout=300, what="the echo run")
    finally:
        for k in (server, client_kernel):
            if any(t.is_alive() for t in threads):
                k.call_soon_threadsafe(_give_up)
        for t in threads:
            t.join(10)
        server.close()
        client_kernel.close()
        listener.close()
    assert errors == []
    assert sorted(done) == list(range(clients))


# -- flags: Wait and Notify ---------------------------------------------------------


def test_notify_wakes_a_waiter_and_a_timeout_says_false(kernel: Kernel, clock: FakeClock) -> None:
    trace: Trace = []
    flag = Flag()

    def waiter() -> TaskGen:
        woken = yield Wait(flag, timeout=5.0)
        trace.append((clock(), "woken", woken))
        woken = yield Wait(flag, timeout=2.0)
        trace.append((clock(), "timed out", not woken))
        woken = yield Wait(flag)
        trace.append((clock(), "kept", woken))

    def notifier() -> TaskGen:
        yield Sleep(1.0)
        yield Notify(flag)
        yield Sleep(10.0)
        yield Notify(flag)  # nobody waits: kept for the next Wait

    kernel.spawn(waiter())
    kernel.spawn(notifier())
    kernel.run()
    assert trace == [(1.0, "woken", True), (3.0, "timed out", True), (11.0, "kept", True)]


def test_a_killed_waiter_leaves_its_flag(kernel: Kernel) -> None:
    flag = Flag()

    def waiter() -> TaskGen:
        yield Wait(flag, timeout=100.0)

    def main() -> TaskGen:
        tid = yield NewTask(waiter())
        yield Sleep(0)
        assert flag.waiters
        yield KillTask(tid)
        assert not flag.waiters
        yield Notify(flag)

    kernel.spawn(main())
    kernel.run()
    assert flag.pending
