"""Judges through the public API: scripted judges whose every verdict is known, so each figure
(counts, win rate, sign test, biases, agreement, kappa, rankings) is checked against a value
computed here by hand, with math.comb, or with a maximum-likelihood fit written here."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize

from llmcompare.backends.fake import FunctionModel, ScriptedModel
from llmcompare.errors import ConfigurationError
from llmcompare.judges import (
    ELO_PER_LOG_ODDS,
    JudgePanel,
    PairwiseJudge,
    PointwiseJudge,
    audit,
    bradley_terry,
    judge_answers,
)
from llmcompare.prompts import PromptItem
from llmcompare.types import Completion, Request, Usage

ANSWER = re.compile(r"\[The Start of Assistant (A|B)'s Answer\]\n(.*?)\n\[The End", re.DOTALL)


def shown(request: Request) -> dict[str, str]:
    """The two answers a pairwise request shows, by position."""
    return dict(ANSWER.findall(request.messages[-1].content))


def verdict(said: str, why: str = "compared") -> str:
    return json.dumps({"reasoning": why, "verdict": said})


def answer(text: str) -> Completion:
    return Completion(text=text, finish_reason="stop", usage=Usage(), model="fake:x")


# -- bradley_terry -------------------------------------------------------------------------------

TRUE = {"m0": -0.6, "m1": 0.0, "m2": 0.6}  # log-odds strengths, mean 0


def simulated(rng: np.random.Generator, items: int) -> list[tuple[str, str, str, int]]:
    """Every pair of models once per item, each outcome drawn from the true strengths."""
    names = list(TRUE)
    out = []
    for k in range(items):
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                p = 1.0 / (1.0 + math.exp(-(TRUE[a] - TRUE[b])))
                out.append((a, b, "a" if rng.random() < p else "b", k))
    return out


def test_bradley_terry_orders_models_by_their_true_strength() -> None:
    found = bradley_terry(simulated(np.random.default_rng(0), 300), resamples=200)
    assert found.models == ("m2", "m1", "m0")
    assert found.scale.startswith("Elo points")
    assert sum(found.scores.values()) / 3 == pytest.approx(1000.0)


def test_bradley_terry_intervals_cover_the_true_strengths() -> None:
    covered = Counter[str]()
    for rep in range(100):
        found = bradley_terry(simulated(np.random.default_rng(rep), 80), resamples=300, seed=rep)
        for model, theta in TRUE.items():
            low, high = found.intervals[model]
            covered[model] += low <= 1000.0 + ELO_PER_LOG_ODDS * theta <= high
    assert min(covered.values()) >= 90, covered


FIXED = [
    ("x", "y", "a"),
    ("x", "y", "a"),
    ("x", "y", "b"),
    ("y", "z", "a"),
    ("y", "z", "tie"),
    ("z", "x", "a"),
    ("x", "z", "a"),
    ("z", "y", "b"),
    ("x", "z", "tie"),
]


def test_bradley_terry_is_the_maximum_likelihood_fit() -> None:
    names = ["x", "y", "z"]

    def nll(free: np.ndarray) -> float:
        theta = dict(zip(names, [0.0, *free], strict=True))
        total = 0.0
        for a, b, outcome in FIXED:
            p = 1.0 / (1.0 + math.exp(-(theta[a] - theta[b])))
            share = {"a": 1.0, "b": 0.0, "tie": 0.5}[outcome]
            total -= share * math.log(p) + (1.0 - share) * math.log(1.0 - p)
        return total

    fit = optimize.minimize(nll, np.zeros(2), method="BFGS", options={"gtol": 1e-10})
    theta = np.array([0.0, *fit.x])
    expected = 1000.0 + ELO_PER_LOG_ODDS * (theta - theta.mean())
    found = bradley_terry(FIXED, resamples=50)
    assert [found.scores[n] for n in names] == pytest.approx(list(expected), abs=1e-3)
    anchored = bradley_terry(FIXED, resamples=50, anchor="y")
    assert anchored.scores["y"] == pytest.approx(1000.0)
    assert anchored.scores["x"] - anchored.scores["z"] == pytest.approx(expected[0] - expected[2])


def test_bradley_terry_refuses_malformed_battles() -> None:
    with pytest.raises(ConfigurationError, match="outcome must be"):
        bradley_terry([("x", "y", "win")])
    with pytest.raises(ConfigurationError, match="two models or more"):
        bradley_terry([])
    with pytest.raises(ConfigurationError, match="anchor"):
        bradley_terry(FIXED, anchor="w")


# -- audit ---------------------------------------------------------------------------------------

QUALITY = {"right": 2, "partly right": 1, "wrong": 0}


class Grader:
    """A judge with known rules: the better answer by QUALITY wins, equal ones tie; two
    "maybe" answers make it pick the first shown (a position bias); the pair ("partly right",
    "wrong") in that order gets the opposite verdict the second time it is asked."""

    def __init__(self) -> None:
        self.seen = Counter[str]()

    def __call__(self, request: Request) -> str:
        a, b = shown(request)["A"], shown(request)["B"]
        self.seen[request.messages[-1].content] += 1
        if a.startswith("maybe") and b.startswith("maybe"):
            return verdict("A", "the first one")
        if (a, b) == ("partly right", "wrong") and self.seen[request.messages[-1].content] > 1:
            return verdict("B", "changed my mind")
        qa, qb = QUALITY[a], QUALITY[b]
        return verdict("A" if qa > qb else "B" if qa < qb else "tie")


def rows(question: str, a: str, b: str, *labels: str) -> list[dict[str, str]]:
    return [{"question": question, "answer_a": a, "answer_b": b, "human": h} for h in labels]


LABELLED = [
    *rows("q1", "right", "wrong", "a", "a", "b"),  # judge: a
    *rows("q2", "wrong", "right", "b", "tie"),  # judge: b
    *rows("q3", "right", "right", "tie", "a"),  # judge: tie
    *rows("q4", "maybe x", "maybe y", "b"),  # judge: A, then A swapped: inconsistent, tie
    *rows("q5", "partly right", "wrong", "a", "a"),  # judge: a (b when asked again)
]
JUDGED = ["a", "a", "a", "b", "b", "tie", "tie", "tie", "a", "a"]


def test_audit_agreement_and_kappa_equal_the_hand_count(tmp_path: Path) -> None:
    file = tmp_path / "labelled.jsonl"
    file.write_text("".join(json.dumps({**r, "model_a": "ignored"}) + "\n" for r in LABELLED))
    judge = PairwiseJudge(FunctionModel(Grader(), name="gpt-4o-mini"))
    found = audit(judge, file, cache=False, progress=False)

    human = [r["human"] for r in LABELLED]
    agree = sum(h == j for h, j in zip(human, JUDGED, strict=True))
    no_ties = [(h, j) for h, j in zip(human, JUDGED, strict=True) if "tie" not in (h, j)]
    shares_h, shares_j = Counter(human), Counter(JUDGED)
    expected = sum(Fraction(shares_h[c] * shares_j[c], 100) for c in ("a", "b", "tie"))
    observed = Fraction(agree, 10)
    assert (found.n, found.pairs, found.failed) == (10, 5, 0)
    assert found.agreement == pytest.approx(float(observed))  # 6 of 10
    assert found.n_without_ties == len(no_ties) == 6
    assert found.agreement_without_ties == pytest.approx(5 / 6)
    assert found.kappa == pytest.approx(float((observed - expected) / (1 - expected)))
    assert found.kappa_ci is not None
    assert found.kappa_ci[0] <= found.kappa <= found.kappa_ci[1]
    assert found.position_consistency == pytest.approx(4 / 5)  # q4 flipped
    assert found.self_consistency == pytest.approx(4 / 5)  # q5 changed its mind
    assert found.confusion["b"]["tie"] == 1
    # 5 pairs x (both orders + once again), but q3's two answers are the same: its two orders
    # are one request, sent once.
    assert found.requests == 14
    assert found.cost.status == "priced"


def test_audit_refuses_a_bad_row_before_asking_anything(tmp_path: Path) -> None:
    model = ScriptedModel(default=verdict("A"))
    bad = [*rows("q", "x", "y", "a"), {"question": "q", "answer_a": "x", "answer_b": "y"}]
    with pytest.raises(ConfigurationError, match="row 1: 'human' must be"):
        audit(PairwiseJudge(model), bad, cache=False)
    assert model.history == []


# -- reading replies, panels ----------------------------------------------------------------------

ITEMS = [PromptItem(id=f"q{i}", prompt=f"question {i}") for i in range(4)]


def two_models(a: list[str], b: list[str]) -> dict[tuple[str, str, int], Completion]:
    return {
        **{(f"q{i}", "x", 0): answer(t) for i, t in enumerate(a)},
        **{(f"q{i}", "y", 0): answer(t) for i, t in enumerate(b)},
    }


def test_a_plain_text_judge_is_parsed_and_a_reply_without_verdict_fails_clearly() -> None:
    replies = iter(["Both fine, A is clearer. [[A]]", "verdict: B", "I refuse to choose.", "tie"])
    judge = PairwiseJudge(
        ScriptedModel(default=lambda _: next(replies), name="gpt-4o-mini"),
        swap=False,
        structured=False,
    )
    judged = judge_answers(
        judge, ITEMS, two_models(["1", "2", "3", "4"], ["5", "6", "7", "8"]), ["x", "y"]
    )
    assert [v.winner for v in judged.verdicts] == ["a", "b", None, "tie"]
    failed = judged.verdicts[2].calls[0]
    assert failed.error is not None
    assert "no verdict in the judge's reply" in failed.error
    assert "I refuse to choose." in failed.error
    assert judged.pairs[0].failed == 1
    assert judged.failed == 1
    assert all(c.reasoning for v in judged.verdicts for c in v.calls)
    assert judge.info().structured is False


def test_a_panel_votes_and_reports_fleiss_kappa() -> None:
    def fixed(*says: str) -> FunctionModel:
        script = iter(says)
        return FunctionModel(lambda _: verdict(next(script)), name="gpt-4o-mini")

    panel = JudgePanel(
        [
            PairwiseJudge(fixed("A", "A", "B", "tie"), swap=False, name="one"),
            PairwiseJudge(fixed("A", "B", "B", "A"), swap=False, name="two"),
            PairwiseJudge(fixed("A", "tie", "B", "B"), swap=False, name="three"),
        ]
    )
    answers = two_models(["1", "2", "3", "4"], ["5", "6", "7", "8"])
    judged = judge_answers(panel, ITEMS, answers, ["x", "y"])
    assert [v.winner for v in judged.verdicts] == ["a", "tie", "b", "tie"]
    assert judged.verdicts[1].votes == {"one": "a", "two": "b", "three": "tie"}
    # Fleiss by hand: agreeing pairs of 3 per row 3, 0, 3, 0; shares a 5/12, b 5/12, tie 2/12.
    p_bar = Fraction(6, 12)
    p_e = Fraction(25 + 25 + 4, 144)
    assert judged.agreement == pytest.approx(float((p_bar - p_e) / (1 - p_e)))
    assert judged.agreement_n == 4
    with pytest.raises(ConfigurationError, match="given twice"):
        JudgePanel([PairwiseJudge(fixed()), PairwiseJudge(fixed())])
    with pytest.raises(ConfigurationError, match="all pairwise or all pointwise"):
        JudgePanel([PairwiseJudge(fixed(), name="p"), PointwiseJudge(fixed(), name="q")])


def test_a_pointwise_judge_grades_each_answer_and_compares_the_grades() -> None:
    grades = {"1": 9, "2": 4, "3": 7, "4": 2, "5": 3, "6": 4, "7": 8, "8": 1}

    def grader(request: Request) -> str:
        graded = request.messages[-1].content.split("Answer to grade:\n")[1].split("\n")[0]
        return json.dumps({"reasoning": "as scripted", "grade": grades[graded]})

    judge = PointwiseJudge(FunctionModel(grader, name="gpt-4o-mini"))
    judged = judge_answers(
        judge, ITEMS, two_models(["1", "2", "3", "4"], ["5", "6", "7", "8"]), ["x", "y"]
    )
    assert judged.mode == "pointwise"
    assert [g.score for g in judged.grades if g.model == "x"] == pytest.approx(
        [8 / 9, 3 / 9, 6 / 9, 1 / 9]
    )
    assert [v.winner for v in judged.verdicts] == ["a", "tie", "b", "a"]
    pair = judged.pairs[0]
    assert (pair.wins, pair.losses, pair.ties, pair.position_bias) == (2, 1, 1, None)
