"""The results file of :func:`~llmcompare.batch.generate_many`: written as it goes, resumed from.

One JSON line per finished request: ``{"index": i, "hash": h, "completion": {...}}`` or, for a
failure, ``{"index": i, "hash": h, "error": {...}}``. ``hash`` (:func:`line_hash`) ties the line
to the request it answered: the first 32 hex digits of a SHA-256 over the model id and the
request. It is a check that the file belongs to this list of requests, not a key of anything
else; the response cache and the run folders name a request by its
:func:`~llmcompare.runs.request_key`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from llmcompare.errors import BackendError, ConfigurationError, redact
from llmcompare.retry import is_retryable
from llmcompare.runs import read_charge
from llmcompare.types import Completion, Request, Result

__all__ = ["ResultsFile", "error_record", "line_hash", "read_results"]

# The package's logger: warnings about a damaged line are the batch run's own.
logger = logging.getLogger("llmcompare.batch")


def line_hash(model_id: str, request: Request) -> str:
    """The ``hash`` of a results line: which request of which model the line answers."""
    payload = json.dumps(
        {"model": model_id, "request": request.model_dump(mode="json")},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def error_record(error: BaseException) -> dict[str, Any]:
    """A failure as a results line (and a run folder's row) records it: type, message, retryable.

    The message is redacted: no key or token reaches a file. A failure that may be billed (a
    timeout) also records what a cost tracker charged for it (``charged_usd``, a decimal
    string, where the model has a price, and ``charged_tokens``), so that a resumed run's
    budget counts it.
    """
    cls = type(error)
    record: dict[str, Any] = {
        "type": f"{cls.__module__}.{cls.__qualname__}",
        "message": redact(str(error)),
        "retryable": is_retryable(error),
    }
    if isinstance(error, BackendError) and (error.charged_usd is not None or error.charged_tokens):
        # Dollars only where the model has a price; tokens always.
        if error.charged_usd is not None:
            record["charged_usd"] = str(error.charged_usd)
        record["charged_tokens"] = error.charged_tokens or 0
    return record


class ResultsFile:
    """The JSONL results of one run: successful lines are kept and skipped on the next run."""

    def __init__(self, path: str | os.PathLike[str], model_id: str, requests: Sequence[Request]):
        self.path = Path(path)
        self.hashes = [line_hash(model_id, r) for r in requests]
        self.spent: list[tuple[str, Completion | tuple[Decimal | None, int]]] = []
        """Each line read back that spent money, with what it spent: an answer, or what a
        failure was charged as maybe billed (dollars, or None when unpriced, and tokens)."""
        self.on_line: Callable[[str], None] | None = None
        """Called with each line :meth:`write` writes."""
        self._file: TextIO | None = None

    def load(self, requests: Sequence[Request]) -> dict[int, Result]:
        """Read finished results, then rewrite the file with only them (damaged lines dropped).

        A failure that was charged as maybe billed (a timeout) is kept too, its charge in
        :attr:`spent` with the answers: its request runs again, but the money may have been
        spent.

        A damaged line (cut short by a kill in mid-write, not UTF-8, not JSON, or not a valid
        record) is logged as a warning and skipped: its request simply runs again.

        Raises:
            ConfigurationError: When a line holds the result of another request.
        """
        done: dict[int, Result] = {}
        kept: list[str] = []
        if self.path.exists():
            # Bytes, decoded line by line: a line cut inside a character costs only that line.
            for number, raw in enumerate(self.path.read_bytes().splitlines(), 1):
                if not raw.strip():
                    continue
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    self._skip(number, "not UTF-8")
                    continue
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError) as exc:
                    self._skip(number, f"invalid JSON: {getattr(exc, 'msg', exc)}")
                    continue
                index = record.get("index") if isinstance(record, dict) else None
                digest = record.get("hash") if isinstance(record, dict) else None
                # Exact types, no coercion: a bool or "3" is damage, not the index of a request.
                if type(index) is not int or not isinstance(digest, str):
                    self._skip(number, "not a record with an integer 'index' and a string 'hash'")
                    continue
                if not 0 <= index < len(self.hashes) or self.hashes[index] != digest:
                    raise ConfigurationError(
                        f"results file {self.path} holds results of other requests (line "
                        f"{number}, index {index}); give another file or delete it to start over"
                    )
                if "completion" not in record:
                    # Failures run again; one that was charged stays on record.
                    if (charge := _charge(record.get("error"))) is not None:
                        self.spent.append((line, charge))
                        kept.append(line)
                    continue
                if index in done:
                    continue  # a duplicate line changes nothing
                try:
                    completion = Completion.model_validate(record["completion"])
                except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
                    self._skip(number, f"invalid completion: {self._first_error(exc)}")
                    continue
                self.spent.append((line, completion))
                done[index] = Result(index, requests[index], completion=completion)
                kept.append(line)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text("".join(k + "\n" for k in kept), "utf-8")
            os.replace(tmp, self.path)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        return done

    def _skip(self, number: int, why: str) -> None:
        # Damage (a kill in mid-write, a bad disk, a hand edit) must never stop the resume:
        # the line is dropped with a warning and its request is sent again.
        logger.warning(
            "%s:%d: damaged line skipped (%s); its request runs again", self.path, number, why
        )

    @staticmethod
    def _first_error(exc: Exception) -> str:
        from pydantic import ValidationError  # only needed on this rare path

        if isinstance(exc, ValidationError):
            # Only where and what: pydantic's full text would echo the stored answer.
            first = exc.errors(include_input=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            return f"{where}: {first['msg']}" if where else first["msg"]
        return str(exc)

    def write(self, result: Result) -> None:
        """Append one finished request and flush it: it survives a kill from here on."""
        record: dict[str, Any] = {"index": result.index, "hash": self.hashes[result.index]}
        if result.completion is not None:
            record["completion"] = result.completion.model_dump(mode="json")
        else:
            assert result.error is not None
            record["error"] = error_record(result.error)
        assert self._file is not None
        line = json.dumps(record, separators=(",", ":"))
        # One write and a flush per result: a kill loses at most the line being written.
        self._file.write(line + "\n")
        self._file.flush()
        if self.on_line is not None:
            self.on_line(line)

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None


def _charge(error: object) -> tuple[Decimal | None, int] | None:
    """A failure line's charge (dollars, tokens), if it says one (see :func:`error_record`)."""
    if not isinstance(error, dict):
        return None
    return read_charge(error.get("charged_usd"), error.get("charged_tokens"))


def read_results(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a results file's records (for inspection), skipping unreadable lines.

    A line is unreadable when it is not UTF-8 (say, cut inside a character), not JSON, or not
    a JSON object.

    Args:
        path: The JSONL file written by :func:`generate_many`.

    Returns:
        One dict per readable line: ``index``, ``hash`` and ``completion`` or ``error``.
    """
    out = []
    # Bytes, decoded line by line: one damaged line must not hide the others.
    for raw in Path(path).read_bytes().splitlines():
        try:
            record = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError too
            continue
        if isinstance(record, dict):
            out.append(record)
    return out
