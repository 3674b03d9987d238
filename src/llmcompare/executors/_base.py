"""The one small interface :func:`llmcompare.compare` calls to run a model's requests elsewhere."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from llmcompare.model import Model
from llmcompare.types import Request, Result

__all__ = ["Executor", "WorkerStats"]


@runtime_checkable
class Executor(Protocol):
    """Runs some models' requests somewhere other than this process.

    :func:`~llmcompare.compare` asks :meth:`handles` for each model; the models it takes are run
    with :meth:`run`, the others in this process.
    """

    def handles(self, model: Model) -> bool:
        """Whether this executor runs ``model`` (else it runs in this process)."""
        ...

    def run(
        self,
        model: Model,
        requests: Sequence[Request],
        *,
        batch_size: int,
        on_result: Callable[[Result], None],
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        """Answer every request; call ``on_result`` once per request, as each one arrives.

        Args:
            model: The model (the executor builds its own copies where it runs).
            requests: The requests; ``Result.index`` is the position in this sequence.
            batch_size: Requests per ``generate_batch`` call.
            on_result: Called on the caller's thread with each result, exactly once each.
            on_ready: Called once every worker has loaded the model, before the first
                request is answered: the caller's clock starts there (start-up and weight
                loading are not answering, as ``warm_up`` in process is not).
        """
        ...


@dataclass(frozen=True)
class WorkerStats:
    """What one worker did for one model.

    Attributes:
        worker: The worker's name (``"ray-0"``, ...), as in ``Completion.worker``.
        device: Where it ran the model (``"cpu"``, ``"cuda:0"``).
        requests: Requests it answered.
        compute_s: Compute seconds of those answers (the basis of their local cost).
        alive: False when the worker died during the run (its unfinished work ran elsewhere).
    """

    worker: str
    device: str | None
    requests: int
    compute_s: float
    alive: bool = True
