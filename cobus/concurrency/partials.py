"""Aggregates over every core: ``parallel N [branch] | count by F`` tallied in the workers.

``parallel`` declares (``absorbs``) that it can take over a split step
(:data:`cobus.steps.AGGREGATE`) from the sink after it; the planner
(:mod:`cobus.spec.plan`) decides. Then every worker runs the aggregate's
partial half after its branch (``cobus worker --partial TEXT``: the
aggregate's text, rebuilt there as the branch is) and sends one ``P`` frame
per batch instead of the batch's records; the aggregate stays in the
parent's graph and runs its merge half over the partials. This module names
no aggregate: what a partial holds and how it merges is the sink's own
declaration.

Discussion: why one partial per batch, merged in input order. A worker
could send one tally at its end, but then the merged result would not be the
inline one: ties in ``uniq -l`` and in equal-looking keys (``1`` and ``1.0``,
``"1"`` and ``1``) keep the order keys were first seen, and a float sum
depends on the order of its additions. The pool already delivers each
batch's outputs in input order (:mod:`._pool`), so the merge sees the
partials exactly as the inline aggregate would have seen the batches, and
``--every`` snapshots and live redraws work as they do inline. A batch's
partial is small (a count per distinct key, or a sum) next to its records.
With ``--unordered`` the partials come as they are ready, as the records
would have.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..context import RunContext
from ..core import Branch, Target
from ..steps import Fused, Step

__all__ = ["PARTIAL_OPTION", "absorb_aggregate", "parallel_partials"]

#: The worker's option that names the aggregate whose partial half it runs.
PARTIAL_OPTION = "--partial"


def absorb_aggregate(args: Mapping[str, Any], step: Step) -> Fused | None:
    """``parallel``'s plan when the sink after it is a split aggregate (None: leave it)."""
    merge = step.args.get("merge")
    if merge is None or step.call is None or not step.text:
        return None
    params = {"n": args.get("n", 0), "unordered": args.get("unordered", False), "aggregate": step.text}
    return Fused(
        parallel_partials,
        params,
        "each worker tallies its share; one partial per batch crosses the wire, not the records",
        downstream=Fused(merge, step.call.params, "merges the workers' partials in input order"),
    )


def parallel_partials(
    target: Target | None,
    *,
    n: int,
    unordered: bool,
    aggregate: str,
    branch: list[Branch],
    ctx: RunContext,
) -> Target:
    """``parallel N [branch]`` whose workers run ``aggregate``'s partial half after the branch."""
    from ._pool import WorkerPool  # as parallel itself: only runs that use it pay for it

    (b,) = branch
    workers = n or os.cpu_count() or 1
    return WorkerPool(
        f"parallel {workers} [{b.text}]",
        b,
        target,
        ctx,
        workers=workers,
        ordered=not unordered,
        worker_args=(PARTIAL_OPTION, aggregate),
    )
