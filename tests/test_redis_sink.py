"""``xadd`` against a real redis-server, and what both Redis stages share: URLs, faults, secrets."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from _util_live import free_port, wait_for
from _util_redis import RedisServer, needs_redis_server, redis_server
from click.testing import Result
from util import SAMPLES, cobus_popen, run_cobus

from cobus.broker import Backoff

__all__ = ["redis_server"]  # the fixture, imported for pytest

ACCESS = SAMPLES / "access.log"


def _lines(server: RedisServer, stream: str, field: bytes = b"line") -> list[bytes]:
    return [fields[field] for _, fields in server.client().xrange(stream)]


def test_xadd_ships_every_line_once_in_order(redis_server: RedisServer) -> None:
    r = run_cobus(["run", f"cat {ACCESS} | xadd {redis_server.url} logs"])
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    assert _lines(redis_server, "logs") == ACCESS.read_bytes().splitlines()


def test_lines_keep_their_bytes_there_and_back(redis_server: RedisServer, tmp_path: Path) -> None:
    odd = b"caf\xe9 latin-1\r\n\x00nul inside\nplain\n"
    src = tmp_path / "odd.log"
    src.write_bytes(odd)
    r = run_cobus(["run", f"cat {src} | xadd --field msg {redis_server.url} odd"])
    assert r.returncode == 0, r.stderr
    assert _lines(redis_server, "odd", b"msg") == [b"caf\xe9 latin-1\r", b"\x00nul inside", b"plain"]
    back = run_cobus(["run", f"xread --from-start --field msg {redis_server.url} odd | head 3 | print"])
    assert (back.returncode, back.stdout, back.stderr) == (0, odd, b"")


def test_records_become_entries_with_their_fields(redis_server: RedisServer) -> None:
    r = run_cobus(["run", f"cat {ACCESS} | parse apache | head 2 | xadd {redis_server.url} requests"])
    assert r.returncode == 0, r.stderr
    (_, first), _ = redis_server.client().xrange("requests")
    assert first[b"host"] == b"ip-189-151-59-165.pools.spcsdns.net"
    assert (first[b"status"], first[b"bytes"], first[b"path"]) == (b"404", b"302", b"/ply/ply-2.2.tar.gz")
    back = run_cobus(
        ["run", f"xread --records --from-start {redis_server.url} requests | head 2 | csv status,path"]
    )
    assert back.stdout == b"status,path\n404,/ply/ply-2.2.tar.gz\n200,/\n"


@pytest.mark.parametrize(("maxlen", "least", "most"), [("~500", 500, 1500), ("500", 500, 500)])
def test_maxlen_trims_about_or_exactly(redis_server: RedisServer, maxlen: str, least: int, most: int) -> None:
    r = run_cobus(["run", f"cat {ACCESS} | xadd --maxlen {maxlen} {redis_server.url} trimmed"])
    assert r.returncode == 0, r.stderr
    assert least <= redis_server.client().xlen("trimmed") <= most
    assert _lines(redis_server, "trimmed")[-1] == ACCESS.read_bytes().splitlines()[-1]


@pytest.mark.parametrize("stage", ["xadd {url} s", "xread {url} s"])
def test_an_unreachable_server_is_one_line_naming_host_and_port(stage: str) -> None:
    needs_redis_server()
    url = f"redis://127.0.0.1:{free_port()}/0"
    text = f"cat {ACCESS} | {stage}" if stage.startswith("xadd") else stage
    r = run_cobus(["run", text.format(url=url)])
    assert r.returncode == 1
    assert r.stdout == b""
    assert r.stderr.count(b"\n") == 1
    assert b"cannot reach redis at 127.0.0.1:" in r.stderr
    assert b"Connection refused" in r.stderr


@pytest.mark.parametrize(
    ("pipeline", "message", "culprit"),
    [
        ("cat a | xadd http://u:hunter2@h s", "not a Redis URL", "http://u:*******@h"),
        ("cat a | xadd redis://h:99999/0 s", "bad Redis URL: Port out of range", "redis://h:99999/0"),
        ("cat a | xadd --maxlen about10 redis://h s", "--maxlen takes N or ~N", "about10"),
        ("xread --claim-idle 5 redis://:hunter2@h s", "--claim-idle needs --group", "5"),
        ("xread -g g --claim-idle soon redis://h s", "not a duration", "soon"),
        ("xread redis://h s --group g --consumer ''", "--consumer needs a name", "''"),
    ],
)
def test_bad_urls_and_options_are_caret_errors(
    cli: Callable[..., Result], pipeline: str, message: str, culprit: str
) -> None:
    for command in ("check", "run"):
        result = cli(command, pipeline)
        assert result.exit_code == 2
        assert result.stdout == ""
        first, text, caret = result.stderr.splitlines()
        assert message in first
        assert "hunter2" not in result.stderr
        assert caret.strip() == "^" * len(culprit)
        assert text[caret.index("^") :].startswith(culprit)


def test_records_do_not_flow_into_a_stage_that_takes_lines(cli: Callable[..., Result]) -> None:
    result = cli("check", "xread --records redis://h s | parse apache")
    assert result.exit_code == 2
    assert "parse takes lines, but records arrive here" in result.stderr


def test_credentials_never_appear(tmp_path: Path, cli: Callable[..., Result]) -> None:
    needs_redis_server()
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder, "--requirepass", "s3cretpw")
    try:
        good = f"redis://:s3cretpw@127.0.0.1:{server.port}/0"
        bad = f"redis://default:wrongpw@127.0.0.1:{server.port}/0"
        r = run_cobus(["run", "--stats", f"cat {ACCESS} | xadd {good} logs"])
        assert r.returncode == 0, r.stderr
        assert b"xadd" in r.stderr  # the stats table, its lines cut at 80 columns
        assert b"s3cretpw" not in r.stderr
        assert b":********@" in r.stderr
        assert server.client().xlen("logs") == 8348
        for stage in (f"cat {ACCESS} | xadd {bad} logs", f"xread {bad} logs --group g"):
            r = run_cobus(["run", stage])
            assert r.returncode == 1
            assert b"refused the credentials" in r.stderr
            assert b"wrongpw" not in r.stderr
        explained = cli("explain", f"xread {good} logs -g g | xadd {bad} copy")
        assert explained.exit_code == 0
        assert "s3cretpw" not in explained.stdout
        assert "wrongpw" not in explained.stdout
        assert "redis://default:*******@" in explained.stdout
    finally:
        server.stop()


def test_xadd_reconnects_after_a_server_restart(redis_server: RedisServer, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"".join(b"before %d\n" % i for i in range(1000)))
    proc = cobus_popen(["run", f"follow --from-start {log} | xadd {redis_server.url} app"])
    try:
        wait_for(lambda: redis_server.client().xlen("app") >= 1000, timeout=30, what="the first lines")
        redis_server.restart()
        with log.open("ab") as f:
            f.write(b"".join(b"after %d\n" % i for i in range(1000)))
        wanted = set(log.read_bytes().splitlines())
        wait_for(lambda: set(_lines(redis_server, "app")) >= wanted, timeout=60, what="every line")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert b"xadd app: lost redis at 127.0.0.1:" in err
    assert b"xadd app: reconnected to redis at 127.0.0.1:" in err


def test_backoff_doubles_to_its_ceiling_and_says_when_the_server_is_back() -> None:
    said: list[str] = []
    now = [0.0]
    backoff = Backoff(said.append, lambda: now[0], first=0.1, most=0.5, remind=10)
    delays = []
    for _ in range(5):
        delays.append(backoff.failed("lost it"))
        now[0] += 4
    backoff.recovered("back")
    assert delays == [0.1, 0.2, 0.4, 0.5, 0.5]
    assert said == ["lost it; reconnecting", "lost it; still reconnecting after 12 s", "back after 20.0 s"]


def test_a_unix_socket_url(tmp_path: Path) -> None:
    needs_redis_server()
    folder = tmp_path / "redis"
    folder.mkdir()
    sock = folder / "redis.sock"
    server = RedisServer(folder, "--unixsocket", str(sock), "--unixsocketperm", "700")
    try:
        r = run_cobus(["run", f"cat {ACCESS} | head 10 | xadd unix://{sock}?db=2 logs"])
        assert (r.returncode, r.stderr) == (0, b"")
        assert server.client(db=2).xlen("logs") == 10
        back = run_cobus(["run", f"xread --from-start unix://{sock}?db=2 logs | head 10 | print"])
        assert back.stdout == b"".join(ACCESS.read_bytes().splitlines(keepends=True)[:10])
    finally:
        server.stop()
