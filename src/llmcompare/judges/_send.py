"""Judge requests sent as requests like any other: the run folder, the cache, then the judge.

:func:`ask` takes one judge model's requests and answers each from, in turn, the run folder's
``judgments.jsonl`` (what this run already asked: this judge, or another member of its panel
with the same request), the response cache (what any run asked), and only then the judge,
through :func:`~llmcompare.batch.generate_many`: concurrency, retry, rate limits (the judge's
own, else the shared ones) and the run's :class:`~llmcompare.cost.CostTracker` (a budget
reserves each request's worst case before it is sent). Each reply is written to the folder and
the cache the moment it arrives. Requests with the same key (the same content) are asked once.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from llmcompare.batch import generate_many
from llmcompare.errors import BackendError, LLMCompareError, redact
from llmcompare.ratelimit import RateLimits, limits_of
from llmcompare.retry import DEFAULT_POLICY, RetryPolicy
from llmcompare.runs import model_identity, request_key, sum_charges
from llmcompare.types import Completion, Request, Result

if TYPE_CHECKING:
    from llmcompare.cost import CostTracker
    from llmcompare.judges._store import JudgmentsFile
    from llmcompare.model import Model
    from llmcompare.runs import ResponseCache

__all__ = ["Reply", "Sending", "ask", "describe"]


@dataclass(frozen=True)
class Sending:
    """How judge requests are sent; a comparison passes its own run's settings.

    Attributes:
        tracker: Cost and budget across the run (the judge's requests count against it).
        cache: The response cache, or None.
        store: The run folder's ``judgments.jsonl``, or None.
        concurrency: Requests in flight per judge model.
        retry: The retry policy; None retries nothing.
        rpm: Requests per minute, at most, per judge model without limits of its own.
        tpm: Tokens per minute, at most, per judge model without limits of its own.
        limits: Judges' own limits by judge name, replacing ``rpm`` and ``tpm`` for them.
        progress: Show a progress bar; None: when stderr is a terminal.
        refresh: Ask the judge even when the cache has its reply.
    """

    tracker: CostTracker | None = None
    cache: ResponseCache | None = None
    store: JudgmentsFile | None = None
    concurrency: int = 8
    retry: RetryPolicy | None = DEFAULT_POLICY
    rpm: float | None = None
    tpm: float | None = None
    limits: Mapping[str, RateLimits] = field(default_factory=dict)
    progress: bool | None = None
    refresh: bool = False


@dataclass(frozen=True)
class Reply:
    """A judge's reply to one request, or why there is none.

    Attributes:
        completion: The reply.
        error: Why the request failed (type and redacted message), when it did.
        cached: Whether the reply was read back rather than asked now.
        charged_usd: What failed attempts of the request were charged as maybe billed (a
            timeout) that ``completion`` does not hold: a failure's own charge, and those
            of earlier processes on the run folder; None: no dollars were charged (none,
            or an unpriced judge).
        charged_tokens: The tokens those attempts were charged (an unpriced judge's too).
        repeat: The same request as an earlier one of the same call (two identical answers
            shown in both orders, or graded alike): sent once, its cost counted there.
    """

    completion: Completion | None
    error: str | None = None
    cached: bool = False
    charged_usd: Decimal | None = None
    charged_tokens: int = 0
    repeat: bool = False


def describe(error: BaseException) -> str:
    """A failure in one line, its message redacted (no key reaches a record)."""
    return f"{type(error).__name__}: {redact(str(error))}"


def ask(
    model: Model, judge: str, asked: Sequence[tuple[Request, int]], sending: Sending
) -> list[Reply]:
    """Every request's reply, in order; see the module docstring.

    Args:
        model: The judge model.
        judge: The judge's name, written with each reply (and its limits' key in ``sending``).
        asked: Each request with its sample index (a request asked again on purpose, to see
            whether the judge repeats itself, is the same request as another sample).
        sending: How to send.
    """
    identity = _identity(model)
    named = identity if identity is not None else {"id": model.id}
    keys = [request_key(named, request, sample) for request, sample in asked]
    unique: dict[str, Request] = {}
    for key, (request, _) in zip(keys, asked, strict=True):
        unique.setdefault(key, request)
    got: dict[str, Reply] = {}
    store, tracker = sending.store, sending.tracker
    saved = store.read() if store is not None else {}
    # Another panel member's reply to the same request is taken as from a cache: it paid.
    others = {key: found for (who, key), found in saved.items() if who != judge}
    # Failures that may be billed (a timeout) were charged: this judge's, each line once.
    charged = store.charges() if store is not None else {}
    before = {key: charged[(judge, key)] for key in unique if (judge, key) in charged}
    for key in unique:
        own = saved.get((judge, key))
        if own is not None:
            got[key] = Reply(own.completion, cached=own.cached)
            if tracker is not None and not own.cached:
                # Asked and paid for by this run before it stopped: the budget counts it.
                tracker.record(own.completion)
        elif (other := others.get(key)) is not None:
            got[key] = Reply(other.completion, cached=True)
        if tracker is not None:
            for usd, tokens in before.get(key, ()):
                tracker.record_unanswered(model.id, usd, tokens)
    cache = sending.cache if identity is not None else None
    if cache is not None and not sending.refresh:
        for key in unique:
            if key not in got and (hit := cache.get(key)) is not None:
                got[key] = Reply(hit, cached=True)
                if store is not None:
                    store.write(key, judge, completion=hit, cached=True)
    todo = [key for key in unique if key not in got]
    if todo:
        arrived = _Arrivals(model, judge, todo, got, store, cache, sending.refresh)
        limits = limits_of(judge, sending.limits, sending.rpm, sending.tpm)
        generate_many(
            model,
            [unique[key] for key in todo],
            concurrency=sending.concurrency,
            retry=sending.retry,
            rpm=limits.rpm,
            tpm=limits.tpm,
            tracker=sending.tracker,
            progress=sending.progress,
            on_result=arrived,
        )
    replies: list[Reply] = []
    seen: set[str] = set()
    for key in keys:
        reply = _charged(got[key], before.get(key, ()))
        # A key seen before in this call is the same request: sent, and counted, once.
        replies.append(replace(reply, repeat=True) if key in seen else reply)
        seen.add(key)
    return replies


def _charged(reply: Reply, before: Sequence[tuple[Decimal | None, int]]) -> Reply:
    """The reply with what earlier processes were charged for its request added."""
    if not before:
        return reply
    usd, tokens = sum_charges([*before, (reply.charged_usd, reply.charged_tokens)])
    return replace(reply, charged_usd=usd, charged_tokens=tokens)


def _identity(model: Model) -> dict[str, Any] | None:
    """The judge model's cache identity; None (never cached) for a test double or a failure."""
    try:
        return model_identity(model)
    except Exception as exc:  # noqa: BLE001 - no identity: no cache for this judge, not a failure
        warnings.warn(f"{model.id}: judge not cached ({describe(exc)})", RuntimeWarning, 3)
        return None


class _Arrivals:
    """Where each reply goes the moment it arrives: the replies, the folder, the cache."""

    def __init__(
        self,
        model: Model,
        judge: str,
        todo: Sequence[str],
        got: dict[str, Reply],
        store: JudgmentsFile | None,
        cache: ResponseCache | None,
        refresh: bool,
    ) -> None:
        self.model = model
        self.judge = judge
        self.todo = todo
        self.got = got
        self.store = store
        self.cache = cache
        self.refresh = refresh

    def __call__(self, result: Result) -> None:
        key = self.todo[result.index]
        completion = result.completion
        if completion is None:
            failure = result.error
            assert failure is not None
            error = describe(failure)
            # A timeout may be billed: what it was charged is its cost, and is kept for a
            # resumed budget.
            charged = failure.charged_usd if isinstance(failure, BackendError) else None
            tokens = (failure.charged_tokens or 0) if isinstance(failure, BackendError) else 0
            self.got[key] = Reply(None, error=error, charged_usd=charged, charged_tokens=tokens)
            if self.store is not None:
                self.store.write(
                    key, self.judge, error=error, charged_usd=charged, charged_tokens=tokens
                )
            return
        self.got[key] = Reply(completion)
        if self.store is not None:
            self.store.write(key, self.judge, completion=completion)
        if self.cache is not None:
            try:
                self.cache.put(key, completion, model=self.model.id, replace=self.refresh)
            except (LLMCompareError, ValueError, OSError) as exc:
                # A lost cache entry costs a request later; a lost run costs them all.
                warnings.warn(f"{self.model.id}: judge reply not cached ({exc})", RuntimeWarning, 2)
