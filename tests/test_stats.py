"""llmcompare.stats against truths computed here independently: exact binomial sums, the Wilson
formula, brute-force enumeration and simulation with a known answer."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from fractions import Fraction
from statistics import NormalDist

import pytest

pytest.importorskip("scipy")

import numpy as np

from llmcompare.stats import (
    Difference,
    Interval,
    item_means,
    mean_interval,
    paired_difference,
    pass_at_k,
)

MINUS = "\N{MINUS SIGN}"


def two_model_run() -> tuple[list[int], list[int]]:
    """200 items: both right on 100, only A on 40, only B on 10, both wrong on 50."""
    a = [1] * 100 + [1] * 40 + [0] * 10 + [0] * 50
    b = [1] * 100 + [0] * 40 + [1] * 10 + [0] * 50
    # Interleave so no method can lean on the blocks being sorted.
    order = np.random.default_rng(7).permutation(200)
    return [a[i] for i in order], [b[i] for i in order]


def binomial_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided binomial p for p = 1/2: twice the smaller tail, capped at 1."""
    tail = sum(Fraction(math.comb(n, i), 2**n) for i in range(min(k, n - k) + 1))
    return float(min(Fraction(1), 2 * tail))


def wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


# -- binary scores: McNemar and Wilson ------------------------------------------------------------


def test_binary_comparison_matches_exact_mcnemar() -> None:
    a, b = two_model_run()
    d = paired_difference(a, b)

    assert d.n == 200
    assert (d.wins, d.ties, d.losses) == (40, 150, 10)
    assert d.mean_a == pytest.approx(0.70)
    assert d.mean_b == pytest.approx(0.55)
    assert d.delta == pytest.approx(0.15)
    assert d.p_value == pytest.approx(binomial_two_sided_p(40, 50), rel=1e-9)
    assert d.p_value < 1e-4  # sanity: 40 of 50 discordant pairs is no coin flip
    assert 0 < d.ci_low < 0.15 < d.ci_high
    assert d.method == "mcnemar-exact, paired bootstrap 95%"
    assert d.confidence == 0.95


def test_binary_comparison_with_a_borderline_split() -> None:
    # 14 discordant pairs split 10 / 4: p is near 0.18, not significant.
    a = [1] * 10 + [0] * 4 + [1] * 30 + [0] * 6
    b = [0] * 10 + [1] * 4 + [1] * 30 + [0] * 6
    d = paired_difference(a, b)
    assert d.p_value == pytest.approx(binomial_two_sided_p(10, 14), rel=1e-9)
    assert d.verdict().startswith(f"no clear difference: A {MINUS} B = +0.12 [")


def test_binary_mean_is_a_wilson_interval() -> None:
    a, _ = two_model_run()
    for confidence in (0.95, 0.90, 0.99):
        iv = mean_interval(a, confidence=confidence)
        low, high = wilson(140, 200, confidence)
        assert iv.method == "wilson"
        assert iv.n == 200
        assert iv.mean == pytest.approx(0.7)
        assert iv.low == pytest.approx(low, rel=1e-9)
        assert iv.high == pytest.approx(high, rel=1e-9)
        assert iv.confidence == confidence


def test_wilson_at_the_edges_and_for_one_item() -> None:
    all_wrong = mean_interval([0] * 20)
    assert (all_wrong.low, all_wrong.mean) == (0.0, 0.0)
    assert all_wrong.high == pytest.approx(wilson(0, 20, 0.95)[1])
    all_right = mean_interval([True] * 20)
    assert (all_right.mean, all_right.high) == (1.0, 1.0)
    assert all_right.low == pytest.approx(wilson(20, 20, 0.95)[0])
    one = mean_interval([1])
    assert one.method == "wilson"
    assert one.low == pytest.approx(wilson(1, 1, 0.95)[0])
    assert one.high == 1.0


def test_identical_models_tie_everywhere() -> None:
    a, _ = two_model_run()
    rng = np.random.default_rng(3)
    graded = list(rng.uniform(0, 1, 60))
    for scores, test in ((a, "mcnemar-exact"), (graded, "permutation")):
        d = paired_difference(scores, scores)
        assert d.delta == 0
        assert (d.ci_low, d.ci_high) == (0.0, 0.0)
        assert d.p_value == 1.0
        assert d.ties == d.n == len(scores)
        assert d.wins == d.losses == 0
        assert d.method.startswith(test)
        assert d.verdict().startswith("no clear difference")


# -- non-binary scores: bootstrap and permutation -------------------------------------------------


def test_graded_scores_use_bootstrap_and_permutation() -> None:
    rng = np.random.default_rng(11)
    a = rng.uniform(0.3, 1.0, 50)
    b = rng.uniform(0.0, 0.7, 50)
    assert mean_interval(list(a)).method == "bootstrap"
    d = paired_difference(list(a), list(b))
    assert d.method == "permutation, paired bootstrap 95%"
    # No random sign pattern is as extreme, yet a Monte Carlo p is never 0: each tail counts
    # the observed pattern too, (0 + 1) / (resamples + 1), and two-sided doubles the smaller.
    assert d.p_value == pytest.approx(2 / 10_001)
    assert d.verdict().startswith("A is better by 0.")


def test_mixed_binary_and_graded_uses_permutation() -> None:
    a = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1]
    b = [0.5, *a[1:]]
    assert paired_difference(a, b).method.startswith("permutation")


def test_small_permutation_test_is_exact() -> None:
    rng = np.random.default_rng(5)
    a = rng.uniform(0, 1, 9)
    b = rng.uniform(0, 1, 9)
    diffs = a - b
    observed = abs(diffs.mean())
    # Brute force: every one of the 2**9 sign patterns, equally likely under "no difference".
    extreme = sum(
        abs(np.mean(diffs * signs)) >= observed - 1e-12
        for signs in itertools.product((1.0, -1.0), repeat=diffs.size)
    )
    expected = extreme / 2**diffs.size
    for seed in (0, 1):
        assert paired_difference(list(a), list(b), seed=seed).p_value == pytest.approx(expected)


def test_paired_bootstrap_covers_the_true_difference() -> None:
    # Each item has a difficulty u; A adds Beta(0.5, 2) * 0.2 (mean 0.04, skewed), B adds
    # Uniform(0, 0.1) (mean 0.05): the true mean difference is -0.01.
    rng = np.random.default_rng(2024)
    true_delta = 0.2 * 0.5 / 2.5 - 0.05
    datasets, n, covered = 200, 40, 0
    for i in range(datasets):
        u = rng.uniform(0, 0.8, n)
        a = u + 0.2 * rng.beta(0.5, 2.0, n)
        b = u + rng.uniform(0, 0.1, n)
        d = paired_difference(list(a), list(b), seed=i, resamples=2000)
        covered += d.ci_low <= true_delta <= d.ci_high
    assert 0.88 <= covered / datasets <= 0.99


def test_mean_bootstrap_covers_the_true_mean() -> None:
    rng = np.random.default_rng(99)
    true_mean = 2 / 7  # Beta(2, 5)
    datasets, covered = 200, 0
    for i in range(datasets):
        iv = mean_interval(list(rng.beta(2, 5, 30)), seed=i, resamples=2000)
        covered += iv.low <= true_mean <= iv.high
    assert 0.88 <= covered / datasets <= 0.99


def test_sign_flip_test_holds_its_level_under_the_null() -> None:
    # A and B come from the same distribution: about 5% of p-values fall below 0.05.
    rng = np.random.default_rng(17)
    datasets = 200
    rejections = sum(
        paired_difference(
            list(rng.uniform(0, 1, 30)), list(rng.uniform(0, 1, 30)), seed=i, resamples=1000
        ).p_value
        < 0.05
        for i in range(datasets)
    )
    assert 0.01 <= rejections / datasets <= 0.10


def test_same_seed_same_answer() -> None:
    rng = np.random.default_rng(8)
    a = list(rng.uniform(0, 1, 40))
    b = list(rng.uniform(0, 1, 40))
    first = paired_difference(a, b, seed=4, resamples=500)
    assert paired_difference(a, b, seed=4, resamples=500) == first
    assert mean_interval(a, seed=4, resamples=500) == mean_interval(a, seed=4, resamples=500)
    other = paired_difference(a, b, seed=5, resamples=500)
    assert (other.ci_low, other.ci_high, other.p_value) != (
        first.ci_low,
        first.ci_high,
        first.p_value,
    )
    assert mean_interval(a, seed=5, resamples=500) != mean_interval(a, seed=4, resamples=500)


def test_constant_and_single_graded_scores() -> None:
    constant = mean_interval([0.5] * 7)
    assert (constant.low, constant.mean, constant.high) == (0.5, 0.5, 0.5)
    assert constant.method == "bootstrap"

    shifted = paired_difference([0.75] * 12, [0.25] * 12)
    assert (shifted.ci_low, shifted.ci_high) == (0.5, 0.5)
    assert shifted.p_value == pytest.approx(2 / 2**12)  # exact: only all-+ and all-- as extreme

    one = mean_interval([0.4])
    assert (one.low, one.high, one.method, one.n) == (0.0, 1.0, "too-few", 1)
    single = paired_difference([0.4], [0.1])
    assert (single.ci_low, single.ci_high, single.p_value) == (-1.0, 1.0, 1.0)
    assert single.method == "permutation, too-few"
    assert single.verdict() == "too few items to tell (n = 1)"


# -- clustered samples ----------------------------------------------------------------------------


def test_item_means_make_one_cluster_per_item() -> None:
    by_item: dict[str, list[float]] = {"q2": [1, 0, 1, 1], "q1": [0.0, 0.0], "q3": [1]}
    means = item_means(by_item)
    assert means == {"q2": 0.75, "q1": 0.0, "q3": 1.0}
    assert list(means) == ["q2", "q1", "q3"]  # the caller aligns models by this order


def test_repeated_samples_are_not_extra_items() -> None:
    rng = np.random.default_rng(21)
    # 30 items, 5 samples each; an item's samples agree more often than not.
    p = rng.uniform(0, 1, 30)
    samples = {f"q{i}": list((rng.uniform(0, 1, 5) < p[i]).astype(float)) for i in range(30)}
    clustered = mean_interval(list(item_means(samples).values()))
    assert clustered.method == "bootstrap"  # means of 5 samples are not 0/1
    assert clustered.n == 30
    flat = mean_interval([s for values in samples.values() for s in values])
    assert flat.method == "wilson"
    assert flat.mean == pytest.approx(clustered.mean)
    # Counting 150 samples as 150 items understates the uncertainty.
    assert flat.high - flat.low < clustered.high - clustered.low


def test_item_means_that_are_all_0_or_1_still_use_wilson() -> None:
    means = item_means({"a": [1, 1], "b": [0, 0, 0], "c": [1]})
    assert mean_interval(list(means.values())).method == "wilson"


# -- pass@k ---------------------------------------------------------------------------------------


def test_pass_at_k_matches_enumeration_of_all_subsets() -> None:
    for n in range(1, 9):
        for c in range(n + 1):
            samples = [True] * c + [False] * (n - c)
            for k in range(1, n + 1):
                subsets = list(itertools.combinations(samples, k))
                expected = sum(any(s) for s in subsets) / len(subsets)
                assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12), (n, c, k)


def test_pass_at_k_is_stable_for_large_n() -> None:
    exact = 1 - Fraction(math.comb(1800, 100), math.comb(2000, 100))
    assert pass_at_k(2000, 200, 100) == pytest.approx(float(exact), rel=1e-12)
    assert pass_at_k(10_000, 1, 1) == pytest.approx(1e-4, rel=1e-12)
    assert pass_at_k(10, 0, 10) == 0.0
    assert pass_at_k(10, 1, 10) == 1.0


@pytest.mark.parametrize(
    ("n", "c", "k", "message"),
    [
        (5, 6, 1, "0 <= c <= n"),
        (5, -1, 1, "0 <= c <= n"),
        (5, 2, 0, "1 <= k <= n"),
        (5, 2, 6, "1 <= k <= n"),
        (0, 0, 1, "1 <= k <= n"),
        (5.0, 2, 1, "n must be an integer"),
    ],
)
def test_pass_at_k_refuses_bad_counts(n: int, c: int, k: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pass_at_k(n, c, k)


# -- formatting -----------------------------------------------------------------------------------


def make_difference(**changes: object) -> Difference:
    fields: dict[str, object] = {
        "n": 100,
        "mean_a": 0.62,
        "mean_b": 0.50,
        "delta": 0.12,
        "ci_low": 0.05,
        "ci_high": 0.19,
        "p_value": 0.003,
        "wins": 41,
        "ties": 47,
        "losses": 12,
        "method": "permutation, paired bootstrap 95%",
        "confidence": 0.95,
    }
    fields.update(changes)
    return Difference.model_validate(fields)


def test_line_format() -> None:
    d = make_difference()
    assert d.line("A", "B") == (
        f"A {MINUS} B = +0.12 [+0.05, +0.19], p = 0.003, 41 wins / 12 losses / 47 ties"
    )
    worse = make_difference(delta=-0.02, ci_low=-0.051, ci_high=0.0, p_value=0.0004)
    assert worse.line("llama", "gpt") == (
        f"llama {MINUS} gpt = {MINUS}0.02 [{MINUS}0.05, +0.00], p < 0.001, "
        "41 wins / 12 losses / 47 ties"
    )
    assert "-" not in worse.line("x", "y")  # only U+2212 minus signs


def test_verdicts() -> None:
    assert make_difference(n=4).verdict() == "too few items to tell (n = 4)"
    assert make_difference(delta=0.02, ci_low=-0.05, ci_high=0.09, p_value=0.61).verdict() == (
        f"no clear difference: A {MINUS} B = +0.02 [{MINUS}0.05, +0.09], p = 0.610 (n = 100)"
    )
    assert make_difference().verdict() == "A is better by 0.12 [+0.05, +0.19], p = 0.003 (n = 100)"
    b_better = make_difference(delta=-0.12, ci_low=-0.19, ci_high=-0.05)
    assert b_better.verdict(name_a="llama", name_b="gpt") == (
        "gpt is better by 0.12 [+0.05, +0.19], p = 0.003 (n = 100)"
    )
    assert make_difference(p_value=0.03).verdict(alpha=0.01).startswith("no clear difference")
    with pytest.raises(ValueError, match="alpha"):
        make_difference().verdict(alpha=1.5)


def test_results_are_frozen() -> None:
    iv = mean_interval([1, 0, 1])
    assert isinstance(iv, Interval)
    with pytest.raises(ValueError, match="frozen"):
        iv.mean = 0.0


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: paired_difference([1, 0, 1], [1, 0]), "a has 3 scores, b has 2"),
        (lambda: paired_difference([], []), "a is empty"),
        (lambda: paired_difference([1, 0], [0, 2]), r"b\[1\] = 2.0 is outside \[0, 1\]"),
        (lambda: paired_difference([1, -0.1], [0, 1]), r"a\[1\] = -0.1 is outside \[0, 1\]"),
        (lambda: mean_interval([]), "scores is empty"),
        (lambda: mean_interval([0.5, 1.5]), r"scores\[1\] = 1.5 is outside \[0, 1\]"),
        (lambda: mean_interval([0.5, math.nan]), r"scores\[1\] is NaN"),
        (lambda: mean_interval([0.5, "x"]), "sequence of numbers"),  # type: ignore[list-item]
        (lambda: mean_interval([[0.5]]), "flat sequence"),  # type: ignore[list-item]
        (lambda: mean_interval([0.5], confidence=1.0), "confidence"),
        (lambda: mean_interval([0.5], resamples=0), "resamples"),
        (lambda: paired_difference([0.5], [0.5], seed=-1), "seed"),
        (lambda: item_means({"q1": []}), "item 'q1' has no scores"),
        (lambda: item_means({"q1": [0.5, 3]}), r"scores_by_item\['q1'\]\[1\] = 3.0 is outside"),
    ],
)
def test_bad_input_names_the_problem(call: object, message: str) -> None:
    assert callable(call)
    with pytest.raises(ValueError, match=message):
        call()


def test_importing_stats_loads_no_scipy() -> None:
    code = "import sys, llmcompare.stats\nprint('scipy' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False False"
