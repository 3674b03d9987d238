"""Retry transient failures of any :class:`~llmcompare.Model`, bounded by attempts and a deadline.

:func:`with_retry` wraps a model so every call (sync, async, streaming and batch) is retried when
it fails for a reason that may pass: a rate limit (429), a server error (5xx), a timeout or a
dropped connection. A bad request (400), a wrong key (401) or an unknown model (404) is raised at
once. Waits grow exponentially with full jitter, and a server's own ``Retry-After`` is honoured
(capped by :attr:`RetryPolicy.max_wait_s`). tenacity runs the retry loop.

Example:
    >>> from llmcompare import BackendError
    >>> from llmcompare.backends.fake import ScriptedModel
    >>> from llmcompare.retry import RetryPolicy, with_retry
    >>> from llmcompare.testing import no_wait
    >>> flaky = ScriptedModel([BackendError("busy", model_id="fake:s", retryable=True), "ok"])
    >>> model = with_retry(flaky, RetryPolicy(attempts=3))
    >>> with no_wait() as waits:
    ...     completion = model.generate("hi")
    >>> completion.text, completion.attempts, len(waits.waits)
    ('ok', 2, 1)

The wrapper is a :class:`~llmcompare.wrapper.ModelWrapper` whose ``_around`` hooks run the
attempts, so every call path is retried the same way. The first attempt runs outside tenacity: a
call that succeeds at once costs a ``try`` block and nothing more; tenacity takes over only after
a retryable failure.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception

from llmcompare.errors import BackendError, BudgetExceeded, ProviderHTTPError, redact
from llmcompare.model import Model
from llmcompare.retry._after import parse_retry_after
from llmcompare.runs import add_charge
from llmcompare.types import Completion, Request
from llmcompare.wrapper import ModelWrapper, Outputs, _shifted

__all__ = [
    "DEFAULT_POLICY",
    "RetryPolicy",
    "is_retryable",
    "retry_after_of",
    "with_retry",
]

_T = TypeVar("_T")

logger = logging.getLogger("llmcompare.retry")

NO_WAIT_ENV = "LLMCOMPARE_RETRY_NO_WAIT"
"""Environment variable that, set to ``1``, turns retry waits off for the whole process (see
:func:`llmcompare.testing.no_wait`)."""


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


DEFAULT_POLICY = RetryPolicy()
"""The policy :func:`with_retry` and :func:`~llmcompare.compare` use unless given another: 4
attempts within 60 seconds."""


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


# -- the switch for tests (llmcompare.testing.no_wait sets it) ------------------------------------

_waits_lock = threading.Lock()
_active_waits: list[list[float]] = []  # the logs of the no_wait() blocks now open
_env_waits: list[float] = []  # waits skipped under LLMCOMPARE_RETRY_NO_WAIT=1


def _skip_wait(seconds: float) -> bool:
    """Record the wait and return True when waits are switched off; else return False."""
    with _waits_lock:
        if _active_waits:
            for log in _active_waits:
                log.append(seconds)
            return True
        if os.environ.get(NO_WAIT_ENV) == "1":
            _env_waits.append(seconds)
            return True
    return False


# -- one call's attempts ---------------------------------------------------------------------------


class _Run:
    """Book-keeping of one retried call: attempts, waits, and the (possibly virtual) clock."""

    __slots__ = (
        "attempts",
        "charged",
        "charged_tokens",
        "first",
        "last",
        "model_id",
        "policy",
        "skipped",
        "start",
        "waited",
    )

    def __init__(self, policy: RetryPolicy, model_id: str) -> None:
        self.policy = policy
        self.model_id = model_id
        self.start = 0.0
        self.attempts = 1
        self.waited = 0.0
        self.skipped = 0.0  # waits not slept (no_wait): they still count against the deadline
        self.first: BaseException | None = None
        self.last: BaseException | None = None  # the error of the attempt before this one
        # Dollars a cost tracker under this wrapper charged for failed attempts that may be
        # billed (BackendError.charged_usd): they belong to the request's answer or error.
        self.charged: Decimal | None = None
        self.charged_tokens = 0

    def failed(self, error: BaseException) -> None:
        """Note a failed attempt: what it was charged, and that it is the last error so far."""
        self.last = error
        if isinstance(error, BackendError):
            if error.charged_usd is not None:
                self.charged = (self.charged or Decimal(0)) + error.charged_usd
            self.charged_tokens += error.charged_tokens or 0

    def gave_up(self, error: Exception) -> Exception:
        """The error a retried call ends with, carrying every attempt's charge.

        A retry that a budget refuses (:class:`~llmcompare.BudgetExceeded`: the attempts
        before it were charged) ends with the error of the attempt before it, the real cause:
        the request was sent, it was not "refused before sending".
        """
        if isinstance(error, BudgetExceeded) and isinstance(self.last, Exception):
            error = self.last
        elif error is not self.last:
            self.failed(error)
        if isinstance(error, BackendError) and (self.charged is not None or self.charged_tokens):
            error.charged_usd = self.charged
            error.charged_tokens = self.charged_tokens or None
        return error

    def begin(self) -> None:
        self.start = time.monotonic()

    def worth_retrying(self, error: Exception) -> bool:
        """Whether to go on after the first attempt failed with ``error``."""
        self.failed(error)
        if self.policy.attempts == 1 or not is_retryable(error):
            return False
        self.first = error
        return True

    def next_attempt(self) -> None:
        # tenacity replays the first failure instead of calling the backend again, so its
        # attempt numbers, waits and stop rules line up with the call that already happened.
        if self.first is not None:
            failed, self.first = self.first, None
            raise failed
        self.attempts += 1

    def elapsed(self) -> float:
        return time.monotonic() - self.start + self.skipped

    def retrying(self) -> Retrying:
        return Retrying(
            stop=self.stop,
            wait=self.wait,
            retry=retry_if_exception(is_retryable),
            before_sleep=self.before_sleep,
            sleep=self.sleep,
            reraise=True,
        )

    def aretrying(self) -> AsyncRetrying:
        # The same rules as `retrying`, with an awaitable sleep.
        return AsyncRetrying(
            stop=self.stop,
            wait=self.wait,
            retry=retry_if_exception(is_retryable),
            before_sleep=self.before_sleep,
            sleep=self.asleep,
            reraise=True,
        )

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
        # The first failure is replayed by tenacity (next_attempt): it was noted already.
        if error is not None and error is not self.last:
            self.failed(error)
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


def _log_retry(model_id: str, attempt: int, wait: float, error: BaseException | None) -> None:
    if logger.isEnabledFor(logging.INFO):
        cause = f"{type(error).__name__}: {redact(str(error))}" if error is not None else "?"
        logger.info(
            "retrying %s: attempt %d failed (%s); waiting %.3fs", model_id, attempt, cause, wait
        )


# -- the wrapper -----------------------------------------------------------------------------------


class _RetryingModel(ModelWrapper[_Run]):
    """A model that retries its inner model's transient failures; see :func:`with_retry`."""

    label = "retrying"

    def __init__(self, inner: Model, policy: RetryPolicy) -> None:
        super().__init__(inner)
        self._policy = policy

    @property
    def policy(self) -> RetryPolicy:
        """The retry policy."""
        return self._policy

    def _before(self, request: Request) -> _Run:
        return _Run(self._policy, self._id)

    # The two shells below differ only in `await`; the rules live in _Run.

    def _around(self, ticket: _Run, call: Callable[[], _T]) -> _T:
        ticket.begin()
        try:
            return call()
        except Exception as exc:
            if not ticket.worth_retrying(exc):
                ticket.gave_up(exc)
                raise
        try:
            for attempt in ticket.retrying():
                with attempt:
                    ticket.next_attempt()
                    result = call()
        except Exception as exc:
            final = ticket.gave_up(exc)
            if final is exc:
                raise
            raise final  # noqa: B904 - the attempt before's own error, with its own cause
        return result

    async def _aaround(self, ticket: _Run, call: Callable[[], Awaitable[_T]]) -> _T:
        ticket.begin()
        try:
            return await call()
        except Exception as exc:
            if not ticket.worth_retrying(exc):
                ticket.gave_up(exc)
                raise
        try:
            async for attempt in ticket.aretrying():
                with attempt:
                    ticket.next_attempt()
                    result = await call()
        except Exception as exc:
            final = ticket.gave_up(exc)
            if final is exc:
                raise
            raise final  # noqa: B904 - the attempt before's own error, with its own cause
        return result

    def _around_batch(
        self,
        requests: Sequence[Request],
        tickets: Sequence[_Run],
        call: Callable[[Sequence[Request]], Outputs],
    ) -> Outputs:
        # The inner model's own batching runs first; only the retryable failures go again, in
        # rounds, each round waiting the longest wait any of its failures asked for.
        policy = self._policy
        start, clock = time.monotonic(), time.perf_counter()
        outs = call(requests)
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
            offset = time.perf_counter() - clock  # a retried answer waited for earlier rounds
            again = call([requests[i] for i in pending])
            for i, out in zip(pending, again, strict=True):
                outs[i] = _shifted(out, offset) if isinstance(out, Completion) else out
                tickets[i].attempts = attempt + 1
                tickets[i].waited += wait
        return outs

    def _after(self, request: Request, completion: Completion, ticket: _Run) -> Completion:
        if ticket.attempts == 1:
            return completion
        retried = completion.model_copy(
            update={"attempts": ticket.attempts, "retry_wait_s": ticket.waited}
        )
        # Earlier attempts that may be billed are part of what this answer cost.
        return add_charge(retried, ticket.charged, ticket.charged_tokens)


def with_retry(model: Model, policy: RetryPolicy = DEFAULT_POLICY) -> Model:
    """Wrap a model so its transient failures are retried.

    The returned model keeps the inner model's id and info, and offers the whole
    :class:`~llmcompare.Model` protocol:

    - ``generate`` / ``agenerate``: retried as a whole.
    - ``stream`` / ``astream``: retried only until the first chunk reaches the caller (replaying
      an answer from the start would repeat text the caller already has).
    - ``generate_batch``: the inner model's ``generate_batch`` runs (its own batching, if it has
      any), then only the retryable failures are sent again, in rounds.

    Every retry is logged on the ``llmcompare.retry`` logger at INFO (model, attempt, wait,
    cause). A completion that took more than one attempt carries ``attempts`` and
    ``retry_wait_s`` (the waits asked for; under :func:`llmcompare.testing.no_wait` nothing was
    slept), and its ``latency_s`` runs from the call to the answer, waits and failed attempts
    included. When the policy gives up, the last error is raised unchanged.

    Args:
        model: Any model.
        policy: The limits; :data:`DEFAULT_POLICY` when omitted. (To turn retrying off, do not
            wrap, or pass ``RetryPolicy(attempts=1)``.)

    Returns:
        The retrying model.

    Raises:
        TypeError: When ``policy`` is not a :class:`RetryPolicy`.
    """
    if not isinstance(policy, RetryPolicy):
        raise TypeError(f"policy must be a RetryPolicy, got {type(policy).__name__}")
    return _RetryingModel(model, policy)
