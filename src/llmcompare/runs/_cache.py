"""The response cache: answers kept in one SQLite file, shared by every run and process.

An entry is found by its key, :func:`request_key`: a SHA-256 over the model's identity (what
decides its answers, see :meth:`llmcompare.ModelBase.cache_identity`), the request as sent and
the sample index. A request answered once is therefore not sent again by a later run, in any
folder or process. The cache is not a lock: two runs that send the same request at the same
time both pay for it (and the first answer stored stays). Two runs on one run folder never do:
the folder's lock makes the second wait for the first (see :class:`~llmcompare.runs.RunFolder`).

``sqlite3`` and ``platformdirs`` are imported when a cache is opened, not with this module:
importing :mod:`llmcompare.runs` stays as light as ``import llmcompare``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from typing_extensions import Self

from llmcompare.errors import ConfigurationError, LLMCompareError
from llmcompare.types import Completion, Request

if TYPE_CHECKING:
    import sqlite3

    from llmcompare.model import Model

__all__ = [
    "CACHE_DIR_ENV",
    "CACHE_FILE",
    "CacheInfo",
    "ResponseCache",
    "default_cache_path",
    "model_identity",
    "request_key",
]

log = logging.getLogger("llmcompare.runs")

CACHE_DIR_ENV = "LLMCOMPARE_CACHE_DIR"
"""The environment variable naming the folder that holds the cache file."""

CACHE_FILE = "responses.sqlite3"
"""The name of the cache file inside its folder."""

# The layout of the table, kept in `PRAGMA user_version`. A file with a newer version was
# written by a newer llmcompare and is refused rather than misread.
_SCHEMA_VERSION = 1

# How long a writer waits for another process's write to finish before giving up. Writes are
# one small row, so anything near this means a process is stuck holding the lock.
_BUSY_TIMEOUT_S = 10.0

_KEY = re.compile(r"[0-9a-f]{64}")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS responses ("
    " key TEXT PRIMARY KEY,"
    " model TEXT NOT NULL,"
    " completion TEXT NOT NULL,"  # Completion.model_dump_json()
    " created REAL NOT NULL"  # time.time() of the first put
    ")",
    # clear(model=...) and info()'s per-model counts read by model.
    "CREATE INDEX IF NOT EXISTS responses_model ON responses (model)",
)


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(identity: Mapping[str, Any], request: Request, sample: int = 0) -> str:
    """The one identity of a request: its key in the response cache and in a run folder.

    A run folder's ``answers.jsonl`` names each answer's request by it, and the chatgpt
    backend's Batch API path uses it as each line's ``custom_id`` and in its batch journal
    (with the default sample 0: a backend sees requests, not samples, and the samples of one
    comparison differ in their seed anyway). :func:`~llmcompare.batch.generate_many`'s results
    file does not use it: its lines carry a check of their own (model id and request).

    The hex SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8 as is) of
    ``{"model": identity, "request": request.model_dump(mode="json"), "sample": sample}``. Equal
    inputs give equal keys on every machine and in every process; changing anything that can
    change the answer (the model's identity, any message or setting, the sample) changes it.

    Args:
        identity: What decides the model's answers: :func:`model_identity` of the model
            (JSON-serializable, no secrets: it is hashed into keys that are written to disk).
        request: The request as it is sent.
        sample: Which repetition of the same request this is (``compare(samples=n)``): samples
            of one request are different entries.

    Returns:
        64 lowercase hex digits.

    Raises:
        TypeError: When the identity holds something JSON cannot write.

    Example:
        >>> from llmcompare import Request
        >>> key = request_key({"id": "fake:echo"}, Request.of("hi"))
        >>> len(key), key == request_key({"id": "fake:echo"}, Request.of("hi"))
        (64, True)
        >>> key == request_key({"id": "fake:echo"}, Request.of("hi"), sample=1)
        False
    """
    payload = {
        "model": dict(identity),
        "request": request.model_dump(mode="json"),
        "sample": sample,
    }
    return hashlib.sha256(_canonical(payload).encode("utf-8")).hexdigest()


def model_identity(model: Model) -> dict[str, Any] | None:
    """The identity of any model, for :func:`request_key`.

    Args:
        model: A model; wrappers (retry, rate limit, cost) give their inner model's identity.

    Returns:
        ``model.cache_identity()`` when the model has that method (every
        :class:`~llmcompare.ModelBase` does), else ``{"id": model.id}``; None for a model
        that must not be cached (the fake backend's test doubles). A local model may load its
        weights to answer (its weights' hash and chat template are part of it).
    """
    method = getattr(model, "cache_identity", None)
    if not callable(method):
        return {"id": model.id}
    identity = method()
    return None if identity is None else dict(identity)


def default_cache_path() -> Path:
    r"""Where the cache lives unless told otherwise.

    Returns:
        ``$LLMCOMPARE_CACHE_DIR/responses.sqlite3`` when the variable is set, else
        ``responses.sqlite3`` in the user cache directory (``~/.cache/llmcompare`` on Linux,
        ``~/Library/Caches/llmcompare`` on macOS, ``%LOCALAPPDATA%\llmcompare\Cache`` on
        Windows): the folder the Llama backend keeps its converted GGUF files in.
    """
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser() / CACHE_FILE
    import platformdirs

    # appauthor=False: no "<author>" level on Windows, the same folder as the llama backend's.
    return Path(platformdirs.user_cache_dir("llmcompare", appauthor=False)) / CACHE_FILE


class CacheInfo(BaseModel):
    """What a response cache holds.

    Attributes:
        path: The cache file.
        entries: How many answers it holds.
        size_bytes: Bytes on disk: the file and its write-ahead log.
        by_model: Entries per model id (the ``model`` given to :meth:`ResponseCache.put`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path
    entries: int
    size_bytes: int
    by_model: dict[str, int]


class ResponseCache:
    """Answers already paid for, in one SQLite file that runs and processes share.

    Any number of threads and processes may read and write the same file at once. The file is
    in WAL mode (readers never wait for a writer, and a crash never loses a committed answer),
    and a put never replaces an entry: when two processes answer the same request, the first
    answer stored is the one every later run reads. Only successful answers go in; errors are
    never cached, so a failed request is sent again next time.

    One connection serves every thread of the object, under a lock: each operation is one
    short statement, so the lock costs nothing measurable, while :meth:`close` can then really
    close everything (connections owned by pool threads would outlive the object). A process
    forked with an open cache opens its own connection on first use (SQLite connections must
    not cross a fork).

    Calls block for as long as SQLite takes (milliseconds; up to 10 s while another process
    holds the write lock): from async code, call them through ``asyncio.to_thread``.

    Args:
        path: The cache file; default: :func:`default_cache_path`. Its folder is created. It must
            be on a local disk: WAL mode does not work over network file systems.

    Raises:
        ConfigurationError: When the file cannot be opened or created, is not a SQLite
            database, is damaged, or was written by a newer llmcompare; the message names the
            file and says to delete it or set ``LLMCOMPARE_CACHE_DIR``.

    Example:
        >>> import pathlib, tempfile
        >>> from llmcompare import Completion, Request, Usage
        >>> answer = Completion(text="Paris.", finish_reason="stop", usage=Usage(), model="fake:a")
        >>> key = request_key({"id": "fake:a"}, Request.of("Capital of France?"))
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     with ResponseCache(pathlib.Path(tmp) / "responses.sqlite3") as cache:
        ...         cache.put(key, answer, model="fake:a")
        ...         cache.get(key) == answer, cache.info().entries
        True
        (True, 1)
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        # Absolute: messages and info() name the file wherever the process moves to later.
        self._path = (
            Path(path).expanduser() if path is not None else default_cache_path()
        ).absolute()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._closed = False
        with self._lock:
            self._connection()

    @property
    def path(self) -> Path:
        """The cache file."""
        return self._path

    def __repr__(self) -> str:
        return f"<ResponseCache {self._path}>"

    # -- the connection -------------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> ConfigurationError:
        import sqlite3

        fix = f"delete it (it only holds cached answers) or set {CACHE_DIR_ENV} to another folder"
        text = str(exc).lower()
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            # Not the file's fault: deleting it would be the wrong advice.
            return ConfigurationError(
                f"the response cache {self._path} stayed locked by another process for "
                f"{_BUSY_TIMEOUT_S:.0f} s ({exc}); is a stuck llmcompare process holding it?"
            )
        if isinstance(exc, sqlite3.OperationalError):
            return ConfigurationError(f"cannot use the response cache {self._path} ({exc}); {fix}")
        return ConfigurationError(
            f"the response cache {self._path} is not a SQLite database or is damaged ({exc}); {fix}"
        )

    @contextlib.contextmanager
    def _guard(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock; SQLite's errors become one that says what to do."""
        import sqlite3

        with self._lock:
            try:
                yield self._connection()
            except sqlite3.DatabaseError as exc:
                raise self._fail(exc) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise LLMCompareError(f"the response cache {self._path} is closed")
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        import sqlite3

        if self._path.is_dir():
            raise ConfigurationError(
                f"the response cache {self._path} is a folder; give the path of a file "
                f"(or set {CACHE_DIR_ENV} to the folder that should hold {CACHE_FILE})"
            )
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the folder of the response cache {self._path} ({exc}); "
                f"set {CACHE_DIR_ENV} to a writable folder"
            ) from exc
        try:
            # check_same_thread=False: the lock above serialises every use of the connection.
            # isolation_level=None: autocommit; the one transaction (the schema's) is explicit.
            conn = sqlite3.connect(
                self._path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc
        try:
            _prepare(conn, self._path)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise self._fail(exc) from exc
            raise
        self._conn, self._pid = conn, os.getpid()
        return conn

    def close(self) -> None:
        """Close the file; later calls raise. Closing twice is harmless."""
        with self._lock:
            conn, self._conn = self._conn, None
            self._closed = True
            if conn is not None and self._pid == os.getpid():
                conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- entries --------------------------------------------------------------------------------

    def get(self, key: str) -> Completion | None:
        """The stored answer of a request, or ``None`` when there is none.

        A stored answer that no longer reads as a :class:`~llmcompare.Completion` (damaged, or
        written by an incompatible llmcompare) is a miss: it is logged and removed, so that the
        next :meth:`put` of the key stores a good one.

        Args:
            key: The request's :func:`request_key`.

        Returns:
            The completion exactly as it was stored: its timings, usage and cost are those of
            the original call.
        """
        _check_key(key)
        with self._guard() as conn:
            row = conn.execute("SELECT completion FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        stored = row[0]
        try:
            return Completion.model_validate_json(stored)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            log.warning(
                "response cache %s: the entry %s is unreadable and counts as a miss (%s)",
                self._path,
                key,
                str(exc).splitlines()[0],
            )
            with self._guard() as conn:
                # Only the value read: another process may have replaced it meanwhile.
                conn.execute(
                    "DELETE FROM responses WHERE key = ? AND completion IS ?", (key, stored)
                )
            return None

    def put(self, key: str, completion: Completion, *, model: str, replace: bool = False) -> bool:
        """Store the answer of a request, unless the key already has one.

        The first answer stored for a key stays: two processes answering the same request at
        once both succeed, and both later read the same (first) answer. ``replace=True`` (what
        ``--refresh`` does) stores this answer in place of the old one.

        Args:
            key: The request's :func:`request_key`.
            completion: The successful answer. Errors are never cached: a failure is sent
                again on the next run.
            model: The id of the model that answered (``"provider:name"``), for
                :meth:`info` and ``clear(model=...)``.
            replace: Replace an answer already stored under the key.

        Returns:
            True when this call stored it, False when the key already had an answer.

        Raises:
            TypeError: When ``completion`` is not a :class:`~llmcompare.Completion` (an
                exception, say).
            ValueError: When the key is not a :func:`request_key`, or the completion's
                ``finish_reason`` is ``"error"``.
        """
        _check_key(key)
        if not isinstance(completion, Completion):
            raise TypeError(
                f"only a Completion can be cached, not {type(completion).__name__}: errors are "
                "never cached"
            )
        if completion.finish_reason == "error":
            raise ValueError("a completion that ended in an error is never cached")
        if not model:
            raise ValueError("model must be the id of the model that answered")
        value = completion.model_dump_json()
        with self._guard() as conn:
            # One of two fixed statements: the values go in as parameters.
            verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
            cursor = conn.execute(
                f"{verb} INTO responses (key, model, completion, created) VALUES (?, ?, ?, ?)",
                (key, model, value, time.time()),
            )
            return cursor.rowcount == 1

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            return False
        with self._guard() as conn:
            row = conn.execute("SELECT 1 FROM responses WHERE key = ?", (key,)).fetchone()
        return row is not None

    def __len__(self) -> int:
        with self._guard() as conn:
            (count,) = conn.execute("SELECT COUNT(*) FROM responses").fetchone()
        return int(count)

    def info(self) -> CacheInfo:
        """How many answers the cache holds, for which models, and its size on disk."""
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT model, COUNT(*) FROM responses GROUP BY model ORDER BY model"
            ).fetchall()
        by_model = {str(m): int(n) for m, n in rows}
        return CacheInfo(
            path=self._path,
            entries=sum(by_model.values()),
            size_bytes=self._size(),
            by_model=by_model,
        )

    def _size(self) -> int:
        total = 0
        for file in (self._path, self._path.with_name(self._path.name + "-wal")):
            with contextlib.suppress(OSError):
                total += file.stat().st_size
        return total

    def clear(self, model: str | None = None) -> int:
        """Delete stored answers: all of them, or one model's.

        The freed pages go back to the file system when no other process is reading.

        Args:
            model: A model id as given to :meth:`put`; ``None`` deletes every entry.

        Returns:
            How many entries were deleted.
        """
        import sqlite3

        with self._guard() as conn:
            if model is None:
                cursor = conn.execute("DELETE FROM responses")
            else:
                cursor = conn.execute("DELETE FROM responses WHERE model = ?", (model,))
            deleted = cursor.rowcount
            if deleted:
                # Shrinking is a courtesy: another process busy with the file only delays it.
                with contextlib.suppress(sqlite3.OperationalError):
                    conn.execute("PRAGMA incremental_vacuum").fetchall()
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return int(deleted)


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"not a request key (64 lowercase hex digits from request_key): {key!r}")


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Set up a fresh connection: WAL mode, and the table when the file is new."""
    # Only takes effect on a new, empty file (a no-op otherwise): lets clear() give space back.
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    # WAL: readers and the one writer never block each other, across processes.
    (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    if str(mode).lower() != "wal":
        log.warning("response cache: SQLite refused WAL mode (%s); sharing will be slower", mode)
    # NORMAL is durable in WAL mode up to the last checkpointed commit; a power cut may drop
    # the newest answers, never corrupt the file. A lost entry is only paid again.
    conn.execute("PRAGMA synchronous = NORMAL")
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version == 0:
        # BEGIN IMMEDIATE takes the write lock first: two processes creating the file at once
        # create the table once, and the second sees the first one's version.
        conn.execute("BEGIN IMMEDIATE")
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version == 0:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
                version = _SCHEMA_VERSION
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    if version != _SCHEMA_VERSION:
        raise ConfigurationError(
            f"the response cache {path} has layout version {version}, and this llmcompare reads "
            f"version {_SCHEMA_VERSION} (was it written by a newer llmcompare?); upgrade "
            f"llmcompare, delete the file or set {CACHE_DIR_ENV} to another folder"
        )
