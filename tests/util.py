"""Test helpers: the real data folder, running cobus as a process, a collecting sink.

Imported by tests as ``from util import ...`` (pytest puts tests/ on the path).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from cobus.core import coroutine

ROOT = Path(__file__).resolve().parents[1]
#: Real third-party files beside the checkout (absent on some machines).
DATA = ROOT.parent / "shared" / "data"
SAMPLES = ROOT / "samples"


def needs_data(name: str) -> Path:
    """The path of a real data file, or skip the test when it is absent."""
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{path} is not here")
    return path


def run_cobus(args: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m cobus ARGS`` as a real process."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **kwargs.pop("env", {})}
    kwargs.setdefault("timeout", 60)
    return subprocess.run(
        [sys.executable, "-m", "cobus", *args], capture_output=True, env=env, check=False, **kwargs
    )


@coroutine
def collect(into: list[Any]) -> Any:
    """A sink that appends every batch it receives to ``into``."""
    while True:
        into.append((yield))


#: Python as a terminal would start it: SIGINT raises KeyboardInterrupt. A shell
#: starts background jobs with SIGINT ignored and children inherit that, so a
#: test that sends SIGINT must not depend on how the test run itself started.
_AS_FROM_A_TERMINAL = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('cobus', run_name='__main__')"
)


def cobus_popen(args: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """``cobus ARGS`` as a running process with pipes, ready for signals."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([sys.executable, "-c", _AS_FROM_A_TERMINAL, *args], **kwargs)
