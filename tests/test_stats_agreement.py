"""The statistics judges need, against truths computed here: binomial sums with math.comb,
kappas counted by hand with exact fractions, closed forms of the Bradley-Terry fit."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

pytest.importorskip("scipy")

import numpy as np

from llmcompare.stats import (
    bootstrap_interval,
    bradley_terry_fit,
    cohen_kappa,
    fleiss_kappa,
    resample_counts,
    sign_test,
)


def two_sided_sign_p(wins: int, losses: int) -> float:
    """Twice the smaller tail of Binomial(wins + losses, 1/2), capped at 1."""
    n = wins + losses
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1))
    return min(1.0, 2 * tail / 2**n)


@pytest.mark.parametrize(("wins", "losses"), [(9, 1), (31, 52), (5, 5), (0, 7), (12, 0), (1, 0)])
def test_the_sign_test_is_the_exact_binomial_tail(wins: int, losses: int) -> None:
    assert sign_test(wins, losses) == pytest.approx(two_sided_sign_p(wins, losses), rel=1e-12)


def test_the_sign_test_of_nothing_decided_is_one_and_bad_counts_are_refused() -> None:
    assert sign_test(0, 0) == 1.0
    with pytest.raises(ValueError, match="wins"):
        sign_test(-1, 3)
    with pytest.raises(ValueError, match="losses"):
        sign_test(2, 1.5)  # type: ignore[arg-type]


HUMAN = ["a", "a", "b", "tie", "b", "a", "b", "tie", "a", "b"]
JUDGE = ["a", "b", "b", "tie", "b", "a", "a", "a", "a", "b"]


def test_cohen_kappa_equals_the_hand_count() -> None:
    # Agreeing rows: 1, 3, 4, 5, 6, 9, 10 -> 7 of 10.
    # Human shares a 4, b 4, tie 2; judge shares a 5, b 4, tie 1.
    observed = Fraction(7, 10)
    expected = Fraction(4 * 5 + 4 * 4 + 2 * 1, 100)
    kappa = (observed - expected) / (1 - expected)
    found = cohen_kappa(HUMAN, JUDGE, categories=["a", "b", "tie"], seed=3)
    assert found.n == 10
    assert found.observed == pytest.approx(float(observed))
    assert found.expected == pytest.approx(float(expected))
    assert found.kappa == pytest.approx(float(kappa))
    assert found.low is not None
    assert found.high is not None
    assert found.low <= found.kappa <= found.high
    # Seeded: the same call, the same interval; a category nobody used changes nothing.
    assert cohen_kappa(HUMAN, JUDGE, categories=["a", "b", "tie"], seed=3) == found
    assert cohen_kappa(HUMAN, JUDGE, categories=["a", "b", "tie", "x"], seed=3).kappa == (
        pytest.approx(found.kappa)
    )


def test_cohen_kappa_is_undefined_when_both_raters_use_one_label() -> None:
    found = cohen_kappa(["a"] * 5, ["a"] * 5)
    assert found.kappa is None
    assert found.observed == 1.0
    assert found.expected == 1.0
    assert (found.low, found.high) == (None, None)


def test_cohen_kappa_refuses_what_it_cannot_count() -> None:
    with pytest.raises(ValueError, match="same rows"):
        cohen_kappa(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="no rows"):
        cohen_kappa([], [])
    with pytest.raises(ValueError, match="'c' is not among"):
        cohen_kappa(["a", "c"], ["a", "b"], categories=["a", "b"])


def test_fleiss_kappa_equals_the_hand_count() -> None:
    rows = [["a", "a", "b"], ["b", "b", "b"], ["a", "tie", "b"], ["tie", "tie", "tie"]]
    # Agreeing pairs per row (of 3): 1, 3, 0, 3.
    p_bar = Fraction(1 + 3 + 0 + 3, 3 * 4)
    shares = {"a": Fraction(3, 12), "b": Fraction(5, 12), "tie": Fraction(4, 12)}
    p_e = sum(s * s for s in shares.values())
    assert fleiss_kappa(rows) == pytest.approx(float((p_bar - p_e) / (1 - p_e)))
    assert fleiss_kappa([["a", "a"], ["a", "a"]]) is None
    with pytest.raises(ValueError, match="same number of raters"):
        fleiss_kappa([["a", "b"], ["a"]])


def test_the_bootstrap_helper_is_seeded_and_counts_rows() -> None:
    counts = resample_counts(7, resamples=50, seed=1)
    assert counts.shape == (50, 7)
    assert (counts.sum(axis=1) == 7).all()
    x = np.array([0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])

    def mean(c: np.ndarray) -> np.ndarray:
        return c @ x / 7

    [(low, high)] = bootstrap_interval(mean, 7, seed=2)
    assert low is not None
    assert high is not None
    assert low < 5 / 7 < high
    assert bootstrap_interval(mean, 7, seed=2) == [(low, high)]
    with pytest.raises(ValueError, match="one value"):
        bootstrap_interval(lambda c: c[:3], 7, resamples=10)


def test_bradley_terry_of_two_models_is_the_log_odds_of_their_wins() -> None:
    # 7 wins, 2 losses and 2 ties: 8 to 3 once ties count half each.
    theta = bradley_terry_fit([[0, 7 + 1], [2 + 1, 0]])
    assert theta.sum() == pytest.approx(0.0, abs=1e-9)
    assert theta[0] - theta[1] == pytest.approx(math.log(8 / 3), abs=1e-6)


def test_bradley_terry_fits_a_stack_as_each_matrix_alone_and_stays_finite() -> None:
    a = np.array([[0, 3, 2], [1, 0, 4], [2, 1, 0]], dtype=float)
    b = np.array([[0, 1, 1], [5, 0, 2], [3, 3, 0]], dtype=float)
    stacked = bradley_terry_fit(np.stack([a, b]))
    assert stacked == pytest.approx(
        np.stack([bradley_terry_fit(a), bradley_terry_fit(b)]), abs=1e-6
    )
    # Model 0 never lost: no maximum-likelihood estimate; the fit is finite and ranks it first.
    unbeaten = bradley_terry_fit([[0, 4, 3], [0, 0, 2], [0, 1, 0]])
    assert np.isfinite(unbeaten).all()
    assert unbeaten.argmax() == 0
    with pytest.raises(ValueError, match="square"):
        bradley_terry_fit([[0, 1, 2]])
