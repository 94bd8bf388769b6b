"""Every README example on the bundled samples, and every sample pipeline, runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from util import ROOT, SAMPLES

README = (ROOT / "README.md").read_text()


def readme_commands() -> list[str]:
    """`cobus run|check|explain ...` lines of README code blocks that use samples/."""
    found = []
    for line in README.splitlines():
        if not line.startswith("    "):
            continue  # prose, not a code block
        m = re.search(r"\bcobus (run|check|explain|stages)\b", line)
        if not m or "|" in line[: m.start()] or "cobus: error" in line:
            continue  # fed by a shell pipe: not runnable on its own
        if "samples/" in line or m.group(1) != "run":
            found.append(re.split(r"\s{2,}#", line[m.start() :])[0].strip())
    return found


@pytest.fixture
def in_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "samples").symlink_to(SAMPLES)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_readme_has_examples() -> None:
    assert len(readme_commands()) >= 20


@pytest.mark.parametrize("command", readme_commands())
def test_readme_example_runs(cli, in_sandbox: Path, command: str) -> None:
    args = shlex.split(command)[1:]
    r = cli(*args)
    expect = 2 if args[0] == "check" and "grpe" in args[1] else 0
    assert r.exit_code == expect, r.stderr
    if expect == 0:
        if "--stats" in args:
            assert "own time" in r.stderr
        else:
            assert r.stderr == ""
        assert r.stdout.strip()


@pytest.mark.parametrize("toml", sorted(SAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_sample_pipelines_run(cli, toml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    r = cli("run", str(toml.relative_to(ROOT)))
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout.strip()


def test_quick_start_is_two_commands() -> None:
    block = README.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = [x.strip() for x in block.splitlines() if x.startswith("    ")]
    assert len(commands) == 2
    assert commands[0].startswith("pip install . && cobus run '")
    assert commands[1] == "pip install '.[test]' && python -m pytest -q"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pytest -q\n" in ci


def shown_outputs() -> list[tuple[str, str]]:
    """(command, the output the README shows under it) for every ``$ cobus`` line."""
    found = []
    lines = README.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("    $ cobus "):
            shown = []
            for nxt in lines[i + 1 :]:
                if not nxt.startswith("    ") or nxt.startswith("    $ ") or not nxt.strip():
                    break
                shown.append(nxt[4:])
            found.append((line[6:], "\n".join(shown) + "\n"))
    return found


@pytest.mark.parametrize(("command", "shown"), shown_outputs(), ids=[c for c, _ in shown_outputs()])
def test_readme_shows_real_output(cli, in_sandbox: Path, command: str, shown: str) -> None:
    r = cli(*shlex.split(command)[1:])
    assert (r.stdout if r.exit_code == 0 else r.stderr) == shown
