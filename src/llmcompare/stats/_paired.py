"""One model's mean score with its interval, and two models compared item by item.

The functions :func:`mean_interval`, :func:`paired_difference`, :func:`item_means` and
:func:`pass_at_k` of :mod:`llmcompare.stats`; see the package's docstring for the methods.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from llmcompare.stats._common import check_options as _check_options
from llmcompare.stats._common import scipy_stats as _scipy_stats

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "Difference",
    "Interval",
    "item_means",
    "mean_interval",
    "paired_difference",
    "pass_at_k",
    "sign_test",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")

_MINUS = "\N{MINUS SIGN}"

# Below this many items a verdict refuses to pick a winner, whatever the p-value says: with so
# few items one odd prompt decides the result.
_MIN_ITEMS_FOR_VERDICT = 10

# The sign-flip test enumerates all 2**n sign patterns (an exact p-value) up to this n: 65,536
# patterns cost less than a default Monte Carlo run, so small comparisons never get a noisy p.
_EXACT_PERMUTATION_MAX_N = 16

# Resamples are drawn in batches of about this many values, so memory stays near 64 MiB
# (indices and values, 8 bytes each) however many items there are.
_VALUES_PER_BATCH = 1 << 22


class Interval(BaseModel):
    """A mean score with a two-sided confidence interval.

    Attributes:
        mean: The mean of the scores.
        low: The lower bound of the interval.
        high: The upper bound of the interval.
        n: How many scores (items) the mean is over.
        method: ``"wilson"`` (every score 0 or 1: Wilson score interval), ``"bootstrap"`` (a
            seeded BCa bootstrap over items; constant scores give ``[c, c]``) or ``"too-few"``
            (a single non-binary score: no spread to estimate, so the interval is the whole
            range ``[0, 1]`` the scores can take).
        confidence: The confidence level, for example ``0.95``.
    """

    model_config = _FROZEN

    mean: float
    low: float
    high: float
    n: int
    method: Literal["wilson", "bootstrap", "too-few"]
    confidence: float


class Difference(BaseModel):
    """Model A against model B on the same items: ``delta = mean_a - mean_b``.

    Attributes:
        n: How many paired items.
        mean_a: A's mean score.
        mean_b: B's mean score.
        delta: ``mean_a - mean_b``.
        ci_low: Lower bound of the paired bootstrap interval for ``delta``.
        ci_high: Upper bound of that interval.
        p_value: Two-sided p-value for "A and B score the same on average".
        wins: Items where A scored higher than B.
        ties: Items where they scored the same.
        losses: Items where A scored lower than B.
        method: The test and the interval, for example ``"mcnemar-exact, paired bootstrap 95%"``
            or ``"permutation, paired bootstrap 95%"``; ``"too-few"`` replaces the bootstrap for
            a single item, whose interval is the whole range ``[-1, 1]``.
        confidence: The confidence level of the interval, for example ``0.95``.
    """

    model_config = _FROZEN

    n: int
    mean_a: float
    mean_b: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    wins: int
    ties: int
    losses: int
    method: str
    confidence: float

    def line(self, name_a: str = "A", name_b: str = "B") -> str:
        """One line for a report table.

        Example: ``A - B = +0.12 [+0.05, +0.19], p = 0.003, 41 wins / 12 losses / 47 ties``,
        where every minus, the one between the names included, is U+2212 MINUS SIGN. Numbers have
        an explicit sign and two decimals; the p-value has three, or reads ``p < 0.001``.

        Args:
            name_a: What to call model A.
            name_b: What to call model B.
        """
        return (
            f"{self._estimate(name_a, name_b)}, "
            f"{self.wins} wins / {self.losses} losses / {self.ties} ties"
        )

    def verdict(self, alpha: float = 0.05, *, name_a: str = "A", name_b: str = "B") -> str:
        """A plain-language sentence saying which model is better, if either.

        * fewer than 10 items: ``too few items to tell (n = 4)``;
        * ``p_value >= alpha``: ``no clear difference: A - B = +0.02 [-0.05, +0.09], p = 0.610
          (n = 100)``, formatted as in :meth:`line` (U+2212 minus signs);
        * ``p_value < alpha``: ``A is better by 0.12 [+0.05, +0.19], p = 0.003 (n = 100)``, the
          interval being that of the winner minus the loser.

        Args:
            alpha: The significance level.
            name_a: What to call model A.
            name_b: What to call model B.

        Raises:
            ValueError: When ``alpha`` is not strictly between 0 and 1.
        """
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
        if self.n < _MIN_ITEMS_FOR_VERDICT:
            return f"too few items to tell (n = {self.n})"
        if self.p_value >= alpha:
            return f"no clear difference: {self._estimate(name_a, name_b)} (n = {self.n})"
        if self.delta >= 0:
            winner, size, low, high = name_a, self.delta, self.ci_low, self.ci_high
        else:
            # The sentence is about B - A, so its interval is A - B's, negated and swapped.
            winner, size, low, high = name_b, -self.delta, -self.ci_high, -self.ci_low
        return (
            f"{winner} is better by {size:.2f} [{_signed(low)}, {_signed(high)}], "
            f"{_p_text(self.p_value)} (n = {self.n})"
        )

    def _estimate(self, name_a: str, name_b: str) -> str:
        return (
            f"{name_a} {_MINUS} {name_b} = {_signed(self.delta)} "
            f"[{_signed(self.ci_low)}, {_signed(self.ci_high)}], {_p_text(self.p_value)}"
        )


def mean_interval(
    scores: Sequence[float],
    *,
    confidence: float = 0.95,
    seed: int = 0,
    resamples: int = 10_000,
) -> Interval:
    """The mean score with a confidence interval.

    Every score exactly 0 or 1: the Wilson score interval, which keeps its coverage for small n
    and for means near 0 or 1, where the normal approximation fails. Otherwise a BCa bootstrap
    over items, seeded, so the same call gives the same interval; constant scores give
    ``[c, c]``. A single non-binary score gives ``[0, 1]`` with method ``"too-few"``: one value
    says nothing about the spread, and the widest honest answer beats an error for a tiny run.

    For repeated samples of an item, pass :func:`item_means` first: the bootstrap over item means
    is the clustered bootstrap.

    Args:
        scores: One score in [0, 1] per item.
        confidence: The confidence level, strictly between 0 and 1.
        seed: Seeds the bootstrap.
        resamples: How many bootstrap resamples.

    Raises:
        ValueError: When there are no scores, a score is outside [0, 1] or not a number, or an
            option is out of range.
    """
    _check_options(confidence, seed, resamples)
    x = _as_scores(scores, "scores")
    n = int(x.size)
    mean = float(x.mean())
    if _is_binary(x):
        stats = _scipy_stats()
        k = int(x.sum())
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
        low, high = float(ci.low), float(ci.high)
        return Interval(mean=mean, low=low, high=high, n=n, method="wilson", confidence=confidence)
    if n < 2:
        return Interval(mean=mean, low=0.0, high=1.0, n=n, method="too-few", confidence=confidence)
    low, high = _bootstrap_mean_ci(x, confidence=confidence, seed=seed, resamples=resamples)
    return Interval(mean=mean, low=low, high=high, n=n, method="bootstrap", confidence=confidence)


def paired_difference(
    a: Sequence[float],
    b: Sequence[float],
    *,
    confidence: float = 0.95,
    seed: int = 0,
    resamples: int = 10_000,
) -> Difference:
    """Compare two models scored on the same items: ``a[i]`` and ``b[i]`` are one item's scores.

    The interval for ``mean(a) - mean(b)`` is a seeded BCa bootstrap over items of the per-item
    differences (resampling items keeps each pair together). The two-sided p-value is the exact
    McNemar test when every score is 0 or 1 (a binomial test on the discordant items; 1.0 when
    there are none), else a paired sign-flip permutation test of the mean difference: exact for
    up to 16 items, Monte Carlo with ``resamples`` sign patterns above that.

    For repeated samples of an item, pass each model's :func:`item_means` (aligned by item) first:
    the items become the clusters, and the tests above apply to them unchanged.

    Args:
        a: Model A's score per item, each in [0, 1].
        b: Model B's score per item, in the same item order.
        confidence: The confidence level of the interval, strictly between 0 and 1.
        seed: Seeds the bootstrap and the Monte Carlo permutation test.
        resamples: How many bootstrap resamples (and random sign patterns).

    Raises:
        ValueError: When ``a`` and ``b`` differ in length or are empty, a score is outside [0, 1]
            or not a number, or an option is out of range.
    """
    _check_options(confidence, seed, resamples)
    x = _as_scores(a, "a")
    y = _as_scores(b, "b")
    if x.size != y.size:
        raise ValueError(
            f"a and b must hold one score per item, in the same order: a has {x.size} scores, "
            f"b has {y.size}"
        )
    n = int(x.size)
    d = x - y
    wins = int((d > 0).sum())
    losses = int((d < 0).sum())
    ties = n - wins - losses
    mean_a, mean_b = float(x.mean()), float(y.mean())

    boot_seed, perm_seed = (int(s.generate_state(1)[0]) for s in _spawn(seed, 2))
    if _is_binary(x) and _is_binary(y):
        test = "mcnemar-exact"
        # A right and B wrong is a win, the reverse a loss: the discordant pairs are exactly these.
        discordant = wins + losses
        p_value = (
            1.0 if discordant == 0 else float(_scipy_stats().binomtest(wins, discordant).pvalue)
        )
    else:
        test = "permutation"
        p_value = _sign_flip_p(d, seed=perm_seed, resamples=resamples)

    if n < 2:
        # One difference says nothing about the spread: the interval is every possible value.
        ci_low, ci_high, interval = -1.0, 1.0, "too-few"
    else:
        ci_low, ci_high = _bootstrap_mean_ci(
            d, confidence=confidence, seed=boot_seed, resamples=resamples
        )
        interval = f"paired bootstrap {confidence * 100:g}%"
    return Difference(
        n=n,
        mean_a=mean_a,
        mean_b=mean_b,
        delta=mean_a - mean_b,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=min(1.0, max(0.0, p_value)),
        wins=wins,
        ties=ties,
        losses=losses,
        method=f"{test}, {interval}",
        confidence=confidence,
    )


def sign_test(wins: int, losses: int) -> float:
    """The exact two-sided sign test of wins against losses, ties set aside.

    Under "neither is better" each decided item is a fair coin: the p-value is the binomial
    probability of a split at least as uneven as ``wins : losses`` (scipy's ``binomtest``),
    1.0 when nothing was decided. Ties carry no information on which is better and are left out
    (report their count beside it).

    Example:
        >>> round(sign_test(9, 1), 4)  # 2 * (C(10,0) + C(10,1)) / 2**10
        0.0215

    Args:
        wins: Items the first model won.
        losses: Items it lost.

    Raises:
        ValueError: For a negative or non-integer count.
    """
    for name, value in (("wins", wins), ("losses", losses)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    decided = wins + losses
    if decided == 0:
        return 1.0
    return min(1.0, float(_scipy_stats().binomtest(wins, decided, 0.5).pvalue))


def item_means(scores_by_item: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """The mean score of each item over its repeated samples, in the mapping's order.

    Samples of one item are not independent (same prompt, same difficulty), so treating k samples
    of n items as n * k items makes every interval too narrow. Averaging per item first and
    resampling those means is the clustered bootstrap: each item is one cluster. With k > 1 the
    means are usually no longer 0 or 1, and :func:`mean_interval` and
    :func:`paired_difference` then switch to the bootstrap and the permutation test by
    themselves.

    Args:
        scores_by_item: Item id to that item's scores, each in [0, 1].

    Raises:
        ValueError: When an item has no scores or a score is outside [0, 1] or not a number.
    """
    means: dict[str, float] = {}
    for item, scores in scores_by_item.items():
        values = [float(v) for v in scores]
        if not values:
            raise ValueError(f"item {item!r} has no scores: each item needs at least one")
        for i, v in enumerate(values):
            _check_score(v, f"scores_by_item[{item!r}][{i}]")
        means[item] = math.fsum(values) / len(values)
    return means


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimate from ``n`` samples of which ``c`` are correct.

    The probability that at least one of ``k`` samples drawn without replacement from the ``n``
    is correct: ``1 - C(n - c, k) / C(n, k)`` (Chen et al., 2021, "Evaluating Large Language
    Models Trained on Code"), computed as a product so that large ``n`` neither overflows nor
    loses precision.

    Args:
        n: Samples generated for the problem.
        c: How many of them are correct.
        k: The k of pass@k.

    Raises:
        ValueError: Unless ``0 <= c <= n`` and ``1 <= k <= n``.
    """
    for name, value in (("n", n), ("c", c), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if not 0 <= c <= n:
        raise ValueError(f"c must satisfy 0 <= c <= n, got c = {c}, n = {n}")
    if not 1 <= k <= n:
        raise ValueError(f"k must satisfy 1 <= k <= n, got k = {k}, n = {n}")
    if n - c < k:
        # Fewer wrong samples than draws: every draw of k holds a correct one.
        return 1.0
    # C(n-c, k) / C(n, k) = prod_{i = n-c+1}^{n} (1 - k / i).
    prob_all_wrong = math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))
    return 1.0 - prob_all_wrong


def _check_score(value: float, where: str) -> None:
    if math.isnan(value):
        raise ValueError(f"{where} is NaN: scores must be numbers in [0, 1]")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{where} = {value!r} is outside [0, 1]: scores must lie in [0, 1]")


def _as_scores(values: Sequence[float], name: str) -> NDArray[np.float64]:
    """The scores as a 1-D float array, refusing what is not a score in [0, 1]."""
    _scipy_stats()  # numpy comes with scipy: fail with the install hint, not a bare ImportError
    import numpy as np

    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a sequence of numbers in [0, 1]: {exc}") from exc
    if x.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence of scores, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} is empty: at least one score is needed")
    bad = np.flatnonzero(~((x >= 0.0) & (x <= 1.0)))  # NaN fails both comparisons
    if bad.size:
        i = int(bad[0])
        _check_score(float(x[i]), f"{name}[{i}]")
    return x


def _is_binary(x: NDArray[np.float64]) -> bool:
    return bool(((x == 0.0) | (x == 1.0)).all())


def _spawn(seed: int, count: int) -> list[np.random.SeedSequence]:
    """Independent seed streams from one seed, so the bootstrap and the test don't share draws."""
    import numpy as np

    return list(np.random.SeedSequence(seed).spawn(count))


def _mean(sample: NDArray[np.float64], axis: int) -> NDArray[np.float64]:
    import numpy as np

    mean: NDArray[np.float64] = np.mean(sample, axis=axis)
    return mean


def _batch(n: int, resamples: int) -> int:
    return max(1, min(resamples, _VALUES_PER_BATCH // n))


def _bootstrap_mean_ci(
    x: NDArray[np.float64], *, confidence: float, seed: int, resamples: int
) -> tuple[float, float]:
    """A seeded BCa bootstrap interval for the mean of ``x`` (at least two values)."""
    import numpy as np

    if bool((x == x[0]).all()):
        # Every resample has the same mean: the interval is that point (BCa would divide 0 by 0).
        return float(x[0]), float(x[0])
    stats = _scipy_stats()
    # BCa rather than percentile: means of bounded scores are skewed near 0 and 1, and BCa
    # corrects that bias and skew (second-order accurate), so its coverage is closer to the
    # nominal level for the small item counts evaluations have. Its jackknife is n extra means,
    # cheap next to the resamples.
    with warnings.catch_warnings():
        # A degenerate bootstrap distribution is handled below; the warning would only be noise.
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap(
            (x,),
            _mean,
            n_resamples=resamples,
            batch=_batch(int(x.size), resamples),
            vectorized=True,
            confidence_level=confidence,
            method="BCa",
            rng=np.random.default_rng(seed),
        )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if math.isnan(low) or math.isnan(high):
        # BCa's bias correction is infinite when every resample lies on one side of the mean;
        # the percentile interval of the same resamples is still defined.
        result = stats.bootstrap(
            (x,),
            _mean,
            n_resamples=0,
            bootstrap_result=result,
            vectorized=True,
            confidence_level=confidence,
            method="percentile",
        )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return low, high


def _sign_flip_p(d: NDArray[np.float64], *, seed: int, resamples: int) -> float:
    """Two-sided p-value of a paired sign-flip permutation test of ``mean(d) == 0``."""
    import numpy as np

    n = int(d.size)
    if n < 2 or bool((d == 0.0).all()):
        # All differences zero: every sign pattern gives mean 0. One item: both sign patterns
        # are as extreme as the one observed. Either way p = 1 exactly.
        return 1.0
    stats = _scipy_stats()
    # scipy enumerates every sign pattern, an exact test, when n_resamples >= 2**n.
    if n <= _EXACT_PERMUTATION_MAX_N:
        n_resamples = max(resamples, 2**n)
        batch = None
    else:
        n_resamples = resamples
        batch = _batch(2 * n, resamples)  # each random pattern holds both signs of every item
    result = stats.permutation_test(
        (d,),
        _mean,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        batch=batch,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return float(result.pvalue)


def _signed(value: float) -> str:
    """``+0.12`` / ``-0.05``: an explicit sign, two decimals, U+2212 for the minus."""
    text = f"{value + 0.0:+.2f}"  # + 0.0 turns -0.0 into 0.0, which prints as +0.00
    return text.replace("-", _MINUS)


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
