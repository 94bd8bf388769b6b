"""Where ``follow`` stopped: cursors (offset + which file) and the ``--state`` file.

A :class:`Cursor` names a position in one file by its device, inode and a
hash of its first bytes, so a file that merely reuses an inode is not taken
for the old one; :func:`find_rotated` and :func:`find_copy` find where a
file went (renamed, or copied before a truncation). :class:`State` keeps a
cursor per followed path in a JSON file, replaced atomically;
:func:`load_state` refuses anything that is not such a file, with a message
saying how to start afresh. Nothing here reads
lines or knows the pipeline.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import asdict, astuple, dataclass

from ..errors import SourceError

__all__ = [
    "HEAD_SIZE",
    "MAX_STATE_SIZE",
    "Cursor",
    "State",
    "find_copy",
    "find_rotated",
    "head_hash",
    "load_state",
]

HEAD_SIZE = 1024  # bytes of a file's start that tell it from another with a reused inode


@dataclass(frozen=True)
class Cursor:
    """How far a file was delivered, and which file it was (inode, device, first bytes)."""

    dev: int
    ino: int
    offset: int
    head_len: int
    head_hash: str

    def identifies(self, fd: int, st: os.stat_result) -> bool:
        """Whether the open file ``fd`` is the file this cursor was taken in."""
        return (
            (st.st_dev, st.st_ino) == (self.dev, self.ino)
            and st.st_size >= self.offset
            and head_hash(os.pread(fd, self.head_len, 0)) == self.head_hash
        )


def head_hash(head: bytes) -> str:
    """The fingerprint of a file's first bytes."""
    return hashlib.blake2b(head, digest_size=16).hexdigest()


def find_rotated(path: str, saved: Cursor) -> tuple[int, os.stat_result] | None:
    """The file ``saved`` was taken in, if it was renamed within the same directory."""
    folder, name = os.path.split(os.path.abspath(path))
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return None
    for entry in entries:
        if entry.name == name or entry.inode() != saved.ino:
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            continue
        st = os.fstat(fd)
        if saved.identifies(fd, st):
            return fd, st
        os.close(fd)
    return None


def find_copy(path: str, head: bytes, tail: bytes, pos: int) -> int | None:
    """An open copy of ``path`` made before it was truncated (logrotate's copytruncate), if longer.

    A regular file beside it whose name starts with its name, longer than
    ``pos``, starting with ``head`` and holding ``tail`` just before ``pos``.
    """
    folder, name = os.path.split(os.path.abspath(path))
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(name) and e.name != name]
    except OSError:
        return None
    for entry in entries:
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            continue
        st = os.fstat(fd)
        if (
            stat.S_ISREG(st.st_mode)
            and st.st_size > pos
            and os.pread(fd, len(head), 0) == head
            and os.pread(fd, len(tail), pos - len(tail)) == tail
        ):
            return fd
        os.close(fd)
    return None


class State:
    """The ``--state`` file: a cursor per followed path (absolute), replaced atomically."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.cursors = load_state(path)
        self._written = dict(self.cursors)

    def save(self, cursors: dict[str, Cursor]) -> None:
        """Write these checkpoints (all delivered) if they moved (a temporary file, then rename)."""
        try:
            self.cursors.update(cursors)
            if self.cursors == self._written:
                return
            files = {key: asdict(c) for key, c in sorted(self.cursors.items())}
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as out:
                json.dump({"version": 1, "files": files}, out, indent=1)
                out.flush()
                os.fsync(out.fileno())  # a crash must leave the old state or the new, never half
            os.replace(tmp, self.path)
        except OSError as exc:
            raise SourceError(f"{exc.filename or self.path}: {exc.strerror or exc}") from exc
        self._written = dict(self.cursors)


#: A state file holds a few hundred bytes per followed file; anything this big is not one.
MAX_STATE_SIZE = 64 << 20


def load_state(path: str) -> dict[str, Cursor]:
    """The cursors of a state file; {} if it does not exist yet.

    It must be a regular file of sane size (``--state /dev/zero`` would
    otherwise be read until memory runs out) holding what :meth:`State.save`
    writes; anything else is refused with a message saying how to start afresh.
    """
    afresh = f"remove {path} to start afresh, or give --state another file"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SourceError(f"{path}: {exc.strerror or exc}; {afresh}") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise SourceError(f"{path}: a state file must be a regular file; give --state another file")
    with open(fd, "rb") as f:
        if st.st_size > MAX_STATE_SIZE:
            raise SourceError(f"{path}: too big for a follow state file ({st.st_size} bytes); {afresh}")
        if st.st_size == 0:
            raise SourceError(f"{path}: the state file is empty; {afresh}")
        try:
            data = json.loads(f.read(MAX_STATE_SIZE + 1))
            cursors = {key: Cursor(**fields) for key, fields in data["files"].items()}
            if not all(isinstance(v, int) for c in cursors.values() for v in astuple(c)[:4]):
                raise TypeError("a cursor holds numbers")
            return cursors
        except OSError as exc:
            raise SourceError(f"{path}: {exc.strerror or exc}; {afresh}") from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SourceError(f"{path}: not a follow state file; {afresh}") from exc
