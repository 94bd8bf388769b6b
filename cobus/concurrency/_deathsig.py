"""Ask Linux to kill a worker when the cobus that started it dies, even by SIGKILL.

Otherwise a worker deep in a long batch would run on until the batch ends
and it reads EOF. This is the one place that speaks ``prctl``; ctypes is
imported only by the worker that calls it. The caller (``cobus worker`` in
:mod:`cobus.cli`, the only module that exits) ends the process when the
parent is already gone.
"""

from __future__ import annotations

import os
import signal
import sys

__all__ = ["PARENT_ENV", "die_with_parent"]

#: The pid of the cobus that started the worker (set by :mod:`._pool`).
PARENT_ENV = "COBUS_WORKER_PARENT"
#: From <linux/prctl.h>.
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    """Ask for SIGKILL when the parent dies; False if it died before we asked.

    The parent starts its workers from its main thread, which lives as long
    as the run, so the signal never comes early. Where there is no prctl,
    EOF on stdin still ends the worker, and this says True.
    """
    if not sys.platform.startswith("linux"):
        return True
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # no prctl here: EOF on stdin still ends us
        return True
    parent = os.environ.get(PARENT_ENV, "")
    return not (parent.isdigit() and os.getppid() != int(parent))
