"""Tests for scripts/make_samples.py and the committed samples/ it produced.

The generator is loaded from its file (scripts/ is not a package). The
committed samples must be exactly what the generator writes today, so a
change to the generator comes with regenerated samples.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "make_samples.py"
SAMPLES = ROOT / "samples"
COMMON_LOG = re.compile(rb'(\S+) (\S+) (\S+) \[(.*?)\] "(\S+) (\S+) (\S+)" (\S+) (\S+)')
BUS_CHILDREN = [
    "id",
    "route",
    "actualRoute",
    "color",
    "revenue",
    "direction",
    "latitude",
    "longitude",
    "pattern",
    "patternDirection",
    "run",
    "finalStop",
    "operator",
]
DIRECTIONS = {"North Bound", "South Bound", "East Bound", "West Bound"}


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_samples", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_samples"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _log(gen: ModuleType, size: int, seed: int = 7, rate: float = 0.015) -> bytes:
    out = io.BytesIO()
    gen.write_log(out, size, seed, rate)
    return out.getvalue()


def _xml(gen: ModuleType, size: int, seed: int = 7, rate: float = 0.01) -> bytes:
    out = io.BytesIO()
    gen.write_xml(out, size, seed, rate)
    return out.getvalue()


# -- determinism ---------------------------------------------------------


def test_same_seed_gives_same_bytes(gen: ModuleType) -> None:
    assert _log(gen, 200_000) == _log(gen, 200_000)
    assert _xml(gen, 200_000) == _xml(gen, 200_000)


def test_other_seed_gives_other_bytes(gen: ModuleType) -> None:
    assert _log(gen, 50_000, seed=1) != _log(gen, 50_000, seed=2)
    assert _xml(gen, 50_000, seed=1) != _xml(gen, 50_000, seed=2)


def test_smaller_log_is_a_prefix_of_a_larger_one(gen: ModuleType) -> None:
    small, large = _log(gen, 30_000), _log(gen, 3_000_000)
    assert large.startswith(small)


def test_size_is_respected_with_whole_items(gen: ModuleType) -> None:
    log = _log(gen, 100_000)
    assert 99_000 < len(log) <= 100_000 and log.endswith(b"\n")
    feed = _xml(gen, 100_000)
    assert 99_000 < len(feed) <= 100_000 and feed.endswith(b"</buses>\r\n")


def test_parse_size(gen: ModuleType) -> None:
    assert gen.parse_size("200M") == 200 << 20
    assert gen.parse_size("800k") == 800 << 10
    assert gen.parse_size("1G") == 1 << 30
    assert gen.parse_size("1234") == 1234


def test_cli_writes_the_same_file_twice(tmp_path: Path) -> None:
    outputs = []
    for name in ("a.xml", "b.xml"):
        out = tmp_path / name
        subprocess.run([sys.executable, str(SCRIPT), "--xml-size", "64K", "--out", str(out)], check=True)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] and len(outputs[0]) <= 64 << 10


def test_cli_rejects_out_without_one_size(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    assert "exactly one of --log-size and --xml-size" in run.stderr


# -- match rates ---------------------------------------------------------


def test_log_match_rate_is_roughly_honoured(gen: ModuleType) -> None:
    lines = _log(gen, 2_000_000, rate=0.05).splitlines()
    share = sum(b"python" in line for line in lines) / len(lines)
    assert 0.04 < share < 0.06


def test_xml_match_rate_is_roughly_honoured(gen: ModuleType) -> None:
    buses = ET.fromstring(_xml(gen, 2_000_000, rate=0.1)).findall("bus")
    share = sum(_is_match(b) for b in buses) / len(buses)
    assert 0.08 < share < 0.12


def _is_match(bus: ET.Element) -> bool:
    return bus.findtext("route") == "22" and bus.findtext("direction") == "North Bound"


# -- the committed samples -----------------------------------------------


def test_committed_samples_equal_a_fresh_generation(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(SCRIPT), "--samples-dir", str(tmp_path)], check=True)
    for name in ("access.log", "buses.xml"):
        assert (SAMPLES / name).read_bytes() == (tmp_path / name).read_bytes(), (
            f"samples/{name} is stale: run python scripts/make_samples.py"
        )


def test_samples_are_small_enough_to_commit() -> None:
    total = sum(p.stat().st_size for p in SAMPLES.rglob("*") if p.is_file())
    assert total < 2_000_000


def test_access_log_is_common_log_format() -> None:
    data = (SAMPLES / "access.log").read_bytes()
    assert 600_000 <= len(data) <= 900_000
    assert data.endswith(b"\n") and b"\r" not in data
    lines = data.split(b"\n")[:-1]
    bad = [line for line in lines if not COMMON_LOG.fullmatch(line)]
    assert not bad, bad[:3]
    assert any(b"python" in line for line in lines)
    assert any(b" /robots.txt " in line for line in lines)
    assert any(line.endswith(b" -") for line in lines)


def test_access_log_timestamps_increase() -> None:
    lines = (SAMPLES / "access.log").read_bytes().splitlines()
    stamps = [m[4] for m in map(COMMON_LOG.fullmatch, lines) if m]
    assert len(stamps) == len(lines)
    times = [dt.datetime.strptime(s.decode(), "%d/%b/%Y:%H:%M:%S %z") for s in stamps]
    assert times == sorted(times)
    assert stamps[0] == b"24/Feb/2008:00:08:59 -0600"


def test_bus_feed_shape() -> None:
    data = (SAMPLES / "buses.xml").read_bytes()
    assert 400_000 <= len(data) <= 600_000
    assert data.startswith(b'<?xml version="1.0"?>\r\n')
    assert b"\n" not in data.replace(b"\r\n", b"")  # every line ends in CRLF
    assert b"\t\t<finalStop><![CDATA[" in data
    root = ET.fromstring(data)
    assert root.tag == "buses"
    buses = root.findall("bus")
    for bus in buses:
        tags = [child.tag for child in bus]
        assert tags == [t for t in BUS_CHILDREN if t in tags]
        assert len(tags) in (len(BUS_CHILDREN), len(BUS_CHILDREN) - 1)
        assert bus.findtext("direction") in DIRECTIONS
    assert 70 <= len({b.findtext("route") for b in buses}) <= 90
    assert sum(_is_match(b) for b in buses) >= 3
    assert any(b.find("actualRoute") is not None for b in buses)
