"""Reading how long a provider asks us to wait, from the headers of a 429 or 503.

Kept free of the openai SDK so that it is cheap to import and easy to test on its own.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping

__all__ = ["parse_duration", "parse_retry_after"]

# Go-style durations as OpenAI writes them in x-ratelimit-reset-*: "1s", "6m0s", "20ms", "1h2m3.5s".
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|h|m|s)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(value: str) -> float | None:
    """Parse a reset duration such as ``"1s"``, ``"6m0s"``, ``"20ms"``, or bare seconds (``"2.5"``).

    Args:
        value: The header value.

    Returns:
        Seconds, or ``None`` when the value is not a duration.
    """
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    return total if pos == len(text) and pos > 0 else None


def _seconds(value: str | None, divisor: float = 1.0) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip()) / divisor
    except ValueError:
        return None
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait before retrying, from any header form a provider uses.

    In order of precedence: ``retry-after-ms``; ``Retry-After`` in seconds; ``Retry-After`` as
    an HTTP date; then ``x-ratelimit-reset-requests`` / ``x-ratelimit-reset-tokens`` (for the
    limit that is exhausted according to ``x-ratelimit-remaining-*``, else the longer of the two).

    Args:
        headers: Response headers with lower-case names.
        now: The current Unix time (for HTTP dates; defaults to :func:`time.time`).

    Returns:
        Seconds (never negative), or ``None`` when no header says.
    """
    ms = _seconds(headers.get("retry-after-ms"), 1000.0)
    if ms is not None:
        return ms
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        seconds = _seconds(retry_after)
        if seconds is not None:
            return seconds
        import email.utils  # only on this error path: it costs milliseconds to import

        try:
            when = email.utils.parsedate_to_datetime(retry_after.strip())
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None and when.tzinfo is not None:
            return max(0.0, when.timestamp() - (time.time() if now is None else now))
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
