"""cobus: pipelines of generator-based coroutines over logs and XML streams.

The public API: the ``coroutine`` primer and ``Done``, the stage registry
(``stage``, ``registry``), loading a pipeline (``load``), building and running
it (``run``), and the error classes.

How the house stands, from the ground up (a module imports only from its own
floor or below; ``farm-studio look`` shows no circle and no arrow back up):

1. Foundations that know no other part: ``core`` (the stage protocol,
   ``Target``/``Branch`` protocols, the one ``Outlet``, broadcast, fan-in),
   ``errors``, ``steps`` (the planner's vocabulary), ``fields`` (record
   values and dotted paths), ``columns`` (records as one list per field),
   ``xmlrecords``, ``grepsyntax``, ``broker``.
2. Services: ``kernel`` (the scheduler), ``delivery`` (end-to-end
   acknowledgement), ``outputs`` (stdout that names itself in errors),
   ``metering`` (counts and clocks, no drawing), ``registry`` (stage name ->
   declared spec, from ``_stagetable``; a stage's module is imported when a
   pipeline uses it), ``conditions``, ``formats``, ``timebuckets``,
   ``inputs``, ``grepengine``, ``redisconn``.
3. ``context`` (what a run shares), ``progress`` (rich drawing, loaded only
   by the CLI), and ``spec/``: text and TOML -> ``parse`` -> ``options`` ->
   ``graph`` -> ``plan`` (every rewrite: fusions, splitting aggregates
   across workers, field projection and columns) -> ``build``. ``explain`` reads the planned graph.
4. ``stages/``, ``sources/``, ``sinks/``, ``concurrency/``, side by side:
   they import the floors below and never each other; they meet only
   through the registry. ``runner`` builds a graph and runs the kernel.
5. Commands over the library: ``grepcmd`` (``cobus grep``), ``tail``.
6. ``cli``: the click commands, the only module that imports click;
   ``command``: what they share without click (exit codes, the one place
   errors become exit codes, ``run``'s body); ``entry``: the front door,
   a plain ``cobus run PIPELINE`` without loading click, anything else to
   ``cli``. These are the only exit path.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .context import RunContext
from .core import Done, broadcast, coroutine, fan_in
from .errors import CobusError, SinkError, SourceError, SpecError, StageError
from .registry import registry, stage
from .runner import run
from .spec import load

__all__ = [
    "CobusError",
    "Done",
    "RunContext",
    "SinkError",
    "SourceError",
    "SpecError",
    "StageError",
    "__version__",
    "broadcast",
    "coroutine",
    "fan_in",
    "load",
    "registry",
    "run",
    "stage",
]
