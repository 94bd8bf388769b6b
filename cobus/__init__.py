"""cobus: pipelines of generator-based coroutines over logs and XML streams.

The public API: the ``coroutine`` primer and ``Done``, the stage registry
(``stage``, ``registry``), loading a pipeline (``load``), building and running
it (``run``), and the error classes.
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
