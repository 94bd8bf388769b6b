"""``xread`` against a real redis-server: following, consumer groups, claiming, restarts, signals."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path

from _util_live import wait_for
from _util_redis import RedisServer, redis_server
from util import cobus_popen, run_cobus

__all__ = ["redis_server"]  # the fixture, imported for pytest


def _read(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines() if path.exists() else []


def _add(server: RedisServer, stream: str, lines: list[bytes]) -> None:
    pipe = server.client().pipeline(transaction=False)
    for line in lines:
        pipe.xadd(stream, {"line": line})
    pipe.execute()


def _pending(server: RedisServer, stream: str, group: str) -> int:
    """Entries read and not acknowledged in the group; -1 while the group does not exist."""
    from redis.exceptions import ResponseError

    try:
        count: int = server.client().xpending(stream, group)["pending"]
    except ResponseError:
        return -1
    return count


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> tuple[int, bytes]:
    """Signal cobus, wait; its exit code and stderr (stdout in ``proc.output``)."""
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    proc.output = out  # type: ignore[attr-defined]
    return proc.returncode, err


def _reading(server: RedisServer, command: bytes, consumers: int = 1) -> None:
    """Wait until ``consumers`` clients are inside ``command`` (they have resolved where to start)."""

    def inside() -> bool:
        return sum(c["cmd"].encode() == command for c in server.client().client_list()) >= consumers

    wait_for(inside, timeout=30, what=f"{consumers} client(s) in {command.decode()}")


def test_without_a_group_it_follows_what_is_added_after_it_starts(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    _add(redis_server, "s", [b"old"])
    out = tmp_path / "out.log"
    proc = cobus_popen(["run", f"xread {redis_server.url} s | write {out}"])
    try:
        _reading(redis_server, b"xread")
        _add(redis_server, "s", [b"new 1", b"new 2"])
        wait_for(lambda: len(_read(out)) == 2, timeout=30, what="the new entries")
        _add(redis_server, "s", [b"new 3"])
        wait_for(lambda: len(_read(out)) == 3, timeout=30, what="one more")
    finally:
        code, err = _stop(proc, signal.SIGINT)
    assert (code, err) == (130, b"")
    assert _read(out) == [b"new 1", b"new 2", b"new 3"]


def test_three_consumers_share_a_group_each_entry_once(redis_server: RedisServer, tmp_path: Path) -> None:
    lines = [b"entry %05d" % i for i in range(30_000)]
    outs = [tmp_path / f"worker{i}.log" for i in range(3)]
    procs = [
        cobus_popen(["run", f"xread {redis_server.url} jobs --group workers | write {out}"]) for out in outs
    ]
    try:
        _reading(redis_server, b"xreadgroup", consumers=3)
        for start in range(0, len(lines), 5000):
            _add(redis_server, "jobs", lines[start : start + 5000])
        wait_for(lambda: sum(len(_read(o)) for o in outs) >= len(lines), timeout=60, what="every entry")
    finally:
        stopped = [_stop(p) for p in procs]
    assert [code for code, _ in stopped] == [143, 143, 143], stopped
    seen = Counter(line for o in outs for line in _read(o))
    assert set(seen) == set(lines)
    assert max(seen.values()) == 1
    assert _pending(redis_server, "jobs", "workers") == 0
    consumers = redis_server.client().xinfo_consumers("jobs", "workers")
    assert len(consumers) == 3
    assert all(c["name"].startswith(b"") and c["pending"] == 0 for c in consumers)


def test_a_consumer_killed_mid_stream_loses_nothing(redis_server: RedisServer, tmp_path: Path) -> None:
    lines = [b"job %05d" % i for i in range(10_000)]
    # The victim counts: it holds every entry until its end, so they are pending when it dies.
    victim = cobus_popen(
        ["run", f"xread {redis_server.url} jobs -g workers --consumer victim --claim-idle 1s | count"]
    )
    _reading(redis_server, b"xreadgroup")
    _add(redis_server, "jobs", lines[:5000])
    wait_for(
        lambda: _pending(redis_server, "jobs", "workers") == 5000, timeout=30, what="the victim's entries"
    )
    victim.kill()
    victim.communicate(timeout=30)
    outs = [tmp_path / f"worker{i}.log" for i in range(2)]
    procs = [
        cobus_popen(["run", f"xread {redis_server.url} jobs -g workers --claim-idle 1s | write {out}"])
        for out in outs
    ]
    try:
        _add(redis_server, "jobs", lines[5000:])
        wait_for(lambda: {x for o in outs for x in _read(o)} == set(lines), timeout=60, what="every job")
    finally:
        stopped = [_stop(p, signal.SIGINT) for p in procs]
    assert [code for code, _ in stopped] == [130, 130], stopped
    assert _pending(redis_server, "jobs", "workers") == 0
    by_name = {c["name"]: c for c in redis_server.client().xinfo_consumers("jobs", "workers")}
    assert by_name[b"victim"]["pending"] == 0


def test_a_server_restart_mid_run_loses_nothing_acknowledged(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    out = tmp_path / "out.log"
    proc = cobus_popen(["run", f"xread --from-start {redis_server.url} jobs --group g | write {out}"])
    first = [b"first %d" % i for i in range(3000)]
    then = [b"then %d" % i for i in range(3000)]
    try:
        _add(redis_server, "jobs", first)
        wait_for(lambda: len(_read(out)) >= 3000, timeout=30, what="the first entries")
        redis_server.restart()
        _add(redis_server, "jobs", then)
        wait_for(lambda: set(_read(out)) >= set(first + then), timeout=60, what="every entry")
        wait_for(lambda: _pending(redis_server, "jobs", "g") == 0, timeout=30, what="every ack")
    finally:
        code, err = _stop(proc)
    assert code == 143, err
    assert b"xread jobs: lost redis at 127.0.0.1:" in err
    assert b"xread jobs: reconnected to redis at 127.0.0.1:" in err
    assert _pending(redis_server, "jobs", "g") == 0


def test_an_aggregate_is_acknowledged_once_it_has_printed(redis_server: RedisServer) -> None:
    _add(redis_server, "s", [b"a", b"b", b"c"])
    proc = cobus_popen(["run", f"xread --from-start {redis_server.url} s -g g | count"])
    try:
        wait_for(lambda: _pending(redis_server, "s", "g") == 3, timeout=30, what="three held entries")
    finally:
        code, err = _stop(proc, signal.SIGINT)
    assert (code, err) == (130, b"")
    assert proc.output == b"3\n"  # type: ignore[attr-defined]
    assert _pending(redis_server, "s", "g") == 0


def test_entries_without_the_field_are_counted_like_lines_that_do_not_parse(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    client = redis_server.client()
    bad = client.xadd("s", {"msg": "no line here"})
    client.xadd("s", {"other": "x", "line": "second field"})
    client.xadd("s", {"msg": "again"})
    client.xadd("s", {"line": "last"})
    out = tmp_path / "out.log"
    proc = cobus_popen(["run", f"xread --from-start {redis_server.url} s -g g | write {out}"])
    try:
        wait_for(lambda: _read(out) == [b"second field", b"last"], timeout=30, what="the good entries")
    finally:
        code, err = _stop(proc, signal.SIGINT)
    assert code == 130
    assert err.decode() == f"cobus: xread s: 2 entries had no 'line' field (first: {bad.decode()}); skipped\n"
    assert _pending(redis_server, "s", "g") == 0


def test_a_quiet_stream_does_not_stall_the_other_sources(redis_server: RedisServer, tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"")
    out = tmp_path / "out.log"
    proc = cobus_popen(
        ["run", f"broadcast [follow {log}] [xread {redis_server.url} quiet -g g] | write {out}"]
    )
    try:
        _reading(redis_server, b"xreadgroup")
        for i in range(5):
            with log.open("ab") as f:
                f.write(b"followed %d\n" % i)
            wait_for(lambda i=i: len(_read(out)) == i + 1, timeout=10, what=f"followed line {i}")
        _add(redis_server, "quiet", [b"from the stream"])
        wait_for(lambda: _read(out)[-1:] == [b"from the stream"], timeout=10, what="the entry")
    finally:
        code, err = _stop(proc)
    assert (code, err) == (143, b"")


def test_stats_show_what_the_consumer_did(redis_server: RedisServer) -> None:
    _add(redis_server, "s", [b"a", b"b"])
    r = run_cobus(["run", "--stats", f"xread --from-start {redis_server.url} s -g g | head 2 | print"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"a\nb\n"
    assert b"read 2, acknowledged 2, claimed 0, pending 0" in r.stderr


def test_a_consumer_restarted_under_its_name_gets_its_pending_entries_first(
    redis_server: RedisServer,
) -> None:
    lines = [b"mine %d" % i for i in range(300)]
    _add(redis_server, "s", lines)
    holder = cobus_popen(["run", f"xread --from-start {redis_server.url} s -g g --consumer fixed | count"])
    wait_for(lambda: _pending(redis_server, "s", "g") == 300, timeout=30, what="the held entries")
    holder.kill()
    holder.communicate(timeout=30)
    _add(redis_server, "s", [b"new"])
    # --claim-idle 1h: nothing is claimed, the entries come back because they are this consumer's.
    again = run_cobus(
        ["run", f"xread {redis_server.url} s -g g --consumer fixed --claim-idle 1h | head 301 | print"]
    )
    assert (again.returncode, again.stderr) == (0, b"")
    assert again.stdout.splitlines() == [*lines, b"new"]
    assert _pending(redis_server, "s", "g") == 0


def test_on_a_terminal_the_counts_show_below_the_progress_bars() -> None:
    import io

    from rich.console import Console

    from cobus.progress import ProgressBoard

    out = io.StringIO()
    now = [0.0]
    board = ProgressBoard(Console(file=out, width=80, force_terminal=True), delay=1.0, clock=lambda: now[0])
    counts = {"read": 0}
    board.note(lambda: f"xread logs: read {counts['read']}")
    board.poke()
    assert out.getvalue() == ""  # not in the first second
    now[0] = 1.5
    counts["read"] = 42
    board.poke()
    board.close()
    assert "xread logs: read 42" in out.getvalue()


def test_nothing_is_acknowledged_that_was_not_written(redis_server: RedisServer) -> None:
    _add(redis_server, "s", [b"line %d" % i for i in range(10)])
    r = run_cobus(["run", f"xread --from-start {redis_server.url} s -g g | write /dev/full"])
    assert r.returncode == 1
    assert b"/dev/full: No space left on device" in r.stderr
    assert _pending(redis_server, "s", "g") == 10


def test_what_head_did_not_take_is_left_for_the_others(redis_server: RedisServer) -> None:
    lines = [b"line %d" % i for i in range(5000)]
    _add(redis_server, "s", lines)
    r = run_cobus(["run", f"xread --from-start {redis_server.url} s -g g | head 1500 | print"])
    assert (r.returncode, r.stdout.splitlines()) == (0, lines[:1500])
    # The batch head cut was taken on purpose; one read ahead was never sent and stays pending.
    left = _pending(redis_server, "s", "g")
    assert left in (0, 1000)
    assert (b"stay pending" in r.stderr) == bool(left)
