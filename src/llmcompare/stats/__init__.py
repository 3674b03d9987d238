"""Statistics to choose between models: per-item scores, judges' verdicts, rankings.

Pure functions over numbers: nothing here knows about models, prompts or backends. The method
follows the values it is given, so callers never pick one:

* :func:`mean_interval`: one model's mean score with a confidence interval. Every score 0 or 1:
  the Wilson score interval; any other value: a seeded BCa bootstrap over items.
* :func:`paired_difference`: two models scored on the same items, compared item by item. The
  interval is a seeded paired bootstrap of the per-item differences; the two-sided p-value is an
  exact McNemar test when every score is 0 or 1, else a paired sign-flip permutation test.
* :func:`item_means`: one mean per item over repeated samples, to call first when an item was
  answered more than once, so that its samples count as one cluster and not as many items.
* :func:`pass_at_k`: the unbiased pass@k estimator.
* :func:`sign_test`: the exact two-sided sign test of wins against losses, ties set aside.
* :func:`cohen_kappa` (:class:`Kappa`): two raters' agreement beyond chance, with a bootstrap
  interval over rows; :func:`fleiss_kappa`: a panel's.
* :func:`bradley_terry_fit`: Bradley-Terry strengths by maximum likelihood (scipy.optimize),
  for one win matrix or a stack of bootstrap resamples at once; :func:`bradley_terry_exists`
  says whether the estimate is finite.
* :func:`bootstrap_interval` and :func:`resample_counts`: the vectorised bootstrap over rows
  the two above use.

scipy (a dependency of llmcompare) is imported on first use, so importing this module stays light.

Example:
    >>> from llmcompare.stats import mean_interval, paired_difference
    >>> a = [1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1]
    >>> b = [0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 0, 1]
    >>> d = paired_difference(a, b)
    >>> d.wins, d.ties, d.losses
    (5, 7, 0)
    >>> round(d.p_value, 4)  # exact McNemar: 5 discordant pairs, all won by A
    0.0625
    >>> d.ci_low < d.delta < d.ci_high  # a seeded bootstrap: the same call, the same interval
    True
    >>> d.method
    'mcnemar-exact, paired bootstrap 95%'
    >>> paired_difference(a[:4], b[:4]).verdict()
    'too few items to tell (n = 4)'
    >>> iv = mean_interval(a)
    >>> iv.method, round(iv.mean, 3), round(iv.low, 3), round(iv.high, 3)
    ('wilson', 0.833, 0.552, 0.953)
"""

from llmcompare.stats._agreement import Kappa, cohen_kappa, fleiss_kappa
from llmcompare.stats._bootstrap import bootstrap_interval, resample_counts
from llmcompare.stats._bradley_terry import bradley_terry_exists, bradley_terry_fit
from llmcompare.stats._paired import (
    Difference,
    Interval,
    item_means,
    mean_interval,
    paired_difference,
    pass_at_k,
    sign_test,
)

__all__ = [
    "Difference",
    "Interval",
    "Kappa",
    "bootstrap_interval",
    "bradley_terry_exists",
    "bradley_terry_fit",
    "cohen_kappa",
    "fleiss_kappa",
    "item_means",
    "mean_interval",
    "paired_difference",
    "pass_at_k",
    "resample_counts",
    "sign_test",
]
