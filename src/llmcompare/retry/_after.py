"""Reading how long a server asks a client to wait, from the headers of a 429 or 503.

The one parser of these headers in llmcompare: :mod:`llmcompare.retry` uses it for any backend's
:class:`~llmcompare.ProviderHTTPError`, and the chatgpt backend for the ``retry_after`` it puts on
its errors, so both always agree. Standard library only, so it is cheap to import.

A value that is not a finite, non-negative number of seconds (``"nan"``, ``"inf"``, ``"-4"``,
an HTTP date without a time zone) is ignored as if the header were absent: a server's hint may
shorten a wait, never break the retry loop.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping

__all__ = ["parse_duration", "parse_retry_after"]

# Plain decimal seconds only: float() alone would also take "nan", "inf", "-4" and "1_0".
_SECONDS = re.compile(r"\d+(?:\.\d*)?|\.\d+")
# Go-style durations as OpenAI writes them in x-ratelimit-reset-*: "1s", "6m0s", "20ms", "1h2m3.5s".
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|h|m|s)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # MICRO SIGN, as Go writes it
    "μs": 1e-6,  # GREEK SMALL LETTER MU, which Go also accepts
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def _finite(seconds: float) -> float | None:
    # A digit string of hundreds of characters still overflows to inf.
    return seconds if math.isfinite(seconds) else None


def _seconds(value: str | None, divisor: float = 1.0) -> float | None:
    if value is None:
        return None
    text = value.strip()
    if not _SECONDS.fullmatch(text):
        return None
    return _finite(float(text) / divisor)


def parse_duration(value: str) -> float | None:
    """Parse a reset duration such as ``"1s"``, ``"6m0s"``, ``"20ms"``, or bare seconds (``"2.5"``).

    Args:
        value: The header value.

    Returns:
        Seconds (finite, never negative), or ``None`` when the value is not a duration.
    """
    text = value.strip()
    if not text:
        return None
    seconds = _seconds(text)
    if seconds is not None:
        return seconds
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    return _finite(total) if pos == len(text) else None


def _http_date(value: str, now: float | None) -> float | None:
    import email.utils  # only on this rare path: it costs milliseconds to import

    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # Without a zone the instant is unknown (local time of which machine?); guessing could mean
    # a wait hours off, so such a date counts as no hint.
    if when.tzinfo is None:
        return None
    try:
        delta = when.timestamp() - (time.time() if now is None else now)
    except (OverflowError, OSError, ValueError):
        return None
    return max(0.0, delta)  # a date in the past: retry now


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait before retrying, from any header form a provider uses.

    In order of precedence: ``retry-after-ms``; ``Retry-After`` in seconds; ``Retry-After`` as
    an HTTP date (with a time zone; a past date gives 0); then ``x-ratelimit-reset-requests`` /
    ``x-ratelimit-reset-tokens`` (for the limit that is exhausted according to
    ``x-ratelimit-remaining-*``, else the longer of the two). A header whose value is not a
    finite, non-negative wait is skipped.

    Args:
        headers: Response headers with lower-case names.
        now: The current Unix time (for HTTP dates; defaults to :func:`time.time`).

    Returns:
        Seconds (finite, never negative), or ``None`` when no header says.
    """
    ms = _seconds(headers.get("retry-after-ms"), 1000.0)
    if ms is not None:
        return ms
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        seconds = _seconds(retry_after)
        if seconds is None:
            seconds = _http_date(retry_after, now)
        if seconds is not None:
            return seconds
    resets: dict[str, float] = {}
    for kind in ("requests", "tokens"):
        raw = headers.get(f"x-ratelimit-reset-{kind}")
        parsed = parse_duration(raw) if raw is not None else None
        if parsed is not None:
            resets[kind] = parsed
    if not resets:
        return None
    exhausted = [k for k in resets if headers.get(f"x-ratelimit-remaining-{k}", "").strip() == "0"]
    # Waiting for a limit that is not exhausted would be wasted time; when the headers do not say
    # which one ran out, the longer wait is the one that surely clears the limit.
    return max(resets[k] for k in (exhausted or resets))
