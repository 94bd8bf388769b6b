"""The benchmark command of cobus: every performance claim is measured here.

    python scripts/bench.py                  # full: >= 200 MB inputs, medians of 5 (< 10 min, 2 cores)
    python scripts/bench.py --quick          # 50/25 MB inputs, medians of 3 (< 1 min)
    python scripts/bench.py --only grep,xml  # some groups; --list names them all
    python scripts/bench.py --only startup   # a small pipeline against `python -c pass` (~1 min)

A *group* is one function registered in ``GROUPS`` with ``@group(name)``. It
gets its input from ``make_samples.py`` (cached under ``--cache-dir``), times
its commands interleaved round-robin (so drift in the machine hits every
command alike) and returns rows with a median, the children's peak RSS (from
``os.wait4``) and a ratio to a named baseline; the run ends with one table
across groups and the issue targets marked PASS/FAIL. Every command's stdout
goes to a real file in the cache dir, never /dev/null: GNU grep stops at the
first match when its output is /dev/null. Children run with the caller's
environment untouched (PYTHONUNBUFFERED included: cobus must cope with it).
Optional tools (rg, xmlstarlet) and cobus stages that do not exist yet are
skipped with a note. Standard library only; nothing is installed.
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from make_samples import parse_size

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
GENERATOR = SCRIPTS / "make_samples.py"
SAMPLE_LOG = ROOT / "samples" / "access.log"
SAMPLE_XML = ROOT / "samples" / "buses.xml"
PY = sys.executable


# --------------------------------------------------------------------------
# settings and results


@dataclass(frozen=True)
class Settings:
    quick: bool
    repeats: int
    cache_dir: Path
    log_size: int
    xml_size: int
    rss_scaling: bool
    #: Seconds a group may spend timing: fewer rounds (down to min_repeats) past it.
    budget: float
    min_repeats: int
    seed: int = 2008


@dataclass(frozen=True)
class Command:
    """One program to time; ``compare`` says whether its output joins the identity check."""

    name: str
    argv: tuple[str, ...]
    compare: bool = True


@dataclass
class Timing:
    command: Command
    output: Path
    seconds: list[float] = field(default_factory=list)
    peak_rss_kb: int = 0
    rss_floor_kb: int = 0
    failure: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


@dataclass(frozen=True)
class Row:
    group: str
    name: str
    value: float
    unit: str  # "s" for a timed command, "ns/line" for in-process work
    rss_mb: float | None
    ratio: float | None
    #: The child's true peak is at most rss_mb (see run_child): shown as "<=".
    rss_at_floor: bool = False


@dataclass(frozen=True)
class Check:
    """One target from the issues, with the measured figure that decides it."""

    text: str
    ok: bool
    measured: str


@dataclass
class GroupResult:
    name: str
    baseline: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    skipped: str = ""


def say(message: str) -> None:
    """Progress for people: stderr, so stdout holds only the results."""
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# running children


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_kb: int
    #: The reaper's own peak RSS: the child's figure cannot go below it (see run_child).
    rss_floor_kb: int
    returncode: int
    stderr: str


_REAPER = textwrap.dedent("""\
    import os, sys, time
    with open("/proc/self/status") as f:  # this process's own peak: the child's floor
        floor = next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)
    report, argv = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    with open(report, "w") as f:
        f.write(f"{seconds} {usage.ru_maxrss} {floor} {os.waitstatus_to_exitcode(status)}")
""")


def run_child(argv: Sequence[str], stdout: Path) -> Run:
    """Run ``argv`` (in the repository root) with stdout to a file; time and peak RSS.

    Discussion: why a reaper. Linux carries the peak RSS of the address space a
    process had before ``execve`` into its ``ru_maxrss``, and a child spawned by
    the bench starts in (a copy of) the bench's address space. So each command is
    spawned by a minimal ``python -S -I`` reaper (~9 MB) that times it and reads
    its ``os.wait4`` rusage: figures above the reaper's own peak are exact, those
    at or below it are shown as "<= floor" (GNU grep really needs ~2 MB). The
    reaper's start-up is not in the time.
    """
    err_path, report = stdout.with_suffix(".err"), stdout.with_suffix(".rusage")
    report.unlink(missing_ok=True)
    with open(stdout, "wb") as out, open(err_path, "wb") as err:
        subprocess.run(
            [PY, "-S", "-I", "-c", _REAPER, str(report), *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=ROOT,
            check=False,
        )
    stderr = err_path.read_text(errors="replace")
    try:
        seconds, peak, floor, code = report.read_text().split()
    except (OSError, ValueError):  # argv[0] not found, or the reaper itself failed
        return Run(0.0, 0, 0, 127, stderr or f"cannot run {argv[0]}")
    return Run(float(seconds), int(peak), int(floor), int(code), stderr)


def failure_reason(run: Run) -> str:
    """'' when the run succeeded, else one line saying why it is skipped."""
    if run.returncode == 0 or (run.returncode == 1 and not run.stderr.strip()):
        return ""  # 1 without a message: nothing selected, as grep says
    lines = [ln.strip() for ln in run.stderr.splitlines() if ln.strip()]
    last = lines[-1] if lines else "(no stderr)"
    if "unknown stage" in run.stderr.lower():
        unknown = next(ln for ln in lines if "unknown stage" in ln.lower())
        return f"stage not available yet ({unknown})"
    return f"exit {run.returncode}: {last[:160]}"


def cobus(pipeline: str) -> tuple[str, ...]:
    """``cobus run PIPELINE`` with the current interpreter (children run in ROOT: the tree's cobus)."""
    return (PY, "-m", "cobus", "run", pipeline)


def quoted(path: Path | str) -> str:
    """A path as one word of pipeline text (the language quotes like a shell)."""
    return shlex.quote(str(path))


class Bench:
    """What groups share: settings, cached inputs, probing and interleaved timing."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.out_dir = settings.cache_dir / "out"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._generator_tag = f"{_file_hash(GENERATOR):.8}"
        self._prune_stale_inputs()

    def _prune_stale_inputs(self) -> None:
        """Inputs made by another version of the generator would only fill the disk."""
        for kind in ("log", "xml"):
            for path in self.settings.cache_dir.glob(f"{kind}-*-s*-g*.{kind}"):
                if not path.stem.endswith(f"-g{self._generator_tag}"):
                    say(f"  removing stale input {path.name}")
                    path.unlink()

    # -- inputs ----------------------------------------------------------

    def log(self, size: int | None = None, match_rate: float | None = None) -> Path:
        return self._input("log", size or self.settings.log_size, match_rate)

    def xml(self, size: int | None = None, match_rate: float | None = None) -> Path:
        return self._input("xml", size or self.settings.xml_size, match_rate)

    def _input(self, kind: str, size: int, match_rate: float | None) -> Path:
        rate = "" if match_rate is None else f"-r{match_rate}"
        path = self.settings.cache_dir / (
            f"{kind}-{_human(size)}-s{self.settings.seed}{rate}-g{self._generator_tag}.{kind}"
        )
        if not path.exists():
            argv = [
                PY,
                str(GENERATOR),
                f"--{kind}-size",
                str(size),
                "--out",
                str(path),
                "--seed",
                str(self.settings.seed),
            ]
            if match_rate is not None:
                argv += ["--match-rate", str(match_rate)]
            say(f"  generating {path.name} ...")
            start = time.perf_counter()
            subprocess.run(argv, check=True)
            say(f"  generated in {time.perf_counter() - start:.1f} s")
        _warm(path)
        return path

    # -- commands --------------------------------------------------------

    def output_path(self, group: str, name: str) -> Path:
        slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
        return self.out_dir / f"{group}-{slug}.out"

    def probe(self, group: str, argv: Sequence[str]) -> str:
        """Run a command on a small input first: '' if it works, else why not."""
        return failure_reason(run_child(argv, self.output_path(group, "probe")))

    def interleave(self, result: GroupResult, commands: Sequence[Command]) -> list[Timing]:
        """Time commands round-robin, rotating the order each round; failures drop out.

        When the first round shows that all rounds would overrun the group's
        budget, fewer rounds are run (never fewer than ``min_repeats``) and a
        note says so: this keeps --quick under a minute while a stage is slow.
        """
        settings = self.settings
        timings = [Timing(c, self.output_path(result.name, c.name)) for c in commands]
        repeats, r = settings.repeats, 0
        while r < repeats:
            started = time.perf_counter()
            shift = r % len(timings)
            for t in timings[shift:] + timings[:shift]:
                if not t.failure:
                    _record(t, run_child(t.command.argv, t.output))
            r += 1
            say(
                f"  round {r}/{repeats}: "
                + ", ".join(f"{t.command.name} {t.seconds[-1]:.2f}s" for t in timings if not t.failure)
            )
            if r == 1:
                took = time.perf_counter() - started
                affordable = int(settings.budget // took)
                if affordable < repeats:
                    repeats = max(min(settings.min_repeats, repeats), affordable)
                    result.notes.append(
                        f"medians of {repeats}, not {settings.repeats}: one round took {took:.0f} s "
                        f"(budget {settings.budget:.0f} s per group)"
                    )
        return timings


def _record(timing: Timing, run: Run) -> None:
    timing.failure = failure_reason(run)
    timing.seconds.append(run.seconds)
    timing.peak_rss_kb = max(timing.peak_rss_kb, run.peak_rss_kb)
    timing.rss_floor_kb = max(timing.rss_floor_kb, run.rss_floor_kb)


def _warm(path: Path) -> None:
    """Read a file once so every command meets it in the page cache."""
    buffer = bytearray(1 << 20)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buffer):
            pass


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _human(size: int) -> str:
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size)


# --------------------------------------------------------------------------
# turning timings into rows and checks

#: A figure this close to the reaper's floor says only "no more than the floor".
_FLOOR_SLACK_KB = 1024


def rows_for(group: str, timings: Sequence[Timing], baseline: str) -> list[Row]:
    base = next((t.median for t in timings if t.command.name == baseline and not t.failure), None)
    return [
        Row(
            group,
            t.command.name,
            t.median,
            "s",
            t.peak_rss_kb / 1024,
            t.median / base if base else None,
            t.peak_rss_kb <= t.rss_floor_kb + _FLOOR_SLACK_KB,
        )
        for t in timings
        if not t.failure
    ]


def failure_notes(timings: Sequence[Timing]) -> list[str]:
    return [f"{t.command.name}: dropped, {t.failure}" for t in timings if t.failure]


def identical_outputs(
    result: GroupResult, timings: Sequence[Timing], normalise: Callable[[bytes], bytes] | None = None
) -> None:
    """Check every compared output against the baseline's; a mismatch is shouted in the notes."""
    ok = [t for t in timings if t.command.compare and not t.failure]
    ref = next((t for t in ok if t.command.name == result.baseline), None)
    if ref is None or len(ok) < 2:
        return
    bad = [t.command.name for t in ok if not _same(ref.output, t.output, normalise)]
    how = "byte-identical" if normalise is None else "identical (header, line ends normalised)"
    if bad:
        result.notes.append(
            f"!!! OUTPUT MISMATCH: {', '.join(bad)} differ from {result.baseline}; "
            f"compare the files in {ref.output.parent}"
        )
    result.checks.append(
        Check(
            f"outputs {how} to {result.baseline}'s",
            not bad,
            f"{len(ok)} commands, {_count_lines(ref.output):,} lines"
            + (f"; differing: {', '.join(bad)}" if bad else ""),
        )
    )


def _same(a: Path, b: Path, normalise: Callable[[bytes], bytes] | None) -> bool:
    if normalise is None:
        return filecmp.cmp(a, b, shallow=False)
    return normalise(a.read_bytes()) == normalise(b.read_bytes())


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def ratio_of(rows: Sequence[Row], name: str, other: str) -> float | None:
    values = {r.name: r.value for r in rows}
    if name in values and other in values:
        return values[name] / values[other]
    return None


def check_ratio(rows: Sequence[Row], text: str, name: str, other: str, limit: float) -> Check | None:
    """``name`` takes at most ``limit`` times as long as ``other`` (None if either is missing)."""
    ratio = ratio_of(rows, name, other)
    if ratio is None:
        return None
    return Check(text, ratio <= limit, f"{ratio:.2f}x")


# --------------------------------------------------------------------------
# groups

GroupFn = Callable[[Bench], GroupResult]
GROUPS: dict[str, GroupFn] = {}


def group(name: str) -> Callable[[GroupFn], GroupFn]:
    def register(fn: GroupFn) -> GroupFn:
        GROUPS[name] = fn
        return fn

    return register


_PY_GREP_LOOP = textwrap.dedent("""\
    import sys
    out = open(1, "wb", closefd=False)
    for line in open(sys.argv[1], "rb"):
        if b"python" in line:
            out.write(line)
    out.flush()
""")


#: Small pipelines whose time is nearly all start-up, against a bare interpreter.
_STARTUP = {
    "cat | head | print": "cat {log} | head 1 | print",
    "cat | grep | head | print": "cat {log} | grep python | head 1 | print",
}


@group("startup")
def startup_group(b: Bench) -> GroupResult:
    """Start-up: a small pipeline against `python -c pass` (same interpreter), interleaved."""
    result = GroupResult("startup", baseline="python -c pass")
    # As after `pip install`, cobus runs from bytecode: with PYTHONDONTWRITEBYTECODE set
    # (as on some CI machines), every run would otherwise compile every module it imports.
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "cobus")], check=True)
    result.notes.append("cobus/ compiled to bytecode first (compileall), as an installed cobus is")
    commands = [Command(result.baseline, (PY, "-c", "pass"), compare=False)]
    for name, text in _STARTUP.items():
        argv = cobus(text.format(log=quoted(SAMPLE_LOG)))
        reason = b.probe("startup", argv)
        if reason:
            result.notes.append(f"{name}: skipped, {reason}")
        else:
            commands.append(Command(f"cobus {name}", argv, compare=False))
    # Each run is tens of milliseconds: many more rounds than a throughput group, same budget.
    rounds = max(b.settings.repeats * 6, 15)
    timings = [Timing(c, b.output_path("startup", c.name)) for c in commands]
    for r in range(rounds):
        shift = r % len(timings)
        for t in timings[shift:] + timings[:shift]:
            if not t.failure:
                _record(t, run_child(t.command.argv, t.output))
    say("  " + ", ".join(f"{t.command.name} {t.median * 1000:.1f} ms" for t in timings if not t.failure))
    result.rows = rows_for("startup", timings, result.baseline)
    result.notes += failure_notes(timings)
    result.notes.append(f"medians of {rounds} interleaved runs; ratio = cobus / python -c pass")
    name, base = f"cobus {next(iter(_STARTUP))}", result.baseline
    checks = [
        check_ratio(result.rows, "start-up at most 3x a bare interpreter (floor)", name, base, 3.0),
        check_ratio(result.rows, "start-up at most 2x a bare interpreter (goal)", name, base, 2.0),
    ]
    result.checks = [c for c in checks if c]
    return result


@group("grep")
def grep_group(b: Bench) -> GroupResult:
    """cat | grep python | print against GNU grep, ripgrep and a Python line loop."""
    result = GroupResult("grep", baseline="GNU grep -F")
    log = b.log()
    commands = [Command("GNU grep -F", ("grep", "-F", "python", str(log)))]
    if shutil.which("rg"):
        commands.append(Command("ripgrep -F", ("rg", "-F", "python", str(log))))
    else:
        result.notes.append("ripgrep: not on PATH, skipped (apt-get install ripgrep)")
    commands.append(Command("python line loop", (PY, "-c", _PY_GREP_LOOP, str(log))))
    reason = b.probe("grep", cobus(f"cat {quoted(SAMPLE_LOG)} | grep python | print"))
    if reason:
        result.notes.append(f"cobus: skipped, {reason}")
    else:
        empty = b.settings.cache_dir / "empty.log"
        empty.touch()
        commands += [
            Command("cobus", cobus(f"cat {quoted(log)} | grep python | print")),
            Command(
                "cobus startup (empty file)",
                cobus(f"cat {quoted(empty)} | grep python | print"),
                compare=False,
            ),
        ]
    timings = b.interleave(result, commands)
    result.rows = rows_for("grep", timings, result.baseline)
    result.notes += failure_notes(timings)
    result.checks = [
        c
        for c in (
            check_ratio(result.rows, "cobus within 2.0x of GNU grep -F", "cobus", "GNU grep -F", 2.0),
            check_ratio(
                result.rows, "cobus faster than the Python line loop", "cobus", "python line loop", 1.0
            ),
        )
        if c
    ]
    identical_outputs(result, timings)
    if not reason:
        # The searches of issue 9 run on 1 GB in the full mode (--log-size, if larger, wins).
        size = b.settings.log_size if b.settings.quick else max(b.settings.log_size, 1 << 30)
        _grep_searches(b, result, b.log(size))
    return result


#: (label, grep's arguments): each is timed as GNU grep, ripgrep and ``cobus run 'cat | grep ARGS | print'``.
_GREP_SEARCHES = (
    ("literal", ("python",)),
    ("-i", ("-i", "python")),
    ("-v", ("-v", "python")),
    ("-w", ("-w", "python")),
    ("-E alternation", ("-E", "timeout|refused|python")),
    ("-E classes", ("-E", "[0-9]{3} 5[0-9]{2}")),
)


def _grep_searches(b: Bench, result: GroupResult, log: Path) -> None:
    """The searches of issue 9, each with its ratios to GNU grep and its outputs checked equal."""
    rg = shutil.which("rg")
    for label, args in _GREP_SEARCHES:
        gnu = f"{label}: GNU grep"
        commands = [Command(gnu, ("grep", *args, str(log)))]
        if rg:
            rg_args = [a for a in args if a != "-E"]
            commands.append(Command(f"{label}: ripgrep", (rg, "--no-line-number", *rg_args, str(log))))
        words = " ".join(shlex.quote(a) for a in args)
        commands.append(Command(f"{label}: cobus", cobus(f"cat {quoted(log)} | grep {words} | print")))
        timings = b.interleave(result, commands)
        rows = rows_for("grep", timings, gnu)
        result.rows += rows
        result.notes += failure_notes(timings)
        outputs = {t.command.name: t.output for t in timings if not t.failure}
        for name, output in outputs.items():
            if name != gnu and gnu in outputs and not filecmp.cmp(outputs[gnu], output, shallow=False):
                result.notes.append(f"!!! OUTPUT MISMATCH: {name} differs from {gnu}")
        limit = 1.0 if label == "literal" else 1.5
        text = f"{label}: cobus within {limit}x of GNU grep"
        check = check_ratio(rows, text, f"{label}: cobus", gnu, limit)
        if check:
            result.checks.append(check)


@group("coroutine-micro")
def coroutine_micro_group(b: Bench) -> GroupResult:
    """The classic micro-benchmark (send into a coroutine vs call a method), and cobus per line."""
    n = 300_000 if b.settings.quick else 1_000_000
    repeats = b.settings.repeats
    result = GroupResult("coroutine-micro", baseline="method call (object)")
    # A child process, so that the lines held in memory do not raise the bench's own RSS.
    child = subprocess.run(
        [PY, str(SCRIPTS / "bench_micro.py"), str(n), str(repeats)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if child.returncode:
        result.skipped = f"the measuring process failed: {child.stderr.strip()[-300:]}"
        return result
    report = json.loads(child.stdout)
    measured: dict[str, float] = report["measured"]
    base = measured[result.baseline]
    result.rows = [Row(result.name, name, ns, "ns/line", None, ns / base) for name, ns in measured.items()]
    result.notes = [
        f"{n:,} lines per measurement, median of {repeats}. 'python is nice' is the "
        "classic's line; log lines come from samples/access.log (~95 bytes, ~1.5% contain "
        "'python'); cobus gets them as 1 MiB batches of whole lines",
        *report["notes"],
    ]
    return result


_XML_FIELDS = "id,route,direction,latitude,longitude"
_XML_PIPELINE = (
    "xml --parser {parser} {path} | records bus | where route=22 "
    '| where direction="North Bound" | csv ' + _XML_FIELDS
)
_LXML_LOOP = textwrap.dedent(f"""\
    import csv, sys
    from lxml import etree
    fields = {_XML_FIELDS.split(",")!r}
    out = open(1, "w", newline="", buffering=1 << 16, closefd=False)
    write = csv.writer(out, lineterminator="\\n").writerow
    write(fields)
    for _, bus in etree.iterparse(sys.argv[1], tag="bus"):
        if bus.findtext("route") == "22" and bus.findtext("direction") == "North Bound":
            write([bus.findtext(f) for f in fields])
        bus.clear()
        while bus.getprevious() is not None:
            del bus.getparent()[0]
    out.flush()
""")
_PARSERS = ("expat", "lxml", "sax")


# Not '//bus[...]': libxml2 refuses an XPath node-set over 10 million nodes, and
# '//' visits every node of a 200 MB document ("growing nodeset hit limit").
_XPATH = '/buses/bus[route="22" and direction="North Bound"]'


def _xmlstarlet(path: str) -> tuple[str, ...]:
    values: list[str] = []
    for i, name in enumerate(_XML_FIELDS.split(",")):
        values += (["-o", ","] if i else []) + ["-v", name]
    return ("xmlstarlet", "sel", "-t", "-m", _XPATH, *values, "-n", path)


def _normalise_csv(data: bytes) -> bytes:
    """Same rows whatever the header choice and line ends (csv may write CRLF)."""
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[0] == _XML_FIELDS.encode():
        lines = lines[1:]
    return b"\n".join(line for line in lines if line)


def _working_parsers(b: Bench, result: GroupResult) -> list[str]:
    """The parsers whose cobus pipeline runs on samples/buses.xml; notes for the others."""
    parsers = []
    for parser in _PARSERS:
        reason = b.probe("xml", cobus(_XML_PIPELINE.format(parser=parser, path=quoted(SAMPLE_XML))))
        if reason:
            result.notes.append(f"cobus --parser {parser}: skipped, {reason}")
        else:
            parsers.append(parser)
    return parsers


def _xml_commands(path: Path, parsers: Sequence[str], *, xmlstarlet: bool) -> list[Command]:
    commands = [Command("lxml iterparse loop", (PY, "-c", _LXML_LOOP, str(path)))]
    commands += [
        Command(f"cobus {parser}", cobus(_XML_PIPELINE.format(parser=parser, path=quoted(path))))
        for parser in parsers
    ]
    if xmlstarlet:
        commands.append(Command("xmlstarlet sel", _xmlstarlet(str(path))))
    return commands


@group("xml")
def xml_group(b: Bench) -> GroupResult:
    """Route 22 North Bound to CSV: cobus per parser vs xmlstarlet vs a hand lxml loop."""
    result = GroupResult("xml", baseline="lxml iterparse loop")
    parsers = _working_parsers(b, result)
    if not parsers:
        result.notes.append("no cobus xml pipeline runs yet: timing the peers only")
    xmlstarlet = shutil.which("xmlstarlet") is not None
    if not xmlstarlet:
        result.notes.append("xmlstarlet: not installed, skipped (optional; apt-get install xmlstarlet)")
    timings = b.interleave(result, _xml_commands(b.xml(), parsers, xmlstarlet=xmlstarlet))
    result.rows = rows_for("xml", timings, result.baseline)
    result.notes += failure_notes(timings)
    result.checks = _xml_checks(result, _human(b.settings.xml_size))
    identical_outputs(result, timings, _normalise_csv)
    if b.settings.rss_scaling:
        _rss_scaling(b, parsers, result)
    return result


def _xml_checks(result: GroupResult, size: str) -> list[Check]:
    cobus_rows = [r for r in result.rows if r.name.startswith("cobus")]
    if not cobus_rows:
        return []
    best = min(cobus_rows, key=lambda r: r.value)
    checks = [
        check_ratio(result.rows, f"{best.name} faster than xmlstarlet", best.name, "xmlstarlet sel", 1.0),
        check_ratio(
            result.rows, f"{best.name} within 1.5x of the lxml loop", best.name, result.baseline, 1.5
        ),
    ]
    worst = max(cobus_rows, key=lambda r: r.rss_mb or 0.0)
    rss = worst.rss_mb or 0.0
    checks.append(Check(f"cobus peak RSS under 150 MB on {size}", rss < 150, f"{worst.name}: {rss:.0f} MB"))
    return [c for c in checks if c]


def _rss_scaling(b: Bench, parsers: Sequence[str], result: GroupResult) -> None:
    """Peak RSS on 50 MB vs 500 MB (one run each): memory must not grow with the file."""
    say("  RSS scaling: 50 MB vs 500 MB")
    sizes = (50 << 20, 500 << 20)
    runs = {size: _xml_commands(b.xml(size), parsers, xmlstarlet=False) for size in sizes}
    for i, command in enumerate(runs[sizes[0]]):
        rss = []
        for size in sizes:
            run = run_child(runs[size][i].argv, b.output_path("xml", f"rss-{command.name}"))
            rss.append(max(run.peak_rss_kb, run.rss_floor_kb) / 1024)
        result.notes.append(
            f"RSS scaling {command.name}: 50 MB -> {rss[0]:.0f} MB, 500 MB -> {rss[1]:.0f} MB"
        )
        if command.name.startswith("cobus"):
            result.checks.append(
                Check(
                    f"{command.name} RSS flat from 50 MB to 500 MB",
                    rss[1] < 150 and rss[1] <= rss[0] * 1.25 + 10,
                    f"{rss[0]:.0f} -> {rss[1]:.0f} MB",
                )
            )


#: A branch that costs CPU on every line (the full apache regex: path is not one of the
#: fields the fast path cuts out), so moving it elsewhere can pay. A grep branch no longer
#: does: Hyperscan scans faster than the lines cross a pipe.
_SLOW_BRANCH = "parse apache | where path~python"
_THREAD_VARIANTS = {
    "inline": "cat {f} | {rx} | count",
    "threaded": "cat {f} | threaded [{rx}] | count",
    "subprocess": "cat {f} | subprocess [{rx}] | count",
    "parallel 2": "cat {f} | parallel 2 [{rx}] | count",
}


@group("threads")
def threads_group(b: Bench) -> GroupResult:
    """The cost of moving a branch into a thread, a child process, or two workers."""
    result = GroupResult("threads", baseline="inline")
    log = quoted(b.log())
    commands = []
    for name, text in _THREAD_VARIANTS.items():
        reason = b.probe("threads", cobus(text.format(f=quoted(SAMPLE_LOG), rx=_SLOW_BRANCH)))
        if reason:
            result.notes.append(f"{name}: skipped, {reason}")
        else:
            commands.append(Command(name, cobus(text.format(f=log, rx=_SLOW_BRANCH))))
    if not any(c.name == "inline" for c in commands):
        result.skipped = "the inline pipeline does not run yet"
        return result
    if len(commands) == 1:
        result.skipped = "no threaded, subprocess or parallel stage yet"
        return result
    timings = b.interleave(result, commands)
    result.rows = rows_for("threads", timings, result.baseline)
    result.notes += failure_notes(timings)
    checks = [
        check_ratio(result.rows, "threaded adds at most 30%", "threaded", "inline", 1.3),
        check_ratio(result.rows, "subprocess adds at most 30%", "subprocess", "inline", 1.3),
        check_ratio(result.rows, "parallel 2 at least 1.6x faster", "parallel 2", "inline", 1 / 1.6),
    ]
    result.checks = [c for c in checks if c]
    identical_outputs(result, timings)
    return result


_REDIS_LINES = 200_000
# -- records: parse | aggregate against awk and jq, table against csv (issue 10) --

_JSON_SERVICES = ("auth", "billing", "search", "cart", "gateway", "mailer", "images", "reports")
_JSON_LEVELS = ("debug",) * 5 + ("info",) * 10 + ("warn",) * 3 + ("error",) * 2
_JSON_LINE = (
    '{{"ts": "2026-11-30T{h:02d}:{m:02d}:{s:02d}.{ms:03d}Z", "level": "{level}", "service": "{service}", '
    '"msg": "{msg}", "request": {{"method": "{method}", "path": "/api/v1/items/{item}", "bytes": {size}}}, '
    '"duration_ms": {took}, "ok": {ok}, "trace": {trace}, "tags": {tags}}}\n'
)


def json_log(b: Bench, size: int) -> Path:
    """JSON lines of an imaginary service (nested request object, literals, arrays), cached."""
    path = b.settings.cache_dir / f"json-{_human(size)}-s{b.settings.seed}-v1.jsonl"
    if path.exists():
        _warm(path)
        return path
    import random

    say(f"  generating {path.name} ...")
    rng = random.Random(b.settings.seed)
    written, i = 0, 0
    with open(path, "w") as out:
        while written < size:
            lines = []
            for _ in range(10_000):
                i += 1
                lines.append(
                    _JSON_LINE.format(
                        h=i // 3600 % 24,
                        m=i // 60 % 60,
                        s=i % 60,
                        ms=i % 1000,
                        level=rng.choice(_JSON_LEVELS),
                        service=rng.choice(_JSON_SERVICES),
                        msg="request handled" if rng.random() < 0.7 else "upstream timed out, retrying",
                        method=rng.choice(("GET", "GET", "GET", "POST", "PUT")),
                        item=rng.randrange(5000),
                        size=rng.randrange(100_000),
                        took=round(rng.random() * 900, 3),
                        ok="true" if rng.random() < 0.9 else "false",
                        trace="null" if rng.random() < 0.5 else f'"{rng.getrandbits(64):016x}"',
                        tags=json.dumps(rng.sample(["a", "b", "c", "d"], rng.randrange(3))),
                    )
                )
            text = "".join(lines)
            out.write(text)
            written += len(text)
    return path


def _tsv_counts(data: bytes) -> bytes:
    """``value<TAB>count`` lines (cobus, awk) in one order."""
    return b"".join(sorted(line + b"\n" for line in data.splitlines() if line))


def _uniq_c_counts(data: bytes) -> bytes:
    """``sort | uniq -c`` output ("   12 value") as ``value<TAB>count`` lines in one order."""
    rows = (line.split(None, 1) for line in data.splitlines() if line.strip())
    return b"".join(sorted(b"%s\t%s\n" % (value.strip(), n) for n, value in rows))


def _table_as_csv(data: bytes) -> bytes:
    """A piped table's rows as CSV rows (no header), to hold against ``csv --no-header``."""
    bar = "│".encode()
    return b"".join(
        b",".join(cell.strip() for cell in line.strip()[len(bar) : -len(bar)].split(bar)) + b"\n"
        for line in data.splitlines()
        if line.startswith(bar)
    )


def _same_as(result: GroupResult, timings: Sequence[Timing], ref: str, other: str, normalise: Any) -> None:
    found = {t.command.name: t for t in timings if not t.failure}
    if ref in found and other in found:
        a, b = found[ref].output, found[other].output
        same = _same(a, b, normalise)
        result.checks.append(Check(f"{other}: output as {ref}'s", same, f"{_count_lines(b):,} lines"))
        if not same:
            result.notes.append(f"!!! OUTPUT MISMATCH: {other} differs from {ref}; compare {a} and {b}")


def _pair_rows(timings: Sequence[Timing], pairs: dict[str, str]) -> list[Row]:
    """One row per command, its ratio against the reference named in ``pairs`` (None for a reference)."""
    found = {t.command.name: t for t in timings if not t.failure}
    rows = []
    for t in timings:
        if t.failure:
            continue
        ref = found.get(pairs.get(t.command.name, ""))
        rss = t.peak_rss_kb / 1024
        ratio = t.median / ref.median if ref is not None else None
        at_floor = t.peak_rss_kb <= t.rss_floor_kb + _FLOOR_SLACK_KB
        rows.append(Row("records", t.command.name, t.median, "s", rss, ratio, at_floor))
    return rows


@group("records")
def records_group(b: Bench) -> GroupResult:
    """parse apache | count by status vs awk, parse json | where | count vs jq, table vs csv (600k)."""
    result = GroupResult("records", baseline="awk / jq|sort|uniq -c / csv (see pairs)")
    quick = b.settings.quick
    log = b.log(b.settings.log_size if quick else 300 << 20)
    jsonl = json_log(b, (25 if quick else 100) << 20)
    rows = 600_000
    awk = '{c[$9]++} END {for (k in c) print k "\\t" c[k]}'
    jq = f"jq -r 'select(.level==\"error\") | .service' {quoted(jsonl)} | sort | uniq -c"
    table_input = f"cat {quoted(log)} | parse apache | head {rows}"
    commands = [
        Command("awk count by $9", ("awk", awk, str(log))),
        Command("cobus count by status", cobus(f"cat {quoted(log)} | parse apache | count by status")),
        Command(
            "cobus parallel 2, count",
            cobus(f"cat {quoted(log)} | parallel 2 [parse apache] | count by status"),
        ),
        Command("jq | sort | uniq -c", ("sh", "-c", jq)),
        Command(
            "cobus json where count",
            cobus(f"cat {quoted(jsonl)} | parse json | where level=error | count by service"),
        ),
        Command(
            "cobus parallel 2, json count",
            cobus(f"cat {quoted(jsonl)} | parallel 2 [parse json | where level=error] | count by service"),
        ),
        Command("cobus csv 600k", cobus(f"{table_input} | csv --no-header host,status")),
        Command("cobus table 600k", cobus(f"{table_input} | table host,status")),
    ]
    if not shutil.which("jq"):
        result.notes.append("jq: not on PATH, skipped (apt-get install jq)")
        commands = [c for c in commands if c.argv[0] != "sh"]
    pairs = {
        "cobus count by status": "awk count by $9",
        "cobus parallel 2, count": "awk count by $9",
        "cobus json where count": "jq | sort | uniq -c",
        "cobus parallel 2, json count": "jq | sort | uniq -c",
        "cobus table 600k": "cobus csv 600k",
    }
    timings = b.interleave(result, commands)
    result.rows = _pair_rows(timings, pairs)
    result.notes += failure_notes(timings)
    result.notes.append(
        "ratio: against the row's reference: " + "; ".join(f"{k} / {v}" for k, v in pairs.items())
    )
    for name, limit, goal in (
        ("cobus count by status", 3.0, 1.0),
        ("cobus parallel 2, count", 3.0, 1.0),
        ("cobus json where count", 1.0, 0.5),
        ("cobus table 600k", 2.0, None),
    ):
        text = f"{name} within {limit}x of {pairs[name]}" + (f" (goal {goal}x)" if goal else "")
        check = check_ratio(result.rows, text, name, pairs[name], limit)
        if check:
            result.checks.append(check)
    table_rss = next((r.rss_mb for r in result.rows if r.name == "cobus table 600k"), None)
    if table_rss is not None:
        result.checks.append(
            Check("cobus table 600k: peak RSS under 200 MB", table_rss < 200, f"{table_rss:.0f} MB")
        )
    _same_as(result, timings, "awk count by $9", "cobus count by status", _tsv_counts)
    _same_as(result, timings, "awk count by $9", "cobus parallel 2, count", _tsv_counts)
    _same_as(result, timings, "jq | sort | uniq -c", "cobus json where count", _uniq_c_counts_or_tsv)
    _same_as(result, timings, "jq | sort | uniq -c", "cobus parallel 2, json count", _uniq_c_counts_or_tsv)
    _same_as(result, timings, "cobus csv 600k", "cobus table 600k", _table_as_csv_or_csv)
    return result


def _uniq_c_counts_or_tsv(data: bytes) -> bytes:
    """Either output in the same form: ``uniq -c`` lines start with spaces and a count."""
    first = data.lstrip()[:1]
    return _uniq_c_counts(data) if data[:1] == b" " or first.isdigit() else _tsv_counts(data)


def _table_as_csv_or_csv(data: bytes) -> bytes:
    return _table_as_csv(data) if data.startswith("┏".encode()) else data


#: A directory whose ``hiredis`` fails to import: redis-py then parses replies in Python.
_NO_HIREDIS = "raise ImportError('hidden by scripts/bench.py to measure redis-py without hiredis')\n"


def _redis_cli(port: int, *args: str) -> str:
    argv = ["redis-cli", "-p", str(port), *args]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def _redis_server(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A redis-server with persistence off on a free loopback port, answering PING."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--dir", str(folder), "--logfile", "redis.log"]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, check=False).stdout:
            return server, port
        time.sleep(0.05)
    server.kill()
    raise RuntimeError(f"redis-server did not answer on port {port}")


def _redis_benchmark_seconds(port: int, line: str) -> float:
    """Seconds redis-benchmark needs for _REDIS_LINES XADDs (50 clients, pipelines of 100)."""
    argv = ["redis-benchmark", "-p", str(port), "-n", str(_REDIS_LINES), "-P", "100", "-q"]
    out = subprocess.run([*argv, "XADD", "rb", "*", "line", line], capture_output=True, text=True, check=True)
    rps = float(out.stdout.replace("\r", "\n").split("requests per second")[0].split()[-1])
    _redis_cli(port, "DEL", "rb")
    return _REDIS_LINES / rps


@group("redis")
def redis_group(b: Bench) -> GroupResult:
    """Lines/s through Redis Streams: xadd ships, xread reads in a group; redis-benchmark XADD the ceiling."""
    result = GroupResult("redis", baseline="redis-benchmark XADD")
    if not all(shutil.which(t) for t in ("redis-server", "redis-cli", "redis-benchmark")):
        result.skipped = (
            "redis-server, redis-cli or redis-benchmark not installed (apt-get install redis-server)"
        )
        return result
    log = b.settings.cache_dir / "redis-200k.log"
    sample = SAMPLE_LOG.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(sample[i % len(sample)] for i in range(_REDIS_LINES)))
    shim = b.settings.cache_dir / "no-hiredis"
    (shim / "hiredis").mkdir(parents=True, exist_ok=True)
    (shim / "hiredis" / "__init__.py").write_text(_NO_HIREDIS)
    folder = Path(tempfile.mkdtemp(prefix="cobus-bench-redis-"))
    server, port = _redis_server(folder)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        reason = b.probe("redis", cobus(f"cat {quoted(SAMPLE_LOG)} | xadd {url} probe"))
        if reason:
            result.skipped = f"cobus xadd: {reason}"
            return result
        _redis_timings(b, result, log, port, shim)
        _redis_cpu(result, log, port, server.pid)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(folder, ignore_errors=True)
    return result


def _redis_timings(b: Bench, result: GroupResult, log: Path, port: int, shim: Path) -> None:
    url = f"redis://127.0.0.1:{port}/0"
    variants = {"": (), ", no hiredis": ("env", f"PYTHONPATH={shim}")}
    timings: dict[str, Timing] = {}
    ceiling: list[float] = []
    line = log.read_bytes().split(b"\n", 1)[0].decode()
    empty = b.settings.cache_dir / "empty.log"
    empty.touch()
    start = Command("cobus startup (xadd, empty file)", cobus(f"cat {quoted(empty)} | xadd {url} none"))
    timings[start.name] = Timing(start, b.output_path("redis", start.name))
    for r in range(b.settings.repeats):
        ceiling.append(_redis_benchmark_seconds(port, line))
        _record(timings[start.name], run_child(start.argv, timings[start.name].output))
        for suffix, prefix in variants.items():
            stream = f"logs{r}{suffix.replace(' ', '').replace(',', '-')}"
            ship = cobus(f"cat {quoted(log)} | xadd {url} {stream}")
            eat = cobus(f"xread --from-start {url} {stream} --group g | head {_REDIS_LINES} | print")
            for name, argv in ((f"cobus xadd{suffix}", ship), (f"cobus xread --group{suffix}", eat)):
                t = timings.setdefault(name, Timing(Command(name, argv), b.output_path("redis", name)))
                _record(t, run_child((*prefix, *argv), t.output))
            _redis_cli(port, "DEL", stream)
        say(
            f"  round {r + 1}/{b.settings.repeats}: ceiling {_REDIS_LINES / ceiling[-1]:,.0f}/s, "
            + ", ".join(f"{n} {t.seconds[-1]:.2f}s" for n, t in timings.items() if not t.failure)
        )
    base = statistics.median(ceiling)
    result.rows = [Row("redis", result.baseline, base, "s", None, 1.0)]
    result.rows += rows_for("redis", list(timings.values()), "")
    result.rows[1:] = [
        Row(r.group, r.name, r.value, r.unit, r.rss_mb, r.value / base) for r in result.rows[1:]
    ]
    result.notes += failure_notes(list(timings.values()))
    startup = timings[start.name].median
    for row in result.rows:
        if row.name != start.name:
            steady = _REDIS_LINES / (row.value - startup) if row.name.startswith("cobus") else None
            rest = f" ({steady:,.0f} once started)" if steady else ""
            result.notes.append(f"{row.name}: {_REDIS_LINES / row.value:,.0f} lines/s{rest}")
    for name in ("cobus xadd", "cobus xread --group"):
        t = timings[name]
        if t.failure:
            continue
        rate = _REDIS_LINES / t.median
        result.checks.append(Check(f"{name} at least 100k lines/s", rate >= 100_000, f"{rate:,.0f} lines/s"))
    for name in ("cobus xread --group", "cobus xread --group, no hiredis"):
        t = timings[name]
        if not t.failure:
            same = filecmp.cmp(t.output, log, shallow=False)
            result.checks.append(Check(f"{name}: every line, in order", same, str(t.output)))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _redis_cpu(result: GroupResult, log: Path, port: int, server_pid: int) -> None:
    """CPU seconds of cobus and of redis-server, one run each way: the figures on an idle machine.

    On a busy machine the wall-clock figures say more about the neighbours than
    about cobus; the CPU each side spends does not change with the load, and
    with a core each, lines/s is about 200k / the larger of the two.
    """
    url = f"redis://127.0.0.1:{port}/0"
    ship = cobus(f"cat {quoted(log)} | xadd {url} cpu")
    eat = cobus(f"xread --from-start {url} cpu --group cpu | head {_REDIS_LINES} | print")
    for name, argv in (("xadd", ship), ("xread --group", eat)):
        before = _cpu_seconds(server_pid)
        with open(os.devnull, "wb") as out:
            child = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL, cwd=ROOT)
            _, _, usage = os.wait4(child.pid, 0)
        mine, theirs = usage.ru_utime + usage.ru_stime, _cpu_seconds(server_pid) - before
        rate = _REDIS_LINES / max(mine, theirs)
        result.notes.append(
            f"CPU for {_REDIS_LINES:,} lines, cobus {name}: {mine:.2f} s (start-up included), "
            f"redis-server {theirs:.2f} s: about {rate:,.0f} lines/s with a core each"
        )


_TAIL_SIZE = 1 << 30


def _big_log(b: Bench) -> Path:
    """A 1 GiB log made of copies of the generated one (cached): tail must not care how big."""
    log = b.log()
    path = b.settings.cache_dir / f"tail-{_human(_TAIL_SIZE)}-{log.stem}.log"
    if not path.exists():
        say(f"  building {path.name} ...")
        partial = path.with_suffix(".part")
        with open(partial, "wb") as out:
            while out.tell() < _TAIL_SIZE:
                with open(log, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        partial.rename(path)
    return path


_FIND_LAST_LINES = textwrap.dedent("""\
    import os, sys, time
    from cobus.sources._tailstart import Start
    fd = os.open(sys.argv[1], os.O_RDONLY)
    size = os.fstat(fd).st_size
    best = float("inf")
    for _ in range(200):
        started = time.perf_counter()
        Start(10).offset(fd, size)
        best = min(best, time.perf_counter() - started)
    print(best * 1e6)
""")


@group("tail")
def tail_group(b: Bench) -> GroupResult:
    """tail -n 10 on a 1 GiB log: GNU tail, cobus tail, follow -n 10 (both read backwards)."""
    result = GroupResult("tail", baseline="GNU tail -n 10")
    reason = b.probe("tail", (PY, "-m", "cobus", "tail", "-n", "10", str(SAMPLE_LOG)))
    if reason:
        result.skipped = f"cobus tail does not run: {reason}"
        return result
    big = _big_log(b)
    empty = b.settings.cache_dir / "empty.log"
    empty.touch()
    gone = subprocess.Popen(["true"])  # a process that has ended: follow --pid stops at once
    gone.wait()
    follow_text = f"follow -n 10 --pid {gone.pid} {quoted(big)} | print"
    commands = [
        Command("GNU tail -n 10", ("tail", "-n", "10", str(big))),
        Command("cobus tail -n 10", (PY, "-m", "cobus", "tail", "-n", "10", str(big))),
        Command(
            "cobus startup (empty file)", (PY, "-m", "cobus", "tail", "-n", "10", str(empty)), compare=False
        ),
    ]
    if not b.probe("tail", cobus(f"follow -n 10 --pid {gone.pid} {quoted(SAMPLE_LOG)} | print")):
        commands.append(Command("cobus follow -n 10 --pid", cobus(follow_text)))
    timings = b.interleave(result, commands)
    result.rows = rows_for("tail", timings, result.baseline)
    result.notes += failure_notes(timings)
    result.notes.append(
        f"input {_human(big.stat().st_size)}; the start-up row is cobus tail on an empty file"
    )
    medians = {t.command.name: t.median for t in timings if not t.failure}
    if "GNU tail -n 10" in medians:
        gnu = medians["GNU tail -n 10"]
        result.checks.append(Check("GNU tail -n 10 on 1 GiB: < 50 ms", gnu < 0.05, f"{gnu * 1000:.0f} ms"))
    # In-process, without Python's start-up (which the rows above are mostly made of).
    child = subprocess.run(
        [PY, "-c", _FIND_LAST_LINES, str(big)], capture_output=True, text=True, cwd=ROOT, check=False
    )
    if child.returncode == 0:
        micros = float(child.stdout)
        result.rows.append(
            Row("tail", "cobus: find the last 10 lines (in-process)", micros, "us", None, None)
        )
        result.checks.append(
            Check("cobus finds the last 10 of 1 GiB in < 5 ms", micros < 5000, f"{micros:.0f} us")
        )
    else:
        result.notes.append(f"in-process timing failed: {child.stderr.strip()[-300:]}")
    identical_outputs(result, timings)
    return result


# --------------------------------------------------------------------------
# reporting


def print_group(result: GroupResult) -> None:
    print(f"\n== {result.name} ==")
    if result.skipped:
        print(f"  skipped: {result.skipped}")
    for note in result.notes:
        print(f"  {note}")


def print_table(results: Sequence[GroupResult]) -> None:
    print("\n== ratios (median; lower is faster; ratio = time / the group's baseline) ==")
    header = f"{'group':<16} {'command':<30} {'median':>14} {'peak RSS':>10} {'ratio':>7}  baseline"
    print(header)
    print("-" * len(header))
    for res in results:
        for row in res.rows:
            value = f"{row.value:.3f} s" if row.unit == "s" else f"{row.value:.1f} {row.unit}"
            rss = "-" if row.rss_mb is None else f"{'<=' * row.rss_at_floor}{row.rss_mb:.1f} MB"
            ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
            mark = "  <- baseline" if row.name == res.baseline else ""
            print(f"{row.group:<16} {row.name:<30} {value:>14} {rss:>10} {ratio:>7}  {res.baseline}{mark}")
        if not res.rows:
            print(f"{res.name:<16} (no rows: {res.skipped or 'see notes'})")
    checks = [(res.name, c) for res in results for c in res.checks]
    if checks:
        print("\n== targets ==")
        for name, c in checks:
            print(f"[{'PASS' if c.ok else 'FAIL'}] {name}: {c.text} ({c.measured})")


def describe_machine() -> str:
    def version(argv: Sequence[str]) -> str:
        if not shutil.which(argv[0]):
            return "absent"
        out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
        return (out.splitlines() or ["?"])[0]

    return "\n".join(
        [
            f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
            f"PYTHONUNBUFFERED={os.environ.get('PYTHONUNBUFFERED', '')!r}, "
            f"LANG={os.environ.get('LANG', '')!r}",
            f"grep: {version(['grep', '--version'])}; rg: {version(['rg', '--version'])}; "
            f"xmlstarlet: {version(['xmlstarlet', '--version'])}",
            load_note(),
        ]
    )


def load_note() -> str:
    """The 1-minute load average, with a warning when other work competes for the CPUs."""
    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    busy = "  !!! the machine is busy: timings are noisy" if load > cpus / 2 else ""
    return f"load average {load:.2f} on {cpus} CPUs{busy}"


# --------------------------------------------------------------------------
# command line


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="50 MB log, 25 MB XML, medians of 3")
    parser.add_argument("--only", metavar="G1,G2", help=f"groups to run: {', '.join(GROUPS)}")
    parser.add_argument("--list", action="store_true", help="list the groups and exit")
    parser.add_argument("--repeats", type=int, help="runs per command (default 5, quick 3)")
    parser.add_argument(
        "--log-size", type=parse_size, metavar="SIZE", help="generated log size (default 200M, quick 50M)"
    )
    parser.add_argument(
        "--xml-size", type=parse_size, metavar="SIZE", help="generated XML size (default 200M, quick 25M)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        metavar="SECONDS",
        help="timing budget per group: fewer rounds past it "
        "(default 150, quick 12; never under 3 rounds, quick 1)",
    )
    parser.add_argument(
        "--rss-scaling", action="store_true", help="xml: peak RSS on 50 MB vs 500 MB inputs (slow)"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "cobus-bench",
        help="generated inputs and outputs (default %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.only:
        unknown = sorted(set(args.only.split(",")) - set(GROUPS))
        if unknown:
            parser.error(f"unknown group {', '.join(unknown)}; groups: {', '.join(GROUPS)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    if args.list:
        for name, fn in GROUPS.items():
            print(f"{name:<16} {(fn.__doc__ or '').strip()}")
        return 0
    quick = args.quick
    settings = Settings(
        quick=quick,
        repeats=args.repeats or (3 if quick else 5),
        cache_dir=args.cache_dir,
        log_size=args.log_size or (50 << 20 if quick else 200 << 20),
        xml_size=args.xml_size or (25 << 20 if quick else 200 << 20),
        rss_scaling=args.rss_scaling,
        budget=args.budget or (12.0 if quick else 150.0),
        min_repeats=1 if quick else 3,
    )
    bench = Bench(settings)
    names = args.only.split(",") if args.only else list(GROUPS)
    print(describe_machine())
    print(
        f"mode: {'quick' if args.quick else 'full'}, medians of {settings.repeats}, "
        f"log {_human(settings.log_size)}, xml {_human(settings.xml_size)}, cache {settings.cache_dir}"
    )
    started = time.perf_counter()
    results = []
    for name in names:
        say(f"[{name}]")
        result = GROUPS[name](bench)
        print_group(result)
        results.append(result)
    print_table(results)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; at the end: {load_note()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
