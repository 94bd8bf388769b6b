"""Shared fixtures (helpers live in util.py): the CLI through click's runner."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from cobus.cli import main


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Run ``cobus ARGS`` in-process; stdout and stderr are kept apart."""

    def invoke(*args: str, input: bytes | str | None = None) -> Result:
        return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke
