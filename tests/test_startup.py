"""Start-up: a small pipeline loads only what it uses (real child processes, sys.modules read at exit).

How long start-up takes is measured by ``scripts/bench.py --only startup``;
these tests pin what is loaded, which is what decides it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from util import SAMPLES

LOG = SAMPLES / "access.log"

#: Run the CLI as ``python -m cobus`` does, then write the loaded module names to argv[1].
_PROBE = """
import json, runpy, sys
report, sys.argv = sys.argv[1], ["cobus", *sys.argv[2:]]
try:
    runpy.run_module("cobus", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
else:
    code = 0
with open(report, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""

#: Never needed by ``cat | head | print``: XML, drawing, the network, native scanners, workers,
#: click (cobus/entry.py reads a plain ``cobus run PIPELINE`` itself), the formatting
#: of records (with json: print writes lines as they are), and dataclasses with the
#: inspect module it loads (the start path's records are NamedTuples and plain classes;
#: a stage registers with the declared table's parameters, its signature unread).
HEAVY = (
    "click",
    "dataclasses",
    "inspect",
    "cobus.formats",
    "lxml",
    "rich",
    "socket",
    "_socket",
    "ssl",
    "redis",
    "hyperscan",
    "ctypes",
    "cobus.concurrency",
    "cobus.worker",
    "cobus.wire",
    "cobus.progress",
    "tomllib",
)


def loaded(tmp_path: Path, *args: str) -> tuple[object, list[str], bytes, bytes]:
    """Run ``cobus ARGS`` in a fresh interpreter: its exit code, modules loaded, stdout, stderr."""
    report = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(report), *args],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    data = json.loads(report.read_text())
    return data["code"], data["modules"], proc.stdout, proc.stderr


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def test_cat_head_print_loads_nothing_heavy(tmp_path: Path) -> None:
    code, modules, out, err = loaded(tmp_path, "run", f"cat {LOG} | head 1 | print")
    assert (code, err) == (0, b"")
    assert out == LOG.read_bytes().splitlines(keepends=True)[0]
    assert heavy(modules) == []
    stages = sorted(m for m in modules if m.startswith(("cobus.sources.", "cobus.stages.", "cobus.sinks.")))
    assert stages == ["cobus.sinks.basic", "cobus.sources.files", "cobus.stages.head"]


def test_a_stage_loads_its_module_when_a_pipeline_uses_it(tmp_path: Path) -> None:
    code, modules, _, err = loaded(tmp_path, "check", f"cat {LOG} | grep -i python")
    assert (code, err) == (0, b"")
    assert "cobus.stages.grep" in modules
    assert "cobus.stages.head" not in modules


def test_listing_and_did_you_mean_load_no_stage_module(tmp_path: Path) -> None:
    code, modules, _, err = loaded(tmp_path, "check", f"cat {LOG} | hed 1")
    assert code == 2
    assert b"unknown stage 'hed' (did you mean 'head'?)" in err
    assert [m for m in modules if m.startswith(("cobus.stages.", "cobus.sinks."))] == []
    code, modules, out, err = loaded(tmp_path, "stages")
    assert (code, err) == (0, b"")
    assert b"xread" in out and b"threaded" in out
    assert [m for m in modules if m.startswith(("cobus.sources.", "cobus.stages.", "cobus.sinks."))] == []
    assert "cobus.concurrency" not in modules
