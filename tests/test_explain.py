"""``cobus explain``: the wired graph as a tree, from the command line.

Each case shows the exact tree for a small pipeline: the kinds of data on
each edge, the implicit sink, fan-out and the joined stage shown once,
concurrency boundaries, names from a TOML file, fusions and redacted
passwords. Explain runs parse and validate only: it opens no file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from util import SAMPLES


def explain(cli, pipeline: str) -> str:
    r = cli("explain", pipeline)
    assert (r.exit_code, r.stderr) == (0, "")
    text: str = r.stdout
    return text


def test_a_chain_with_the_implicit_print(cli) -> None:
    assert explain(cli, "cat x | grep a") == (
        "pipeline\n"
        "└── cat x   source -> lines\n"
        "    └── grep a   lines -> lines\n"
        "        └── print   lines -> end   (implicit)\n"
    )


def test_the_kinds_change_along_the_pipeline(cli) -> None:
    assert explain(cli, "cat x | parse apache | where status=404 | count by host") == (
        "pipeline\n"
        "└── cat x   source -> lines\n"
        "    └── parse apache   lines -> records   planned: parse makes only host, status, as columns, by "
        "the block   read after it: host, status\n"
        "        └── where status=404   records -> records   reads status   read after it: host\n"
        "            └── count by host   records -> end   reads host\n"
    )


def test_fan_out_and_the_joined_stage_shown_once(cli) -> None:
    assert explain(cli, "cat x | broadcast [grep a] [grep b] | print") == (
        "pipeline\n"
        "└── cat x   source -> lines\n"
        "    └── broadcast [grep a] [grep b]   lines -> lines\n"
        "        ├── grep a   lines -> lines\n"
        "        │   └── print   lines -> end\n"
        "        └── grep b   lines -> lines\n"
        "            └── print   lines -> end   (joined, see above)\n"
    )


def test_concurrency_boundaries_are_named(cli) -> None:
    text = explain(cli, "cat x | parallel 2 [grep a] | subprocess [grep b | head 3] | threaded [grep c]")
    assert text == (
        "pipeline\n"
        "└── cat x   source -> lines\n"
        "    └── parallel 2 [grep a]   lines -> lines\n"
        "        ├── [worker processes 1]\n"
        "        │   ├── grep a   filter -> lines\n"
        "        │   └── -> out of the branch\n"
        "        └── subprocess [grep b | head 3]   lines -> lines\n"
        "            ├── [child process 1]\n"
        "            │   ├── grep b   filter -> lines\n"
        "            │   │   └── head 3   lines -> lines\n"
        "            │   └── -> out of the branch\n"
        "            └── threaded [grep c]   lines -> lines\n"
        "                ├── [thread 1]\n"
        "                │   ├── grep c   filter -> lines\n"
        "                │   └── -> out of the branch\n"
        "                └── print   lines -> end   (implicit)\n"
    )


def test_a_toml_pipeline_shows_its_stage_names(cli) -> None:
    assert explain(cli, str(SAMPLES / "web-report.toml")) == (
        "pipeline\n"
        "└── cat samples/access.log   source -> lines   [log]\n"
        "    ├── grep -i python   lines -> lines   [python]\n"
        "    │   └── head 5   lines -> lines   [report]\n"
        "    │       └── print   lines -> end\n"
        "    └── grep -E '\" (4|5)[0-9][0-9] '   lines -> lines   [errors]\n"
        "        └── count   lines -> end\n"
    )


def test_fusions_are_shown_with_what_they_do(cli) -> None:
    text = explain(cli, "cat x | xml | records bus | count")
    lines = text.splitlines()
    assert lines[1].startswith("└── cat x | xml   source -> events   fused: ")
    assert lines[2:] == [
        "    └── records bus   events -> records   read after it: no fields",
        "        └── count   records -> end   reads no fields",
    ]
    text = explain(cli, "xml buses.xml | records bus | where route=22 | csv id,route")
    lines = text.splitlines()
    fused = "└── xml buses.xml | records bus | where route=22   source -> records   fused: "
    assert lines[1].startswith(fused)
    assert lines[1].endswith("   read after it: id, route")
    assert lines[2:] == ["    └── csv id,route   records -> end   reads id, route"]


def test_a_password_in_a_url_is_never_shown(cli) -> None:
    text = explain(cli, "cat a | xadd redis://:hunter2@localhost:6379 mystream")
    assert "hunter2" not in text
    assert "└── xadd redis://:*******@localhost:6379 mystream   lines -> end\n" in text


def test_explain_opens_nothing(cli, tmp_path: Path) -> None:
    missing = tmp_path / "not-there.log"
    out = tmp_path / "out.log"
    text = explain(cli, f"cat {missing} | write {out}")
    assert f"write {out}   lines -> end" in text
    assert not out.exists()


@pytest.mark.parametrize(
    ("pipeline", "error"),
    [
        ("cat x | count | print", "nothing flows into print: count ends the pipeline (it is a sink)"),
        ("follow x | count by host", "count takes records, but lines arrive here (put parse or records"),
        ("cat x | grpe a", "unknown stage 'grpe' (did you mean 'grep'?)"),
    ],
)
def test_a_wrong_pipeline_is_a_spec_error(cli, pipeline: str, error: str) -> None:
    r = cli("explain", pipeline)
    assert (r.exit_code, r.stdout) == (2, "")
    first, shown, caret = r.stderr.splitlines()
    assert first.startswith(f"cobus: error: {error}")
    assert shown == f"  {pipeline}"
    assert set(caret.strip()) == {"^"}
