"""The batch journal: which provider batch holds which requests, written the moment it exists.

An offline batch (the OpenAI Batch API) runs for minutes to hours on the provider's side. Its id
is appended to ``batches.jsonl`` as soon as the provider has accepted it, so a process that is
killed while waiting resumes polling the same batch on the next run instead of paying for the
requests again. Requests are named by their :func:`~llmcompare.runs.request_key`.

The journal lives in the run folder of the comparison that is running (``compare(out=...)``
marks it with :func:`journal_in`), else next to the response cache.

Lines:

- ``{"file": input_file_id, "keys": [...], "at": unix_time}``: an input file uploaded, its batch
  about to be created. A kill before the batch's own line leaves only this one: the next run
  looks for the batch by its input file (:meth:`BatchJournal.pending_uploads`).
- ``{"batch": id, "file": input_file_id, "keys": [...], "at": unix_time}``: a batch submitted.
- ``{"batch": id, "release": [...]}``: that batch gave those keys no answer (a failed line, a
  cancelled batch, a batch or output file the provider no longer has): a later call with the same
  requests submits them again.

A batch's answers are never released: until the caller has recorded them (run folder, response
cache) they are only in memory, and a kill there must not pay for them twice. A later call that
asks for the same requests again reads them from the same batch, free; ``compare(refresh=True)``
(:func:`journal_in` with ``fresh=True``) submits them anew instead.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "JOURNAL_FILE",
    "BatchJournal",
    "JournalEntry",
    "journal_fresh",
    "journal_in",
    "journal_path",
]

log = logging.getLogger("llmcompare.runs")

JOURNAL_FILE = "batches.jsonl"
"""The journal's file name, in the run folder (or the cache folder)."""

_ACTIVE: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "llmcompare_batch_journal", default=None
)
_FRESH: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "llmcompare_batch_fresh", default=False
)


@contextlib.contextmanager
def journal_in(folder: str | os.PathLike[str] | None, *, fresh: bool = False) -> Iterator[None]:
    """Keep the batch journal of the calls inside the block in ``folder`` (a run folder).

    Args:
        folder: The folder; None leaves the default (next to the response cache).
        fresh: Submit every request anew instead of reading answers of journaled batches
            (``compare(refresh=True)``).
    """
    token = _ACTIVE.set(None if folder is None else Path(folder))
    fresh_token = _FRESH.set(fresh)
    try:
        yield
    finally:
        _FRESH.reset(fresh_token)
        _ACTIVE.reset(token)


def journal_fresh() -> bool:
    """Whether the current call submits anew rather than resuming journaled batches."""
    return _FRESH.get()


def journal_path() -> Path:
    """Where the batch journal of the current call is: the active run folder, else the cache's."""
    folder = _ACTIVE.get()
    if folder is None:
        from llmcompare.runs._cache import default_cache_path

        folder = default_cache_path().parent
    return folder / JOURNAL_FILE


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One submitted batch, as the journal knows it.

    Attributes:
        batch: The provider's batch id.
        keys: The request keys it still answers (released ones removed).
        at: When it was submitted (Unix time): its answers' turnaround counts from there.
    """

    batch: str
    keys: frozenset[str]
    at: float | None = None


class BatchJournal:
    """The append-only journal at ``path``; see the module docstring.

    Args:
        path: The journal file (created on the first write).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def open_batches(self, wanted: Iterable[str]) -> list[JournalEntry]:
        """The submitted batches that still answer some of ``wanted``, oldest first.

        Each key belongs to at most one of them: the newest submission that holds it.
        """
        want = set(wanted)
        order: list[str] = []
        keys: dict[str, set[str]] = {}
        at: dict[str, float | None] = {}
        owner: dict[str, str] = {}
        if self.path.exists():
            for number, raw in enumerate(self.path.read_bytes().splitlines(), 1):
                try:
                    line = json.loads(raw)
                    if "batch" not in line and "file" in line:
                        continue  # an upload (pending_uploads)
                    batch = str(line["batch"])
                    if "release" in line:
                        for key in line["release"]:
                            if owner.get(key) == batch:
                                del owner[key]
                        continue
                    if batch not in keys:
                        order.append(batch)
                        keys[batch] = set()
                        stamp = line.get("at")
                        at[batch] = float(stamp) if isinstance(stamp, (int, float)) else None
                    for key in line["keys"]:
                        owner[str(key)] = batch
                except (ValueError, KeyError, TypeError):
                    # A line cut by a kill: that batch's requests are simply submitted again.
                    log.warning("%s:%d: damaged line skipped", self.path, number)
        for key, batch in owner.items():
            if key in want:
                keys[batch].add(key)
        return [JournalEntry(b, frozenset(keys[b]), at[b]) for b in order if keys[b]]

    def pending_uploads(self, wanted: Iterable[str]) -> list[tuple[str, frozenset[str], float]]:
        """Uploads of ``wanted`` keys with no batch line: ``(file id, keys, upload time)``."""
        want = set(wanted)
        uploads: dict[str, tuple[frozenset[str], float]] = {}
        if self.path.exists():
            for raw in self.path.read_bytes().splitlines():
                try:
                    line = json.loads(raw)
                    file = str(line["file"])
                    if "batch" in line:
                        uploads.pop(file, None)
                    else:
                        keys = frozenset(str(k) for k in line["keys"]) & want
                        if keys:
                            uploads[file] = (keys, float(line["at"]))
                except (ValueError, KeyError, TypeError):
                    continue  # open_batches warns about damaged lines
        return [(f, k, at) for f, (k, at) in uploads.items()]

    def uploaded(self, file: str, keys: Iterable[str]) -> None:
        """Record an input file uploaded, before its batch is created."""
        self._append({"file": file, "keys": sorted(keys), "at": time.time()})

    def submitted(self, batch: str, file: str, keys: Iterable[str]) -> None:
        """Record a batch the provider has accepted (before anything else happens)."""
        self._append({"batch": batch, "file": file, "keys": sorted(keys), "at": time.time()})

    def release(self, batch: str, keys: Iterable[str]) -> None:
        """Record that ``batch`` gave ``keys`` no answer: a later call submits them again."""
        keys = sorted(keys)
        if keys:
            self._append({"batch": batch, "release": keys})

    def _append(self, line: dict[str, object]) -> None:
        text = json.dumps(line, separators=(",", ":")) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab+") as f:
                f.seek(0, os.SEEK_END)
                if f.tell():
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        text = "\n" + text  # a line cut by a kill must not swallow this one
                f.write(text.encode("utf-8"))
                f.flush()
                # A batch id lost to a crash is a batch paid for twice: on disk before going on.
                os.fsync(f.fileno())
