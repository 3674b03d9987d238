"""The rate limiter: a token bucket for requests and tokens per minute, and its wrapper."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmcompare.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def admit(limiter: RateLimiter, clock: FakeClock, tokens: int) -> float:
    """Wait on the fake clock until the limiter admits the request; return the admission time."""
    while (wait := limiter.reserve(tokens)) > 0:
        clock.now += wait
    return clock.now


def max_in_window(events: list[tuple[float, int]], window: float = 60.0) -> int:
    """The largest total of events whose times fall in any window of ``window`` seconds."""
    best = 0
    for i, (start, _) in enumerate(events):
        total = sum(n for t, n in events[i:] if t < start + window)
        best = max(best, total)
    return best


@settings(max_examples=40, deadline=None)
@given(rpm=st.integers(min_value=61, max_value=600), n=st.integers(min_value=50, max_value=400))
def test_token_bucket_never_admits_more_than_rpm_in_any_minute(rpm: int, n: int) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=rpm, clock=clock)
    events = [(admit(limiter, clock, 0), 1) for _ in range(n)]
    assert max_in_window(events) <= rpm
    if n > 2 * rpm:  # sustained: close to the limit, not far below it
        assert max_in_window(events[n // 2 :]) >= rpm * 0.95


@settings(max_examples=40, deadline=None)
@given(
    tpm=st.integers(min_value=6_100, max_value=100_000),
    sizes=st.lists(st.integers(min_value=1, max_value=100), min_size=20, max_size=200),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_token_bucket_counts_estimates_and_corrects_with_real_usage(
    tpm: int, sizes: list[int], seed: int
) -> None:
    clock = FakeClock()
    limiter = RateLimiter(tpm=tpm, clock=clock)
    rng = random.Random(seed)
    events = []
    for estimate in sizes:
        at = admit(limiter, clock, estimate)
        actual = max(0, estimate + rng.randint(-estimate, 20))  # real usage differs either way
        limiter.settle(estimate, actual)
        events.append((at, actual))
    # The real usage stays under the limit, give or take the underestimate of one request
    # in flight.
    assert max_in_window(events) <= tpm + 20


def test_a_request_larger_than_the_bucket_still_goes_when_the_bucket_is_full() -> None:
    clock = FakeClock()
    limiter = RateLimiter(tpm=6100, clock=clock)  # 100 tokens per second, 100 at once
    assert limiter.reserve(500) == 0.0  # full bucket: goes, leaving a debt of 400
    assert limiter.reserve(50) == pytest.approx(4.5)  # 400 of debt + 50, at 100 per second
    clock.now += 4.5
    assert limiter.reserve(50) == 0.0


def test_limiter_rejects_bad_limits() -> None:
    with pytest.raises(ValueError, match="rpm"):
        RateLimiter(rpm=0)
    with pytest.raises(ValueError, match="burst_s"):
        RateLimiter(tpm=10, burst_s=0)
