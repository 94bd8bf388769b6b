"""Worker processes, the parent's side: :class:`WorkerPool` starts, feeds, reads and stops them.

The parent spawns ``python -m cobus worker --kind KIND --out-fd FD -- BRANCH``
in its own process group (a Ctrl-C reaches only the parent, which stops its
workers) and writes input frames to the child's stdin; the child
(:mod:`._child`) rebuilds the branch from its text, runs every batch through
it and answers on fd FD (see :mod:`.wire`). What the branch's sinks print
travels back as ``O`` frames, so it lands in the parent's stdout in order;
the child's stderr is the parent's. The pool is the only place that starts,
kills or waits for a worker; close, abort and failures follow :mod:`._runner`.

Discussion: order and bounds. Each worker processes its batches in the order
sent and answers every one with an ``S`` frame after its output, so the
parent knows which batch an output belongs to. With several workers a batch
goes to the least busy one (at most :data:`IN_FLIGHT` each); finished
batches wait in ``_results`` until all earlier ones are out. A window of
sequence numbers bounds that waiting room when one worker lags. Reader
threads (one per worker) deliver downstream under one lock; they never wait
for the sending thread, so a full pipe cannot deadlock the two.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from typing import IO, Any

from ..context import RunContext
from ..core import Batch, Branch, Done, Target
from ..registry import ANY
from . import wire
from ._deathsig import PARENT_ENV
from ._runner import ABORT_WAIT, BranchError, Runner

__all__ = ["IN_FLIGHT", "WorkerPool"]

#: The worker's option naming the fields read after its branch (JSON list of names).
READS_OPTION = "--reads"
#: The worker's flag: its branch may end in columns (they cross the wire as records).
COLUMNS_OPTION = "--columns"
#: Batches a worker may hold at once (one being processed, the rest in its pipe).
IN_FLIGHT = 3
_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031  # Linux; fcntl.F_SETPIPE_SZ is not on every build


def _grow_pipe(fd: int) -> None:
    """Ask for a 1 MiB pipe buffer so a whole batch fits (Linux; best effort)."""
    try:
        import fcntl

        fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_SIZE)
    except (ImportError, OSError):
        pass


class _Printed(bytes):
    """Bytes a worker's sinks wrote to its stdout."""


class _Worker:
    """The parent's handle on one child: its pipes, its batches in flight."""

    def __init__(self, index: int, proc: subprocess.Popen[bytes], out: IO[bytes]) -> None:
        self.index = index
        self.proc = proc
        assert proc.stdin is not None
        self.writer = wire.FrameWriter(proc.stdin)
        self.out = out
        self.inflight: deque[int] = deque()
        #: Outputs since the last S frame (ordered mode).
        self.pending: list[Any] = []
        self.message: str | None = None
        self.ended = False
        #: Answers to delivery barriers (A frames) not yet taken by :meth:`WorkerPool.drain`.
        self.acks: deque[bool] = deque()
        self.reader = threading.Thread(daemon=True)


class WorkerPool(Runner):
    """``subprocess`` (one worker) and ``parallel N``: a branch run by child processes.

    ``worker_args`` are added to every worker's command line (``--partial
    STAGE``: see :mod:`.partials`).
    """

    def __init__(
        self,
        name: str,
        branch: Branch,
        target: Target | None,
        ctx: RunContext,
        *,
        workers: int,
        ordered: bool,
        worker_args: tuple[str, ...] = (),
    ) -> None:
        super().__init__(name, target)
        self._ctx = ctx
        self._ordered = ordered
        self._deliver = threading.Lock()
        self._results: dict[int, list[Any]] = {}
        self._next_in = 0
        self._next_out = 0
        self._window = 2 * IN_FLIGHT * workers
        self._broken = False  # downstream failed or said Done: deliver nothing more
        self._done = False  # no more input is wanted
        self._stopping = False  # we kill the workers: their deaths are not failures
        self._workers: list[_Worker] = []
        argv = [sys.executable, "-m", "cobus", "worker", "--kind", branch.input_kind or ANY]
        if ctx.live:
            argv.append("--live")
        argv.extend(worker_args)
        if branch.read_after is not None:  # the worker plans its branch as this one was
            argv.extend([READS_OPTION, json.dumps(sorted(branch.read_after))])
        if branch.columnar_after:
            argv.append(COLUMNS_OPTION)
        try:
            for i in range(workers):
                self._workers.append(self._spawn(i, argv, branch.text))
        except BaseException:
            self._abort()
            raise
        for w in self._workers:
            w.reader = threading.Thread(
                target=self._read, args=(w,), name=f"cobus {name} #{w.index}", daemon=True
            )
            w.reader.start()
        ctx.cleanups.append(self._reap)
        ctx.delivery.stage(self.drain)

    def _spawn(self, index: int, argv: list[str], text: str) -> _Worker:
        r, w = os.pipe()
        env = dict(os.environ)
        # The child must import this very cobus, wherever it was imported from.
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        env[PARENT_ENV] = str(os.getpid())
        try:
            _grow_pipe(w)
            proc = subprocess.Popen(
                [*argv, "--out-fd", str(w), "--", text],
                stdin=subprocess.PIPE,
                bufsize=1 << 16,
                pass_fds=(w,),
                process_group=0,
                env=env,
            )
        except OSError as exc:
            os.close(r)
            raise BranchError(f"{self.name}: cannot start a worker: {exc.strerror or exc}") from exc
        finally:
            os.close(w)
        assert proc.stdin is not None
        _grow_pipe(proc.stdin.fileno())
        return _Worker(index, proc, open(r, "rb", buffering=1 << 16))

    # -- the sending side (the thread that calls send/close) -----------------

    def _put(self, batch: Batch) -> None:
        try:
            kind, payload = wire.encode_batch(batch)
        except wire.WireError as exc:
            raise BranchError(f"{self.name}: {exc}") from None
        with self._cond:
            while True:
                self._raise_stopped()
                w = min(self._workers, key=lambda w: len(w.inflight))
                if len(w.inflight) < IN_FLIGHT and self._next_in - self._next_out < self._window:
                    break
                self._cond.wait()
            w.inflight.append(self._next_in)
            self._next_in += 1
        try:
            w.writer.write(kind, payload)
        except (OSError, ValueError, wire.WireError) as exc:
            # The worker is gone: its reader is about to say why.
            w.reader.join(5.0)
            with self._cond:
                self._raise_stopped()
            raise BranchError(f"{self.name}: cannot send to worker {w.index + 1}: {exc}") from exc

    def drain(self) -> bool:
        """A delivery barrier (cobus.delivery): each worker confirms, outputs are passed on.

        Every worker runs the barrier over its own branch after the batches
        sent before it, then answers with an A frame; its earlier outputs have
        come back by then. True unless a branch holds items back.
        """
        if self._closed:
            return True
        for w in self._workers:
            try:
                w.writer.write(wire.BARRIER)
            except (OSError, ValueError) as exc:
                w.reader.join(5.0)
                self._raise_failure()
                raise BranchError(f"{self.name}: cannot send to worker {w.index + 1}: {exc}") from exc
        with self._cond:
            while not all(w.acks for w in self._workers):
                gone = any(w.ended or not w.reader.is_alive() for w in self._workers)
                if self._failure is not None or gone:
                    self._raise_failure()
                    return False
                self._cond.wait(0.5)
            delivered = all([w.acks.popleft() for w in self._workers])
        self._flush_ready()
        with self._deliver:
            for w in self._workers:  # what the barrier's flush printed, after every batch's output
                items, w.pending = w.pending, []
                self._emit(items)
        self._raise_failure()
        return delivered

    def _raise_stopped(self) -> None:
        """Raise the failure (once) or Done; call with ``_cond`` held."""
        self._raise_failure()
        if self._done or self._failure is not None:
            raise Done

    def _wait(self) -> None:
        if self._failure is not None:
            self._stopping = True
            for w in self._workers:
                _kill(w.proc)
        for w in self._workers:
            with contextlib.suppress(OSError, ValueError):
                w.writer.close()
        for w in self._workers:
            w.reader.join()

    def _deliver_rest(self) -> None:
        self._flush_ready()
        with self._deliver:
            for w in self._workers:
                # A worker's last outputs (sinks flushed at close) go out once
                # every earlier batch is out; a killed worker's partial batch does not.
                if not w.inflight or w.inflight[0] == self._next_out:
                    self._emit(w.pending)
        try:
            if self._outlet is not None:
                self._outlet.close()
        except BaseException as exc:
            self._fail(exc)

    def _abort(self) -> None:
        """Stop now (Ctrl-C): kill every worker, wait a moment, flush downstream."""
        self._stopping = True
        for w in self._workers:
            _kill(w.proc)
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                w.writer.close()
        for w in self._workers:
            if w.reader.ident is not None:
                w.reader.join(ABORT_WAIT)
        self._reap()
        if self._outlet is not None:
            with contextlib.suppress(Exception):
                self._outlet.close(timeout=ABORT_WAIT)

    def _reap(self) -> None:
        """No worker outlives the run: kill and wait for any still there."""
        for w in self._workers:
            if w.proc.returncode is None:
                self._stopping = True
                _kill(w.proc)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    w.proc.wait(ABORT_WAIT)

    # -- the receiving side (one reader thread per worker) -------------------

    def _read(self, w: _Worker) -> None:
        try:
            while (frame := wire.read_frame(w.out)) is not None:
                self._receive(w, *frame)
        except wire.WireError as exc:
            w.message = w.message or f"bad output from the worker: {exc}"
            _kill(w.proc)
        except OSError as exc:
            w.message = w.message or f"cannot read from the worker: {exc}"
            _kill(w.proc)
        finally:
            w.out.close()
            code = w.proc.wait()
            if not self._stopping and (w.message is not None or code != 0 or not w.ended):
                self._fail(BranchError(f"{self.name}: {self._cause(w, code)}"))
            with self._cond:
                self._cond.notify_all()

    def _cause(self, w: _Worker, code: int) -> str:
        who = "the worker" if len(self._workers) == 1 else f"worker {w.index + 1}"
        if w.message is not None:
            return w.message
        if code < 0:
            try:
                return f"{who} was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"{who} was killed by signal {-code}"
        if code > 0:
            return f"{who} exited with status {code}"
        return f"{who} stopped before the end of its input"

    def _receive(self, w: _Worker, kind: bytes, payload: bytes) -> None:
        if kind in wire.DATA_KINDS or kind == wire.STDOUT:
            if kind == wire.STDOUT:
                item: Any = _Printed(payload)
            elif self._outlet is None:
                raise wire.WireError("output from a branch that ends in sinks")
            else:
                item = wire.decode_batch(kind, payload)
            if self._ordered:
                w.pending.append(item)
            else:
                with self._deliver:
                    self._emit([item])
        elif kind == wire.SYNC:
            with self._cond:
                if not w.inflight:
                    raise wire.WireError("an S frame answers no batch")
                seq = w.inflight.popleft()
                if self._ordered:
                    self._results[seq], w.pending = w.pending, []
                self._cond.notify_all()
            self._flush_ready()
        elif kind == wire.ACK:
            with self._cond:
                w.acks.append(payload == b"1")
                self._cond.notify_all()
        elif kind == wire.QUIT:
            with self._cond:
                self._done = True
                self._cond.notify_all()
        elif kind == wire.ERROR:
            w.message = wire.decode_error(payload)
        else:
            w.ended = True

    def _flush_ready(self) -> None:
        """Deliver the finished batches that come next in input order."""
        if not self._ordered:
            return
        with self._deliver:
            while True:
                with self._cond:
                    items = self._results.pop(self._next_out, None)
                    if items is None:
                        return
                    self._next_out += 1
                    self._cond.notify_all()
                self._emit(items)

    def _emit(self, items: list[Any]) -> None:
        """Pass outputs downstream; call with ``_deliver`` held."""
        for item in items:
            if self._broken:
                return
            try:
                if isinstance(item, _Printed):
                    self._ctx.stdout.write(item)
                    self._ctx.stdout.flush()
                elif self._outlet is not None:
                    self._outlet.send(item)
            except Done:
                self._broken = True
                with self._cond:
                    self._done = True
                    self._cond.notify_all()
            except BaseException as exc:
                self._broken = True
                self._fail(exc)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.returncode is None:
        with contextlib.suppress(OSError):
            proc.kill()
