"""A comparison's run folder: written as the run goes, so a run that stops resumes where it was.

Layout:

- ``run.json``: what the run is (its plan: models, items, settings, samples) and its resolved
  configuration, secrets never; written before the first request.
- ``answers.jsonl``: one line per answer (or failure) the moment it arrives, flushed: a kill
  loses at most the requests in flight. A line names its request by the request's key
  (:func:`~llmcompare.runs.request_key`, the response cache's key too).
- ``comparison.json`` and the reports: written at the end.

Running the same comparison on the same folder sends only what is missing: answers already in
``answers.jsonl`` are read back with their original timings, failures are sent again (what a
failure that may be billed was charged still counts against the budget: see
:meth:`RunFolder.charges`). A folder made by another comparison is refused, naming what
differs, unless ``force_new``; so is a folder of another run folder format (written by another
version of llmcompare).

One run at a time: a run holds a lock on its folder (``.llmcompare-lock``, an OS file lock that
the system releases when the process ends, however it ends) from the moment it opens the folder
until it closes it. A second run on the same folder waits for it (up to
:data:`LOCK_WAIT_S`), then resumes from what the first one left, paying nothing twice; if the
first run is still going by then, the second is refused in one line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from llmcompare.errors import ConfigurationError
from llmcompare.runs._charges import read_charge
from llmcompare.runs._lock import try_lock
from llmcompare.runs._whole import write_whole
from llmcompare.types import Completion

__all__ = ["ANSWERS_FILE", "LOCK_WAIT_S", "RUN_FILE", "Answer", "RunFolder", "fingerprint"]

logger = logging.getLogger("llmcompare.runs")

RUN_FILE = "run.json"
"""The run's plan and configuration."""
ANSWERS_FILE = "answers.jsonl"
"""Every answer as it arrived, one JSON line each."""

# 2: the lines of answers.jsonl name their request by its request_key (1: by a hash of the
# request alone, which no other part of llmcompare used).
_FORMAT = 2

_LOCK_FILE = ".llmcompare-lock"
LOCK_WAIT_S = 30.0
"""How long a run waits for another run on its folder to end before it is refused."""
_LOCK_POLL_S = 0.1


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def fingerprint(value: Any) -> str:
    """SHA-256 of the canonical JSON of a value: the identity of a plan (what a run is)."""
    return hashlib.sha256(_canonical(value).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer read back from a run folder.

    Attributes:
        request: The key of the request it answered (:func:`~llmcompare.runs.request_key`): an
            answer is reused only for the same request to the same model.
        completion: The answer, with its original timings.
        cached: Whether it came from the response cache when it was recorded.
    """

    request: str
    completion: Completion
    cached: bool


class RunFolder:
    """A comparison's folder; see the module docstring.

    Args:
        path: The folder (created if needed).
        plan: What makes two runs the same comparison (compared when the folder exists).
        config: The resolved configuration to record (no secrets: it is written as is).
        force_new: Start over in a folder made by another comparison instead of refusing it.

    Raises:
        ConfigurationError: When the folder cannot be written, holds another comparison
            (the message says what differs) or a run of another run folder format, before
            anything is sent.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        plan: Mapping[str, Any],
        config: Mapping[str, Any],
        *,
        force_new: bool = False,
    ) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._held: IO[str] | None = None
        if self.path.exists() and not self.path.is_dir():
            raise ConfigurationError(f"--out {self.path}: is a file, not a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".llmcompare-write-test"
            probe.write_text("ok", encoding="utf-8")
            probe.unlink()
        except OSError as exc:
            raise ConfigurationError(
                f"--out {self.path}: cannot write there ({exc.strerror or exc})"
            ) from None
        # Before anything is read: what the folder holds may change until the lock is ours.
        self._held = _hold(self.path / _LOCK_FILE)
        try:
            self._open(plan, config, force_new=force_new)
        except BaseException:
            self.close()
            raise

    def _open(self, plan: Mapping[str, Any], config: Mapping[str, Any], *, force_new: bool) -> None:
        """Read the folder's run record, or write this run's (under the folder's lock)."""
        digest = fingerprint(plan)
        run_file = self.path / RUN_FILE
        self.resumed = False
        if run_file.exists():
            earlier = _read_run(run_file)
            if earlier.get("format") == _FORMAT and earlier.get("fingerprint") == digest:
                self.resumed = True
            elif not force_new:
                raise ConfigurationError(
                    f"{self.path} {_other(earlier, plan)}: use another folder, or --force-new "
                    "(force_new=True) to start over in it"
                )
            else:
                # Nothing of the other comparison may pass for this one's.
                # judgments.jsonl: the judges' replies (llmcompare.judges), beside the answers.
                for name in (ANSWERS_FILE, "comparison.json", "judgments.jsonl"):
                    (self.path / name).unlink(missing_ok=True)
        if not self.resumed:
            record = {"format": _FORMAT, "fingerprint": digest, "plan": plan, "config": config}
            text = json.dumps(record, indent=2, default=str) + "\n"
            write_whole(run_file, text.encode("utf-8"))

    def answers(self) -> dict[tuple[str, str, int], Answer]:
        """The answers recorded so far, by (model label, item id, sample); failures left out.

        A damaged line (cut by a kill, not JSON, not a valid record) is skipped with a warning:
        its request simply runs again.
        """
        found: dict[tuple[str, str, int], Answer] = {}
        file = self.path / ANSWERS_FILE
        for number, raw in enumerate(self._lines(), 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
                key = (str(record["model"]), str(record["item"]), int(record["sample"]))
                if "completion" not in record:
                    continue  # a failure: sent again
                answer = Answer(
                    request=str(record["request"]),
                    completion=Completion.model_validate(record["completion"]),
                    cached=bool(record.get("cached", False)),
                )
            except (ValueError, KeyError, TypeError, ValidationError) as exc:
                logger.warning("%s:%d: damaged line skipped (%s)", file, number, type(exc).__name__)
                continue
            found[key] = answer
        return found

    def charges(self) -> dict[tuple[str, str, int], list[tuple[str, Decimal | None, int]]]:
        """What the failures recorded so far were charged, by (model label, item id, sample).

        A request that reached the provider and gave no answer (a timeout, a cut stream) may
        be billed: its failure line says what the cost tracker charged for it
        (``charged_usd``, ``charged_tokens``: see :func:`~llmcompare.runs.read_charge`). Each
        such line gives one (request key, dollars or None when unpriced, tokens), in the order
        written, whether or not a later line answered the request: that money was spent all
        the same. Damaged lines are skipped (:meth:`answers` warns about them).
        """
        found: dict[tuple[str, str, int], list[tuple[str, Decimal | None, int]]] = {}
        for raw in self._lines():
            try:
                record = json.loads(raw.decode("utf-8"))
                error = record["error"]
                charge = read_charge(error.get("charged_usd"), error.get("charged_tokens"))
                if charge is None:
                    continue
                key = (str(record["model"]), str(record["item"]), int(record["sample"]))
                request = str(record["request"])
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # an answer, or damage
            found.setdefault(key, []).append((request, *charge))
        return found

    def _lines(self) -> list[bytes]:
        """The lines of ``answers.jsonl`` (none when it does not exist), a cut last line dropped."""
        file = self.path / ANSWERS_FILE
        if not file.exists():
            return []
        data = file.read_bytes()
        if data and not data.endswith(b"\n"):
            # A line cut short by a kill: cut it off, or the next answer appended would be
            # glued to it and lost as well.
            cut = data.rfind(b"\n") + 1
            logger.warning("%s: a line cut short at its end was dropped", file)
            os.truncate(file, cut)
            data = data[:cut]
        return data.splitlines()

    def record(
        self,
        model: str,
        item: str,
        sample: int,
        request: str,
        *,
        completion: Completion | None = None,
        error: Mapping[str, Any] | None = None,
        cached: bool = False,
    ) -> None:
        """Append one answer (or failure) and flush it: it survives a kill from here on.

        Args:
            model: The model's label in the comparison.
            item: The item's id.
            sample: The sample index.
            request: The request's key (:func:`~llmcompare.runs.request_key`).
            completion: The answer, for a success.
            error: The failure as recorded (type, message, retryable), for a failure.
            cached: Whether the answer came from the response cache.
        """
        line: dict[str, Any] = {"model": model, "item": item, "sample": sample, "request": request}
        if completion is not None:
            line["completion"] = completion.model_dump(mode="json")
            line["cached"] = cached
        else:
            line["error"] = dict(error or {})
        text = json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n"
        with self._lock:
            if self._file is None:
                # backslashreplace: a lone surrogate (half a character, in an error message
                # say) is written as its JSON escape, so no line ever fails to encode and
                # every line reads back as it was.
                self._file = (self.path / ANSWERS_FILE).open(
                    "a", encoding="utf-8", errors="backslashreplace"
                )
            # One write and a flush per answer: a kill loses at most the line being written.
            self._file.write(text)
            self._file.flush()

    def close(self) -> None:
        """Close the answers file, syncing it to disk, and let another run have the folder."""
        with self._lock:
            try:
                if self._file is not None:
                    self._file.flush()
                    os.fsync(self._file.fileno())
                    self._file.close()
                    self._file = None
            finally:
                if self._held is not None:
                    # Closing the file releases the OS lock (as the end of the process does).
                    self._held.close()
                    self._held = None


def _hold(path: Path) -> IO[str]:
    """Take the run folder's lock, waiting up to LOCK_WAIT_S for another run to end.

    Returns:
        The open lock file: the lock is held while it stays open.

    Raises:
        ConfigurationError: When another run still holds it after the wait.
    """
    try:
        file = path.open("a+", encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"--out {path.parent}: cannot write there ({exc.strerror or exc})"
        ) from None
    deadline = time.monotonic() + LOCK_WAIT_S
    while not try_lock(file):
        if time.monotonic() > deadline:
            holder = _holder(file)
            file.close()
            raise ConfigurationError(
                f"--out {path.parent}: another llmcompare run is using this folder{holder}; "
                "wait for it to end and run the same command again (it resumes without paying "
                "twice), or use another folder"
            )
        time.sleep(_LOCK_POLL_S)
    # Who holds it, for the message of a run that finds it taken.
    file.seek(0)
    file.truncate()
    file.write(json.dumps({"pid": os.getpid(), "since": time.time()}) + "\n")
    file.flush()
    return file


def _holder(file: IO[str]) -> str:
    """``" (pid N)"`` for the run holding the lock, when its lock file says."""
    try:
        file.seek(0)
        pid = json.loads(file.read() or "{}").get("pid")
    except (OSError, ValueError, AttributeError):
        return ""
    return f" (pid {pid})" if isinstance(pid, int) else ""


def _read_run(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"{path} is damaged ({exc}): delete the folder, or use --force-new"
        ) from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path} is not a run record: delete it, or use --force-new")
    return data


def _other(earlier: Mapping[str, Any], plan: Mapping[str, Any]) -> str:
    """What the folder holds instead of this comparison, for the one-line refusal."""
    if earlier.get("format") != _FORMAT:
        # Its lines name requests another way: nothing in it can be matched to this run.
        return (
            f"was written by another version of llmcompare (run folder format "
            f"{earlier.get('format')!r}, not {_FORMAT}; starting over pays nothing for the "
            "answers the response cache holds)"
        )
    return f"holds another comparison ({_differences(earlier, plan)})"


def _differences(earlier: Mapping[str, Any], plan: Mapping[str, Any]) -> str:
    before = earlier.get("plan")
    if not isinstance(before, Mapping):
        return "an unreadable plan"
    changed = [
        key
        for key in sorted(set(before) | set(plan))
        if _canonical(before.get(key)) != _canonical(plan.get(key))
    ]
    parts = []
    for key in changed:
        old, new = before.get(key), plan.get(key)
        if key == "requests":
            # Fingerprints say nothing to a reader: name the models whose requests changed.
            old_map = old if isinstance(old, Mapping) else {}
            new_map = new if isinstance(new, Mapping) else {}
            which = sorted(
                k for k in set(old_map) | set(new_map) if old_map.get(k) != new_map.get(k)
            )
            parts.append(f"requests: the prompts or settings sent to {', '.join(which)} differ")
            continue
        parts.append(f"{key}: {_short(old)} before, {_short(new)} now")
    return "; ".join(parts) or "a different plan"


def _short(value: Any) -> str:
    text = _canonical(value)
    return text if len(text) <= 120 else text[:117] + "..."
