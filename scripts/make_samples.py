"""Seeded generator for cobus's sample data: an Apache access log and a bus feed.

    python scripts/make_samples.py                           # samples/access.log, samples/buses.xml
    python scripts/make_samples.py --log-size 200M --out F   # a big log for benchmarks
    python scripts/make_samples.py --xml-size 200M --out F --match-rate 0.01

The log is Apache Common Log Format (one request per LF-terminated line); the
XML has the shape of the Chicago CTA bus-position feed (``<buses>`` of
``<bus>`` elements, CRLF line endings, tab indentation, ``finalStop`` in
CDATA). All data is invented. The same seed and size give byte-identical
output, and a smaller file is a prefix of a larger one with the same seed
(apart from the XML's closing tag). Big files stream in ~1 MiB chunks built
from precomputed pools, so memory stays flat and 200 MB takes seconds.
Standard library only.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

DEFAULT_SEED = 2008
DEFAULT_LOG_SIZE = 800_000
DEFAULT_XML_SIZE = 500_000
#: Fraction of log lines whose path contains "python" (lower case).
DEFAULT_LOG_MATCH_RATE = 0.015
#: Fraction of buses that are route 22, North Bound.
DEFAULT_XML_MATCH_RATE = 0.01

#: Items generated per chunk. Fixed, so that output never depends on file size.
_LOG_CHUNK = 10_000
_XML_CHUNK = 2_000

_SAMPLES = Path(__file__).resolve().parent.parent / "samples"


# --------------------------------------------------------------------------
# sizes and weighted pools


def parse_size(text: str) -> int:
    """``"200M"`` -> 209715200; K, M and G are powers of 1024; a plain number is bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("B")
    scale = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    try:
        size = int(float(number) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 800K, 200M, 1G)") from None
    if size <= 0:
        raise argparse.ArgumentTypeError("size must be positive")
    return size


def parse_rate(text: str) -> float:
    rate = float(text)
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError("match rate must be between 0 and 1")
    return rate


@dataclass(frozen=True)
class Pool:
    """Values with cumulative weights, drawn ``k`` at a time with ``random.choices``."""

    values: tuple[object, ...]
    cum_weights: tuple[float, ...]

    @classmethod
    def of(cls, weighted: Sequence[tuple[object, float]]) -> Pool:
        values = tuple(v for v, _ in weighted)
        total = 0.0
        cum: list[float] = []
        for _, w in weighted:
            total += w
            cum.append(total)
        return cls(values, tuple(cum))

    def draw(self, rng: random.Random, k: int) -> list[object]:
        return rng.choices(self.values, cum_weights=self.cum_weights, k=k)


def _zipf(n: int, s: float) -> list[float]:
    return [1.0 / (rank**s) for rank in range(1, n + 1)]


# --------------------------------------------------------------------------
# the access log

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: 24 Feb 2008 00:08:59 in local time (-0600), as seconds since the epoch.
_LOG_START = 1203811739

_ISPS = (
    "dsl.chcgil.sbcglobal.net",
    "res.rr.com",
    "hsd1.il.comcast.net",
    "dyn.optonline.net",
    "static.theplanet.com",
    "pools.spcsdns.net",
    "adsl.hansenet.de",
    "cable.virginmedia.net",
    "dialup.mindspring.com",
    "fios.verizon.net",
    "client.bresnan.net",
    "broadband.kyivstar.net",
)
_CRAWLERS = (
    "crawl-{a}-{b}-{c}-{d}.searchbot.example.com",
    "spider{d}.indexer.example.net",
    "bot-{c}-{d}.crawler.example.org",
)
_PATH_GROUPS: dict[str, tuple[tuple[str, int], ...]] = {
    # (path, size in bytes of a 200 response). Only the "python" group says "python" in
    # lower case, so --match-rate is the share of `grep python` hits; a swig page says
    # "Python", so `grep -i python` finds a little more.
    "python": (
        ("/python/", 5120),
        ("/python/index.html", 5120),
        ("/python/generators.pdf", 412_677),
        ("/python/generators/genfind.py", 712),
        ("/python/tutorial/index.html", 9_861),
        ("/python/python-notes.pdf", 1_233_004),
        ("/python/yapl/yapl.html", 14_208),
        ("/python/pyfaq.html", 7_551),
        ("/talks/python-2008/slides.pdf", 2_120_117),
        ("/python/coroutines.zip", 188_460),
    ),
    "ply": (
        ("/ply/", 6_780),
        ("/ply/ply.html", 117_554),
        ("/ply/ply-2.3.tar.gz", 83_117),
        ("/ply/ply-2.2.tar.gz", 77_904),
        ("/ply/example.html", 4_102),
        ("/ply/bookplug.gif", 23_537),
    ),
    "swig": (
        ("/swig/", 3_311),
        ("/swig/swig-1.1p5.tar.gz", 1_102_944),
        ("/swig/Doc1.1/HTML/Contents.html", 20_415),
        ("/swig/Doc1.1/HTML/Python.html", 101_337),
        ("/swig/papers/Tcl98/TclChap.html", 41_232),
        ("/swig/exec.html", 2_961),
    ),
    "site": (
        ("/", 4_447),
        ("/index.html", 4_447),
        ("/robots.txt", 68),
        ("/favicon.ico", 1_406),
        ("/cv.html", 11_982),
        ("/papers/index.html", 8_044),
        ("/papers/atomic.pdf", 301_222),
        ("/teaching/index.html", 3_879),
        ("/photos/index.html", 6_303),
        ("/photos/lake.jpg", 95_270),
        ("/images/logo.gif", 2_914),
        ("/images/bullet.gif", 91),
        ("/css/site.css", 1_530),
        ("/software/index.html", 5_006),
        ("/courses/index.html", 3_120),
        ("/contact.html", 1_802),
        ("/blog/index.html", 24_718),
        ("/blog/2008/02/feed.xml", 33_061),
        ("/cgi-bin/search.cgi?q=generators", 2_210),
        ("/scripts/setup.php", 0),
        ("/phpmyadmin/main.php", 0),
        ("/awstats/awstats.pl", 0),
        ("/xmlrpc.php", 0),
    ),
}
#: Share of requests per group besides "python" (which gets --match-rate).
_GROUP_SHARE = {"ply": 0.07, "swig": 0.06, "site": 0.87}
_PATH_SKEW = {
    "/robots.txt": 0.8,
    "/": 3.0,
    "/favicon.ico": 2.0,
    "/images/bullet.gif": 1.5,
    "/scripts/setup.php": 0.5,
    "/phpmyadmin/main.php": 0.5,
    "/awstats/awstats.pl": 0.5,
    "/xmlrpc.php": 0.5,
}

_POST_PATHS = ("/cgi-bin/search.cgi", "/cgi-bin/feedback.cgi", "/blog/comments/post")
_STATUS = Pool.of(
    [("200", 65.3), ("404", 26.9), ("304", 4.5), ("302", 1.22), ("301", 1.14), ("206", 0.7), ("403", 0.25)]
)
_METHOD = Pool.of([("GET", 97.5), ("POST", 2.28), ("HEAD", 0.22)])
_PROTOCOL = Pool.of([("HTTP/1.1", 88.0), ("HTTP/1.0", 12.0)])
_USER = Pool.of([("-", 995.0), ("dave", 2.0), ("guest", 2.0), ("admin", 1.0)])
#: Seconds between requests: bursts of crawling, quiet gaps.
_GAP = Pool.of(
    [
        (0, 30.0),
        (1, 14.0),
        (2, 8.0),
        (3, 6.0),
        (5, 5.0),
        (8, 5.0),
        (13, 5.0),
        (21, 5.0),
        (34, 5.0),
        (55, 5.0),
        (89, 4.0),
        (144, 4.0),
        (233, 3.0),
        (377, 1.0),
    ]
)


def _ipv4(rng: random.Random) -> tuple[int, int, int, int]:
    return (
        rng.choice(
            (
                24,
                63,
                64,
                65,
                66,
                67,
                68,
                69,
                70,
                71,
                72,
                74,
                75,
                76,
                81,
                82,
                85,
                86,
                88,
                90,
                98,
                99,
                121,
                124,
                142,
                189,
                190,
                195,
                200,
                201,
                203,
                209,
                212,
                213,
                217,
            )
        ),
        rng.randint(0, 255),
        rng.randint(0, 255),
        rng.randint(1, 254),
    )


def _host_pool(rng: random.Random, n: int = 1400) -> Pool:
    hosts: list[str] = []
    for i in range(n):
        a, b, c, d = _ipv4(rng)
        if i < 12:
            hosts.append(_CRAWLERS[i % len(_CRAWLERS)].format(a=a, b=b, c=c, d=d))
        elif rng.random() < 0.3:
            hosts.append(f"{rng.choice(('adsl', 'c', 'host', 'ip'))}-{a}-{b}-{c}-{d}.{rng.choice(_ISPS)}")
        else:
            hosts.append(f"{a}.{b}.{c}.{d}")
    return Pool.of(list(zip(hosts, _zipf(n, 1.05), strict=True)))


def _path_pool(match_rate: float) -> Pool:
    weighted: list[tuple[object, float]] = []
    shares = {"python": match_rate, **{g: s * (1.0 - match_rate) for g, s in _GROUP_SHARE.items()}}
    for group, paths in _PATH_GROUPS.items():
        raw = [_PATH_SKEW.get(p, 1.0) / (rank**0.8) for rank, (p, _) in enumerate(paths, 1)]
        total = sum(raw)
        for (path, size), w in zip(paths, raw, strict=True):
            weighted.append(((path, size), shares[group] * w / total))
    return Pool.of(weighted)


def _timestamp(t: int) -> str:
    tm = time.gmtime(t)
    return (
        f"{tm.tm_mday:02d}/{_MONTHS[tm.tm_mon - 1]}/{tm.tm_year}:"
        f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} -0600"
    )


def _bytes_field(rng: random.Random, method: str, status: str, path: str, size: int) -> str:
    if status == "304" or method == "HEAD":
        return "-"
    if status == "200":
        return str(size) if size else "-"
    if status == "206":
        return str(rng.randint(1, max(2, size // 2)))
    return str({"404": 283, "403": 289, "301": 311, "302": 298}[status] + len(path))


def log_chunks(seed: int, match_rate: float) -> Iterator[list[bytes]]:
    """Endless chunks of access-log lines (bytes, each ending in LF)."""
    rng = random.Random(seed)
    hosts, paths = _host_pool(rng), _path_pool(match_rate)
    t = _LOG_START
    stamp_at, stamp = -1, ""
    while True:
        k = _LOG_CHUNK
        columns = zip(
            hosts.draw(rng, k),
            _USER.draw(rng, k),
            _GAP.draw(rng, k),
            _METHOD.draw(rng, k),
            paths.draw(rng, k),
            _PROTOCOL.draw(rng, k),
            _STATUS.draw(rng, k),
            strict=True,
        )
        lines: list[bytes] = []
        for host, user, gap, method, (path, size), proto, status in columns:
            t += gap
            if t != stamp_at:
                stamp_at, stamp = t, _timestamp(t)
            if method == "POST":
                path, size = rng.choice(_POST_PATHS), 0
            elif not size:
                status = "404"  # a vulnerability scanner probing for what is not there
            nbytes = _bytes_field(rng, method, status, path, size)
            lines.append(
                f'{host} - {user} [{stamp}] "{method} {path} {proto}" {status} {nbytes}\n'.encode("ascii")
            )
        yield lines


# --------------------------------------------------------------------------
# the bus feed

_XML_HEAD = b'<?xml version="1.0"?>\r\n\r\n<buses>\r\n'
_XML_TAIL = b"</buses>\r\n"
_NS, _EW = ("North Bound", "South Bound"), ("East Bound", "West Bound")
_STREETS = (
    "Clark",
    "Halsted",
    "Ashland",
    "Western",
    "Cicero",
    "Pulaski",
    "Kedzie",
    "Damen",
    "Racine",
    "Broadway",
    "Sheridan",
    "Harlem",
    "Central",
    "Austin",
    "Laramie",
    "Narragansett",
    "Kostner",
    "Cottage Grove",
    "Stony Island",
    "Jeffery",
    "King Drive",
    "State",
    "Wentworth",
    "California",
    "Lincoln",
    "Milwaukee",
    "Elston",
    "Irving Park",
    "Belmont",
    "Diversey",
    "Fullerton",
    "Armitage",
    "North",
    "Division",
    "Chicago",
    "Grand",
    "Madison",
    "Roosevelt",
    "Cermak",
    "Archer",
    "Pershing",
    "47th",
    "55th",
    "63rd",
    "71st",
    "79th",
    "87th",
    "95th",
    "103rd",
    "111th",
    "Touhy",
    "Devon",
    "Peterson",
    "Foster",
    "Lawrence",
    "Montrose",
    "Addison",
    "Jackson",
    "Ogden",
    "Blue Island",
    "Vincennes",
    "Ewing",
    "Torrence",
    "Exchange",
    "South Shore",
    "Lake Shore",
    "Higgins",
    "Northwest Hwy",
    "Bryn Mawr",
    "Ridge",
    "Wilson",
    "Harrison",
    "Taylor",
    "Canal",
    "Indiana",
    "Michigan",
    "LaSalle",
    "Wells",
    "Sedgwick",
    "Fort Dearborn",
)
_TERMINI = (
    "{} & Arthur Terminal",
    "{} & Howard",
    "{} & 95th Street",
    "{}/Red Line Station",
    "{} & Navy Pier",
    "{} & Union Station",
    "{} Garage",
    "{} & Lake Park",
    "{} & Midway Orange Line",
    "{} & Jefferson Park Terminal",
    "{} & 119th/Vincennes",
    "{} Loop via Michigan",
)
_BUS_TEMPLATE = (
    "\t<bus>\r\n"
    "\t\t<id>{id}</id>\r\n"
    "\t\t<route>{route}</route>\r\n"
    "{actual}"
    "\t\t<color>{color}</color>\r\n"
    "\t\t<revenue>{revenue}</revenue>\r\n"
    "\t\t<direction>{direction}</direction>\r\n"
    "\t\t<latitude>{lat}</latitude>\r\n"
    "\t\t<longitude>{lon}</longitude>\r\n"
    "\t\t<pattern>{pattern}</pattern>\r\n"
    "\t\t<patternDirection>{direction}</patternDirection>\r\n"
    "\t\t<run>{run}</run>\r\n"
    "\t\t<finalStop><![CDATA[{final}]]></finalStop>\r\n"
    "\t\t<operator>{operator}</operator>\r\n"
    "\t</bus>\r\n"
)


@dataclass(frozen=True)
class Lane:
    """One route in one direction: what every bus on it shares."""

    route: str
    color: str
    direction: str
    pattern: int
    final: str
    garage: str


def _route_names(rng: random.Random, n: int = 80) -> list[str]:
    numbers = sorted(rng.sample(range(1, 207), n - 6))
    names = [str(x) for x in numbers] + ["X9", "X49", "J14", "N5", "X28", "N62"]
    if "22" not in names:
        names[0] = "22"
    return names


def _lanes(rng: random.Random) -> list[Lane]:
    lanes: list[Lane] = []
    for route in _route_names(rng):
        color = f"#{rng.getrandbits(24):06x}"
        directions = _NS if route == "22" or rng.random() < 0.5 else _EW
        street = "Clark" if route == "22" else rng.choice(_STREETS)
        garage = rng.choice("CFKNPX")
        for direction in directions:
            final = rng.choice(_TERMINI).format(street)
            if route == "22" and direction == "North Bound":
                final = "Clark & Howard"
            lanes.append(Lane(route, color, direction, rng.randint(1000, 9999), final, garage))
    return lanes


def _lane_pool(lanes: list[Lane], match_rate: float) -> Pool:
    target = next(lane for lane in lanes if lane.route == "22" and lane.direction == "North Bound")
    others = [lane for lane in lanes if lane is not target]
    raw = [1.0 / (i % 17 + 1) ** 0.5 for i in range(len(others))]  # some routes busier than others
    total = sum(raw)
    weighted: list[tuple[object, float]] = [(target, match_rate)]
    weighted.extend((lane, (1.0 - match_rate) * w / total) for lane, w in zip(others, raw, strict=True))
    return Pool.of(weighted)


def _coordinate(rng: random.Random, low: float, span: float) -> str:
    # Multiples of 2**-16 print short, like the float32 positions of the real feed.
    return repr((round(low * 65536) + rng.randrange(int(span * 65536))) / 65536)


def xml_chunks(seed: int, match_rate: float) -> Iterator[list[bytes]]:
    """Endless chunks of ``<bus>`` elements (bytes, CRLF, tab-indented)."""
    rng = random.Random(seed)
    lanes = _lanes(rng)
    routes = sorted({lane.route for lane in lanes})
    pool = _lane_pool(lanes, match_rate)
    while True:
        chunk: list[bytes] = []
        for lane in pool.draw(rng, _XML_CHUNK):
            assert isinstance(lane, Lane)
            actual = ""
            if rng.random() < 0.04:
                actual = f"\t\t<actualRoute>{rng.choice(routes)}</actualRoute>\r\n"
            chunk.append(
                _BUS_TEMPLATE.format(
                    id=rng.randint(1000, 8999),
                    route=lane.route,
                    actual=actual,
                    color=lane.color,
                    revenue="true" if rng.random() < 0.93 else "false",
                    direction=lane.direction,
                    lat=_coordinate(rng, 41.64, 0.42),
                    lon=_coordinate(rng, -87.94, 0.41),
                    pattern=lane.pattern,
                    run=f"{lane.garage}{rng.randint(100, 999)}",
                    final=lane.final,
                    operator=rng.randint(10000, 99999),
                ).encode("ascii")
            )
        yield chunk


# --------------------------------------------------------------------------
# writing


def _write_items(out: BinaryIO, chunks: Iterator[list[bytes]], budget: int) -> int:
    """Write whole items until the next one would pass ``budget`` bytes; return bytes written."""
    written = 0
    for chunk in chunks:
        block = b"".join(chunk)
        if written + len(block) <= budget:
            out.write(block)
            written += len(block)
            continue
        for item in chunk:
            if written + len(item) > budget:
                return written
            out.write(item)
            written += len(item)
    return written  # pragma: no cover - the generators never end


def write_log(
    out: BinaryIO, size: int, seed: int = DEFAULT_SEED, match_rate: float = DEFAULT_LOG_MATCH_RATE
) -> int:
    """Write an access log of at most ``size`` bytes (whole lines); return its size."""
    return _write_items(out, log_chunks(seed, match_rate), size)


def write_xml(
    out: BinaryIO, size: int, seed: int = DEFAULT_SEED, match_rate: float = DEFAULT_XML_MATCH_RATE
) -> int:
    """Write a bus feed of at most ``size`` bytes (whole ``<bus>`` elements); return its size."""
    out.write(_XML_HEAD)
    body = _write_items(out, xml_chunks(seed, match_rate), max(0, size - len(_XML_HEAD) - len(_XML_TAIL)))
    out.write(_XML_TAIL)
    return len(_XML_HEAD) + body + len(_XML_TAIL)


def _write_file(path: Path, kind: str, size: int, seed: int, match_rate: float) -> int:
    """Write atomically (temporary file, then rename), so a cache never holds half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb", buffering=1 << 20) as out:
            writer = write_log if kind == "log" else write_xml
            written = writer(out, size, seed, match_rate)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return written


# --------------------------------------------------------------------------
# command line


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Write cobus's sample data (seeded, deterministic, invented).",
        epilog="Without --out: writes samples/access.log and samples/buses.xml.",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default %(default)s)")
    parser.add_argument(
        "--log-size",
        type=parse_size,
        metavar="SIZE",
        help=f"access-log size, e.g. 800K or 200M (default {DEFAULT_LOG_SIZE} bytes)",
    )
    parser.add_argument(
        "--xml-size",
        type=parse_size,
        metavar="SIZE",
        help=f"bus-feed size, e.g. 500K or 200M (default {DEFAULT_XML_SIZE} bytes)",
    )
    parser.add_argument(
        "--match-rate",
        type=parse_rate,
        metavar="FRACTION",
        help="log: share of lines containing 'python' (default "
        f"{DEFAULT_LOG_MATCH_RATE}); xml: share of buses on route 22 "
        f"North Bound (default {DEFAULT_XML_MATCH_RATE})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write one file: needs exactly one of --log-size and --xml-size",
    )
    parser.add_argument(
        "--samples-dir",
        type=Path,
        default=_SAMPLES,
        metavar="DIR",
        help="where the default samples go (default: the repository's samples/)",
    )
    args = parser.parse_args(argv)
    if args.out is not None and (args.log_size is None) == (args.xml_size is None):
        parser.error("--out needs exactly one of --log-size and --xml-size")
    if args.out is None and args.match_rate is not None:
        parser.error("--match-rate applies to one file written with --out")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    if args.out is not None:
        kind = "log" if args.log_size is not None else "xml"
        default_rate = DEFAULT_LOG_MATCH_RATE if kind == "log" else DEFAULT_XML_MATCH_RATE
        rate = default_rate if args.match_rate is None else args.match_rate
        _write_file(args.out, kind, args.log_size or args.xml_size, args.seed, rate)
        return 0
    log_size = args.log_size or DEFAULT_LOG_SIZE
    xml_size = args.xml_size or DEFAULT_XML_SIZE
    _write_file(args.samples_dir / "access.log", "log", log_size, args.seed, DEFAULT_LOG_MATCH_RATE)
    _write_file(args.samples_dir / "buses.xml", "xml", xml_size, args.seed, DEFAULT_XML_MATCH_RATE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
