"""Files written whole or not at all: the record, the reports, a run folder's ``run.json``.

The data goes to a temporary file in the same folder, synced to disk, which then replaces the
file in one step (``os.replace``): a kill, a full disk or a second process writing the same file
at the same moment leaves the earlier file or the new one, never a part of one.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["write_whole"]


def write_whole(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` whole or not at all (see the module docstring).

    Raises:
        OSError: When it cannot be written (the earlier file is left as it was, and no
            temporary file is left behind).
    """
    p = Path(path)
    # Its own name per process and thread: two writers never share a temporary file.
    tmp = p.with_name(f".{p.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(p.parent)
    return p


def _sync_folder(folder: Path) -> None:
    """Sync a folder's entries to disk (the rename of a file in it), where the OS allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # Windows cannot open a folder: its renames are durable enough
    try:
        os.fsync(fd)
    except OSError:
        pass  # a file system that cannot sync folders: the rename still happened
    finally:
        os.close(fd)
