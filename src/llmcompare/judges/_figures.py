"""What the verdicts say about each pair of models: counts, win rate, sign test and biases."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from llmcompare.judges._types import Call, Outcome, PairFigures, PairVerdict
from llmcompare.stats import item_means, mean_interval, sign_test

__all__ = ["call_outcome", "pair_figures", "vote_of"]

_POINTS: dict[Outcome, float] = {"a": 1.0, "tie": 0.5, "b": 0.0}


def call_outcome(call: Call, model_a: str) -> Outcome | None:
    """One pairwise request's verdict in the pair's terms: a, b or tie (None: no verdict)."""
    if call.said is None:
        return None
    if call.said == "tie":
        return "tie"
    shown_first_won = call.said == "A"
    return "a" if shown_first_won == (call.first == model_a) else "b"


def vote_of(calls: Sequence[Call], model_a: str) -> tuple[Outcome | None, bool]:
    """One judge's verdict from its requests on a pair: ``(verdict, flipped with the order)``.

    Asked in both orders, the two verdicts must agree; if they differ the verdict is a tie and
    inconsistent. A request that failed leaves the judge without a verdict on the pair.
    """
    outcomes = [call_outcome(c, model_a) for c in calls]
    if not outcomes or any(o is None for o in outcomes):
        return None, False
    first = outcomes[0]
    if all(o == first for o in outcomes):
        return first, False
    return "tie", True


def pair_figures(
    verdicts: Iterable[PairVerdict],
    model_a: str,
    model_b: str,
    lengths: Mapping[tuple[str, str, int], int],
    *,
    confidence: float,
    seed: int,
) -> PairFigures:
    """The figures of one pair from its verdicts (see :class:`PairFigures`).

    Args:
        verdicts: The run's verdicts; those of other pairs are skipped.
        model_a: The first model.
        model_b: The second.
        lengths: Each answer's length in characters, by (item, model, sample).
        confidence: The level of the win rate's interval.
        seed: Seeds its bootstrap.
    """
    mine = [v for v in verdicts if (v.model_a, v.model_b) == (model_a, model_b)]
    judged = [v for v in mine if v.winner is not None]
    wins = sum(1 for v in judged if v.winner == "a")
    losses = sum(1 for v in judged if v.winner == "b")
    rate, ci, method = None, None, None
    if judged:
        by_item: dict[str, list[float]] = {}
        for v in judged:
            assert v.winner is not None
            by_item.setdefault(v.item_id, []).append(_POINTS[v.winner])
        interval = mean_interval(
            list(item_means(by_item).values()), confidence=confidence, seed=seed
        )
        rate = sum(_POINTS[v.winner] for v in judged if v.winner is not None) / len(judged)
        ci, method = (interval.low, interval.high), f"{interval.method} over items"
    longer_won, longer_decided = _length_bias(judged, lengths)
    return PairFigures(
        model_a=model_a,
        model_b=model_b,
        judged=len(judged),
        wins=wins,
        losses=losses,
        ties=len(judged) - wins - losses,
        inconsistent=sum(1 for v in judged if v.inconsistent),
        failed=len(mine) - len(judged),
        win_rate=rate,
        win_rate_ci=ci,
        ci_method=method,
        p_value=sign_test(wins, losses),
        position_bias=_position_bias(mine, model_a),
        first_position=_first_position(mine),
        longer_won=longer_won,
        longer_decided=longer_decided,
        confidence=confidence,
    )


def _position_bias(verdicts: Sequence[PairVerdict], model_a: str) -> float | None:
    """Share of (pair, judge) verdicts asked in both orders that flipped with the order."""
    asked = flipped = 0
    for v in verdicts:
        by_judge: dict[str, list[Call]] = {}
        for call in v.calls:
            by_judge.setdefault(call.judge, []).append(call)
        for calls in by_judge.values():
            vote, flip = vote_of(calls, model_a)
            if len(calls) > 1 and vote is not None:
                asked += 1
                flipped += flip
    return flipped / asked if asked else None


def _first_position(verdicts: Sequence[PairVerdict]) -> float | None:
    """Share of requests that picked a side which picked the answer shown first."""
    sides = [c.said for v in verdicts for c in v.calls if c.said in ("A", "B")]
    return sides.count("A") / len(sides) if sides else None


def _length_bias(
    judged: Sequence[PairVerdict], lengths: Mapping[tuple[str, str, int], int]
) -> tuple[float | None, int]:
    """Share of decided pairs of unequal lengths won by the longer answer, and their number."""
    decided = won = 0
    for v in judged:
        if v.winner not in ("a", "b"):
            continue
        len_a = lengths.get((v.item_id, v.model_a, v.sample))
        len_b = lengths.get((v.item_id, v.model_b, v.sample))
        if len_a is None or len_b is None or len_a == len_b:
            continue
        decided += 1
        won += (v.winner == "a") == (len_a > len_b)
    return (won / decided if decided else None), decided
