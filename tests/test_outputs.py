"""Output failures for real: a full disk (/dev/full), a closed stdout, a reader that went away.

Every command ends with one line naming the output and exit 1, never a
traceback; ``| head`` still ends quietly.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from util import SAMPLES

from cobus.errors import SinkError
from cobus.outputs import NamedOutput

LOG = SAMPLES / "access.log"
XML = SAMPLES / "buses.xml"

PIPELINES = [
    f"cat {LOG} | count",
    f"cat {LOG} | grep python | print",
    f"cat {LOG} | parse apache | count by status",
    f"cat {LOG} | parse apache | top 3 path",
    f"cat {LOG} | parse apache | sum bytes by method",
    f"cat {LOG} | parse apache | uniq -l host",
    f"cat {LOG} | parse apache | csv host,status",
    f"cat {LOG} | parse apache | jsonl",
    f"cat {LOG} | parse apache | head 5 | table host,status",
    f"xml {XML} | records bus | csv id,route",
    f"cat {LOG} | threaded [grep python] | print",
    f"cat {LOG} | subprocess [grep python] | print",
    f"cat {LOG} | subprocess [grep python | print]",
    f"cat {LOG} | parallel 2 [grep python] | print",
    f"cat {LOG} | broadcast [grep python] [grep ply] | print",
    f"cat {LOG} | broadcast [grep python | print] [grep ply | count]",
]

COMMANDS = [
    ["explain", f"cat {LOG} | count"],
    ["stages"],
    ["stages", "where"],
    ["check", f"cat {LOG} | count"],
    ["completion", "bash"],
    ["--help"],
    ["--version"],
]


def _cobus(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """``cobus ARGS`` as a real process with stdout as given and stderr captured."""
    return subprocess.run(
        [sys.executable, "-m", "cobus", *args], stderr=subprocess.PIPE, timeout=60, check=False, **kwargs
    )


def _one_line(stderr: bytes, reason: bytes) -> None:
    assert stderr == b"cobus: error: stdout: " + reason + b"\n", stderr


def _closed_stdout() -> None:
    os.close(1)


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_full_disk_on_stdout_is_one_line(pipeline: str) -> None:
    with open("/dev/full", "wb") as full:
        done = _cobus(["run", pipeline], stdout=full)
    assert done.returncode == 1
    _one_line(done.stderr, b"No space left on device")


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:1]))
def test_full_disk_for_every_command(args: list[str]) -> None:
    with open("/dev/full", "wb") as full:
        done = _cobus(args, stdout=full)
    assert done.returncode == 1
    _one_line(done.stderr, b"No space left on device")


@pytest.mark.parametrize(
    "args",
    [["run", PIPELINES[0]], ["run", PIPELINES[1]], ["run", PIPELINES[10]], *COMMANDS[:4]],
    ids=lambda a: " ".join(a[:1]),
)
def test_closed_stdout_is_one_line(args: list[str]) -> None:
    done = _cobus(args, preexec_fn=_closed_stdout)
    assert done.returncode == 1
    _one_line(done.stderr, b"Bad file descriptor")


def test_a_closed_stdout_is_never_reused_by_a_file(tmp_path: Path) -> None:
    """The file ``write`` opens must not land on fd 1, where stdout's bytes would follow it."""
    out = tmp_path / "out.log"
    done = _cobus(
        ["run", f"cat {LOG} | broadcast [grep python | write {out}] [grep ply | print]"],
        preexec_fn=_closed_stdout,
    )
    assert done.returncode == 1
    _one_line(done.stderr, b"Bad file descriptor")
    assert all(b"python" in line for line in out.read_bytes().splitlines())


LONG = f"cat {LOG}" + " | grep a" * 200 + " | count"


@pytest.mark.parametrize(
    "args",
    [
        ["run", PIPELINES[1]],
        ["run", PIPELINES[10]],
        ["run", f"cat {LOG} | parse apache | jsonl"],
        ["explain", LONG],  # rich would exit 1 on EPIPE by itself
        ["stages"],
    ],
    ids=lambda a: a[0],
)
def test_a_reader_that_went_away_is_no_error(args: list[str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cobus", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""
    proc.stderr.close()


def test_named_output_fails_once_and_stays_failed(tmp_path: Path) -> None:
    with open("/dev/full", "wb") as full:
        out = NamedOutput(io.BufferedWriter(io.FileIO(os.dup(full.fileno()), "w"), 4), "report.txt")
        out.write(b"ab")
        with pytest.raises(SinkError, match=r"^report\.txt: No space left on device$"):
            out.write(b"cdefgh")
        with pytest.raises(SinkError, match=r"^report\.txt: "):
            out.flush()
        out.close()
