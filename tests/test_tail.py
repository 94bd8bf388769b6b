"""cobus tail: byte for byte against GNU tail on the same files, and following with -f/-F/--pid."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _util_live import wait_for
from util import run_cobus

from cobus.tail import modern_args

GNU_TAIL = "/usr/bin/tail"


def gnu_tail() -> str:
    """GNU tail's path, or skip: the comparison needs the real thing."""
    path = GNU_TAIL if os.path.exists(GNU_TAIL) else shutil.which("tail")
    if path is None:
        pytest.skip("GNU tail is not installed (coreutils)")
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
    if "GNU coreutils" not in version:
        pytest.skip(f"{path} is not GNU tail")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same files for both: sizes across the block size, odd endings, binary, empty."""
    folder = tmp_path_factory.mktemp("tail")
    rng = random.Random(14)
    contents = {
        "empty": b"",
        "one": b"only line\n",
        "nonl": b"first\nsecond\nno newline at the end",
        "crlf": b"".join(b"row %d\r\n" % i for i in range(30)),
        "blank": b"\n\n\n\n",
        "small": b"".join(b"line %d\n" % i for i in range(25)),
        "medium": b"".join(b"entry %06d %s\n" % (i, b"x" * (i % 50)) for i in range(20_000)),
        "longline": b"short\n" + b"y" * 300_000 + b"\nend\n",
        "binary": bytes(rng.randrange(256) for _ in range(200_000)),
        "nul": b"one\0two\0three\0four",
    }
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    return folder


CASES = [
    ["small"],
    ["medium"],
    ["-n", "3", "nonl"],
    ["-n", "1", "nonl"],
    ["-n", "0", "small"],
    ["-n", "5", "crlf"],
    ["-n", "+3", "small"],
    ["-n", "+0", "crlf"],
    ["-n", "+100000", "medium"],
    ["-n", "2", "blank"],
    ["-n", "1500", "medium"],
    ["-n", "-4", "longline"],
    ["-n", "1", "longline"],
    ["-n", "2k", "medium"],
    ["-c", "10", "small"],
    ["-c", "+7", "nonl"],
    ["-c", "100000", "binary"],
    ["-n", "3", "binary"],
    ["-c", "0", "one"],
    ["empty"],
    ["-n", "5", "empty"],
    ["small", "nonl", "empty", "one"],
    ["-q", "small", "nonl"],
    ["-v", "small"],
    ["-v", "-n", "+2", "crlf", "one"],
    ["-c", "5", "nonl", "crlf"],
    ["missing"],
    ["small", "missing", "one"],
    ["-q", "missing", "one"],
    ["-z", "-n", "2", "nul"],
    ["-z", "nul", "small"],
    ["--lines=4", "--bytes=3", "small"],
    ["-3", "small"],
    ["+20", "small"],
    ["-5c", "nonl"],
    ["-2b", "medium"],
]


@pytest.mark.parametrize("args", CASES, ids=" ".join)
def test_same_bytes_and_status_as_gnu_tail(files: Path, args: list[str]) -> None:
    tail = gnu_tail()
    gnu = subprocess.run([tail, *args], cwd=files, capture_output=True, env=_c_locale(), check=False)
    ours = run_cobus(["tail", *args], cwd=files)
    assert ours.stdout == gnu.stdout
    assert ours.returncode == gnu.returncode
    assert _messages(ours.stderr, b"cobus tail: ") == _messages(gnu.stderr, tail.encode() + b": ")


@pytest.mark.parametrize(
    "args", [["-n", "2"], ["-c", "7"], ["-n", "+3"], ["-v"], ["-", "one"], ["-4"], ["+3c"]], ids=" ".join
)
def test_standard_input_as_gnu_tail(files: Path, args: list[str]) -> None:
    data = (files / "medium").read_bytes()
    gnu = subprocess.run([gnu_tail(), *args], cwd=files, input=data, capture_output=True, check=False)
    ours = run_cobus(["tail", *args], cwd=files, input=data)
    assert (ours.returncode, ours.stdout) == (gnu.returncode, gnu.stdout)


def test_a_directory_is_an_error_after_its_header(files: Path, tmp_path: Path) -> None:
    folder = files / "folder"
    folder.mkdir(exist_ok=True)
    gnu = subprocess.run(
        [gnu_tail(), "folder", "one"], cwd=files, capture_output=True, env=_c_locale(), check=False
    )
    ours = run_cobus(["tail", "folder", "one"], cwd=files)
    assert (
        (ours.returncode, ours.stdout)
        == (gnu.returncode, gnu.stdout)
        == (1, b"==> folder <==\n\n==> one <==\nonly line\n")
    )
    assert ours.stderr == b"cobus tail: error reading 'folder': Is a directory\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "abc"], b"cobus tail: invalid number of lines: 'abc'\n"),
        (["-c", "2x"], b"cobus tail: invalid number of bytes: '2x'\n"),
        (
            ["-F", "-z"],
            b"cobus tail: -z cannot be combined with -F yet (the follow engine splits lines at newlines)\n",
        ),
    ],
)
def test_a_bad_count_is_one_line_and_status_2(files: Path, args: list[str], message: bytes) -> None:
    ours = run_cobus(["tail", *args, "one"], cwd=files)
    assert (ours.returncode, ours.stdout, ours.stderr) == (2, b"", message)


@pytest.mark.parametrize(
    ("args", "modern"),
    [
        (["-20", "a"], ["-n", "20", "a"]),
        (["+5"], ["-n", "+5"]),
        (["+c", "a"], ["-c", "+10", "a"]),
        (["-3f", "a"], ["-n", "3", "-f", "a"]),
        (["-2b", "-"], ["-c", "2b", "-"]),
        (["-20", "a", "b"], ["-20", "a", "b"]),  # several files: not the obsolete form (tail refuses it too)
        (["-20", "-v"], ["-20", "-v"]),
        (["-n", "5", "a"], ["-n", "5", "a"]),
        (["--follow=name", "a"], ["-F", "a"]),
        (["--follow=descriptor", "-n", "1", "a"], ["-f", "-n", "1", "a"]),
    ],
)
def test_modern_args_reads_the_obsolete_forms(args: list[str], modern: list[str]) -> None:
    assert modern_args(args) == modern


def _c_locale() -> dict[str, str]:
    """GNU tail's messages with plain quotes, as cobus writes them."""
    return {**os.environ, "LC_ALL": "C"}


def _messages(stderr: bytes, prefix: bytes) -> list[bytes]:
    return [line.removeprefix(prefix) for line in stderr.splitlines()]


# -- following ---------------------------------------------------------------------


class Tail:
    """``cobus tail ARGS`` as a live process, its stdout gathered by a thread."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cobus", "tail", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.out = b""
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout.fileno(),), daemon=True)
        self._reader.start()

    def _read(self, fd: int) -> None:
        while data := os.read(fd, 1 << 16):
            self.out += data

    def wait_output(self, want: bytes, timeout: float = 20.0) -> None:
        wait_for(
            lambda: self.out.endswith(want), timeout, f"output ending {want!r} (have {self.out[-300:]!r})"
        )

    def finish(self, timeout: float = 20.0) -> tuple[int, bytes, bytes]:
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        assert self.proc.stderr is not None
        return code, self.out, self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[list[Tail]]:
    started: list[Tail] = []
    yield started
    for t in started:
        t.kill()


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def numbered(name: str, start: int, stop: int) -> bytes:
    return b"".join(b"%s %d\n" % (name.encode(), i) for i in range(start, stop))


@pytest.mark.parametrize("how", ["-f", "-F"])
def test_follow_n_5_then_new_lines_with_headers_on_each_switch(
    tmp_path: Path, live: list[Tail], how: str
) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(numbered("a", 0, 100))
    b.write_bytes(numbered("b", 0, 3))
    t = Tail([how, "-n", "5", "-s", "0.05", "a.log", "b.log"], tmp_path)
    live.append(t)
    t.wait_output(b"b 2\n")
    append(a, b"a new\n")
    t.wait_output(b"a new\n")
    append(b, b"b new\n")
    t.wait_output(b"b new\n")
    assert t.out == (
        b"==> a.log <==\n"
        + numbered("a", 95, 100)
        + b"\n==> b.log <==\n"
        + numbered("b", 0, 3)
        + b"\n==> a.log <==\na new\n\n==> b.log <==\nb new\n"
    )


def test_F_follows_the_name_through_a_rotation(tmp_path: Path, live: list[Tail]) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(numbered("old", 0, 10))
    t = Tail(["-F", "-n", "2", "-s", "0.05", "app.log"], tmp_path)
    live.append(t)
    t.wait_output(b"old 9\n")
    append(log, b"old last\n")
    log.rename(tmp_path / "app.log.1")
    log.write_bytes(b"new 0\n")
    t.wait_output(b"new 0\n")
    assert t.out == b"old 8\nold 9\nold last\nnew 0\n"


def test_f_reports_a_truncated_file_and_reads_it_again(tmp_path: Path, live: list[Tail]) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(numbered("x", 0, 50))
    t = Tail(["-f", "-n", "1", "-s", "0.05", "app.log"], tmp_path)
    live.append(t)
    t.wait_output(b"x 49\n")
    log.write_bytes(b"y\n")
    t.wait_output(b"x 49\ny\n")
    t.proc.terminate()
    code, _, err = t.finish()
    assert code == 143
    assert b"cobus tail: app.log: file truncated\n" in err


@pytest.mark.parametrize("how", ["-f", "-F"])
def test_pid_ends_tail_after_everything_the_process_wrote(tmp_path: Path, live: list[Tail], how: str) -> None:
    """A real writer: tail ends by itself once it was killed, with every line it wrote."""
    log = tmp_path / "app.log"
    log.write_bytes(b"before\n")
    with open(log, "ab") as out:
        writer = subprocess.Popen(
            [sys.executable, "-c", "import time\nfor i in range(200): print(i, flush=True)\ntime.sleep(60)"],
            stdout=out,
        )
    try:
        t = Tail([how, "-n", "5", "--pid", str(writer.pid), "-s", "0.05", "app.log"], tmp_path)
        live.append(t)
        t.wait_output(b"199\n")
        assert t.proc.poll() is None, "tail ended while the process still ran"
    finally:
        writer.kill()
        writer.wait()
    code, out, err = t.finish()
    assert (code, err) == (0, b"")
    assert (b"before\n" + b"".join(b"%d\n" % i for i in range(200))).endswith(out)
    assert out.count(b"\n") >= 5


def test_a_reader_that_goes_away_ends_tail_quietly(files: Path) -> None:
    """``cobus tail -n +1 big | head -1``: no message, status 0 (cobus's rule for a closed stdout)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cobus", "tail", "-n", "+1", "medium"],
        cwd=files,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"entry 000000 \n"
    proc.stdout.close()
    assert proc.wait(30) == 0
    assert proc.stderr.read() == b""
    proc.stderr.close()


def test_F_ends_when_its_reader_goes_away(files: Path) -> None:
    """``cobus tail -F x | head -1`` on a quiet file: the hangup of stdout ends the run."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cobus", "tail", "-F", "-n", "3", "small"],
        cwd=files,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"line 22\n"
    proc.stdout.close()
    assert proc.wait(30) == 0
    assert proc.stderr.read() == b""
    proc.stderr.close()
