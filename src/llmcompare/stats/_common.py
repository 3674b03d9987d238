"""What every part of :mod:`llmcompare.stats` shares: scipy on first use, and option checks."""

from __future__ import annotations

from typing import Any

__all__ = ["check_options", "scipy_stats"]


def scipy_stats() -> Any:
    """``scipy.stats``, imported on first use, with a hint when scipy is missing."""
    try:
        # scipy ships no type information (no py.typed): what it returns is Any to mypy anyway.
        from scipy import stats  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ImportError(
            "llmcompare.stats needs scipy, a dependency of llmcompare: reinstall it, "
            "for example `pip install --force-reinstall llmcompare` (or `pip install scipy`)"
        ) from exc
    return stats


def check_options(confidence: float, seed: int, resamples: int) -> None:
    """Refuse a confidence outside (0, 1), a negative seed or fewer than one resample.

    Raises:
        ValueError: Naming the option and the value.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
