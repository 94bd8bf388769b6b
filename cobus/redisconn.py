"""Redis connections for ``xadd`` and ``xread``: URLs as redis-py takes them, connecting, faults.

A :class:`Server` is a checked URL (``redis://``, ``rediss://`` for TLS,
``unix://``) that knows how to name itself without its credentials. A
:class:`Link` is one connection to it, made with redis-py's ``Connection`` (its
handshake, AUTH, SELECT, TLS and reply parser, hiredis when installed) and
remade after a fault. Faults come out as two exceptions: :class:`Lost` (the
server went away or cannot be reached now: try again later) and the stage's
own error class for what no retry can fix (refused credentials, a key of the
wrong type). redis-py is imported when a link is made, not when cobus
starts. Nothing here knows streams, batches or the kernel.

Discussion: why RESP2. redis-py 8 asks for RESP3 by default, where replies are
maps and the server may push messages of its own between replies. Both
stages read exactly one reply per command sent, in order, and ``xread`` waits
for a reply with the kernel's selector before reading it: an unsolicited push
would be taken for the reply. RESP2 has none, and its replies are plain
lists whatever the server version.

Discussion: packing. Commands are written in RESP here rather than by
redis-py, whose packer spends about 10 us a command walking its arguments in
Python: an ``XACK`` of 10,000 ids cost more than reading the entries it
acknowledges, and ``xadd`` could not ship 100k lines/s. RESP is an array of
length-prefixed strings, four lines of spec; the connection, its handshake,
AUTH, TLS and the reading of replies (hiredis when installed) stay with
redis-py.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from .broker import redact
from .errors import CobusError

if TYPE_CHECKING:
    from redis.connection import AbstractConnection

__all__ = ["CONNECT_TIMEOUT", "URL_HELP", "Link", "Lost", "Server", "bulk", "check_url", "pack"]

#: Seconds to wait for a server to accept a connection.
CONNECT_TIMEOUT = 3.0
#: Seconds a reply that has started may take to arrive whole.
REPLY_TIMEOUT = 30.0

_SCHEMES = ("redis://", "rediss://", "unix://")
#: The help of a URL parameter.
URL_HELP = "redis://USER:PASS@HOST:PORT/DB (only HOST is needed), rediss:// for TLS, unix:///PATH"


class Lost(Exception):
    """The server cannot be reached now (refused, reset, timed out): worth another try.

    ``str()`` is the whole message; ``reason`` the few words of what happened.
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


def check_url(url: str) -> dict[str, Any]:
    """redis-py's connection arguments for ``url``, or ValueError with a message safe to show.

    >>> sorted(check_url("redis://app:pw@broker:6380/2").items())
    [('db', 2), ('host', 'broker'), ('password', 'pw'), ('port', 6380), ('username', 'app')]
    >>> check_url("http://broker")
    Traceback (most recent call last):
    ...
    ValueError: not a Redis URL: it starts with redis://, rediss:// or unix://
    """
    if not url.startswith(_SCHEMES):
        raise ValueError("not a Redis URL: it starts with redis://, rediss:// or unix://")
    from redis.connection import parse_url

    try:
        kwargs: dict[str, Any] = parse_url(url)
    except ValueError as exc:
        # redis-py's messages name the part, never quote the URL; masked anyway.
        raise ValueError(f"bad Redis URL: {redact(str(exc))}") from None
    if url.startswith("unix://") and not kwargs.get("path"):
        raise ValueError("a unix:// URL needs the socket's path: unix:///run/redis/redis.sock")
    if not url.startswith("unix://") and not kwargs.get("host"):
        raise ValueError("a Redis URL needs a host: redis://HOST:PORT/DB")
    return kwargs


class Server:
    """A Redis server given by URL: how to connect, and how to name it in messages."""

    def __init__(self, url: str) -> None:
        self.kwargs = check_url(url)
        self.shown = redact(url)
        path = self.kwargs.get("path")
        self.where = path if path else f"{self.kwargs['host']}:{self.kwargs.get('port', 6379)}"

    def safe(self, exc: BaseException) -> str:
        """The text of a redis-py error, with no credential in it."""
        text = redact(str(exc))
        password = self.kwargs.get("password")
        return text.replace(str(password), "***") if password else text

    def connect(self, fatal: type[CobusError], who: str) -> Link:
        """A new link, connected and past AUTH/SELECT; raises Lost or ``fatal``."""
        link = Link(self, fatal, who)
        link.open()
        return link


class Link:
    """One connection to a server. Every call raises :class:`Lost` or ``fatal`` on a fault.

    Replies are read one by one, in the order the commands went out; an error
    reply (``-ERR ...``) comes back as a ``redis.exceptions.ResponseError``
    value for the caller to judge (:meth:`fail` raises it the usual way).
    """

    def __init__(self, server: Server, fatal: type[CobusError], who: str) -> None:
        self.server = server
        self.fatal = fatal
        self.who = who
        self.conn: AbstractConnection | None = None

    def open(self) -> None:
        from redis.connection import Connection, UnixDomainSocketConnection

        kwargs = dict(self.server.kwargs)
        cls = kwargs.pop("connection_class", None) or Connection
        if cls is not UnixDomainSocketConnection:
            kwargs["socket_keepalive"] = True
        kwargs.update(protocol=2, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=REPLY_TIMEOUT)
        self.conn = cls(**kwargs)
        self._guard(self.conn.connect)

    @property
    def connected(self) -> bool:
        return self.conn is not None

    @property
    def socket(self) -> socket.socket:
        """The socket, to wait on with the kernel's selector (see ``xread``)."""
        sock = self._connection()._get_socket()
        if sock is None:
            raise Lost(self._lost("the connection is closed"), "the connection is closed")
        return sock

    def ready(self) -> bool:
        """Whether reply bytes are here (buffered, or readable now): reading will not wait long."""
        conn = self._connection()
        return bool(self._guard(lambda: conn.can_read(timeout=0)))

    def send(self, *commands: tuple[Any, ...]) -> None:
        """Send commands (argument tuples) in one write, without reading the replies."""
        self.send_packed(b"".join(pack(*c) for c in commands))

    def send_packed(self, data: bytes) -> None:
        """Send commands already in RESP form."""
        conn = self._connection()
        self._guard(lambda: conn.send_packed_command([data], check_health=False))

    def reply(self, timeout: float | None = None) -> Any:
        """The next reply (waiting at most ``timeout`` s); an error reply is returned as a ResponseError."""
        conn = self._connection()
        return self._guard(lambda: _read(conn, timeout))

    def replies(self, n: int, into: list[Any]) -> None:
        """Append the next ``n`` replies to ``into`` (error replies as ResponseError).

        If the connection is lost meanwhile, ``into`` holds the replies that came.
        """
        from redis.exceptions import ResponseError

        read_response = self._connection().read_response

        def read() -> None:
            for _ in range(n):  # the loop of a shipper: no call or import in it that can be saved
                try:
                    into.append(read_response())
                except ResponseError as exc:
                    into.append(exc)

        self._guard(read)

    def call(self, *args: Any) -> Any:
        """Send one command and return its reply; an error reply is raised (see :meth:`fail`)."""
        self.send(args)
        result = self.reply()
        if isinstance(result, Exception):
            self.fail(result)
        return result

    def fail(self, error: Exception) -> NoReturn:
        """Raise an error reply: Lost if the server is only busy or loading, else ``fatal``."""
        text = self.safe(error)
        if text.startswith(("NOAUTH", "WRONGPASS", "NOPERM")):
            self.close()
            raise self.fatal(f"{self.who}: redis at {self.server.where} refused the credentials: {text}")
        if text.startswith(("LOADING", "BUSY ", "MASTERDOWN", "TRYAGAIN")):
            self.close()
            raise Lost(self._lost(text), text)
        raise self.fatal(f"{self.who}: redis at {self.server.where}: {text}")

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.disconnect()
            except Exception:  # closing a broken socket: nothing to tell
                pass
            self.conn = None

    def safe(self, exc: BaseException) -> str:
        return self.server.safe(exc)

    def _connection(self) -> AbstractConnection:
        if self.conn is None:
            raise Lost(self._lost("the connection is closed"), "the connection is closed")
        return self.conn

    def _lost(self, reason: str) -> str:
        return f"{self.who}: lost redis at {self.server.where}: {reason}"

    def _guard(self, fn: Callable[[], Any]) -> Any:
        """Call ``fn``, turning redis-py's errors into Lost or ``fatal`` with safe messages."""
        from redis import exceptions as rex

        try:
            return fn()
        except (rex.AuthenticationError, rex.AuthorizationError, rex.ResponseError) as exc:
            self.close()
            if isinstance(exc, rex.ResponseError):  # an error reply during the handshake
                self.fail(exc)
            where = f"redis at {self.server.where}"
            raise self.fatal(f"{self.who}: {where} refused the credentials: {self.safe(exc)}") from None
        except (rex.ConnectionError, rex.TimeoutError, OSError) as exc:
            self.close()
            reason = _reason(exc)
            raise Lost(self._lost(reason), reason) from None
        except rex.RedisError as exc:
            self.close()
            raise self.fatal(f"{self.who}: redis at {self.server.where}: {self.safe(exc)}") from None


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _arg(value: bytes | str | int | float) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    return str(value).encode()


def pack(*args: bytes | str | int | float) -> bytes:
    r"""One command in RESP, the form a server reads (see Discussion: packing).

    >>> pack("XACK", "logs", b"1-0")
    b'*3\r\n$4\r\nXACK\r\n$4\r\nlogs\r\n$3\r\n1-0\r\n'
    """
    parts = [a if isinstance(a, bytes) else _arg(a) for a in args]
    return b"*%d\r\n" % len(parts) + b"".join([b"$%d\r\n%s\r\n" % (len(p), p) for p in parts])


def bulk(value: bytes) -> bytes:
    """One argument in RESP (``$LEN``, the bytes), to build a command by parts."""
    return _bulk(value)


def _read(conn: AbstractConnection, timeout: float | None = None) -> Any:
    from redis.exceptions import ResponseError

    try:
        return conn.read_response() if timeout is None else conn.read_response(timeout=timeout)
    except ResponseError as exc:
        return exc


def _reason(exc: BaseException) -> str:
    """What went wrong in a few words: the OS's error text when there is one."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, socket.timeout):
            return "timed out"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    text = str(exc).strip().rstrip(".")
    if "Connection closed by server" in text or not text:
        return "connection closed by the server"
    return text
