"""A real ``redis-server`` for tests: a free loopback port, persistence off, stopped after.

Tests that need it take the ``redis_server`` fixture; without the
``redis-server`` program (Debian's ``redis-server`` package) they are skipped
with the reason. ``.ci/run`` installs it, so CI never skips them.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _util_live import free_port, wait_for


class RedisServer:
    """One redis-server process; :meth:`restart` keeps the port and (with ``save``) the data."""

    def __init__(self, folder: Path, *extra: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.folder), "--logfile", "redis.log", *self.extra]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, timeout=20, what=f"redis-server on port {self.port}")

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            log = (self.folder / "redis.log").read_text(errors="replace")[-2000:]
            raise AssertionError(f"redis-server exited with {self.proc.returncode}:\n{log}")
        try:
            return bool(self.client().ping())
        except Exception:
            return False

    def client(self, **kwargs: Any) -> Any:
        """A redis-py client (bytes in, bytes out) for the test's own looks."""
        import redis

        kwargs.setdefault("password", _password(self.extra))
        return redis.Redis(host="127.0.0.1", port=self.port, protocol=2, socket_timeout=10, **kwargs)

    def stop(self, *, save: bool = False) -> None:
        """Stop the server (``save``: write its data to disk first, for a restart)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.client().shutdown(save=save, nosave=not save)
        except Exception:  # the server goes away before it answers
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        """Save, stop and start again on the same port with the same data."""
        self.stop(save=True)
        self.start()


def _password(extra: tuple[str, ...]) -> str | None:
    args = list(extra)
    return args[args.index("--requirepass") + 1] if "--requirepass" in args else None


def needs_redis_server() -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    pytest.importorskip("redis")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server for one test."""
    needs_redis_server()
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder)
    try:
        yield server
    finally:
        server.stop()
