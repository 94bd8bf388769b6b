"""Property: random pipeline texts never end in a traceback or an exit status outside 0/1/2.

Texts are drawn from the language's own pieces (stage names, options, fields,
operators, brackets) mixed with odd words (quotes, NUL, huge numbers, regex
metacharacters). Most examples run in-process: ``load`` (what ``cobus check``
does) may only raise a :class:`~cobus.errors.CobusError`, and a pipeline that
loads runs on small real files through the library API with the same rule.
A few go through the real ``cobus`` to check the exit status and stderr.
Bounded for a 2-core CI machine: small files, few examples, no deadline per
example (threads make timings noisy); derandomized under CI. To hunt for
more, scale the examples: ``COBUS_FUZZ_SCALE=50 pytest tests/test_fuzz_pipelines.py``.
"""

from __future__ import annotations

import builtins
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from util import SAMPLES

from cobus.context import RunContext
from cobus.errors import CobusError
from cobus.explain import graph_tree
from cobus.runner import run
from cobus.spec import load

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies
given, settings, HealthCheck = hypothesis.given, hypothesis.settings, hypothesis.HealthCheck

_SCALE = int(os.environ.get("COBUS_FUZZ_SCALE", "1"))
_SETTINGS = {
    "deadline": None,
    "derandomize": bool(os.environ.get("CI")),
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}

FIELDS = ["status", "host", "path", "bytes", "id", "route", "@id", "_raw", "level", "a,b", ""]
ODD = [
    "",
    "'",
    '"',
    "\\",
    "\x00",
    "é",
    "-",
    "--",
    "-1",
    "0",
    "1e309",
    "99999999999999999999999",
    "(",
    "[a-",
    "*",
    "?",
    "{2,1}",
    "(?P<x>",
    "\t",
    "by",
    "=",
    "=>",
    "~",
    "<>",
    "x>",
    "a=b",
    "status>=400",
    "path~py",
    "route!=22",
    "--every",
    "0s",
    "10s",
    "--csv",
    "--bogus",
    "-z",
    "--parser",
    "lxml",
    "--recover",
    "--allow-entities",
    "--start",
    "--timeout",
    "-q",
    "--queue",
    "python",
    "apache",
    "json",
    "logfmt",
    "regex",
    "bus",
    "%s",
    "/dev/null",
    "/nonexistent/x",
    "tcp://127.0.0.1:abc",
]

#: Stages that may run in-process on files: no waiting on the network, stdin or child processes.
RUNNABLE_FILTERS = ["grep", "head", "parse", "where", "records", "events", "multiline", "unjoin", "xml"]
RUNNABLE_SINKS = ["count", "top", "sum", "uniq", "csv", "jsonl", "table", "print", "null"]
EVERY_NAME = [*RUNNABLE_FILTERS, *RUNNABLE_SINKS, "broadcast", "threaded", "parallel", "subprocess"]
EVERY_NAME += ["cat", "xml", "follow", "listen", "write", "grpe", "Cat", "|", "["]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fuzz")
    log = root / "small.log"
    log.write_bytes(b"".join((SAMPLES / "access.log").read_bytes().splitlines(keepends=True)[:200]))
    xml = root / "small.xml"
    xml.write_bytes(b"<buses>" + b"<bus id='1'><route>22</route><id>7</id></bus>" * 30 + b"</buses>")
    jsonl = root / "small.jsonl"
    jsonl.write_bytes(b'{"level": "error", "n": 1}\n{"level": 2}\nnot json\n' * 20)
    return {"log": log, "xml": xml, "jsonl": jsonl, "missing": root / "missing.log"}


def _words(names: list[str]) -> st.SearchStrategy[str]:
    word = st.one_of(st.sampled_from(ODD + FIELDS), st.text(max_size=6), st.integers(-3, 10**6).map(str))
    quoted = word.map(lambda w: "'" + w.replace("'", "") + "'")
    return st.lists(st.one_of(word, quoted, st.sampled_from(names)), max_size=4).map(" ".join)


@st.composite
def _stage(draw: st.DrawFn, names: list[str], depth: int) -> str:
    name = draw(st.sampled_from(names))
    text = f"{name} {draw(_words(names))}".strip()
    if depth > 0 and draw(st.integers(0, 4)) == 0:
        branch = draw(_chain(names, depth - 1, source=None))
        text += f" [{branch}]" * draw(st.integers(1, 2))
    return text


@st.composite
def _chain(draw: st.DrawFn, names: list[str], depth: int, source: str | None) -> str:
    stages = draw(st.lists(_stage(names, depth), min_size=1, max_size=5))
    if source is not None:
        stages.insert(0, source)
    return " | ".join(stages)


def _sources(files: dict[str, Path]) -> st.SearchStrategy[str]:
    log, xml, jsonl, missing = files["log"], files["xml"], files["jsonl"], files["missing"]
    return st.sampled_from(
        [
            f"cat {log}",
            f"cat {jsonl}",
            f"cat {xml}",
            f"cat {missing} {log}",
            f"xml {xml}",
            f"xml --parser sax {xml}",
            f"xml --parser expat {xml}",
        ]
    )


#: A Python exception's name heading a message (``TypeError: ...``): the user should see cobus's words.
_NAMED = re.compile(r"\b([A-Z][A-Za-z]*(?:Error|Exception)): ")
_PYTHON_NAMES = {n for n in dir(builtins) if n.endswith(("Error", "Exception"))}
_PYTHON_NAMES |= {"ExpatError", "XMLSyntaxError", "SAXParseException", "JSONDecodeError", "LZMAError"}


def _python_name(message: str) -> str | None:
    return next((m for m in _NAMED.findall(message) if m in _PYTHON_NAMES), None)


def _in_our_words(exc: CobusError) -> None:
    assert _python_name(str(exc)) is None, str(exc)


def _load_or_refuse(text: str) -> object:
    """``cobus check`` in-process: a graph, or None when refused with a CobusError."""
    try:
        graph = load(text)
    except CobusError as exc:
        _in_our_words(exc)
        return None
    graph_tree(graph)  # explain draws whatever check accepts
    return graph


@settings(max_examples=300 * _SCALE, **_SETTINGS)
@given(text=st.one_of(st.text(max_size=60), st.text(alphabet="|[] '\"\\=<>~-abcx0", max_size=40)))
def test_any_text_is_checked_or_refused(text: str) -> None:
    _load_or_refuse(text)


@settings(max_examples=200 * _SCALE, **_SETTINGS)
@given(data=st.data())
def test_any_pipeline_of_known_pieces_is_checked_or_refused(data: st.DataObject) -> None:
    source = data.draw(st.sampled_from(["cat x", "xml x.xml", "follow x", "listen 5140", "cat -"]))
    _load_or_refuse(data.draw(_chain(EVERY_NAME, 2, source)))


@settings(max_examples=120 * _SCALE, **_SETTINGS)
@given(data=st.data())
def test_runnable_pipelines_run_or_fail_with_one_error(files: dict[str, Path], data: st.DataObject) -> None:
    text = data.draw(_chain([*RUNNABLE_FILTERS, *RUNNABLE_SINKS, "broadcast", "threaded"], 1, None))
    graph = _load_or_refuse(f"{data.draw(_sources(files))} | {text}")
    if graph is None:
        return
    try:
        run(graph, RunContext(stdout=io.BytesIO(), quiet=True))  # type: ignore[arg-type]
    except CobusError as exc:
        _in_our_words(exc)


@settings(max_examples=6 * _SCALE, **_SETTINGS)
@given(data=st.data())
def test_a_few_through_the_real_process(files: dict[str, Path], data: st.DataObject) -> None:
    names = [*RUNNABLE_FILTERS, *RUNNABLE_SINKS, "broadcast", "threaded", "subprocess"]
    text = f"{data.draw(_sources(files))} | {data.draw(_chain(names, 1, None))}"
    hypothesis.assume("\x00" not in text)  # no shell can put a NUL into an argument
    try:
        os.fsencode(text)
    except UnicodeEncodeError:  # nor a lone surrogate
        hypothesis.assume(False)
    done = subprocess.run(
        [sys.executable, "-m", "cobus", "run", "--quiet", text],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert done.returncode in (0, 1, 2), done.stderr
    assert b"Traceback" not in done.stderr and b"internal error" not in done.stderr, done.stderr
    assert b"Exception ignored" not in done.stderr, done.stderr
    assert _python_name(done.stderr.decode(errors="replace")) is None, done.stderr
