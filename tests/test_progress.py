"""What a run shows on stderr: the progress bars and the ``--stats`` table, rendered exactly.

Rendering is checked as rich's own tests do it: a Console writing to a
StringIO, as a terminal (colours off, so the text is readable), on a fake
clock. The only internals used are the renderers' entry points
(``ProgressBoard``, ``stats_table``) and the records they draw
(``StageStats``, ``Stopwatch``); ``--stats`` is also run from the command line.
"""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from util import SAMPLES

from cobus.progress import ProgressBoard, StageStats, Stopwatch, stats_table

#: Hide the cursor, erase the current line, show the cursor, go up one line.
HIDE, ERASE, SHOW, UP = "\x1b[?25l", "\r\x1b[2K", "\x1b[?25h", "\x1b[1A"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=80, force_terminal=True, color_system=None, legacy_windows=False), out


#: One bar line: description, bar, bytes, then speed and time left (those follow rich's own clock).
BAR = re.compile(r"access\.log ([━╸]*) +(\d\.\d)/1\.0 kB (\?|[\d.]+ [kMG]?B/s) (-:--:--|\d:\d\d:\d\d)")


def frames(text: str) -> list[str]:
    """The successive drawings of a live display (each one erases the line before)."""
    return [f for f in text.removeprefix(HIDE).split(ERASE) if f]


def test_no_bar_before_the_delay_then_one_per_input() -> None:
    console, out = terminal()
    clock = FakeClock()
    board = ProgressBoard(console, delay=1.0, clock=clock)
    tracker = board.track("access.log", 1000)
    tracker.update(300)
    clock.now = 0.99
    tracker.update(400)
    assert out.getvalue() == ""  # a quick run never flickers
    clock.now = 1.0
    tracker.update(500)
    text = out.getvalue()
    assert text.startswith(HIDE)
    (first,) = frames(text)
    m = BAR.fullmatch(first)
    assert m is not None, first
    assert (len(m.group(1)), m.group(2)) == (20, "0.5")  # half of the 40-cell bar
    board.close()


def test_redraws_at_most_ten_times_a_second() -> None:
    console, out = terminal()
    clock = FakeClock()
    board = ProgressBoard(console, delay=0.0, clock=clock)
    tracker = board.track("access.log", 1000)
    tracker.update(100)
    for done in (200, 300, 400):
        clock.now += 0.03
        tracker.update(done)
    assert len(frames(out.getvalue())) == 1
    clock.now += 0.02  # 0.11 s after the first drawing
    tracker.update(500)
    drawn = frames(out.getvalue())
    assert len(drawn) == 2
    assert [m.group(2) for m in map(BAR.fullmatch, drawn) if m] == ["0.1", "0.5"], drawn
    board.close()


#: How a transient live display leaves: a newline after its last drawing, then back up, erased.
LEAVE = f"\n{SHOW}\r{UP}\x1b[2K"


def left_at(text: str) -> str:
    """What ``text`` (a live display stopping) last drew: the bar's completed kB."""
    assert text.startswith(ERASE) and text.endswith(LEAVE), repr(text)
    m = BAR.fullmatch(text[len(ERASE) : -len(LEAVE)])
    assert m is not None, repr(text)
    return m.group(2)


def test_hold_erases_the_bars_for_output_and_the_next_update_draws_them_again() -> None:
    console, out = terminal()
    clock = FakeClock()
    board = ProgressBoard(console, delay=0.0, clock=clock)
    tracker = board.track("access.log", 1000)
    tracker.update(100)
    before = out.getvalue()
    with board.hold():
        erased = out.getvalue()[len(before) :]
        console.file.write("a line of output\n")
    assert left_at(erased) == "0.1"  # the output goes where the bars were
    tracker.update(200)
    again = out.getvalue()[len(before) + len(erased) :]
    assert again.startswith("a line of output\n" + HIDE)
    m = BAR.fullmatch(again.removeprefix("a line of output\n" + HIDE))
    assert m is not None and m.group(2) == "0.2"
    board.close()


def test_close_erases_the_bars() -> None:
    console, out = terminal()
    board = ProgressBoard(console, delay=0.0, clock=FakeClock())
    board.track("access.log", 1000).update(1000)
    before = out.getvalue()
    board.close()
    assert left_at(out.getvalue()[len(before) :]) == "1.0"
    after = out.getvalue()
    board.close()  # twice is harmless
    assert out.getvalue() == after


def test_notes_are_drawn_below_the_bars() -> None:
    console, out = terminal()
    board = ProgressBoard(console, delay=0.0, clock=FakeClock())
    seen = [0]
    board.note(lambda: f"consumer: {seen[0]} read")
    board.track("access.log", 1000).update(100)
    bar, note = out.getvalue().removeprefix(HIDE).split("\n")
    assert BAR.fullmatch(bar) is not None
    assert note == "consumer: 0 read"
    board.close()


def test_the_stats_table() -> None:
    grep = StageStats("grep python", items=8348, batches=3, seconds=0.25)
    count = StageStats("count", items=120, batches=3, seconds=0.05)
    source = StageStats("cat access.log", feeds=grep)
    watch = Stopwatch(clock=FakeClock())
    watch.outside = 0.5  # the metered sends took half of the run: the source had the rest
    console, out = terminal()
    console.print(stats_table([source, grep, count], 1.0, watch, [lambda: "a note"]))
    assert out.getvalue() == (
        "cobus --stats (1.00 s)                                 \n"
        "┏━━━━━━━━━━━━━━━━┳━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━┓\n"
        "┃ stage          ┃ items ┃ batches ┃ own time ┃ share ┃\n"
        "┡━━━━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━┩\n"
        "│ cat access.log │ 8,348 │       3 │  0.500 s │   50% │\n"
        "│ grep python    │ 8,348 │       3 │  0.250 s │   25% │\n"
        "│ count          │   120 │       3 │  0.050 s │    5% │\n"
        "└────────────────┴───────┴─────────┴──────────┴───────┘\n"
        "a note\n"
    )


def test_stats_from_the_command_line(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(SAMPLES)
    r = cli("run", "--stats", "cat access.log | grep python | count")
    assert (r.exit_code, r.stdout) == (0, "120\n")
    rows = re.findall(r"^│ (.+?) +│ +([\d,]+) │ +(\d+) │ +[\d.]+ s │ +\d+% │$", r.stderr, re.MULTILINE)
    assert rows == [("cat access.log", "8,348", "1"), ("grep python", "8,348", "1"), ("count", "120", "1")]
    assert re.match(r"cobus --stats \(\d+\.\d\d s\)", r.stderr)
