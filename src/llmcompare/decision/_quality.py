"""The run's figures in the units a reader compares: per correct answer, per 1,000 requests.

What :mod:`llmcompare.decision` shows after the break-even: each model's dollars and energy per
correct answer (:func:`per_correct`), per answer judged at least as good (:func:`per_judged_good`)
and per 1,000 requests (:func:`figures`), each with its cost basis named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmcompare.cost._hosting import energy_basis
from llmcompare.cost._units import per_thousand, plain, usd
from llmcompare.record._aggregate import row_score

if TYPE_CHECKING:
    from llmcompare.record import Comparison, ModelSummary

__all__ = [
    "Figure",
    "PerCorrect",
    "PerJudgedGood",
    "correct_unit",
    "energy_basis_of",
    "figures",
    "per_correct",
    "per_judged_good",
]


@dataclass(frozen=True)
class PerCorrect:
    """What one correct answer of a model cost in the run.

    A correct answer is a score of 1: each answered request adds its score (the mean of its
    scorers), so partial credit counts partly and a failed request counts 0.

    Attributes:
        model: The model's label.
        correct: Correct answers in the run (the sum of the scores).
        usd: Dollars per correct answer, or None when nothing was correct or it is unpriced.
        kwh: Kilowatt-hours per correct answer, or None when energy is unknown (API models).
    """

    model: str
    correct: float
    usd: float | None
    kwh: float | None


def correct_unit(comparison: Comparison) -> str:
    """What a "correct answer" is in this run, as the decision names it.

    A score of 1 (``"correct answers"``); with partial scores, the expected number of correct
    answers (each answer adds its score: ``"expected correct answers"``).
    """
    partial = any(
        score is not None and score not in (0.0, 1.0)
        for row in comparison.rows
        if (score := row_score(row)) is not None
    )
    return "expected correct answers" if partial else "correct answers"


@dataclass(frozen=True)
class Figure:
    """One model's figures of the run in the units a reader compares, with their cost basis.

    Attributes:
        model: The model's label.
        usd_per_1k_requests: Dollars per 1,000 answered requests (None: unpriced).
        usd_per_1k_correct: Dollars per 1,000 correct answers (None: none correct, unpriced).
        wh_per_1k_requests: Watt-hours per 1,000 answered requests (None: unknown, API).
        basis: How the dollars are counted: ``"paid per token"`` (an API model at its prices)
            or ``"paid per second of use"`` (a hosted model's machine time at its rate).
        estimated: Whether the dollars are estimated rather than priced.
        correct: Correct answers in the run (None for a model priced without sending).
        energy_basis: Where a hosted model's watt-hours come from (``"measured by NVML on GPU
            0"``, ``"stated 700 W x busy time"``); None for other models.
    """

    model: str
    usd_per_1k_requests: float | None
    usd_per_1k_correct: float | None
    wh_per_1k_requests: float | None
    basis: str
    estimated: bool = False
    correct: float | None = None
    energy_basis: str | None = None

    def line(self, correct: str = "correct answers") -> str:
        """The figures as one line, each in plain decimals, the basis named once at the end."""
        mark = "~" if self.estimated else ""
        parts = []
        if self.usd_per_1k_requests is not None:
            parts.append(f"{mark}{usd(self.usd_per_1k_requests)} per 1,000 requests")
        if self.usd_per_1k_correct is not None:
            parts.append(f"{mark}{usd(self.usd_per_1k_correct)} per 1,000 {correct}")
        dollars = f" ({self.basis})" if parts else "unpriced"
        energy = (
            ""
            if self.wh_per_1k_requests is None
            else f"; {plain(self.wh_per_1k_requests)} Wh per 1,000 requests"
            + ("" if self.energy_basis is None else f" ({self.energy_basis})")
        )
        return f"{self.model}: {', '.join(parts)}{dollars}{energy}"


def figures(comparison: Comparison) -> list[Figure]:
    """Each model's dollars and energy per 1,000 requests and correct answers, in run order."""
    by_model = {pc.model: pc for pc in per_correct(comparison)}
    out = []
    for s in comparison.summaries:
        pc = by_model[s.model]
        priced = s.cost.status != "unpriced" and s.succeeded > 0
        per_request = float(s.cost.usd) / s.succeeded if priced else None
        # An API's energy is an estimate with a wide range (the table shows it as such): not a
        # figure to weigh beside a measured one in the decision.
        spent = None if s.cost.energy == "estimated-api" else s.cost.kwh
        kwh = None if spent is None or s.succeeded == 0 else float(spent) / s.succeeded
        out.append(
            Figure(
                model=s.model,
                usd_per_1k_requests=None if per_request is None else per_thousand(per_request),
                usd_per_1k_correct=None if pc.usd is None else per_thousand(pc.usd),
                # kWh a request to Wh per 1,000 requests: x 1,000 twice.
                wh_per_1k_requests=None if kwh is None else per_thousand(kwh) * 1000,
                basis="paid per second of use" if s.open_weights else "paid per token",
                estimated=s.cost.status == "estimated",
                correct=pc.correct,
                energy_basis=energy_basis_of(comparison, s),
            )
        )
    for w in comparison.what_if:
        out.append(
            Figure(
                model=w.model,
                usd_per_1k_requests=per_thousand(w.usd_per_request),
                usd_per_1k_correct=None,
                wh_per_1k_requests=None,
                basis="paid per token, estimated, not sent",
                estimated=True,
            )
        )
    return out


def energy_basis_of(comparison: Comparison, s: ModelSummary) -> str | None:
    """Where a hosted model's energy comes from (None for a model that is not hosted)."""
    hardware = comparison.run.hosted.get(s.model)
    if hardware is None:
        return None
    return energy_basis(hardware, hardware.gpu if s.cost.energy == "measured-nvml" else None)


def per_correct(comparison: Comparison) -> list[PerCorrect]:
    """Dollars and kWh per correct answer of each model, in run order."""
    correct = dict.fromkeys(comparison.run.models, 0.0)
    for row in comparison.rows:
        score = row_score(row)
        if score is not None:
            correct[row.model] = correct.get(row.model, 0.0) + score
    out = []
    for s in comparison.summaries:
        n = correct.get(s.model, 0.0)
        usd = None if n <= 0 or s.cost.status == "unpriced" else float(s.cost.usd) / n
        kwh = None if n <= 0 or s.cost.kwh is None else float(s.cost.kwh) / n
        out.append(PerCorrect(model=s.model, correct=n, usd=usd, kwh=kwh))
    return out


@dataclass(frozen=True)
class PerJudgedGood:
    """What one answer judged at least as good as the others' cost, for one model.

    An answer counts when the judge (pairwise, or comparing grades) found no other model's
    answer to the same item better: it won or tied every pair it was in.

    Attributes:
        model: The model's label.
        good: Answers judged at least as good as every other model's.
        judged: Answers with a verdict on every pair they were in.
        win_rate: The model's mean win rate over its pairs (wins plus half the ties).
        usd: Dollars per such answer, or None when there is none or it is unpriced.
    """

    model: str
    good: int
    judged: int
    win_rate: float | None
    usd: float | None


def per_judged_good(comparison: Comparison) -> list[PerJudgedGood]:
    """Dollars per answer judged at least as good as the others', per model (judged runs).

    Empty for a run that was not judged.
    """
    judging = comparison.judging
    if judging is None:
        return []
    lost: set[tuple[str, str, int]] = set()
    seen: dict[tuple[str, str, int], bool] = {}
    for v in judging.verdicts:
        for model, other in ((v.model_a, "b"), (v.model_b, "a")):
            key = (model, v.item_id, v.sample)
            seen[key] = seen.get(key, True) and v.winner is not None
            if v.winner == other:
                lost.add(key)
    out = []
    for s in comparison.summaries:
        judged = [k for k, complete in seen.items() if k[0] == s.model and complete]
        good = sum(1 for k in judged if k not in lost)
        rates = [
            p.win_rate if p.model_a == s.model else 1.0 - p.win_rate
            for p in judging.pairs
            if s.model in (p.model_a, p.model_b) and p.win_rate is not None
        ]
        usd = None if good == 0 or s.cost.status == "unpriced" else float(s.cost.usd) / good
        rate = sum(rates) / len(rates) if rates else None
        out.append(PerJudgedGood(s.model, good, len(judged), rate, usd))
    return out
