"""``listen``: newline-delimited text from TCP clients; one kernel task per connection.

The accept loop and the client tasks live in :mod:`._tcp` (``listen | xml``
shares them); here is the stage: its options, its check and what it can take
over. A line longer than ``--max-line`` is cut (its first bytes are kept)
rather than buffered without bound. Nothing here knows files or sinks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from ..context import RunContext
from ..core import LINES, Target
from ..kernel import TaskGen
from ..registry import Arg, Opt, ParamError, stage
from ..steps import PARSE_XML, Fused, Step
from ._framing import Framing
from ._tcp import MAX_LINE, Intake, LineStream, parse_address, serve

__all__ = ["listen", "parse_address"]


def _check(params: dict[str, Any]) -> None:
    if "address" in params:
        try:
            parse_address(params["address"])
        except ValueError as exc:
            raise ParamError("address", str(exc)) from None
    if params.get("max_line", 1) < 1:
        raise ParamError("max_line", "--max-line must be at least 1 byte")


def _absorb_xml(args: Mapping[str, Any], step: Step) -> Fused:
    # listen | xml parses each connection on its own (imported only when planned).
    from .netxml import absorb_xml

    return absorb_xml(args, step)


@stage(
    "listen",
    role="source",
    produces=LINES,
    check=_check,
    live=True,
    absorbs={PARSE_XML: _absorb_xml},
    examples=(
        "listen tcp://127.0.0.1:5140 | grep ERROR | print",
        "listen --max-line 65536 tcp://:5140 | write -a net.log",
    ),
)
def listen(
    target: Target,
    *,
    address: Annotated[str, Arg("tcp://HOST:PORT; HOST defaults to 127.0.0.1", metavar="URL")],
    max_line: Annotated[int, Opt("", "cut lines longer than BYTES", metavar="BYTES")] = MAX_LINE,
    framing: Annotated[
        Framing, Opt("", "newline, octet (RFC 6587 octet counting) or auto (per message)")
    ] = "newline",
    ctx: RunContext,
) -> TaskGen:
    """Read newline-delimited text from any number of TCP clients, each line whole.

    A client that hangs up mid-line has its partial line delivered; port 0
    picks a free port and says which on stderr. --framing octet reads RFC
    6587 octet counting (LEN SP MSG, as logger --tcp --octet-count sends),
    one message per line; auto takes a message that starts with digits and a
    space as counted, any other as a line. A client that breaks the framing
    is named on stderr and dropped; the others go on.
    """
    host, port = parse_address(address)
    outlet = Intake(target, ctx, max_line)
    return serve(target, address, host, port, outlet, lambda peer: LineStream(outlet, framing))
