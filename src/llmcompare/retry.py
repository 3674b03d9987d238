"""Retry transient failures of any :class:`~llmcompare.Model`, bounded by attempts and a deadline.

:func:`with_retry` wraps a model so every call (sync, async, streaming and batch) is retried when
it fails for a reason that may pass: a rate limit (429), a server error (5xx), a timeout or a
dropped connection. A bad request (400), a wrong key (401) or an unknown model (404) is raised at
once. Waits grow exponentially with full jitter, and a server's own ``Retry-After`` is honoured
(capped by :attr:`RetryPolicy.max_wait_s`). tenacity runs the retry loop.

Example:
    >>> from llmcompare import BackendError
    >>> from llmcompare.backends.fake import ScriptedModel
    >>> from llmcompare.retry import RetryPolicy, no_wait, with_retry
    >>> flaky = ScriptedModel([BackendError("busy", model_id="fake:s", retryable=True), "ok"])
    >>> model = with_retry(flaky, RetryPolicy(attempts=3))
    >>> with no_wait() as waits:
    ...     completion = model.generate("hi")
    >>> completion.text, completion.attempts, len(waits.waits)
    ('ok', 2, 1)

The first attempt runs outside tenacity, so a call that succeeds at once costs a ``try`` block and
nothing more; tenacity takes over only after a retryable failure.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception
from typing_extensions import Unpack

from llmcompare._retry_after import parse_retry_after
from llmcompare.errors import BackendError, ProviderHTTPError, redact
from llmcompare.model import AsyncStream, Model, Stream, _WrappedModel
from llmcompare.types import Chunk, Completion, Prompt, Request, Result, Settings

__all__ = [
    "RetryPolicy",
    "WaitLog",
    "is_retryable",
    "no_wait",
    "recorded_waits",
    "retry_after_of",
    "with_retry",
]

_T = TypeVar("_T")

logger = logging.getLogger("llmcompare.retry")

NO_WAIT_ENV = "LLMCOMPARE_RETRY_NO_WAIT"
"""Environment variable that, set to ``1``, turns retry waits off for the whole process."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry; every limit is on by default.

    The wait before attempt ``n + 1`` is drawn uniformly from
    ``[0, min(max_wait_s, initial_wait_s * multiplier ** (n - 1))]`` ("full jitter", which spreads
    clients out after a shared outage), unless the server said how long to wait.

    Attributes:
        attempts: Total attempts, the first included (1 turns retrying off).
        deadline_s: Give up once this many seconds have passed since the first attempt, or when
            the next wait would end after it. Time spent inside an attempt counts too.
        initial_wait_s: Upper bound of the first wait.
        max_wait_s: No single wait is longer, ``Retry-After`` included.
        multiplier: Growth of the wait bound from one attempt to the next.
        jitter: Full jitter (``True``) or the bound itself (``False``, deterministic).
        honour_retry_after: Wait what the server asked for (``Retry-After``, ``retry-after-ms``,
            ``x-ratelimit-reset-*``) instead of the backoff, capped by ``max_wait_s``.
    """

    attempts: int = 4
    deadline_s: float = 60.0
    initial_wait_s: float = 0.5
    max_wait_s: float = 20.0
    multiplier: float = 2.0
    jitter: bool = True
    honour_retry_after: bool = True

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if not self.deadline_s > 0:
            raise ValueError(f"deadline_s must be positive, got {self.deadline_s}")
        if self.initial_wait_s < 0 or self.max_wait_s < 0:
            raise ValueError("initial_wait_s and max_wait_s must not be negative")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, got {self.multiplier}")

    def wait_before(self, attempt: int, error: BaseException | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        Args:
            attempt: The attempt that just failed.
            error: Its error; a server-given wait on it takes precedence when honoured.

        Returns:
            The wait in seconds, never above :attr:`max_wait_s`.
        """
        if self.honour_retry_after and error is not None:
            asked = retry_after_of(error)
            if asked is not None:
                return min(asked, self.max_wait_s)
        bound = min(self.max_wait_s, self.initial_wait_s * self.multiplier ** (attempt - 1))
        return random.uniform(0.0, bound) if self.jitter else bound


_DEFAULT_POLICY = RetryPolicy()


def is_retryable(exc: BaseException) -> bool:
    """Whether sending the same request again may succeed.

    Reads the classification backends put on :class:`~llmcompare.BackendError`
    (``retryable``: 429, 5xx, timeouts, connection resets); the builtin :class:`TimeoutError` and
    :class:`ConnectionError` count as retryable too. Anything else (a 400, a bad key, a bug) does
    not.

    Args:
        exc: The error a call raised.

    Returns:
        True when a retry may help.
    """
    if isinstance(exc, BackendError):
        return exc.retryable
    return isinstance(exc, (TimeoutError, ConnectionError, asyncio.TimeoutError))


def retry_after_of(exc: BaseException) -> float | None:
    """The wait a server asked for on this error, in seconds, when it said so.

    Uses :attr:`~llmcompare.ProviderHTTPError.retry_after` when the backend set it, else reads
    the headers: ``retry-after-ms``, ``retry-after`` (seconds or an HTTP date with a time zone),
    then ``x-ratelimit-reset-requests`` / ``x-ratelimit-reset-tokens`` (the exhausted limit's,
    else the longer). The chatgpt backend parses its headers with the same code, so both agree.
    A value that is not a finite, non-negative number of seconds counts as no hint.

    Args:
        exc: Any error.

    Returns:
        Seconds (finite, never negative), or None when the server gave no usable hint.
    """
    if not isinstance(exc, ProviderHTTPError):
        return None
    given = exc.retry_after
    # A third-party backend may set anything here; only a real wait is honoured.
    if isinstance(given, (int, float)) and math.isfinite(given) and given >= 0:
        return float(given)
    try:
        return parse_retry_after(exc.headers)
    except Exception:  # noqa: BLE001 - a malformed hint must never break the retry loop
        return None


# -- the switch for tests --------------------------------------------------------------------------


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


_logs_lock = threading.Lock()
_active_logs: list[WaitLog] = []
_env_log = WaitLog()


@contextmanager
def no_wait() -> Iterator[WaitLog]:
    """Turn retry waits off inside the block and record what they would have been.

    Retries still happen, and in the same order; only the sleeping is skipped, so a test of
    retrying code runs at full speed and can assert the waits it asked for. Deadlines count the
    skipped waits as if they had passed. Works across threads and event loops of the process.
    For a whole test session, set ``LLMCOMPARE_RETRY_NO_WAIT=1`` instead (see
    :func:`recorded_waits`).

    Example:
        >>> from llmcompare.retry import no_wait
        >>> with no_wait() as log:
        ...     pass  # code that retries
        >>> log.waits
        []

    Yields:
        The log the skipped waits are appended to.
    """
    log = WaitLog()
    with _logs_lock:
        _active_logs.append(log)
    try:
        yield log
    finally:
        with _logs_lock:
            _active_logs.remove(log)


def recorded_waits() -> list[float]:
    """Waits skipped because ``LLMCOMPARE_RETRY_NO_WAIT=1`` was set, in order, since start-up."""
    with _logs_lock:
        return list(_env_log.waits)


def _skip_wait(seconds: float) -> bool:
    """Record the wait and return True when waits are switched off; else return False."""
    with _logs_lock:
        if _active_logs:
            for log in _active_logs:
                log.waits.append(seconds)
            return True
        if os.environ.get(NO_WAIT_ENV) == "1":
            _env_log.waits.append(seconds)
            return True
    return False


# -- one call's retry loop -------------------------------------------------------------------------


class _Run:
    """Book-keeping of one retried call: attempts, waits, and the (possibly virtual) clock."""

    __slots__ = ("attempts", "model_id", "policy", "skipped", "start", "waited")

    def __init__(self, policy: RetryPolicy, model_id: str, start: float) -> None:
        self.policy = policy
        self.model_id = model_id
        self.start = start
        self.attempts = 1
        self.waited = 0.0
        self.skipped = 0.0  # waits not slept (no_wait): they still count against the deadline

    def elapsed(self) -> float:
        return time.monotonic() - self.start + self.skipped

    # tenacity callbacks -----------------------------------------------------------------------

    def wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return self.policy.wait_before(state.attempt_number, error)

    def stop(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self.policy.attempts:
            return True
        # Sleeping past the deadline only to give up afterwards helps nobody.
        return self.elapsed() + state.upcoming_sleep > self.policy.deadline_s

    def before_sleep(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        _log_retry(self.model_id, state.attempt_number, state.upcoming_sleep, error)

    def sleep(self, seconds: float) -> None:
        seconds = float(seconds)
        self.waited += seconds
        if _skip_wait(seconds):
            self.skipped += seconds
        else:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        seconds = float(seconds)
        self.waited += seconds
        if _skip_wait(seconds):
            self.skipped += seconds
            await asyncio.sleep(0)  # still yield to the loop, as a real wait would
        else:
            await asyncio.sleep(seconds)

    def stamp(self, completion: Completion) -> Completion:
        if self.attempts == 1:
            return completion
        return completion.model_copy(
            update={"attempts": self.attempts, "retry_wait_s": self.waited}
        )


def _log_retry(model_id: str, attempt: int, wait: float, error: BaseException | None) -> None:
    if logger.isEnabledFor(logging.INFO):
        cause = f"{type(error).__name__}: {redact(str(error))}" if error is not None else "?"
        logger.info(
            "retrying %s: attempt %d failed (%s); waiting %.3fs", model_id, attempt, cause, wait
        )


def _retrying(run: _Run) -> Retrying:
    return Retrying(
        stop=run.stop,
        wait=run.wait,
        retry=retry_if_exception(is_retryable),
        before_sleep=run.before_sleep,
        sleep=run.sleep,
        reraise=True,
    )


def _aretrying(run: _Run) -> AsyncRetrying:
    return AsyncRetrying(
        stop=run.stop,
        wait=run.wait,
        retry=retry_if_exception(is_retryable),
        before_sleep=run.before_sleep,
        sleep=run.asleep,
        reraise=True,
    )


def _call(policy: RetryPolicy, model_id: str, attempt: Callable[[], _T]) -> tuple[_T, _Run | None]:
    """Run ``attempt`` until it succeeds or the policy gives up; the run is None if no retry."""
    start = time.monotonic()
    try:
        return attempt(), None
    except Exception as exc:
        if policy.attempts == 1 or not is_retryable(exc):
            raise
        first: BaseException | None = exc
    run = _Run(policy, model_id, start)

    def again() -> _T:
        # tenacity replays the first failure instead of calling the backend again, so its
        # attempt numbers, waits and stop rules line up with the call that already happened.
        nonlocal first
        if first is not None:
            failed, first = first, None
            raise failed
        run.attempts += 1
        return attempt()

    return _retrying(run)(again), run


async def _acall(
    policy: RetryPolicy, model_id: str, attempt: Callable[[], Awaitable[_T]]
) -> tuple[_T, _Run | None]:
    """The async twin of :func:`_call`."""
    start = time.monotonic()
    try:
        return await attempt(), None
    except Exception as exc:
        if policy.attempts == 1 or not is_retryable(exc):
            raise
        first: BaseException | None = exc
    run = _Run(policy, model_id, start)

    async def again() -> _T:
        nonlocal first
        if first is not None:
            failed, first = first, None
            raise failed
        run.attempts += 1
        return await attempt()

    result: _T = await _aretrying(run)(again)
    return result, run


# -- the wrapper -----------------------------------------------------------------------------------


class _RetryingModel(_WrappedModel):
    """A model that retries its inner model's transient failures; see :func:`with_retry`."""

    _label = "retrying"

    def __init__(self, inner: Model, policy: RetryPolicy) -> None:
        super().__init__(inner)
        self._policy = policy

    @property
    def policy(self) -> RetryPolicy:
        """The retry policy."""
        return self._policy

    def _generate(self, request: Request) -> Completion:
        completion, run = _call(self._policy, self._id, lambda: self._inner.generate(request))
        return completion if run is None else run.stamp(completion)

    async def _agenerate(self, request: Request) -> Completion:
        inner = self._inner
        completion, run = await _acall(self._policy, self._id, lambda: inner.agenerate(request))
        return completion if run is None else run.stamp(completion)

    def stream(self, prompt: Prompt, /, **settings: Unpack[Settings]) -> Stream:
        """Stream one answer, retrying failures that happen before the first chunk arrives.

        Once a chunk has been handed to the caller, a failure is raised as is: replaying the
        answer from the start would repeat text the caller already has.
        """
        return _RetryingStream(self, Request.of(prompt, **settings))

    def astream(self, prompt: Prompt, /, **settings: Unpack[Settings]) -> AsyncStream:
        """Stream one answer asynchronously; retries only before the first chunk, as in stream."""
        return _RetryingAsyncStream(self, Request.of(prompt, **settings))

    def _generate_batch(self, requests: Sequence[Request]) -> list[Completion | Exception]:
        # The inner model's own batching runs first; only the retryable failures go again, in
        # rounds, each round waiting the longest wait any of its failures asked for.
        policy = self._policy
        start = time.monotonic()
        outs = _outputs(self._inner.generate_batch(requests))
        attempts = [1] * len(outs)
        waited = [0.0] * len(outs)
        skipped = 0.0
        for attempt in range(1, policy.attempts):
            failed = {
                i: o for i, o in enumerate(outs) if isinstance(o, Exception) and is_retryable(o)
            }
            if not failed:
                break
            wait = max(policy.wait_before(attempt, e) for e in failed.values())
            if time.monotonic() - start + skipped + wait > policy.deadline_s:
                break
            _log_retry(self._id, attempt, wait, next(iter(failed.values())))
            if _skip_wait(wait):
                skipped += wait
            else:
                time.sleep(wait)
            pending = list(failed)
            again = _outputs(self._inner.generate_batch([requests[i] for i in pending]))
            for i, out in zip(pending, again, strict=True):
                outs[i] = out
                attempts[i] = attempt + 1
                waited[i] += wait
        return [
            o.model_copy(update={"attempts": attempts[i], "retry_wait_s": waited[i]})
            if isinstance(o, Completion) and attempts[i] > 1
            else o
            for i, o in enumerate(outs)
        ]


def _outputs(results: Sequence[Result]) -> list[Completion | Exception]:
    out: list[Completion | Exception] = []
    for r in results:
        if r.completion is not None:
            out.append(r.completion)
        elif isinstance(r.error, Exception):
            out.append(r.error)
        else:  # KeyboardInterrupt and friends are not results: let them stop the program
            assert r.error is not None
            raise r.error
    return out


class _RetryingStream(Stream):
    """A stream that reopens the inner stream while no chunk has reached the caller yet."""

    def __init__(self, model: _RetryingModel, request: Request) -> None:
        self._model = model
        self._request = request
        self._inner_stream: Stream | None = None
        self._run: _Run | None = None
        self._final: Completion | None = None
        super().__init__(model, self._produce())

    def _open(self) -> tuple[Stream, Chunk | None]:
        stream = self._model.inner.stream(self._request)
        try:
            return stream, next(stream)
        except StopIteration:
            return stream, None
        except BaseException:
            stream.close()
            raise

    def _produce(self) -> Iterator[Chunk]:
        (stream, first), self._run = _call(self._model.policy, self._model.id, self._open)
        self._inner_stream = stream
        try:
            if first is None:
                return
            yield first
            yield from stream
        finally:
            stream.close()

    def __next__(self) -> Chunk:
        return next(self._chunks)

    @property
    def completion(self) -> Completion:
        """The whole answer, with the attempts it took, once the stream has ended."""
        if self._final is None:
            if self._inner_stream is None:
                return super().completion  # raises: not ended
            done = self._inner_stream.completion
            self._final = done if self._run is None else self._run.stamp(done)
        return self._final


class _RetryingAsyncStream(AsyncStream):
    """The async twin of :class:`_RetryingStream`."""

    def __init__(self, model: _RetryingModel, request: Request) -> None:
        self._model = model
        self._request = request
        self._inner_stream: AsyncStream | None = None
        self._run: _Run | None = None
        self._final: Completion | None = None
        super().__init__(model, self._produce())

    async def _open(self) -> tuple[AsyncStream, Chunk | None]:
        stream = self._model.inner.astream(self._request)
        try:
            return stream, await stream.__anext__()
        except StopAsyncIteration:
            return stream, None
        except BaseException:
            await stream.aclose()
            raise

    async def _produce(self) -> AsyncIterator[Chunk]:
        (stream, first), self._run = await _acall(self._model.policy, self._model.id, self._open)
        self._inner_stream = stream
        try:
            if first is None:
                return
            yield first
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()

    async def __anext__(self) -> Chunk:
        return await self._chunks.__anext__()

    @property
    def completion(self) -> Completion:
        """The whole answer, with the attempts it took, once the stream has ended."""
        if self._final is None:
            if self._inner_stream is None:
                return super().completion  # raises: not ended
            done = self._inner_stream.completion
            self._final = done if self._run is None else self._run.stamp(done)
        return self._final


def with_retry(model: Model, policy: RetryPolicy | None = None) -> Model:
    """Wrap a model so its transient failures are retried.

    The returned model keeps the inner model's id and info, and offers the whole
    :class:`~llmcompare.Model` protocol:

    - ``generate`` / ``agenerate``: retried as a whole.
    - ``stream`` / ``astream``: retried only until the first chunk reaches the caller.
    - ``generate_batch``: the inner model's ``generate_batch`` runs (its own batching, if it has
      any), then only the retryable failures are sent again, in rounds.

    Every retry is logged on the ``llmcompare.retry`` logger at INFO (model, attempt, wait,
    cause). A completion that took more than one attempt carries ``attempts`` and
    ``retry_wait_s`` (the waits asked for; under :func:`no_wait` nothing was slept). When the
    policy gives up, the last error is raised unchanged.

    Args:
        model: Any model.
        policy: The limits; the defaults of :class:`RetryPolicy` when omitted.

    Returns:
        The retrying model.
    """
    return _RetryingModel(model, policy or _DEFAULT_POLICY)
