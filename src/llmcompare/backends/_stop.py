"""A process-wide request to stop work that cannot be cancelled from outside (a local batch).

A local model's batch computes on a worker thread, which no asyncio cancellation reaches; when
its caller is cancelled (Ctrl-C), :func:`request` asks every batch then running to stop at its
next step. A batch takes :func:`token` when it starts and stops once :func:`requested` says the
token has changed; batches started afterwards are not affected.
"""

from __future__ import annotations

import itertools
import threading
from contextvars import ContextVar

__all__: list[str] = []

_lock = threading.Lock()
_counter = itertools.count(1)
_current = 0
# The generation a caller took before handing a batch to a worker thread (asyncio.to_thread
# copies the context): a cancel that lands before the thread starts still stops that batch.
_taken: ContextVar[int | None] = ContextVar("llmcompare_stop_token", default=None)


def token() -> int:
    """The stop generation of this call: the one taken by :func:`take`, else the current one."""
    taken = _taken.get()
    return _current if taken is None else taken


def take() -> None:
    """Take the current generation for the work this context hands on (call it on the loop)."""
    _taken.set(_current)


def request() -> None:
    """Ask every batch running now to stop at its next step."""
    global _current
    with _lock:
        _current = next(_counter)


def requested(since: int) -> bool:
    """Whether a stop was asked for since ``since`` (a :func:`token`)."""
    return _current != since
