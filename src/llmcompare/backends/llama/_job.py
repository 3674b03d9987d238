"""The request state of the ``llama`` backend: one :class:`Job` per request in the engine.

The engine builds a job from a request and fills it in step by step; the scheduler runs jobs as
the rows of one batch; the model object reads the finished job back into a completion. Cheap to
import: torch is named in types only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch

    from llmcompare.types import FinishReason, Request

__all__ = ["Constraint", "Job"]

_log = logging.getLogger(__name__)


class Constraint(Protocol):
    """A per-row hook on sampling (a grammar, say); see :class:`Job`."""

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """Return the row's logits with the tokens it forbids masked (``-inf``)."""
        ...

    def advance(self, token: int) -> None:
        """Take the token the row generated."""
        ...

    @property
    def done(self) -> bool:
        """Whether the row must stop now."""
        ...


class Job:
    """One request inside the engine: its prompt tokens, settings and what it has produced.

    The scheduler (``_scheduler.py``) runs jobs as rows of one batch. Besides the request's own
    settings a job carries optional per-row state the step consults:

    - ``constraint``: an object with ``mask(logits) -> logits`` (the row's 1-D logits, before
      sampling; it may mask in place and return them), ``advance(token_id)`` (called with each
      accepted token) and a ``done`` property (True once the constraint is satisfied and the row
      must stop: it finishes with ``"stop"``). ``None`` (the default) costs nothing.
    - ``on_text``: called on the scheduler's thread with each new piece of final text (a stream).
    - ``on_done``: called on the scheduler's thread once the job finished or failed.
    """

    __slots__ = (
        "cancelled",
        "compute_s",
        "constraint",
        "done_at",
        "energy_j",
        "error",
        "finish",
        "first_at",
        "generator",
        "held",
        "index",
        "max_new",
        "on_done",
        "on_text",
        "out",
        "pieces",
        "prompt",
        "read_at",
        "request",
        "reused",
        "since",
        "started_at",
        "stop_at",
        "stop_len",
        "stops",
        "temperature",
        "text",
        "text_at",
        "top_p",
        "track",
    )

    def __init__(
        self,
        index: int,
        request: Request,
        prompt: list[int],
        max_new: int,
        temperature: float,
        top_p: float,
        generator: torch.Generator | None,
        constraint: Constraint | None = None,
    ) -> None:
        self.index = index
        self.request = request
        self.prompt = prompt
        self.max_new = max_new
        self.temperature = temperature
        self.top_p = top_p
        self.generator = generator
        self.constraint = constraint
        self.stops = request.stop
        # The longest stop string: how much text may still turn out to be one.
        self.stop_len = max((len(s) for s in self.stops), default=0)
        self.out: list[int] = []
        self.finish: FinishReason | None = None
        self.error: Exception | None = None
        # Set by a reader that went away (a closed stream): the row leaves at the next step.
        self.cancelled = False
        # The stop token of the call (llmcompare.backends._stop) this job belongs to.
        self.since = 0
        self.on_text: Callable[[str], None] | None = None
        self.on_done: Callable[[Job], None] | None = None
        # Incremental text (rows with stop strings or a reader): tokens out[text_at:read_at]
        # decode to the text already taken; `pieces` is the final text so far, `held` the tail
        # that may still be the start of a stop string.
        self.track = bool(self.stops)
        self.text_at = 0
        self.read_at = 0
        self.pieces: list[str] = []
        self.held = ""
        # Where the text is cut when a stop string appeared, and the final text.
        self.stop_at: int | None = None
        self.text: str | None = None
        self.compute_s = 0.0
        # Prompt tokens whose KV came from the prefix cache instead of being computed.
        self.reused = 0
        # This row's share of the measured energy (None: not measurable here).
        self.energy_j: float | None = None
        # perf_counter() times: its computation started, its first token, its last token.
        self.started_at: float | None = None
        self.first_at: float | None = None
        self.done_at: float | None = None

    @property
    def slots(self) -> int:
        """Token slots the job needs in the KV cache at most: prompt plus new tokens."""
        return len(self.prompt) + self.max_new

    def fail(self, error: Exception | None) -> None:
        """End the job with ``error`` (None: a cancelled job nobody waits for) and report it."""
        self.error = error
        self.report()

    def report(self) -> None:
        """Call ``on_done``, once: a job failed by a later cleanup is not reported twice."""
        callback, self.on_done = self.on_done, None
        if callback is not None:
            try:
                callback(self)
            except Exception:  # noqa: BLE001 - a caller's callback must not stop the others' batch
                _log.exception("llama: a finished request's callback failed")
