"""Keep requests and tokens per minute under a provider's limits: a token bucket and a wrapper.

:func:`with_rate_limit` wraps any :class:`~llmcompare.Model` so each request (each attempt, when
the limiter sits inside a retry) first takes capacity from a :class:`RateLimiter`: one request,
and its estimated tokens when a tokens-per-minute limit is set, corrected with the real usage once
the answer is in. Share one limiter between models that share a provider's limit (one API key).
:class:`RateLimits` holds one model's limits, as :func:`~llmcompare.comparison.compare` takes them
per model (``limits=``): :func:`check_limits` checks such a mapping, :func:`limits_of` picks a
model's own limits or the shared ones.

Example:
    >>> from llmcompare.backends.fake import ScriptedModel
    >>> from llmcompare.ratelimit import with_rate_limit
    >>> model = with_rate_limit(ScriptedModel(default="one two three"), rpm=600)
    >>> [chunk.text for chunk in model.stream("hi")]
    ['one ', 'two ', 'three', '']
"""

from __future__ import annotations

import asyncio
import logging
import math
import numbers
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from llmcompare.errors import ConfigurationError
from llmcompare.model import Model
from llmcompare.types import Completion, Request
from llmcompare.wrapper import ModelWrapper

__all__ = [
    "RateLimiter",
    "RateLimits",
    "check_limits",
    "limits_of",
    "stated_limits",
    "with_rate_limit",
]


log = logging.getLogger("llmcompare.ratelimit")

LONG_WAIT_S = 60.0
"""A wait longer than this is said (a warning on the ``llmcompare.ratelimit`` logger)."""

_PER_DAY = 24 * 60
"""Minutes in a day: a limit under ``1 / _PER_DAY`` per minute admits less than one a day."""


def _check_limit(name: str, value: object) -> None:
    """Refuse a limit that is not a positive number, or admits less than one a day (None: none)."""
    if value is None:
        return
    # bool is an int to Python, but ``rpm=True`` is a mistake, not one request per minute.
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value) > 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    if float(value) * _PER_DAY < 1:
        # rpm=1e-9 would send one request, then wait for centuries without a word.
        raise ValueError(
            f"{name}={value!r} is less than one a day: a request would wait longer than a "
            "day; give at least 0.0007 (about one a day), or no limit"
        )


def _duration(seconds: float) -> str:
    """``"42 s"``, ``"2 min 2 s"``, ``"3 h 5 min"``: a wait as a person reads it."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(whole // 60, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


@dataclass(frozen=True)
class RateLimits:
    """One model's requests-per-minute and tokens-per-minute limits.

    What :func:`~llmcompare.comparison.compare` takes per model label in ``limits=``: they
    replace the run's shared ``rpm`` / ``tpm`` for that model (``RateLimits()`` runs it without
    any limit).

    Example:
        >>> from llmcompare.ratelimit import RateLimits
        >>> RateLimits(rpm=500, tpm=200_000)
        RateLimits(rpm=500, tpm=200000)

    Attributes:
        rpm: Requests per minute, at most, or None for no limit on requests.
        tpm: Tokens per minute (input plus output), at most, or None for no limit on tokens.

    Raises:
        ValueError: When a limit is not a positive number.
    """

    rpm: float | None = None
    tpm: float | None = None

    def __post_init__(self) -> None:
        _check_limit("rpm", self.rpm)
        _check_limit("tpm", self.tpm)


def check_limits(
    limits: Mapping[str, RateLimits] | None,
    known: Collection[str],
    unknown: Callable[[list[str]], str],
) -> dict[str, RateLimits]:
    """A ``limits=`` argument (own limits by name), checked before anything is sent.

    Example:
        >>> from llmcompare.ratelimit import RateLimits, check_limits
        >>> check_limits({"a": RateLimits(rpm=60)}, ["a", "b"], lambda names: f"no {names}")
        {'a': RateLimits(rpm=60, tpm=None)}

    Args:
        limits: The limits by name; None: none.
        known: The names they may hold.
        unknown: The refusal of names outside ``known``, given them sorted.

    Returns:
        The limits, as a new dict.

    Raises:
        ConfigurationError: For a name outside ``known``, or a value that is not a
            :class:`RateLimits`.
    """
    if limits is None:
        return {}
    if not isinstance(limits, Mapping):
        raise ConfigurationError(
            f"limits must map names to RateLimits(rpm=..., tpm=...), got {limits!r:.80}"
        )
    strangers = sorted(set(limits) - set(known))
    if strangers:
        raise ConfigurationError(unknown(strangers))
    for name, value in limits.items():
        if not isinstance(value, RateLimits):
            raise ConfigurationError(
                f"limits[{name!r}] must be a RateLimits(rpm=..., tpm=...), got {value!r}"
            )
    return dict(limits)


def stated_limits(
    names: Iterable[str], limits: Mapping[str, RateLimits], rpm: float | None, tpm: float | None
) -> dict[str, RateLimits]:
    """The limits each of ``names`` was held to (:func:`limits_of`), those with any only.

    What a record states (``run.rate_limits``): a name without any limit is left out.

    Example:
        >>> from llmcompare.ratelimit import RateLimits, stated_limits
        >>> stated_limits(["a", "b"], {"a": RateLimits()}, 60, None)
        {'b': RateLimits(rpm=60, tpm=None)}
    """
    out = {}
    for name in dict.fromkeys(names):
        held = limits_of(name, limits, rpm, tpm)
        if held.rpm is not None or held.tpm is not None:
            out[name] = held
    return out


def limits_of(
    name: str, limits: Mapping[str, RateLimits], rpm: float | None, tpm: float | None
) -> RateLimits:
    """The limits ``name``'s requests go through: its own in ``limits``, else the shared ones.

    Example:
        >>> from llmcompare.ratelimit import RateLimits, limits_of
        >>> limits_of("b", {"a": RateLimits()}, 60, None)
        RateLimits(rpm=60, tpm=None)

    Args:
        name: A model's label, or a judge's name.
        limits: Own limits by name (``RateLimits()``: none at all).
        rpm: The shared requests-per-minute limit, or None.
        tpm: The shared tokens-per-minute limit, or None.
    """
    own = limits.get(name)
    return own if own is not None else RateLimits(rpm=rpm, tpm=tpm)


class _Bucket:
    __slots__ = ("capacity", "last", "level", "rate")

    def __init__(self, per_minute: float, burst_s: float, now: float) -> None:
        # rate * (60 + burst_s) == per_minute: a full bucket plus one minute of refill never
        # admits more than the limit in any 60-second window.
        self.rate = per_minute / (60.0 + burst_s)
        self.capacity = self.rate * burst_s
        self.level = self.capacity
        self.last = now

    def take(self, now: float, amount: float) -> float:
        """Refill to ``now``; return the wait for ``amount`` (0.0: there is room)."""
        if now > self.last:
            level = self.level + (now - self.last) * self.rate
            self.level = level if level < self.capacity else self.capacity
            self.last = now
        # A request larger than the bucket goes when the bucket is full and leaves a debt, so
        # it is never stuck; the debt delays the ones after it.
        need = amount if amount < self.capacity else self.capacity
        short = need - self.level
        # A shortfall within float rounding counts as none: else a waiter could be told to wait
        # a few femtoseconds again and again.
        return 0.0 if short <= 1e-9 * need else short / self.rate


class RateLimiter:
    """A token bucket for requests per minute and tokens per minute, shared by many callers.

    Each request takes one request token and its estimated tokens before it is sent; once its
    real usage is known, :meth:`settle` gives back (or takes) the difference. The buckets
    refill at ``limit / (60 + burst_s)`` per second and hold ``burst_s`` seconds' worth, so in
    any 60-second window at most ``limit`` is admitted, requests arrive smoothly rather than in
    one burst per minute, and a request larger than a bucket still goes (when the bucket is
    full) instead of waiting forever. Thread- and task-safe.

    Example:
        >>> from llmcompare.ratelimit import RateLimiter
        >>> now = [0.0]
        >>> limiter = RateLimiter(rpm=61, clock=lambda: now[0])
        >>> limiter.reserve(), limiter.reserve()  # the second must wait one second
        (0.0, 1.0)

    Args:
        rpm: Requests per minute, or None.
        tpm: Tokens per minute (input plus output), or None.
        burst_s: Seconds' worth of the limit that may go at once.
        clock: Monotonic seconds; inject a fake clock in tests.
    """

    def __init__(
        self,
        *,
        rpm: float | None = None,
        tpm: float | None = None,
        burst_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_limit("rpm", rpm)
        _check_limit("tpm", tpm)
        if not burst_s > 0:
            raise ValueError(f"burst_s must be positive, got {burst_s}")
        self._clock = clock
        self._rpm, self._tpm, self._burst_s = rpm, tpm, burst_s
        now = clock()
        self._requests = None if rpm is None else _Bucket(rpm, burst_s, now)
        self._tokens = None if tpm is None else _Bucket(tpm, burst_s, now)
        self._lock = threading.Lock()

    def _limits(self) -> str:
        """The limits as a long wait names them: ``rpm=0.5 (one request every 2 min 2 s)``."""
        text = ", ".join(f"{n}={v:g}" for n, v in (("rpm", self._rpm), ("tpm", self._tpm)) if v)
        if self._rpm is not None:
            text += f" (one request every {_duration((60.0 + self._burst_s) / self._rpm)})"
        return text

    @property
    def limits_tokens(self) -> bool:
        """Whether a tokens-per-minute limit is set (so token estimates matter)."""
        return self._tokens is not None

    def reserve(self, tokens: int = 0, *, requests: int = 1) -> float:
        """Take capacity for requests now if there is room, without waiting.

        Args:
            tokens: Estimated tokens of the requests.
            requests: Number of requests.

        Returns:
            0.0 when the capacity was taken; else the seconds to wait before trying again
            (nothing was taken).
        """
        requests_bucket, tokens_bucket = self._requests, self._tokens
        with self._lock:
            now = self._clock()
            wait = 0.0 if requests_bucket is None else requests_bucket.take(now, requests)
            if tokens_bucket is not None:
                wait = max(wait, tokens_bucket.take(now, tokens))
            if wait > 0.0:
                return wait
            if requests_bucket is not None:
                requests_bucket.level -= requests
            if tokens_bucket is not None:
                tokens_bucket.level -= tokens
            return 0.0

    def settle(self, reserved: int, actual: int) -> None:
        """Correct the token bucket once a request's real usage is known.

        Args:
            reserved: The tokens reserved for it.
            actual: The tokens it really used.
        """
        if self._tokens is None or reserved == actual:
            return
        with self._lock:
            bucket = self._tokens
            bucket.take(self._clock(), 0)
            bucket.level = min(bucket.capacity, bucket.level + reserved - actual)

    async def acquire(self, tokens: int = 0, *, requests: int = 1) -> None:
        """Wait (asynchronously) until the capacity is available, then take it."""
        # Sleeping the computed wait is the point of a token bucket; no event to wait for.
        while (wait := self.reserve(tokens, requests=requests)) > 0.0:  # noqa: ASYNC110
            await asyncio.sleep(wait)

    def acquire_blocking(self, tokens: int = 0, *, requests: int = 1) -> None:
        """Wait (blocking the thread) until the capacity is available, then take it."""
        while (wait := self.reserve(tokens, requests=requests)) > 0.0:
            time.sleep(wait)


def _estimate_tokens(request: Request) -> int:
    # A typical count (about 4 characters per token, plus OpenAI's chat framing) and the output
    # cap; the limiter corrects it with the real usage afterwards.
    chars = sum(len(m.content) for m in request.messages)
    return math.ceil(chars / 4) + 4 * len(request.messages) + 3 + (request.max_tokens or 0)


class _RateLimited(ModelWrapper[int]):
    """Takes capacity from a :class:`RateLimiter` before each request; see with_rate_limit."""

    label = "rate-limited"

    def __init__(self, inner: Model, limiter: RateLimiter) -> None:
        super().__init__(inner)
        self._limiter = limiter
        self._count = limiter.limits_tokens
        self._told = -math.inf  # when a long wait was last said, on the limiter's clock

    @property
    def limiter(self) -> RateLimiter:
        """The limiter the requests take capacity from."""
        return self._limiter

    def _tokens(self, request: Request) -> int:
        return _estimate_tokens(request) if self._count else 0

    def _tell(self, wait: float) -> None:
        """Say a wait over :data:`LONG_WAIT_S`, at most once a minute (many requests wait)."""
        now = self._limiter._clock()
        if wait > LONG_WAIT_S and now - self._told >= LONG_WAIT_S:
            self._told = now
            log.warning(
                "%s: the next request waits %s for the rate limit %s",
                self.id,
                _duration(wait),
                self._limiter._limits(),
            )

    def _before(self, request: Request) -> int:
        tokens = self._tokens(request)
        if (wait := self._limiter.reserve(tokens)) > 0.0:
            self._tell(wait)
            self._limiter.acquire_blocking(tokens)
        return tokens

    async def _abefore(self, request: Request) -> int:
        tokens = self._tokens(request)
        # Under the limits the capacity is taken at once; only a request that must wait pays
        # for the waiting coroutine.
        if (wait := self._limiter.reserve(tokens)) > 0.0:
            self._tell(wait)
            await self._limiter.acquire(tokens)
        return tokens

    def _after(self, request: Request, completion: Completion, ticket: int) -> Completion:
        if ticket:
            self._limiter.settle(ticket, completion.usage.total_tokens)
        return completion

    def _failed(self, request: Request, error: BaseException, ticket: int) -> None:
        # A failed attempt (or a cancelled one) used no tokens we know of: its whole estimate
        # goes back to the token bucket, else every failure and retry would eat TPM capacity for
        # good. The request itself stays counted: it was sent.
        if ticket:
            self._limiter.settle(ticket, 0)


def with_rate_limit(
    model: Model,
    *,
    rpm: float | None = None,
    tpm: float | None = None,
    limiter: RateLimiter | None = None,
) -> Model:
    """Wrap a model so its requests stay under requests-per-minute and tokens-per-minute limits.

    Every call path is limited: ``generate``, ``agenerate``, ``stream``, ``astream`` and
    ``generate_batch`` (each request of a batch takes its own capacity). Sync calls block while
    they wait; async calls await. The wait counts in each completion's ``latency_s``.

    Args:
        model: Any model.
        rpm: Requests per minute.
        tpm: Tokens per minute (input plus output; estimated before sending, corrected after).
        limiter: A limiter to share with other models, instead of ``rpm`` / ``tpm``.

    Returns:
        The rate-limited model, with the same id and info.

    Raises:
        ValueError: When neither or both of (``rpm``/``tpm``) and ``limiter`` are given, or a
            limit is not positive.
    """
    if limiter is None:
        if rpm is None and tpm is None:
            raise ValueError("with_rate_limit needs rpm=, tpm= or limiter=")
        limiter = RateLimiter(rpm=rpm, tpm=tpm)
    elif rpm is not None or tpm is not None:
        raise ValueError("give either limiter= or rpm=/tpm=, not both")
    return _RateLimited(model, limiter)
