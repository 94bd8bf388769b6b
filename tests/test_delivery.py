"""End-to-end acknowledgement (cobus.delivery): a source confirms only what the sinks wrote."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _util_live import wait_for
from util import cobus_popen, run_cobus

from cobus.delivery import Delivery
from cobus.errors import SinkError

# -- the barrier itself ------------------------------------------------------------


def test_confirm_drains_upstream_stages_first_then_flushes_outputs() -> None:
    trace: list[str] = []
    d = Delivery()
    d.output("out.log", lambda: trace.append("flush out.log"))
    d.stage(lambda: trace.append("drain downstream") is None)  # built first: it is downstream
    d.stage(lambda: trace.append("drain upstream") is None)
    assert d.confirm() is True
    assert trace == ["drain upstream", "drain downstream", "flush out.log"]


def test_a_failing_flush_names_the_output_and_confirms_nothing() -> None:
    def full() -> None:
        raise OSError(28, "No space left on device")

    d = Delivery()
    d.output("errors.log", full)
    with pytest.raises(SinkError, match=r"^errors\.log: No space left on device$"):
        d.confirm()


def test_a_hold_defers_confirmation_until_released() -> None:
    d = Delivery()
    first, second = d.hold("count"), d.hold("table")
    assert d.confirm() is False
    first.release()
    assert d.confirm() is False
    second.release()
    second.release()  # twice is harmless
    assert d.confirm() is True


def test_a_branch_that_holds_items_back_makes_the_answer_not_yet() -> None:
    d = Delivery()
    d.stage(lambda: False)
    assert d.confirm() is False


# -- follow --state end to end -------------------------------------------------------


def saved_offset(state: Path, log: Path) -> int | None:
    if not state.exists():
        return None
    return int(json.loads(state.read_text())["files"][str(log)]["offset"])


@pytest.mark.parametrize(
    "sink",
    [
        "grep ERROR | write /dev/full",
        "print",
        "threaded [grep ERROR | write /dev/full]",
        "subprocess [grep ERROR | write /dev/full]",
    ],
)
def test_an_output_failure_never_advances_the_state(tmp_path: Path, sink: str) -> None:
    log, state = tmp_path / "c.log", tmp_path / "follow.state"
    log.write_bytes(b"".join(b"%d ERROR here\n" % i for i in range(100)))
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [sys.executable, "-m", "cobus", "run", f"follow --state {state} --from-start {log} | {sink}"],
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    assert done.returncode != 0, done.stderr  # 1 once stdout's own failures are translated (issue 11)
    message = done.stderr.decode()
    assert "No space left on device" in message
    assert str(log) not in message  # the input is not to blame
    assert saved_offset(state, log) in (None, 0)


@pytest.mark.parametrize("branch", ["threaded", "subprocess"])
def test_a_saved_offset_means_the_branch_has_written_those_lines(tmp_path: Path, branch: str) -> None:
    log, state, out = tmp_path / "app.log", tmp_path / "follow.state", tmp_path / "out.log"
    lines = [b"line %d" % i for i in range(5_000)]
    log.write_bytes(b"\n".join(lines) + b"\n")
    proc = cobus_popen(
        ["run", f"follow --state {state} --from-start {log} | {branch} [grep line | write {out}]"]
    )
    try:
        wait_for(
            lambda: saved_offset(state, log) == log.stat().st_size, 30, "the checkpoint of the whole file"
        )
        assert out.read_bytes().splitlines() == lines  # confirmed, so written
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert (proc.returncode, err) == (143, b"")


def test_an_aggregate_is_confirmed_once_it_has_printed(tmp_path: Path) -> None:
    log, state = tmp_path / "app.log", tmp_path / "follow.state"
    log.write_bytes(b"a\nb\nc\n")
    proc = cobus_popen(["run", f"follow --state {state} --from-start {log} | broadcast [count] [print]"])
    try:
        assert proc.stdout is not None
        wait_for(lambda: proc.stdout.readline() == b"c\n", 30, "the lines")  # type: ignore[union-attr]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out, err) == (143, b"3\n", b"")
    # count held the lines until it printed, at the close: only then are they confirmed
    assert saved_offset(state, log) == 6


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGHUP, 129), (signal.SIGTERM, 143)], ids=["SIGHUP", "SIGTERM"]
)
def test_a_hangup_checkpoints_and_flushes_like_sigterm(tmp_path: Path, signum: int, code: int) -> None:
    log, state, out = tmp_path / "app.log", tmp_path / "follow.state", tmp_path / "out.log"
    log.write_bytes(b"one\ntwo\n")
    proc = cobus_popen(["run", f"follow --state {state} --from-start {log} | write {out}"])
    try:
        wait_for(lambda: out.exists() and out.read_bytes() == b"one\ntwo\n", 30, "the lines")
        with open(log, "ab") as f:
            f.write(b"three\n")
        wait_for(lambda: out.read_bytes().endswith(b"three\n"), 30, "the new line")
    finally:
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    assert (proc.returncode, err) == (code, b"")
    assert saved_offset(state, log) == log.stat().st_size  # the last checkpoint was written


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "a state file must be a regular file"),
        (b"", "the state file is empty; remove"),
        (b"{broken", "not a follow state file; remove"),
        (
            b'{"version": 1, "files": {"x": {"dev": "a", "ino": 1, "offset": 0, "head_len": 0, '
            b'"head_hash": ""}}}',
            "not a follow state file; remove",
        ),
    ],
    ids=["dev-zero", "empty", "corrupt", "wrong-types"],
)
def test_a_bad_state_file_is_named_with_a_way_out(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    state = "/dev/zero" if content is None else str(tmp_path / "follow.state")
    if content is not None:
        Path(state).write_bytes(content)
    done = run_cobus(["run", f"follow --state {state} {tmp_path / 'app.log'} | print"], timeout=30)
    assert (done.returncode, done.stdout) == (1, b"")
    assert done.stderr.decode().startswith(f"cobus: error: {state}: {message}")


def test_a_huge_state_file_is_not_read(tmp_path: Path) -> None:
    state = tmp_path / "follow.state"
    with open(state, "wb") as f:
        f.truncate(1 << 30)  # sparse: a gigabyte of nothing, at no cost
    done = run_cobus(["run", f"follow --state {state} {tmp_path / 'app.log'} | print"], timeout=30)
    assert (done.returncode, done.stdout) == (1, b"")
    assert done.stderr.decode().startswith(f"cobus: error: {state}: too big for a follow state file")
