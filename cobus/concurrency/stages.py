"""``threaded``, ``subprocess`` and ``parallel``: run a ``[ branch ]`` elsewhere.

The registrations of the three stages, and nothing else: ``threaded`` hands
its branch to :class:`._threads.ThreadedStage`, ``subprocess`` and
``parallel N`` to :class:`._pool.WorkerPool` (imported only by runs that use
it). To the stages around them they are ordinary targets: ``send`` a batch,
``close`` at the end. Sends block when the branch is behind (backpressure),
batches keep their order, and ``close`` drains the branch, closes it and waits
for its thread or processes. A failure inside a branch becomes one
:class:`~cobus.errors.StageError` naming the stage.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, NoReturn

from ..context import RunContext
from ..core import Branch, Target
from ..errors import SpecError
from ..registry import Arg, Branches, Opt, ParamError, stage
from ..steps import AGGREGATE
from ._threads import QUEUE_BATCHES, ThreadedStage
from .partials import absorb_aggregate

__all__ = ["parallel", "subprocess_", "threaded"]


def one_branch(name: str, branches: list[Branch], target: Target | None) -> Branch:
    """The stage's one branch (the registry's Branches(count=1) was checked in validation)."""
    if len(branches) != 1:  # pragma: no cover - only a graph built by hand gets here
        refuse(target, f"{name} takes exactly one [ branch ], not {len(branches)}")
    return branches[0]


def refuse(target: Target | None, message: str) -> NoReturn:
    """Raise a SpecError found while building; the stages below, already built, are closed."""
    if target is not None:
        target.close()
    raise SpecError(message)


def _check_threaded(params: dict[str, Any]) -> None:
    if params.get("queue", QUEUE_BATCHES) < 1:
        raise ParamError("queue", "the queue holds at least 1 batch")


@stage(
    "threaded",
    boundary="thread",
    columnar=True,  # the branch's columns pass on as they are
    check=_check_threaded,
    examples=(
        "cat access-log | threaded [grep -i python] | print",
        "cat big.log | broadcast [threaded [grep foo]] [threaded [grep bar]] | print",
        "xml allroutes.xml | records bus | threaded [where route=22 | csv id,route]",
    ),
)
def threaded(
    target: Target | None,
    *,
    queue: Annotated[int, Opt("-q", "batches queued in front of the branch", metavar="N")] = QUEUE_BATCHES,
    branch: Annotated[list[Branch], Branches("the sub-pipeline to run in a thread", count=1)],
    ctx: RunContext,
) -> Target:
    """Run a [ branch ] in its own thread, fed through a bounded queue.

    The stage before it never waits for the branch unless the queue is full
    (then it waits: memory stays bounded). Batches keep their order. At the
    end the queue is drained, the branch closed and its thread joined. An
    error in the branch stops the pipeline with one line naming the branch.
    """
    b = one_branch("threaded", branch, target)
    threaded_stage = ThreadedStage(f"threaded [{b.text}]", b, target, queue)
    ctx.delivery.stage(threaded_stage.drain)
    return threaded_stage


def _pool(
    name: str, b: Branch, target: Target | None, ctx: RunContext, workers: int, ordered: bool
) -> Target:
    from ._pool import WorkerPool  # the process half: only runs that use it pay for it

    return WorkerPool(name, b, target, ctx, workers=workers, ordered=ordered)


@stage(
    "subprocess",
    boundary="child process",
    columnar=True,  # the branch may end in columns: they cross the wire as records
    examples=(
        "cat access-log | subprocess [grep -i python] | print",
        'xml allroutes.xml | records bus | subprocess [where route=22 | where direction="North Bound"'
        " | csv id,route]",
    ),
)
def subprocess_(
    target: Target | None,
    *,
    branch: Annotated[list[Branch], Branches("the sub-pipeline to run in a child process", count=1)],
    ctx: RunContext,
) -> Target:
    """Run a [ branch ] in a child process (python -m cobus worker).

    Batches travel over a pipe as length-prefixed frames (lines as bytes,
    records as JSON; never pickle). What the branch's sinks print comes back
    to this process's stdout; the child's stderr is this process's. If the
    child fails, exits non-zero or is killed, the pipeline stops with one line
    naming the branch and the cause.
    """
    b = one_branch("subprocess", branch, target)
    return _pool(f"subprocess [{b.text}]", b, target, ctx, 1, True)


def _check_parallel(params: dict[str, Any]) -> None:
    if not 0 <= params.get("n", 0) <= 256:
        raise ParamError("n", "parallel takes 1 to 256 workers (0: one per CPU)")


@stage(
    "parallel",
    boundary="worker processes",
    columnar=True,  # the branch may end in columns: they cross the wire as records
    check=_check_parallel,
    absorbs={AGGREGATE: absorb_aggregate},
    examples=(
        'cat big.log | parallel 2 [grep -i "timeout|refused"] | count',
        "cat big.log | parallel -u [grep -v DEBUG] | write filtered.log",
    ),
)
def parallel(
    target: Target | None,
    *,
    n: Annotated[int, Arg("worker processes (default: one per CPU)", metavar="N")] = 0,
    unordered: Annotated[bool, Opt("-u", "pass results on as they come, not in input order")] = False,
    branch: Annotated[
        list[Branch], Branches("a sub-pipeline of filters, run by every worker", count=1, filters_only=True)
    ],
    ctx: RunContext,
) -> Target:
    """Share the batches among N worker processes running the same [ branch ].

    The branch must be made of filters (a sink would run once per worker).
    Output keeps the input order unless --unordered. Stateful filters such as
    head or count see only their worker's share of the batches. An aggregate
    right after it (count, top, sum, uniq) is tallied in the workers and
    merged here (explain shows it).
    """
    b = one_branch("parallel", branch, target)  # of filters: Branches(filters_only=True)
    workers = n or os.cpu_count() or 1
    return _pool(f"parallel {workers} [{b.text}]", b, target, ctx, workers, not unordered)
