"""How far raters agree beyond chance: Cohen's kappa for two, Fleiss' kappa for a panel.

Raters here are judges and people labelling the same rows (``"a"``, ``"b"`` or ``"tie"``, or any
hashable labels). Kappa is ``(p_o - p_e) / (1 - p_e)``: the observed agreement ``p_o`` beyond
the agreement ``p_e`` expected if each rater labelled at random with their own label shares.
It is undefined when ``p_e`` is 1 (both raters used one and the same label on every row):
reported as ``None``, never as a made-up number.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from llmcompare.stats._bootstrap import bootstrap_interval
from llmcompare.stats._common import check_options, scipy_stats

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["Kappa", "cohen_kappa", "fleiss_kappa"]


class Kappa(BaseModel):
    """Cohen's kappa of two raters over the same rows, with a bootstrap interval over rows.

    Attributes:
        kappa: Agreement beyond chance, ``(observed - expected) / (1 - expected)``; None when
            ``expected`` is 1 (undefined).
        low: The lower bound of the percentile bootstrap interval over rows (None: undefined
            in every resample).
        high: Its upper bound.
        observed: The share of rows where the raters agree.
        expected: The agreement expected by chance from each rater's label shares.
        n: Rows.
        confidence: The level of the interval.
        method: How the interval was computed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kappa: float | None
    low: float | None
    high: float | None
    observed: float
    expected: float
    n: int
    confidence: float
    method: str


def cohen_kappa(
    a: Sequence[Hashable],
    b: Sequence[Hashable],
    *,
    categories: Sequence[Hashable] | None = None,
    confidence: float = 0.95,
    seed: int = 0,
    resamples: int = 2000,
) -> Kappa:
    """Cohen's kappa of two raters' labels of the same rows, with a bootstrap interval.

    Example (two raters, six rows, three labels):
        >>> k = cohen_kappa(["a", "a", "b", "tie", "b", "a"], ["a", "b", "b", "tie", "b", "a"])
        >>> round(k.observed, 3), round(k.expected, 3), round(k.kappa, 3)  # 5/6, 13/36
        (0.833, 0.361, 0.739)

    Args:
        a: The first rater's label of each row.
        b: The second rater's label of each row, in the same order.
        categories: Every label a rater could give (a label no one gave changes nothing);
            by default the labels seen.
        confidence: The level of the interval.
        seed: Seeds the bootstrap.
        resamples: How many bootstrap resamples of the rows.

    Raises:
        ValueError: When the sequences differ in length or are empty, a label is not among
            ``categories``, or an option is out of range.
    """
    check_options(confidence, seed, resamples)
    if len(a) != len(b):
        raise ValueError(f"a and b must label the same rows: a has {len(a)}, b has {len(b)}")
    if not a:
        raise ValueError("no rows: kappa needs at least one labelled row")
    index = _index(categories if categories is not None else [*a, *b])
    scipy_stats()  # numpy comes with scipy: fail with the install hint
    import numpy as np

    c = len(index)
    codes = np.array([_code(index, x) * c + _code(index, y) for x, y in zip(a, b, strict=True)])
    # One row per labelled row: which cell of the c x c confusion matrix it adds to.
    cells = np.zeros((codes.size, c * c))
    cells[np.arange(codes.size), codes] = 1.0
    observed, expected = _agreement(np.ones((1, codes.size)) @ cells, c)
    kappa = _kappa(observed, expected)
    [(low, high)] = bootstrap_interval(
        lambda counts: _kappa(*_agreement(counts @ cells, c)),
        int(codes.size),
        confidence=confidence,
        seed=seed,
        resamples=resamples,
    )
    return Kappa(
        kappa=None if np.isnan(kappa[0]) else float(kappa[0]),
        low=low,
        high=high,
        observed=float(observed[0]),
        expected=float(expected[0]),
        n=int(codes.size),
        confidence=confidence,
        method=f"percentile bootstrap over rows {confidence * 100:g}%",
    )


def fleiss_kappa(
    ratings: Sequence[Sequence[Hashable]], *, categories: Sequence[Hashable] | None = None
) -> float | None:
    """Fleiss' kappa of a panel: every row labelled by the same number of raters (2 or more).

    ``P_i`` is the share of agreeing rater pairs on row ``i``, ``P`` their mean, ``P_e`` the sum
    of each label's squared overall share; kappa is ``(P - P_e) / (1 - P_e)`` (Fleiss, 1971).

    Example (three raters, four rows):
        >>> rows = [["a", "a", "a"], ["a", "b", "a"], ["b", "b", "b"], ["tie"] * 3]
        >>> round(fleiss_kappa(rows), 4)  # P = 5/6, P_e = 50/144
        0.7447

    Args:
        ratings: One sequence of labels per row, as many labels on every row.
        categories: Every label a rater could give; by default the labels seen.

    Returns:
        The kappa; None when the chance agreement is 1 (one label on every row, undefined).

    Raises:
        ValueError: With no rows, fewer than two raters, or rows of different lengths.
    """
    if not ratings:
        raise ValueError("no rows: Fleiss' kappa needs at least one rated row")
    raters = len(ratings[0])
    if raters < 2 or any(len(r) != raters for r in ratings):
        raise ValueError(
            "every row needs the same number of raters, at least 2; got "
            f"{sorted({len(r) for r in ratings})}"
        )
    index = _index(categories if categories is not None else [x for r in ratings for x in r])
    scipy_stats()
    import numpy as np

    table = np.zeros((len(ratings), len(index)))
    for i, row in enumerate(ratings):
        for label in row:
            table[i, _code(index, label)] += 1
    per_row = ((table * table).sum(axis=1) - raters) / (raters * (raters - 1))
    shares = table.sum(axis=0) / (len(ratings) * raters)
    expected = float((shares * shares).sum())
    if expected >= 1.0:
        return None
    return (float(per_row.mean()) - expected) / (1.0 - expected)


def _index(labels: Sequence[Hashable]) -> dict[Hashable, int]:
    """Each distinct label's column, in the order first seen."""
    return {label: i for i, label in enumerate(dict.fromkeys(labels))}


def _code(index: dict[Hashable, int], label: Hashable) -> int:
    try:
        return index[label]
    except KeyError:
        raise ValueError(f"label {label!r} is not among the categories {list(index)}") from None


def _agreement(
    confusion: NDArray[np.float64], c: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Observed and chance agreement of each confusion matrix (rows of ``c * c`` counts)."""
    import numpy as np

    m = confusion.reshape(-1, c, c)
    n = m.sum(axis=(1, 2))
    observed = np.trace(m, axis1=1, axis2=2) / n
    expected = (m.sum(axis=2) * m.sum(axis=1)).sum(axis=1) / (n * n)
    return observed, expected


def _kappa(observed: NDArray[np.float64], expected: NDArray[np.float64]) -> NDArray[np.float64]:
    """Kappa per resample; NaN where the chance agreement is 1 (undefined)."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        kappa: NDArray[np.float64] = np.where(
            expected < 1.0, (observed - expected) / (1.0 - expected), np.nan
        )
    return kappa
