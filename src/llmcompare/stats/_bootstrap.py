"""The bootstrap over rows, vectorised: each resample is a vector of counts, one per row.

A statistic that is a weighted sum over rows (a confusion matrix, a win matrix) is then one
matrix product for every resample at once, instead of a Python loop over resamples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from llmcompare.stats._common import check_options, scipy_stats

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["bootstrap_interval", "resample_counts"]


def resample_counts(n: int, *, resamples: int = 2000, seed: int = 0) -> NDArray[np.int64]:
    """How often each of ``n`` rows is drawn in each bootstrap resample (with replacement).

    Args:
        n: Rows in the data.
        resamples: How many resamples.
        seed: Seeds the draws: the same call gives the same counts.

    Returns:
        An integer array of shape ``(resamples, n)``; each row sums to ``n``.

    Raises:
        ValueError: When ``n`` is below 1 or an option is out of range.
    """
    check_options(0.5, seed, resamples)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive number of rows, got {n!r}")
    scipy_stats()  # numpy comes with scipy: fail with the install hint, not a bare ImportError
    import numpy as np

    rng = np.random.default_rng(seed)
    counts: NDArray[np.int64] = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)
    return counts


def bootstrap_interval(
    statistic: Callable[[NDArray[np.int64]], NDArray[np.float64]],
    n: int,
    *,
    confidence: float = 0.95,
    seed: int = 0,
    resamples: int = 2000,
) -> list[tuple[float | None, float | None]]:
    """Percentile bootstrap intervals of a statistic over ``n`` rows, all resamples at once.

    The statistic is called once, with the counts of :func:`resample_counts` (shape
    ``(resamples, n)``: how often each row is in each resample), and returns one value per
    resample (shape ``(resamples,)``) or several (``(resamples, k)``). A resample whose value is
    NaN (the statistic is undefined there: a kappa whose chance agreement is 1, say) is left out
    of that value's interval.

    Example:
        >>> import numpy as np
        >>> x = np.array([0.0, 1.0, 1.0, 1.0])
        >>> [(low, high)] = bootstrap_interval(lambda c: c @ x / 4, 4, seed=1)
        >>> 0.0 <= low < 0.75 < high <= 1.0
        True

    Args:
        statistic: Counts ``(resamples, n)`` to values ``(resamples,)`` or ``(resamples, k)``.
        n: Rows in the data.
        confidence: The level of the intervals, strictly between 0 and 1.
        seed: Seeds the resamples.
        resamples: How many resamples.

    Returns:
        One ``(low, high)`` per value of the statistic; ``(None, None)`` for a value undefined
        in every resample.

    Raises:
        ValueError: When an option is out of range or the statistic's shape is wrong.
    """
    check_options(confidence, seed, resamples)
    import numpy as np

    counts = resample_counts(n, resamples=resamples, seed=seed)
    values = np.asarray(statistic(counts), dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] != resamples:
        raise ValueError(
            f"the statistic must return one value (or one row) per resample, shape "
            f"({resamples},) or ({resamples}, k); got {values.shape}"
        )
    tail = (1.0 - confidence) / 2.0
    out: list[tuple[float | None, float | None]] = []
    for column in values.T:
        defined = column[~np.isnan(column)]
        if defined.size == 0:
            out.append((None, None))
            continue
        low, high = np.quantile(defined, [tail, 1.0 - tail])
        out.append((float(low), float(high)))
    return out
