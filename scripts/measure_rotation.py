"""Lines lost and duplicated by ``follow`` under the real logrotate, side by side with ``tail -F``.

    python scripts/measure_rotation.py [--mode copytruncate|create|both] [--rate 3000]
                                       [--seconds 30] [--rotate-every 3] [--runs 1]

A writer appends numbered lines to app.log at a steady rate while logrotate
(``logrotate -f`` with a generated config, every --rotate-every seconds)
rotates it: ``copytruncate`` (the writer keeps its descriptor; logrotate
copies, then truncates) or ``create`` (logrotate renames, the writer reopens
the name as an application does after its postrotate signal). ``cobus run
'follow app.log | print'`` and GNU ``tail -F`` follow the same file at once;
each line number they print is counted: lost = written but never printed,
duplicated = printed more than once; "on disk": lost lines still in a file
after the run (a follower could have read them; the others existed only
between logrotate's copy and its truncation). tests/test_rotation.py runs a short
version of this and asserts cobus loses no more than tail -F.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_END = b"end of the run"


@dataclass
class Tally:
    """What one follower printed, against what was written.

    ``lost_on_disk``: lost lines that are still in a file after the run (in
    app.log or a rotated copy): a follower could have had them.
    """

    written: int
    lost: int
    duplicated: int
    lost_on_disk: int


def followers(log: Path, folder: Path) -> dict[str, list[str]]:
    """The commands that follow ``log``: cobus always, GNU tail -F where present."""
    found = {"cobus": [sys.executable, "-m", "cobus", "run", f"follow {log} | print"]}
    version = (
        subprocess.run(["tail", "--version"], check=False, capture_output=True)
        if shutil.which("tail")
        else None
    )
    if version is not None and b"GNU" in version.stdout:
        found["tail -F"] = ["tail", "-F", "-n", "0", "-s", "0.1", str(log)]
    return found


def logrotate_config(log: Path, mode: str) -> str:
    return f"{log} {{\n    rotate 100\n    {mode}\n    missingok\n    nocompress\n    size 1\n}}\n"


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class _Writer(threading.Thread):
    """Appends ``line N`` at ``rate`` lines a second; reopens the name when it was rotated away."""

    def __init__(self, log: Path, rate: int, seconds: float, reopen: bool) -> None:
        super().__init__(daemon=True)
        self.log, self.rate, self.seconds, self.reopen = log, rate, seconds, reopen
        self.written = 0

    def run(self) -> None:
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        start = time.monotonic()
        try:
            while (now := time.monotonic()) - start < self.seconds:
                due = int((now - start) * self.rate)
                while self.written < due:  # uneven lengths, so an offset into a new file cuts a line
                    os.write(fd, b"line %d %s\n" % (self.written, b"." * (self.written % 13)))
                    self.written += 1
                if self.reopen:
                    fd = self._reopened(fd)
                time.sleep(0.002)
        finally:
            os.close(fd)

    def _reopened(self, fd: int) -> int:
        """The new file once logrotate has created it (an application reopens on its signal)."""
        try:
            if os.stat(self.log).st_ino == os.fstat(fd).st_ino:
                return fd
            new = os.open(self.log, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError:  # renamed, not created yet: go on with the old one
            return fd
        os.close(fd)
        return new


def measure(folder: Path, mode: str, *, rate: int, seconds: float, rotate_every: float) -> dict[str, Tally]:
    """One run: every follower against the same writer and the same rotations."""
    logrotate = shutil.which("logrotate") or "/usr/sbin/logrotate"
    log = folder / "app.log"
    log.write_bytes(b"")
    conf = folder / "logrotate.conf"
    conf.write_text(logrotate_config(log, mode))
    outs: dict[str, Path] = {}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        for name, argv in followers(log, folder).items():
            outs[name] = folder / f"out.{name.split()[0]}"
            with open(outs[name], "wb") as out:
                procs[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL, env=env)

        # Ready when every follower printed a line written after it started.
        def ready() -> bool:
            with open(log, "ab") as f:
                f.write(b"warm-up\n")
            return all(b"warm-up" in p.read_bytes() for p in outs.values())

        _wait(ready, 60, "the followers to start")
        writer = _Writer(log, rate, seconds, reopen=mode == "create")
        writer.start()
        while writer.is_alive():
            writer.join(rotate_every)
            if writer.is_alive():
                subprocess.run(
                    [logrotate, "-f", "-s", str(folder / "logrotate.state"), str(conf)], check=True
                )
        with open(log, "ab") as f:  # after the last rotation: once printed, all before it was read
            f.write(_END + b"\n")
        _wait(lambda: all(_END in p.read_bytes() for p in outs.values()), 60, "the end of the run")
    finally:
        for p in procs.values():
            p.terminate()
            p.wait(30)
    on_disk: Counter[int] = Counter()
    for path in folder.glob("app.log*"):
        on_disk.update(_numbers(path.read_bytes()))
    return {name: _tally(_numbers(out.read_bytes()), writer.written, on_disk) for name, out in outs.items()}


def _numbers(text: bytes) -> Counter[int]:
    return Counter(int(line.split()[1]) for line in text.splitlines() if line.startswith(b"line "))


def _tally(seen: Counter[int], written: int, on_disk: Counter[int]) -> Tally:
    lost = [n for n in range(written) if n not in seen]
    duplicated = sum(c - 1 for c in seen.values() if c > 1)
    return Tally(written, len(lost), duplicated, sum(1 for n in lost if n in on_disk))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["copytruncate", "create", "both"], default="both")
    parser.add_argument("--rate", type=int, default=3000, help="lines a second")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of one run")
    parser.add_argument("--rotate-every", type=float, default=3.0, help="seconds between rotations")
    parser.add_argument("--runs", type=int, default=1, help="runs per mode")
    args = parser.parse_args()
    modes = ["copytruncate", "create"] if args.mode == "both" else [args.mode]
    print(f"{args.rate} lines/s for {args.seconds:g} s, logrotate every {args.rotate_every:g} s")
    for mode in modes:
        for run in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                tallies = measure(
                    Path(tmp), mode, rate=args.rate, seconds=args.seconds, rotate_every=args.rotate_every
                )
            for name, t in tallies.items():
                counts = (
                    f"written {t.written:7}  lost {t.lost:5} ({t.lost_on_disk} of them on disk)"
                    f"  dup {t.duplicated:5}"
                )
                print(f"{mode:12} run {run + 1}  {name:8} {counts}")


if __name__ == "__main__":
    main()
