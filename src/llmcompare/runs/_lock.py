"""Exclusive OS locks on files: a run folder's, and any block one process at a time must run.

``flock`` on POSIX; on Windows, which has none, a lock on the first byte of the file. The lock
goes with the open file: closing it (or the process ending, however it ends) releases it.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["exclusive", "try_lock"]

_POLL_S = 0.05


def try_lock(file: IO[Any]) -> bool:
    """Take an exclusive OS lock on the file without waiting; False when another holds it."""
    if sys.platform == "win32":  # no flock: lock the first byte of the file instead
        import msvcrt

        try:
            file.seek(0)
            msvcrt.locking(file.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def exclusive(path: str | Path, wait_s: float) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created when missing) while the block runs.

    Yields True once the lock is held, or False after ``wait_s`` seconds without it: the block
    then runs unlocked, for a caller to whom the lock is a courtesy, not a need.

    Raises:
        OSError: When ``path`` cannot be opened.
    """
    with open(path, "a+", encoding="utf-8") as file:
        deadline = time.monotonic() + wait_s
        while not try_lock(file):
            if time.monotonic() > deadline:
                yield False
                return
            time.sleep(_POLL_S)
        yield True
