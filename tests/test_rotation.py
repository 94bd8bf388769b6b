"""follow under the real logrotate (copytruncate and create), side by side with GNU tail -F.

The harness is scripts/measure_rotation.py (loaded from its file: scripts/ is
not a package), run short: a writer at 1,000 lines/s for 4 s, logrotate every
second. .ci/run installs logrotate, so CI never skips this.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
from util import ROOT


def _harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "measure_rotation", ROOT / "scripts" / "measure_rotation.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(
    not (shutil.which("logrotate") or Path("/usr/sbin/logrotate").exists()), reason="no logrotate"
)
@pytest.mark.parametrize("mode", ["copytruncate", "create"])
def test_follow_loses_no_more_than_tail_and_nothing_twice(tmp_path: Path, mode: str) -> None:
    tallies = _harness().measure(tmp_path, mode, rate=1000, seconds=4.0, rotate_every=1.0)
    cobus = tallies["cobus"]
    assert cobus.written > 3000
    assert cobus.duplicated == 0
    # Every line still in a file (app.log or a rotated copy) was delivered: the
    # lost ones, if any, lived only between logrotate's copy and its truncation.
    assert cobus.lost_on_disk == 0, tallies
    tail = tallies.get("tail -F")
    if tail is not None and mode == "create":
        assert cobus.lost <= tail.lost, tallies
