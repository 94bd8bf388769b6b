"""What ``threaded``, ``subprocess`` and ``parallel`` share: a branch run elsewhere, as a Target.

:class:`Runner` holds the bookkeeping written once for both kinds: the
:class:`~cobus.core.Outlet` to the stages downstream, the first failure (told
once), and a ``close`` that either drains the branch or, when the run is
interrupted, aborts it. Subclasses say how a batch goes in, how the branch is
waited for and how it is stopped. Nothing here starts a thread or a process.

Discussion: normal close or abort. ``close`` cannot be told why it is called,
so it looks at the exceptions in flight (:func:`~cobus.core.aborting`): a
KeyboardInterrupt, SystemExit or the CLI's SIGTERM means "stop now": queued
batches are dropped, workers killed, and nothing is waited for longer than
:data:`ABORT_WAIT`. Any other end drains the branch first, so what was
already produced is written.
"""

from __future__ import annotations

import threading

from ..core import Batch, Done, Outlet, Target, aborting
from ..errors import CobusError, StageError

__all__ = ["ABORT_WAIT", "BranchError", "Runner", "describe", "failure"]

#: How long an interrupted stage waits for its thread or workers to stop.
ABORT_WAIT = 0.5


class BranchError(StageError):
    """A branch failed; the message already names the stage that ran it."""


def describe(exc: BaseException) -> str:
    """An exception as the cause in one line: a cobus error's message, else its type too."""
    if isinstance(exc, CobusError):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def failure(name: str, exc: BaseException) -> BranchError:
    """The one-line error for ``exc`` raised inside the stage ``name``."""
    if isinstance(exc, BranchError):
        return exc  # a nested threaded/subprocess stage already named itself
    return BranchError(f"{name}: {describe(exc)}")


class Runner:
    """A branch run by another thread or process, seen from the stage before it.

    ``_cond`` guards ``_failure`` (and whatever a subclass keeps with it);
    :meth:`_fail` keeps the first failure, :meth:`_raise_failure` raises it
    once. A failure raised downstream (the outlet's) is raised as it is,
    naming its own stage.
    """

    def __init__(self, name: str, target: Target | None) -> None:
        self.name = name
        self._outlet = Outlet(target) if target is not None else None
        self._cond = threading.Condition()
        self._failure: BaseException | None = None
        self._reported = False
        self._closed = False

    # -- what subclasses provide ---------------------------------------------------

    def _put(self, batch: Batch) -> None:
        raise NotImplementedError

    def _wait(self) -> None:
        """Let the branch finish what it was sent (a normal close)."""
        raise NotImplementedError

    def _abort(self) -> None:
        """Stop the branch now, waiting at most :data:`ABORT_WAIT`."""
        raise NotImplementedError

    def _deliver_rest(self) -> None:
        """After :meth:`_wait`: pass on what the branch left (nothing by default)."""

    # -- the Target side -------------------------------------------------------------

    def send(self, batch: Batch) -> None:
        if self._closed:
            raise Done
        self._put(batch)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if aborting():
            self._abort()
            return
        try:
            self._wait()
        except BaseException:  # Ctrl-C while the branch drains
            self._abort()
            raise
        self._deliver_rest()
        self._raise_failure()

    # -- failures ----------------------------------------------------------------------

    def _wrap(self, exc: BaseException) -> BaseException:
        """The error to raise for ``exc``: as it is if raised downstream, else named after us."""
        if self._outlet is not None and exc is self._outlet.failure:
            return exc
        err = failure(self.name, exc)
        if err is not exc:
            err.__cause__ = exc
        return err

    def _fail(self, exc: BaseException) -> None:
        """Keep the first failure (already the error to raise) and wake any waiter."""
        with self._cond:
            if self._failure is None:
                self._failure = exc
            self._cond.notify_all()

    def _raise_failure(self) -> None:
        """Raise the failure, once."""
        with self._cond:
            if self._failure is not None and not self._reported:
                self._reported = True
                raise self._failure
