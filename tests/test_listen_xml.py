"""listen framing (newline, octet, auto) and ``listen | xml``: one document stream per connection.

Real sockets on 127.0.0.1; the whole-program tests run cobus as a process
and talk to it like any client would, ``logger`` included where it is.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from _util_live import Ctx, KernelThread, wait_for
from util import cobus_popen, collect

from cobus.sources._framing import FramingError, make_framer
from cobus.sources.listen import listen
from cobus.sources.netxml import listen_xml
from cobus.xmlrecords import STREAM, RecordBuilder


def frames(framing: Any, pieces: list[bytes], max_line: int = 1 << 20) -> bytes:
    cuts: list[int] = []
    framer = make_framer(framing, max_line, cuts.append)
    return b"".join(framer.feed(p) for p in pieces) + framer.flush()


def test_octet_counting_cut_anywhere() -> None:
    stream = b"5 hello10 two\nlines!3 end"
    expected = b"hello\ntwo\nlines!\nend\n"
    for size in range(1, len(stream) + 1):
        pieces = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert frames("octet", pieces) == expected, size


def test_octet_frames_longer_than_max_line_are_cut() -> None:
    cuts: list[int] = []
    framer = make_framer("octet", 4, cuts.append)
    out = framer.feed(b"10 0123") + framer.feed(b"456789") + framer.feed(b"2 ok")
    assert out == b"0123\nok\n"
    assert cuts == [1]


def test_octet_framing_refuses_a_line() -> None:
    with pytest.raises(FramingError, match="not an octet-counted frame"):
        frames("octet", [b"<13>plain line\n"])


def test_auto_framing_takes_either_per_message() -> None:
    pieces = [b"<13>plain one\n7 counted", b"another line\n2", b" x"]
    assert frames("auto", pieces) == b"<13>plain one\ncounted\nanother line\nx\n"  # the last one cut short


class Program:
    """cobus as a process serving PIPELINE on a free port of its choosing."""

    def __init__(self, pipeline: str) -> None:
        self.proc = cobus_popen(["run", pipeline.replace("ADDR", "tcp://127.0.0.1:0")])
        assert self.proc.stderr is not None
        said = self.proc.stderr.readline().decode()
        found = re.search(r"listening on tcp://127\.0\.0\.1:(\d+)", said)
        assert found, said
        self.port = int(found.group(1))
        self.lines: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_lines(self, n: int) -> None:
        wait_for(lambda: len(self.lines) >= n, 30, f"{n} lines of output")

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=30)

    def stop(self) -> tuple[bytes, str]:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.stderr is not None
        err = self.proc.stderr.read()
        self.proc.wait(30)
        self.reader.join(30)
        assert self.proc.returncode == 143, err
        return b"".join(self.lines), err.decode()


@pytest.fixture
def program() -> Iterator[Any]:
    started: list[Program] = []

    def start(pipeline: str) -> Program:
        started.append(Program(pipeline))
        return started[-1]

    yield start
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


def test_logger_octet_count_arrives_one_message_per_line(program: Any) -> None:
    if shutil.which("logger") is None:
        pytest.skip("logger (util-linux) is not installed")
    p = program("listen --framing octet ADDR | print")
    lines = "\n".join(f"message {i}" for i in range(100))
    for extra in ([], ["--rfc3164"]):
        subprocess.run(
            ["logger", "--tcp", "--octet-count", "-n", "127.0.0.1", "-P", str(p.port), "-t", "t", *extra],
            input=lines.encode(),
            check=True,
            timeout=30,
        )
    p.wait_lines(200)
    out, err = p.stop()
    got = out.decode().splitlines()
    assert len(got) == 200, err
    for i, line in enumerate(got):
        assert line.endswith(f" message {i % 100}"), line
        assert not re.match(r"\d+ ", line), line


def test_a_bad_framing_client_is_dropped_and_others_go_on() -> None:
    batches: list[bytes] = []
    ctx = Ctx()
    thread = KernelThread(listen(collect(batches), address="tcp://127.0.0.1:0", framing="octet", ctx=ctx))
    port = int(wait_for(lambda: ctx.warnings)[0].rpartition(":")[2])
    try:
        with (
            socket.create_connection(("127.0.0.1", port)) as good,
            socket.create_connection(("127.0.0.1", port)) as bad,
        ):
            good.sendall(b"3 one")
            bad.sendall(b"no count here\n")
            assert bad.recv(10) == b""  # dropped: the server closed it
            good.sendall(b"3 two")
            wait_for(lambda: b"".join(batches) == b"one\ntwo\n", what="both messages")
        said = ctx.warnings[1]
        assert re.fullmatch(r"listen: tcp://127\.0\.0\.1:\d+: not an octet-counted.*; client dropped", said)
    finally:
        thread.stop()


def test_xml_clients_line_by_line_each_get_their_own_documents(program: Any) -> None:
    p = program("listen ADDR | xml --recover | records item | jsonl")
    clients = [p.connect() for _ in range(3)]
    bad = p.connect()
    bad.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert bad.recv(10) == b""  # the HTTP client is dropped ...
    for n in range(3):
        for i, c in enumerate(clients):
            c.sendall(b'<?xml version="1.0"?>\n' if n == 0 else b"")
            c.sendall(b"<feed>\n" if n == 0 else b"")
            c.sendall(b"<item><who>%d</who>\n" % i)
            c.sendall(b"<n>%d</n></item>\n" % n)
    for c in clients:
        c.sendall(b"</feed>\n")
        c.close()
    with p.connect() as later:  # ... and later clients are still accepted
        later.sendall(b"<item><who>later</who></item>")
    p.wait_lines(10)
    out, err = p.stop()
    records = [json.loads(line) for line in out.splitlines()]
    assert sorted((r["who"], r["n"]) for r in records if "n" in r) == [
        (str(i), str(n)) for i in range(3) for n in range(3)
    ]
    assert {"who": "later"} in records
    assert "AssertionError" not in err
    assert re.search(r"listen: tcp://127\.0\.0\.1:\d+:1: not an XML document .*; client dropped", err)


def test_records_keep_one_open_record_per_stream() -> None:
    builder = RecordBuilder("r")
    events = [
        (STREAM, "a"),
        ("start", "r", {}),
        ("start", "x", {}),
        ("text", "a1"),
        (STREAM, "b"),
        ("start", "r", {}),
        ("start", "x", {}),
        ("text", "b1"),
        ("end", "x"),
        (STREAM, "a"),
        ("end", "x"),
        ("end", "r"),
        (STREAM, "b"),
        ("end", "r"),
    ]
    assert builder.feed(events) == [{"x": "a1"}, {"x": "b1"}]
    assert builder._saved == {}


def test_two_declarations_and_no_root_are_one_skipped_document() -> None:
    proc = subprocess.run(
        ["cobus", "run", "cat - | xml --recover | events | count"],
        input=b'<?xml version="1.0"?>\n<?xml version="1.0"?>\n',
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"1\n"  # the abort event
    assert b"document skipped" in proc.stderr
    assert b"AssertionError" not in proc.stderr


def test_listen_xml_reads_octet_counted_documents() -> None:
    batches: list[list[Any]] = []
    ctx = Ctx()
    task = listen_xml(collect(batches), address="tcp://127.0.0.1:0", framing="octet", recover=True, ctx=ctx)
    thread = KernelThread(task)
    port = int(wait_for(lambda: ctx.warnings)[0].rpartition(":")[2])
    try:
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(b"4 <r/>8 <s>a</s>")
            found = wait_for(lambda: [e for b in batches for e in b if e[0] != STREAM][4:] and batches)
        events = [e for b in found for e in b]
        assert events[0][0] == STREAM
        r, s = [("start", "r", {}), ("end", "r")], [("start", "s", {}), ("text", "a"), ("end", "s")]
        assert events[1:] == r + s
    finally:
        thread.stop()
