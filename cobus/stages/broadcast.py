"""``broadcast``: send every item to each ``[ branch ]``.

The fan-out itself lives in :func:`cobus.core.broadcast`, used wherever a
stage has several consumers (here, or a stage named in several ``from`` of a
TOML file). This entry gives the syntax its help text and a node in
``explain``; branches that do not end in a sink flow together into the stage
after the broadcast.
"""

from __future__ import annotations

from ..core import Target
from ..registry import stage

__all__ = ["broadcast"]


@stage(
    "broadcast",
    fans_out=True,
    # It hands each batch on as it is: what the branches read is what is read.
    reads=lambda params: frozenset(),
    columnar=True,
    examples=(
        "cat access-log | broadcast [grep python | print] [grep ply | write ply.log] [grep swig | count]",
        "cat access-log | broadcast [grep python] [grep ply] | print",
        "broadcast [follow app.log] [listen tcp://127.0.0.1:5140] | grep ERROR | print",
    ),
)
def broadcast(target: Target) -> Target:
    """Send every item to each [ branch ]; open branches flow into the next stage."""
    return target
