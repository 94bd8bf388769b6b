"""How cost grows on hostile-shaped XML: a huge attribute, deep nesting (time and peak memory).

For each size, every parser runs ``cobus run 'xml --parser P F | events |
count'`` as its own process; the table shows CPU seconds and peak RSS, so a
cost that grows faster than the input shows as a ratio between rows well
over the ratio of sizes. Files are written to a temporary directory.

    python scripts/bench_xml_limits.py            # attribute 8/16/32 MB, depth 10k/20k/40k
    python scripts/bench_xml_limits.py --quick    # the two smaller sizes of each
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path


def _attribute(size: int) -> bytes:
    return b'<r a="' + b"x" * size + b'"/>'


def _nested(depth: int) -> bytes:
    return b"<a>" * depth + b"x" + b"</a>" * depth


def _run(parser: str, path: Path) -> tuple[float, float, bool]:
    """CPU seconds and peak RSS (MiB) of one cobus process; whether it succeeded."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cobus", "run", f"xml --parser {parser} {path} | events | count"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode == 0


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--quick", action="store_true", help="only the two smaller sizes")
    args = options.parse_args()
    cases: list[tuple[str, Callable[[int], bytes], list[int]]] = [
        ("attribute MB", _attribute, [8 << 20, 16 << 20, 32 << 20]),
        ("nesting depth", _nested, [10_000, 20_000, 40_000]),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'case':<16}{'size':>10}  " + "  ".join(f"{p + ' cpu s / MiB':>22}" for p in PARSERS))
        for label, make, sizes in cases:
            for size in sizes[:2] if args.quick else sizes:
                path = Path(tmp) / "doc.xml"
                path.write_bytes(make(size))
                shown = size >> 20 if label.startswith("attribute") else size
                cells = []
                for parser in PARSERS:
                    cpu, peak, ok = _run(parser, path)
                    cells.append(f"{cpu:>10.2f} / {peak:>7.0f}{'' if ok else ' (refused)'}")
                print(f"{label:<16}{shown:>10}  " + "  ".join(f"{c:>22}" for c in cells))
                os.remove(path)


PARSERS = ("expat", "lxml", "sax")

if __name__ == "__main__":
    main()
