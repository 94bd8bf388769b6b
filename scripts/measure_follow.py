"""Measure ``follow`` as a user runs it: line latency from write to output, and idle CPU.

    python scripts/measure_follow.py [--lines 300] [--files 10] [--seconds 20]

Both numbers come from ``python -m cobus run 'follow ... | print'`` as a real
process. Latency: this script appends a line carrying ``time.monotonic()`` and
reads it back from cobus's stdout (one machine-wide clock on Linux). Idle CPU:
user + system time of the process, from /proc, while it follows files nobody
writes to.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def start(pipeline: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "cobus", "run", pipeline], stdout=subprocess.PIPE, env=env)


def latency(folder: Path, lines: int) -> list[float]:
    """Seconds from each append to its line on cobus's stdout."""
    log = folder / "latency.log"
    log.write_text("")
    proc = start(f"follow {log} | print")
    assert proc.stdout is not None
    delays: list[float] = []
    arrived = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            delays.append(time.monotonic() - float(line))
            arrived.set()

    threading.Thread(target=reader, daemon=True).start()
    try:
        with open(log, "ab", buffering=0) as f:
            # Past interpreter start-up: a line written before follow opened the file is not read.
            deadline = time.monotonic() + 60
            while not arrived.is_set():
                if time.monotonic() > deadline:
                    raise SystemExit("cobus did not start following within 60 s")
                f.write(b"%r\n" % time.monotonic())
                arrived.wait(0.2)
            time.sleep(0.3)
            delays.clear()
            for _ in range(lines):
                arrived.clear()
                f.write(b"%r\n" % time.monotonic())
                if not arrived.wait(5):
                    raise SystemExit("a line did not arrive within 5 s")
                time.sleep(random.uniform(0.0, 0.3))  # out of step with the polls
    finally:
        proc.terminate()
        proc.wait(10)
    return delays


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def idle_cpu(folder: Path, files: int, seconds: float) -> float:
    """Share of one core used by an idle follow of ``files`` files."""
    logs = [folder / f"idle-{i}.log" for i in range(files)]
    for log in logs:
        log.write_text("an old line\n")
    proc = start(f"follow {' '.join(map(str, logs))} | print")
    try:
        time.sleep(2.0)  # past start-up
        cpu, wall = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(seconds)
        return (cpu_seconds(proc.pid) - cpu) / (time.monotonic() - wall)
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=300, help="lines for the latency run")
    parser.add_argument("--files", type=int, default=10, help="files for the idle run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the idle run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        delays = sorted(latency(Path(tmp), args.lines))
        p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
        print(
            f"latency over {len(delays)} lines: median {statistics.median(delays) * 1000:.1f} ms,"
            f" p99 {p99 * 1000:.1f} ms, max {delays[-1] * 1000:.1f} ms"
        )
        share = idle_cpu(Path(tmp), args.files, args.seconds)
        print(f"idle CPU of a {args.files}-file follow over {args.seconds:g} s: {share * 100:.2f}% of a core")


if __name__ == "__main__":
    main()
