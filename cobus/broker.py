"""What every broker stage shares, whatever the broker: secrets kept out of sight, backoff, fields.

``xadd`` and ``xread`` (Redis Streams) use these, and a Kafka source or sink
would too: :func:`redact` masks the password of any URL in a text before it
is shown (errors, ``explain``, ``--stats``); :class:`Backoff` paces the
attempts to reconnect to a server that went away and says so on stderr;
:func:`record_fields` and :func:`fields_record` turn a record into the flat
text fields a message carries and back; :class:`Tally` counts what a
consumer read, acknowledged, claimed and holds, for the notice at the end
and for ``--stats``. Nothing here speaks a broker's protocol.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Backoff", "Tally", "fields_record", "record_fields", "redact"]

# scheme://userinfo@ : the userinfo is everything up to the last "@" before the path.
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^/\s@]*(?:@[^/\s@]*)*)@")
_QUERY_SECRET = re.compile(r"(?P<head>[?&](?:password|pass|pwd|token)=)(?P<secret>[^&\s]*)", re.IGNORECASE)


def _mask(text: str) -> str:
    # As long as what it hides, so a caret drawn under the pipeline text still points right.
    return "*" * len(text)


def _mask_userinfo(m: re.Match[str]) -> str:
    info = m["info"]
    user, colon, password = info.partition(":")
    shown = f"{user}:{_mask(password)}" if colon else _mask(info)
    return f"{m['head']}{shown}@"


def redact(text: str) -> str:
    """``text`` with the password of every URL in it masked (the user name stays).

    A URL without a ``:`` in its user part is masked whole: some clients take
    ``redis://secret@host`` as a password. The masks are as long as what they
    hide, so columns in the text do not move.

    >>> redact("xread redis://app:s3cret@broker:6379/0 logs")
    'xread redis://app:******@broker:6379/0 logs'
    >>> redact("redis://:pw@h/0 and unix:///run/r.sock?db=1&password=x")
    'redis://:**@h/0 and unix:///run/r.sock?db=1&password=*'
    >>> redact("cat access.log | grep user@example.org")
    'cat access.log | grep user@example.org'
    """
    if "@" in text:
        text = _USERINFO.sub(_mask_userinfo, text)
    if "=" in text:
        text = _QUERY_SECRET.sub(lambda m: m["head"] + _mask(m["secret"]), text)
    return text


class Backoff:
    """Pauses between attempts to reach a server: doubling from ``first`` up to ``most`` seconds.

    It also decides what the user hears: one notice when the server is lost,
    a reminder every ``remind`` seconds while it stays away, and one when it
    is back, with how long it was gone.
    """

    def __init__(
        self,
        warn: Callable[[str], None],
        clock: Callable[[], float],
        *,
        first: float = 0.1,
        most: float = 5.0,
        remind: float = 60.0,
    ) -> None:
        self.warn = warn
        self.clock = clock
        self.first = first
        self.most = most
        self.remind = remind
        self.delay = 0.0
        self.lost_at: float | None = None
        self.told_at = 0.0

    @property
    def lost(self) -> bool:
        return self.lost_at is not None

    def failed(self, what: str) -> float:
        """An attempt failed (``what`` says how); the seconds to wait before the next one."""
        now = self.clock()
        if self.lost_at is None:
            self.lost_at = self.told_at = now
            self.warn(f"{what}; reconnecting")
        elif now - self.told_at >= self.remind:
            self.told_at = now
            self.warn(f"{what}; still reconnecting after {now - self.lost_at:.0f} s")
        self.delay = min(self.most, self.delay * 2) if self.delay else self.first
        return self.delay

    def recovered(self, what: str) -> None:
        """An attempt succeeded: say so if the server had been lost."""
        if self.lost_at is not None:
            self.warn(f"{what} after {self.clock() - self.lost_at:.1f} s")
        self.lost_at = None
        self.delay = 0.0


def _text(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    return json.dumps(value, ensure_ascii=False, default=str).encode("utf-8", "surrogateescape")


def record_fields(record: dict[str, Any]) -> list[bytes]:
    """A record as flat ``[name, value, name, value ...]`` bytes; non-text values as JSON.

    >>> record_fields({"host": "a", "status": 500, "tags": ["x", "y"], "note": None})
    [b'host', b'a', b'status', b'500', b'tags', b'["x", "y"]', b'note', b'null']
    """
    out: list[bytes] = []
    for name, value in record.items():
        out.append(_text(name))
        out.append(_text(value))
    return out


def fields_record(fields: list[bytes]) -> dict[str, str]:
    """Flat ``[name, value ...]`` bytes as a record of text (invalid UTF-8 replaced).

    >>> fields_record([b"host", b"a", b"status", b"500"])
    {'host': 'a', 'status': '500'}
    """
    it = iter(fields)
    return {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in zip(it, it, strict=False)}


@dataclass
class Tally:
    """What a consumer did: entries read, acknowledged, claimed from others, skipped."""

    read: int = 0
    acked: int = 0
    claimed: int = 0
    #: Entries without the expected field (or deleted before they were read).
    skipped: int = 0
    first_skipped: str = ""

    @property
    def pending(self) -> int:
        """Read (or claimed) and not yet acknowledged."""
        return self.read - self.acked

    def skip(self, what: str, n: int = 1) -> None:
        if n and not self.skipped:
            self.first_skipped = what
        self.skipped += n

    def summary(self) -> str:
        """``read 5, acknowledged 4, claimed 0, pending 1`` (for --stats)."""
        return (
            f"read {self.read:,}, acknowledged {self.acked:,}, claimed {self.claimed:,}, "
            f"pending {self.pending:,}"
        )
