"""Aggregates over every core: ``parallel N [branch] | count by F`` tallied in the workers.

Every split aggregate must print what the inline one prints, byte for byte,
on generated logs large enough for several batches in each worker: apache
lines and JSON lines whose fields mix ints, floats, numeric text, null,
booleans, arrays and objects (keys that look alike, float sums whose result
depends on the order of the additions). The plan shows in ``explain``; a
worker that dies still stops the run with one line; the ``P`` frame keeps
every kind of key apart and refuses anything else.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from test_concurrency import cobus_process, crash_env, processes_with, tag  # noqa: F401 (fixtures)
from test_wire import framed, frames
from util import run_cobus

from cobus.concurrency import wire
from cobus.context import RunContext
from cobus.sinks._partials import split_step
from cobus.spec import load, load_branch
from cobus.steps import AGGREGATE, Partial

_METHODS = ("GET", "GET", "GET", "POST", "HEAD")


@pytest.fixture(scope="module")
def apache_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 3 MB of access-log lines: cat cuts it into three batches or more."""
    rng = random.Random(10)
    lines = []
    for i in range(27_000):
        host = f"10.0.{rng.randrange(4)}.{rng.randrange(60)}"
        path = f"/p/{rng.randrange(400)}" + ("?q=é" if rng.random() < 0.05 else "")
        status = rng.choice((200, 200, 200, 304, 404, 500))
        size = "-" if rng.random() < 0.1 else str(rng.randrange(50_000))
        lines.append(
            f"{host} - - [30/Nov/2026:{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d} +0000] "
            f'"{rng.choice(_METHODS)} {path} HTTP/1.1" {status} {size} "-" "bench/1.0 (x{i % 7})"\n'
        )
    lines.insert(1000, "not an access-log line\n")
    path = tmp_path_factory.mktemp("partials") / "access.log"
    path.write_text("".join(lines))
    return path


@pytest.fixture(scope="module")
def json_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 3 MB of JSON lines whose values mix every JSON type (and keys that look alike)."""
    rng = random.Random(11)
    lines = []
    for _ in range(30_000):
        record: dict[str, object] = {"service": rng.choice(("api", "web", "db", "ünï"))}
        roll = rng.random()
        if roll < 0.3:
            record["took"] = rng.randrange(50)
        elif roll < 0.65:
            record["took"] = round(rng.random() * 3, 3)
        elif roll < 0.75:
            record["took"] = str(rng.randrange(9))
        elif roll < 0.85:
            record["took"] = "n/a"
        if rng.random() < 0.5:
            record["request"] = {"method": rng.choice(_METHODS), "path": "/x"}
        record["code"] = rng.choice((200, 200.0, "200", 404, None, True, [1, 2], "a\tb"))
        lines.append(json.dumps(record) + "\n")
    lines.insert(1000, "[1, 2]\n")  # not an object: a parse failure, counted (a worker numbers its own lines)
    path = tmp_path_factory.mktemp("partials") / "app.jsonl"
    path.write_text("".join(lines))
    return path


APACHE = [
    "count",
    "count by status",
    "count by host,status --csv",
    "top 5 path",
    "top 3 method,status",
    "sum bytes",
    "sum bytes by host",
    "uniq host",
    "uniq -l path",
]
JSON = [
    "count by service",
    "count by code",
    "count by request",
    "top 3 request.method",
    "sum took",
    "sum took by service",
    "sum took by code --csv",
    "uniq -l code",
    "uniq -l request,code",
]


def _same(cli: Callable[..., Result], source: str, branch: str, aggregate: str, flags: str = "") -> bytes:
    """Inline and split: the same stdout, the same lines on stderr, the same exit status.

    The order of stderr lines may differ: a worker's parse notes come when it
    closes, before the sink's own (inline: after).
    """
    inline = run_cobus(["run", f"{source} | {branch} | {aggregate}"])
    split = f"{source} | parallel 2 {flags}[{branch}] | {aggregate}"
    assert "merges the workers' partials" in cli("explain", split).stdout
    moved = run_cobus(["run", split])
    assert (moved.stdout, moved.returncode) == (inline.stdout, inline.returncode)
    assert sorted(moved.stderr.splitlines()) == sorted(inline.stderr.splitlines())
    return inline.stdout


@pytest.mark.parametrize("aggregate", APACHE)
def test_split_aggregates_give_the_inline_output_on_apache_lines(
    cli: Callable[..., Result], apache_log: Path, aggregate: str
) -> None:
    assert _same(cli, f"cat {apache_log}", "parse apache", aggregate)


@pytest.mark.parametrize("aggregate", JSON)
def test_split_aggregates_give_the_inline_output_on_json_lines(
    cli: Callable[..., Result], json_log: Path, aggregate: str
) -> None:
    assert _same(cli, f"cat {json_log}", "parse json", aggregate)


def test_a_filter_in_the_branch_and_more_workers(cli: Callable[..., Result], apache_log: Path) -> None:
    for aggregate in ("count by status", "sum bytes by method", "uniq -l host"):
        _same(cli, f"cat {apache_log}", "parse apache | where status>=300", aggregate)
    _same(cli, f"cat {apache_log}", "grep -v zz", "count")  # lines: count takes them too


def test_unordered_workers_still_count_every_record(cli: Callable[..., Result], json_log: Path) -> None:
    _same(cli, f"cat {json_log}", "parse json", "count by service", "-u ")


def test_snapshots_every_interval_stay_those_of_the_inline_sink(
    cli: Callable[..., Result], json_log: Path
) -> None:
    # A snapshot is due at almost every batch (1 ms): each block the split sink
    # prints is the tally after some batch, as inline; the last one is the total.
    inline = run_cobus(["run", f"cat {json_log} | parse json | count by service --every 1ms"])
    moved = run_cobus(["run", f"cat {json_log} | parallel 2 [parse json] | count by service --every 1ms"])
    blocks = moved.stdout.split(b"\n\n")
    assert len(blocks) >= 2
    assert set(blocks) <= set(inline.stdout.split(b"\n\n"))
    assert blocks[-1] == inline.stdout.split(b"\n\n")[-1]


def test_nothing_selected_is_exit_status_one_as_inline(cli: Callable[..., Result], apache_log: Path) -> None:
    _same(cli, f"cat {apache_log}", "parse apache | where status=999", "count by status")
    nothing = run_cobus(["run", f"cat {apache_log} | parallel 2 [parse apache | where status=999] | count"])
    assert (nothing.stdout, nothing.returncode) == (b"0\n", 1)


# -- the plan ----------------------------------------------------------------------


def test_explain_shows_both_halves(cli: Callable[..., Result]) -> None:
    out = cli("explain", "cat x | parallel 2 [parse apache | where status>=500] | top 5 path").stdout
    assert "fused: each worker tallies its share" in out
    assert "top 5 path   records -> end   planned: merges the workers' partials in input order" in out


def test_the_planner_keeps_both_stages_and_records_what_was_taken() -> None:
    graph = load("cat x | parallel 2 [parse apache] | sum bytes by host")
    pool, agg = graph.nodes[1], graph.nodes[2]
    assert pool.plan is not None and pool.plan.absorbed == ("sum bytes by host",)
    assert pool.plan.params["aggregate"] == "sum bytes by host"
    assert agg.plan is not None and agg.plan.absorbed == ()
    assert agg.inputs == [pool.id]


def test_the_branch_and_the_worker_read_only_what_the_aggregate_reads() -> None:
    graph = load("cat x | parallel 2 [parse apache | where status>=400] | top 3 path")
    assert graph.nodes[1].needs == {"path"}
    parse_node = graph.nodes[1].branches[0].nodes[0]
    assert parse_node.needs == {"path", "status"}
    worker = load_branch("parse apache | where status>=400", "lines", aggregate="top 3 path")
    assert worker.nodes[0].needs == {"path", "status"}
    assert load_branch("parse apache", "lines").nodes[0].needs is None


@pytest.mark.parametrize(
    "pipeline",
    [
        "cat x | parallel 2 [parse apache] | broadcast [count by status] [top 3 path]",
        "cat x | parallel 2 [parse apache] | where status=200 | count by status",
        "cat x | threaded [parse apache] | count by status",
        "cat x | parse apache | count by status",
    ],
    ids=["fan-out", "not-next", "thread", "no-boundary"],
)
def test_no_split_where_the_aggregate_is_not_the_workers_only_consumer(pipeline: str) -> None:
    graph = load(pipeline)
    assert all(n.plan is None or "partials" not in n.plan.note for n in graph.nodes)


def test_an_option_the_split_does_not_know_keeps_the_stage_whole() -> None:
    assert split_step("count", {"by": ("by", "status"), "every": None}) is not None
    assert split_step("count", {"by": ("by", "status"), "per": "1m"}) is None  # time buckets
    assert split_step("count", {"by": ("by", "status"), "per": None}) is not None
    step = split_step("uniq", {"field": "host", "values": True})
    assert step is not None and step.op == AGGREGATE and set(step.args) == {"partial", "merge"}
    # An unset option the split does not know reaches the merge, which ignores it.
    merge = split_step("count", {"by": ("by", "status"), "per": None})
    assert merge is not None
    out = io.BytesIO()
    sink = merge.args["merge"](by=("by", "status"), per=None, ctx=RunContext(stdout=out))
    sink.send(Partial(None, [(200, 2), (404, 1)]))
    sink.send(Partial(None, [(404, 2)]))
    sink.close()
    assert out.getvalue() == b"404\t3\n200\t2\n"


# -- faults ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "cause"),
    [
        ("parallel 2 [parse apache | crash raise after=1 tag={tag}]", "RuntimeError: boom"),
        ("parallel 1 [parse apache | crash kill after=1 tag={tag}]", "the worker was killed by SIGKILL"),
    ],
    ids=["raise", "sigkill"],
)
def test_a_crashing_worker_fails_the_run_with_one_line(
    crash_env: dict[str, str],  # noqa: F811
    tag: str,  # noqa: F811
    apache_log: Path,
    where: str,
    cause: str,
) -> None:
    stage = where.format(tag=tag)
    proc = cobus_process(["run", f"cat {apache_log} | {stage} | count by status"], crash_env)
    assert proc.returncode == 1
    notes = [line for line in proc.stderr.decode().splitlines() if "did not parse" not in line]
    assert notes == [f"cobus: error: {stage}: {cause}"]
    assert processes_with(tag) == []


# -- the P frame -------------------------------------------------------------------


def test_a_partial_keeps_every_kind_of_key_apart() -> None:
    pairs = [
        ("1", 1),
        (1, 2),
        (1.0, 3),
        (-0.0, 4),
        (None, 5),
        (2**70, 6),
        ("caf\u00e9 \ud800", 7),
        (("a", 2, None, 2.5), [1, 2.5, -3]),
        (math.inf, None),
    ]
    decoded = wire.decode_batch(*wire.encode_batch(Partial(None, pairs, 3)))
    assert decoded == Partial(None, pairs, 3)
    assert [(type(k), type(v)) for k, v in decoded.pairs] == [(type(k), type(v)) for k, v in pairs]
    assert math.copysign(1, decoded.pairs[3][0]) == -1
    nan = wire.decode_batch(*wire.encode_batch(Partial(math.nan, [], 0)))
    assert math.isnan(nan.total)
    assert wire.decode_batch(*wire.encode_batch(Partial(2.0, [], 0))).total.__class__ is float


@pytest.mark.parametrize(
    "payload",
    [
        b"{}",
        b"[1, [], 0, 4]",
        b'["1", [], 0]',
        b"[1, [], 0.5]",
        b"[1, [[true, 1]], 0]",
        b"[1, [[[1, [2]], 1]], 0]",
        b'[1, [[{"a": 1}, 1]], 0]',
        b"[1, [[1, true]], 0]",
        b'[1, [[1, ["x"]]], 0]',
        b"[1, [[1, 2, 3]], 0]",
    ],
)
def test_a_malformed_partial_is_refused(payload: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode_batch(wire.PARTIAL, payload)


def _worker(partial: str, branch: str, stdin: bytes) -> tuple[int, list[tuple[bytes, bytes]], str]:
    """``cobus worker --partial STAGE`` fed records frames: exit code, output frames, stderr."""
    r, w = os.pipe()
    argv = [sys.executable, "-m", "cobus", "worker", "--kind", "records", "--out-fd", str(w)]
    proc = subprocess.Popen(
        [*argv, "--partial", partial, "--", branch],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=(w,),
    )
    os.close(w)
    with open(r, "rb") as out:
        _, err = proc.communicate(stdin, timeout=60)
        return proc.returncode, frames(out.read()), err.decode()


def test_a_worker_sends_one_partial_per_batch_then_its_sync() -> None:
    one = [{"status": 200}, {"status": 404}, {"status": 200}, {"x": 1}]
    stdin = framed(*(wire.encode_batch(b) for b in (one, [{"status": 500}], [{"status": 304}])))
    code, out, err = _worker("count by status", "where status>=300", stdin)
    assert (code, err) == (0, "")
    assert [k for k, _ in out] == [
        wire.PARTIAL,
        wire.SYNC,
        wire.PARTIAL,
        wire.SYNC,
        wire.PARTIAL,
        wire.SYNC,
        wire.END,
    ]
    partials = [wire.decode_batch(k, p) for k, p in out if k == wire.PARTIAL]
    assert partials == [Partial(None, [(404, 1)]), Partial(None, [(500, 1)]), Partial(None, [(304, 1)])]


def test_a_worker_refuses_a_partial_as_input_and_a_stage_that_cannot_split() -> None:
    partial = framed(wire.encode_batch(Partial(1, [], 0)))
    code, out, err = _worker("count", "where a=1", partial)
    assert code == 2 and "a P frame is output, never input" in err
    code, out, _ = _worker("print", "where a=1", b"")
    assert code == 1
    assert wire.decode_error(out[-1][1]) == "print: not a stage that runs as 'aggregate'"
