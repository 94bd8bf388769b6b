"""Run a ``[ branch ]`` elsewhere: in a thread (``threaded``) or child processes.

- :mod:`.stages`: the registrations of ``threaded``, ``subprocess``, ``parallel``;
- :mod:`._runner`: the bookkeeping they share (outlet, first failure, close or abort);
- :mod:`._threads`: a branch in its own thread behind a bounded queue;
- :mod:`._pool`: the parent's side of worker processes;
- :mod:`._child`: the worker's side (``cobus worker`` in :mod:`cobus.cli` calls it),
  with :mod:`._deathsig` asking Linux to end a worker with its parent;
- :mod:`.wire`: the frames between the two;
- :mod:`.partials`: ``parallel`` taking over the aggregate after it (partials
  tallied in the workers, merged by the aggregate in the parent).

Imports go down only: the package knows the core, the registry and the run
context; it never imports the spec (a stage gets its branch as a
:class:`~cobus.core.Branch`) nor the CLI.
"""

from __future__ import annotations

from ._child import run_worker
from ._deathsig import die_with_parent
from ._threads import ThreadedStage

__all__ = ["ThreadedStage", "die_with_parent", "run_worker"]
