"""Helpers for testing code that uses llmcompare.

Every switch for tests is here:

- :func:`isolated_registry`: a fresh model registry for one test, with only the models you
  register (and, if asked, the built-ins), restored afterwards.
- :func:`no_network`: makes every real backend refuse calls to anything but this machine.
- :func:`batch_file_limits`: smaller Batch API input files, to see the split without 50,000
  requests. (The Batch API's status polls wait like retries: :func:`no_wait` skips them too.)
- :func:`no_wait`: retries happen without sleeping, and the waits they asked for are recorded
  (:class:`WaitLog`); :func:`recorded_waits` reads those skipped under
  ``LLMCOMPARE_RETRY_NO_WAIT=1``.

The test doubles themselves live in :mod:`llmcompare.backends.fake`
(:class:`~llmcompare.backends.fake.ScriptedModel`,
:class:`~llmcompare.backends.fake.FunctionModel`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from llmcompare.backends import _network
from llmcompare.plugins import Registry, reset_registry

__all__ = [
    "WaitLog",
    "batch_file_limits",
    "isolated_registry",
    "no_network",
    "no_wait",
    "recorded_waits",
]


@contextmanager
def isolated_registry(*, builtins: bool = False) -> Iterator[Registry]:
    """Swap in a fresh process-wide registry for the duration of a ``with`` block.

    Example:
        >>> from llmcompare import get_model
        >>> from llmcompare.backends.fake import ScriptedModel
        >>> from llmcompare.testing import isolated_registry
        >>> with isolated_registry() as reg:
        ...     _ = reg.register("mine", lambda variant, options: ScriptedModel(["hi"]))
        ...     get_model("mine").generate("hello").text
        'hi'

    Args:
        builtins: Also load llmcompare's own plugins (fake, llama, chatgpt), none of the
            third-party ones.

    Yields:
        The new registry: call ``register(name, factory, ...)`` on it.
    """
    fresh = Registry.from_entry_points(allow=()) if builtins else Registry()
    previous = reset_registry(fresh)
    try:
        yield fresh
    finally:
        reset_registry(previous)


@contextmanager
def no_network() -> Iterator[None]:
    """Make real backends refuse network calls beyond this machine inside the block.

    Loopback addresses stay allowed, so tests can use local OpenAI-compatible servers. The same
    switch is on for a whole process when ``LLMCOMPARE_NO_NETWORK=1`` is set. A refused call
    raises :class:`~llmcompare.ConfigurationError` before anything is sent.
    """
    _network.block(+1)
    try:
        yield
    finally:
        _network.block(-1)


class WaitLog:
    """The waits retrying asked for while waits were switched off (see :func:`no_wait`).

    Attributes:
        waits: Seconds of each wait that would have been slept, in order.
    """

    def __init__(self) -> None:
        self.waits: list[float] = []

    @property
    def total(self) -> float:
        """Sum of the recorded waits."""
        return sum(self.waits)

    def __len__(self) -> int:
        return len(self.waits)

    def __repr__(self) -> str:
        return f"WaitLog({self.waits!r})"


@contextmanager
def no_wait() -> Iterator[WaitLog]:
    """Turn retry waits off inside the block and record what they would have been.

    Retries still happen, and in the same order; only the sleeping is skipped, so a test of
    retrying code runs at full speed and can assert the waits it asked for. Deadlines count the
    skipped waits as if they had passed; latencies do not (nothing was waited). Works across
    threads and event loops of the process. For a whole test session, set
    ``LLMCOMPARE_RETRY_NO_WAIT=1`` instead (see :func:`recorded_waits`).

    Example:
        >>> from llmcompare.testing import no_wait
        >>> with no_wait() as log:
        ...     pass  # code that retries
        >>> log.waits
        []

    Yields:
        The log the skipped waits are appended to.
    """
    from llmcompare import retry

    log = WaitLog()
    with retry._waits_lock:
        retry._active_waits.append(log.waits)
    try:
        yield log
    finally:
        with retry._waits_lock:
            # By identity: two open blocks may hold equal lists.
            retry._active_waits[:] = [w for w in retry._active_waits if w is not log.waits]


def recorded_waits() -> list[float]:
    """Waits skipped because ``LLMCOMPARE_RETRY_NO_WAIT=1`` was set, in order, since start-up."""
    from llmcompare import retry

    with retry._waits_lock:
        return list(retry._env_waits)


@contextmanager
def batch_file_limits(*, max_requests: int, max_bytes: int | None = None) -> Iterator[None]:
    """Split Batch API input files at ``max_requests`` lines (and ``max_bytes``) inside the block.

    The real limits (50,000 requests, 200 MB per file) are restored afterwards.

    Args:
        max_requests: Requests per input file.
        max_bytes: Bytes per input file (default: unchanged).
    """
    from llmcompare.backends.chatgpt import _batch

    saved = _batch.MAX_REQUESTS_PER_FILE, _batch.MAX_FILE_BYTES
    _batch.MAX_REQUESTS_PER_FILE = max_requests
    if max_bytes is not None:
        _batch.MAX_FILE_BYTES = max_bytes
    try:
        yield
    finally:
        _batch.MAX_REQUESTS_PER_FILE, _batch.MAX_FILE_BYTES = saved
