"""``judgments.jsonl``: every judge reply in a run folder, written the moment it arrives.

It sits beside the run's ``answers.jsonl``. One JSON line per reply (or failure), named by its
judge and its request's key (:func:`~llmcompare.runs.request_key` of the judge model and the
judge request), flushed at once: a run killed while judging loses at most the requests in
flight, and the next run reads the rest back instead of asking again. A key is the request's
whole content (the question, both answers in their order, the rubric), so a reply is reused
only for exactly the same request; a line cut short by a kill, or damaged, is skipped and its
request asked again.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llmcompare.runs import read_charge
from llmcompare.types import Completion

__all__ = ["JUDGMENTS_FILE", "JudgmentsFile", "Saved"]

logger = logging.getLogger("llmcompare.judges")

JUDGMENTS_FILE = "judgments.jsonl"
"""The judges' replies in a run folder, beside ``answers.jsonl``."""


@dataclass(frozen=True, slots=True)
class Saved:
    """A judge reply read back: the reply, and whether it came from the cache when written."""

    completion: Completion
    cached: bool


class JudgmentsFile:
    """The judges' replies of one run folder; see the module docstring.

    Args:
        folder: The run folder (created if needed).
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.path = Path(folder) / JUDGMENTS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def read(self) -> dict[tuple[str, str], Saved]:
        """The replies written so far, by (judge, request key); failures, damaged lines left out.

        By judge too: panel members asking one model the same request share its key, and a
        reply is paid for by the member that asked it.
        """
        found: dict[tuple[str, str], Saved] = {}
        for number, raw in enumerate(self._lines(), 1):
            try:
                line = json.loads(raw.decode("utf-8"))
                if "completion" in line:
                    completion = Completion.model_validate(line["completion"])
                    where = (str(line["judge"]), str(line["key"]))
                    found[where] = Saved(completion, bool(line.get("cached")))
            except (ValueError, KeyError, TypeError, ValidationError) as exc:
                logger.warning("%s:%d: damaged line skipped (%s)", self.path, number, exc)
        return found

    def charges(self) -> dict[tuple[str, str], list[tuple[Decimal | None, int]]]:
        """What the failures written so far were charged as maybe billed, by (judge, key).

        One (dollars or None when unpriced, tokens) per failed line that says so (a timeout:
        see :func:`~llmcompare.runs.read_charge`), whether or not a later line answered the
        request; damaged lines are skipped (:meth:`read` warns). By judge too, as
        :meth:`read`: each member's failures are its own.
        """
        found: dict[tuple[str, str], list[tuple[Decimal | None, int]]] = {}
        for raw in self._lines():
            try:
                line = json.loads(raw.decode("utf-8"))
                charge = read_charge(line.get("charged_usd"), line.get("charged_tokens"))
                where = (str(line["judge"]), str(line["key"]))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            if charge is not None:
                found.setdefault(where, []).append(charge)
        return found

    def _lines(self) -> list[bytes]:
        """The file's lines (none when it does not exist), a line cut short at its end dropped."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            # Cut short by a kill: drop the piece, or the next line would be glued to it.
            cut = data.rfind(b"\n") + 1
            logger.warning("%s: a line cut short at its end was dropped", self.path)
            os.truncate(self.path, cut)
            data = data[:cut]
        return data.splitlines()

    def write(
        self,
        key: str,
        judge: str,
        *,
        completion: Completion | None = None,
        error: str | None = None,
        cached: bool = False,
        charged_usd: Decimal | None = None,
        charged_tokens: int = 0,
    ) -> None:
        """Append one reply (or failure) and flush it: it survives a kill from here on.

        ``charged_usd`` and ``charged_tokens``: what a failure that may be billed (a timeout)
        was charged, read back by :meth:`charges`.
        """
        line: dict[str, Any] = {"key": key, "judge": judge}
        if completion is not None:
            line["completion"] = completion.model_dump(mode="json")
            line["cached"] = cached
        else:
            line["error"] = error
            if charged_usd is not None:
                line["charged_usd"] = str(charged_usd)
            if charged_tokens:
                line["charged_tokens"] = charged_tokens
        text = json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n"
        # Opened, written and closed per reply: the line is the OS's once this returns, so a
        # kill loses at most the requests in flight. A judge reply takes far longer than an open.
        with self._lock, self.path.open("a", encoding="utf-8") as file:
            file.write(text)
