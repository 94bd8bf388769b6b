"""``head``: pass on the first N items, then tell upstream to stop reading.

Once satisfied, ``head`` closes its target (so the sinks below flush) and
raises :class:`~cobus.core.Done` into its sender: the source stops reading a
file it no longer needs, and ``broadcast`` drops this branch only.
"""

from __future__ import annotations

from typing import Annotated, Any

from ..core import Done, StageGen, Target, batch_head, batch_len, coroutine
from ..registry import Arg, ParamError, stage

__all__ = ["head"]


def _check(params: dict[str, Any]) -> None:
    if params.get("n", 0) < 0:  # only what was written is checked: N may be absent
        raise ParamError("n", "head takes a count of 0 or more")


@stage(
    "head",
    check=_check,
    reads=lambda params: frozenset(),  # passes records on whole: what is read later counts
    examples=("cat access-log | head 20 | print", "xml feed.xml | records bus | head 5 | jsonl"),
)
@coroutine
def head(
    target: Target, *, n: Annotated[int, Arg("how many items to pass on", metavar="N")] = 10
) -> StageGen:
    """Pass on the first N items (default 10), then stop reading upstream."""
    remaining = n
    try:
        while True:
            batch = yield
            if remaining <= 0:  # head 0: nothing passes
                break
            size = batch_len(batch)
            target.send(batch if size < remaining else batch_head(batch, remaining))
            remaining -= size
            if remaining <= 0:
                break
    finally:
        target.close()
    raise Done
