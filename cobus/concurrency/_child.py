"""Worker processes, the child's side: run a branch over frames, answer on a pipe.

``cobus worker`` (a hidden command in :mod:`cobus.cli`, the only module that
parses arguments or exits) calls :func:`run_worker` with a way to load the
branch: the spec stays above this package. Batches arrive on stdin as frames
(:mod:`.wire`); every batch's outputs, then an ``S`` frame, go out on the
given fd; what the branch's sinks print travels as ``O`` frames, so it lands
in the parent's stdout in order. With ``--partial STAGE`` the branch's output
first goes through that aggregate's partial half and leaves as ``P`` frames
(:mod:`.partials`). The parent's side is :mod:`._pool`.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Callable
from typing import IO, Any

from ..context import RunContext
from ..core import Branch, Done, StageGen, Target, coroutine
from ..errors import CobusError
from . import wire
from ._runner import describe

__all__ = ["run_worker"]


class _StdoutFrames(io.RawIOBase):
    """The worker's stdout: every flushed chunk goes to the parent as an O frame."""

    def __init__(self, writer: wire.FrameWriter) -> None:
        self._writer = writer

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        if chunk:
            self._writer.write(wire.STDOUT, chunk)
        return len(chunk)


@coroutine
def _frames_out(writer: wire.FrameWriter) -> StageGen:
    """The branch's exit inside the worker: every batch becomes a data frame."""
    while True:
        batch = yield
        if len(batch):
            writer.write(*wire.encode_batch(batch))


def run_worker(
    load: Callable[[RunContext], Branch],
    *,
    out_fd: int,
    live: bool,
    tail: Callable[[], Callable[[Target], Target]] | None = None,
) -> int:
    """Read frames on stdin, run the branch ``load`` gives, answer on ``out_fd``.

    ``load`` raises a CobusError for a branch that does not validate.
    ``tail``, when given, loads a stage put between the branch and the wire
    (the partial half of an aggregate: its partials leave as P frames). Exit
    status: 0 when the input ended and the branch closed cleanly; 1 when the
    branch failed (an E frame says why); 2 for a malformed input frame or an
    unusable fd (also reported on stderr).
    """
    try:
        out = open(out_fd, "wb", buffering=1 << 16)
    except OSError as exc:
        print(f"cobus worker: fd {out_fd}: {exc.strerror}", file=sys.stderr)
        return 2
    writer = wire.FrameWriter(out)
    ctx = RunContext(stdout=io.BufferedWriter(_StdoutFrames(writer), 1 << 16), live=live)
    try:
        try:
            branch = load(ctx)
            exit_: Target | None = _frames_out(writer) if branch.has_outputs else None
            if tail is not None and exit_ is not None:
                exit_ = tail()(exit_)
            entry = branch.build(exit_)
        except CobusError as exc:
            writer.write(wire.ERROR, wire.encode_error(str(exc)))
            return 1
        return _serve(open(0, "rb", buffering=1 << 16, closefd=False), entry, writer, ctx)
    except (BrokenPipeError, KeyboardInterrupt):
        return 1  # the parent went away, or stopped us: nobody to tell
    finally:
        for cleanup in reversed(ctx.cleanups):
            with contextlib.suppress(Exception):
                cleanup()
        with contextlib.suppress(OSError):
            writer.close()


def _serve(stdin: IO[bytes], entry: Target, writer: wire.FrameWriter, ctx: RunContext) -> int:
    """The worker's loop: a batch in, its outputs and an S frame out."""
    wanted = True
    try:
        try:
            while (frame := wire.read_frame(stdin)) is not None:
                if frame[0] == wire.BARRIER:
                    writer.write(wire.ACK, b"1" if ctx.delivery.confirm() else b"0")
                    continue
                if frame[0] == wire.PARTIAL:
                    raise wire.WireError("a P frame is output, never input")
                batch = wire.decode_batch(*frame)
                if wanted:
                    try:
                        entry.send(batch)
                    except (Done, StopIteration):
                        wanted = False
                        writer.write(wire.QUIT)
                writer.write(wire.SYNC)
        finally:
            entry.close()
            ctx.stdout.flush()
    except wire.WireError as exc:
        print(f"cobus worker: malformed frame: {exc}", file=sys.stderr, flush=True)
        writer.write(wire.ERROR, wire.encode_error(f"malformed frame: {exc}"))
        return 2
    except BrokenPipeError:
        raise
    except Exception as exc:
        writer.write(wire.ERROR, wire.encode_error(describe(exc)))
        return 1
    writer.write(wire.END)
    return 0
