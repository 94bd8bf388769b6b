"""listen: real sockets on 127.0.0.1, the source driven on a kernel in a thread."""

from __future__ import annotations

import functools
import os
import re
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _util_live import Ctx, KernelThread, free_port, read_by_peer, wait_for, watches_file
from util import collect

from cobus.core import Done, Target, coroutine, fan_in
from cobus.errors import SourceError, SpecError
from cobus.kernel import Kernel
from cobus.registry import registry
from cobus.sources.follow import follow
from cobus.sources.listen import listen, parse_address
from cobus.spec.options import bind
from cobus.spec.parse import Word


class Server:
    """A listen source on a kernel thread, on a port of its own choosing."""

    def __init__(self, **options: Any) -> None:
        self.batches: list[bytes] = []
        self.ctx = Ctx()
        task = listen(collect(self.batches), address="tcp://127.0.0.1:0", ctx=self.ctx, **options)
        self.thread = KernelThread(task, name="listen")
        said = wait_for(lambda: self.ctx.warnings, what="the listening notice")[0]
        found = re.fullmatch(r"listening on tcp://127\.0\.0\.1:(\d+)", said)
        assert found, said
        self.port = int(found.group(1))

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=30)

    @property
    def data(self) -> bytes:
        return b"".join(self.batches)

    def wait_lines(self, n: int, timeout: float = 10.0) -> list[bytes]:
        wait_for(lambda: self.data.count(b"\n") >= n, timeout, f"{n} lines")
        return self.data.splitlines()


@pytest.fixture
def server() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(**options: Any) -> Server:
        started.append(Server(**options))
        return started[-1]

    yield start
    for s in started:
        s.thread.stop()


def test_addresses() -> None:
    assert parse_address("tcp://127.0.0.1:5140") == ("127.0.0.1", 5140)
    assert parse_address("tcp://:5140") == ("127.0.0.1", 5140)
    assert parse_address("5140") == ("127.0.0.1", 5140)
    assert parse_address("0.0.0.0:5140") == ("0.0.0.0", 5140)
    for bad in ("udp://:5140", "tcp://127.0.0.1", "tcp://:99999", "tcp://:5140/path"):
        with pytest.raises(ValueError):
            parse_address(bad)


def test_a_bad_address_is_a_spec_error() -> None:
    spec = registry.lookup("listen", source=True)
    with pytest.raises(SpecError, match="only tcp://"):
        bind(spec, [Word("udp://:5140", 7, 11)])


def test_lines_from_one_client(server: Callable[..., Server]) -> None:
    s = server()
    with s.connect() as c:
        c.sendall(b"one\ntw")
        s.wait_lines(1)
        c.sendall(b"o\nthree\n")
        assert s.wait_lines(3) == [b"one", b"two", b"three"]
    assert all(b.endswith(b"\n") for b in s.batches)


def test_a_partial_line_of_a_client_that_hangs_up_is_delivered(server: Callable[..., Server]) -> None:
    s = server()
    with s.connect() as c:
        c.sendall(b"whole\nhalf a li")
        s.wait_lines(1)
    assert s.wait_lines(2) == [b"whole", b"half a li"]


def test_long_lines_are_cut_and_counted(server: Callable[..., Server]) -> None:
    s = server(max_line=1000)
    with s.connect() as c:
        c.sendall(b"a" * 3000 + b"\nshort\n")
        for _ in range(5):  # a long line arriving in pieces is not buffered
            c.sendall(b"b" * 700)
            wait_for(lambda c=c: read_by_peer(c), what="the piece read")  # type: ignore[misc]
        c.sendall(b"\nlast\n")
        lines = s.wait_lines(4)
    assert lines == [b"a" * 1000, b"short", b"b" * 1000, b"last"]
    s.thread.stop()
    assert s.ctx.warnings[1:] == [
        "listen: cutting lines longer than 1000 bytes (--max-line)",
        "listen: 2 lines longer than 1000 bytes were cut",
    ]


def test_a_megabyte_line_is_cut_by_default(server: Callable[..., Server]) -> None:
    s = server()
    with s.connect() as c:
        c.sendall(b"x" * (3 << 20) + b"\nnext\n")
        lines = s.wait_lines(2)
    assert [len(line) for line in lines] == [1 << 20, 4]


def test_an_address_in_use_is_a_source_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        thread = KernelThread(listen(collect([]), address=f"tcp://:{port}", ctx=Ctx()))
        with pytest.raises(SourceError, match=f"^tcp://:{port}: Address already in use$"):
            thread.join(10)


def test_downstream_done_ends_the_listener() -> None:
    port = free_port()

    @coroutine
    def two_batches() -> Target:
        yield
        yield
        raise Done

    thread = KernelThread(listen(two_batches(), address=f"{port}", ctx=Ctx()))
    wait_for(lambda: _connectable(port), what="the listener")
    with socket.create_connection(("127.0.0.1", port)) as c:
        for i in range(3):
            c.sendall(b"line %d\n" % i)
            wait_for(lambda c=c: read_by_peer(c), what="the line read")  # type: ignore[misc]
        thread.join(10)  # the run ends on its own


def _connectable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_200_concurrent_clients_send_1000_lines_each(server: Callable[..., Server]) -> None:
    """200,000 lines arrive whole, each client's in its order, sent in pieces that split lines."""
    s = server()
    clients, per_client = 200, 1000
    errors: list[BaseException] = []
    go = threading.Barrier(clients)

    def client(i: int) -> None:
        try:
            payload = b"".join(
                b"client %03d line %04d %s\n" % (i, j, b"." * (j % 37)) for j in range(per_client)
            )
            with s.connect() as c:
                go.wait(30)
                step = 701 + i  # pieces that do not follow line boundaries
                for k in range(0, len(payload), step):
                    c.sendall(payload[k : k + step])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    lines = s.wait_lines(clients * per_client, timeout=120)
    assert len(lines) == clients * per_client
    seen: dict[int, int] = {}
    for line in lines:
        found = re.fullmatch(rb"client (\d{3}) line (\d{4}) (\.*)", line)
        assert found, line
        i, j = int(found.group(1)), int(found.group(2))
        assert len(found.group(3)) == j % 37
        assert seen.get(i, -1) == j - 1, f"client {i}: line {j} after {seen.get(i)}"
        seen[i] = j
    assert seen == dict.fromkeys(range(clients), per_client - 1)


def test_listen_and_follow_feed_one_pipeline(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    port = free_port()
    out: list[bytes] = []
    from_file, from_net = fan_in(collect(out), 2)
    ctx = Ctx()
    kernel = Kernel()
    tids = [
        kernel.spawn(follow(from_file, paths=[str(log)], interval=0.02, ctx=ctx)),
        kernel.spawn(listen(from_net, address=f"tcp://127.0.0.1:{port}", ctx=ctx)),
    ]
    runner = threading.Thread(target=kernel.run)
    runner.start()
    try:
        wait_for(lambda: _connectable(port), what="the listener")
        wait_for(lambda: watches_file(os.getpid(), log), what="follow to start at the end of the log")
        with open(log, "ab") as f:
            f.write(b"from the file\n")
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(b"from the network\n")
        wait_for(lambda: b"".join(out).count(b"\n") == 2, what="both lines")
    finally:
        for tid in tids:
            kernel.call_soon_threadsafe(functools.partial(kernel.kill, tid))
        runner.join(10)
        kernel.close()
    assert sorted(b"".join(out).splitlines()) == [b"from the file", b"from the network"]
