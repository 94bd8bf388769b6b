"""Turning items into text for sinks (record lines, field values), and durations into seconds.

Shared by the stages; they meet only through the registry, but formatting a
value or reading ``10s`` is a plain function every stage may use.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .fields import value_text

__all__ = ["field_text", "item_line", "parse_duration"]


def field_text(value: Any) -> str:
    """A field value as text: lists joined by ``;``, None as empty."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(field_text(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _logfmt_value(value: Any) -> str:
    text = value_text(value)  # JSON true/false/null, objects as JSON
    if text == "" or any(c in text for c in ' ="\\\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


def item_line(item: Any) -> bytes:
    """One readable line (with newline) for a record, an event or anything else."""
    if isinstance(item, dict):
        text = " ".join(f"{k}={_logfmt_value(v)}" for k, v in item.items())
    elif isinstance(item, tuple):
        text = " ".join(
            _logfmt_value(v)
            if not isinstance(v, dict)
            else " ".join(f"{k}={_logfmt_value(x)}" for k, x in v.items())
            for v in item
        )
    else:
        text = field_text(item)
    return (text.replace("\n", "\\n") + "\n").encode("utf-8", "surrogateescape")


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """``10s``, ``500ms``, ``2m``, ``1h`` or a bare number of seconds -> seconds."""
    m = _DURATION.fullmatch(text.strip())
    if m is None or float(m.group(1)) <= 0:
        raise ValueError(f"not a duration: {text!r} (try 10s, 500ms, 2m)")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]
