"""Ranking three or more models from pairwise battles: Bradley-Terry with bootstrap intervals.

The fit is :func:`llmcompare.stats.bradley_terry_fit` (maximum likelihood with
``scipy.optimize``), the same model FastChat's arena analysis and arena-hard-auto fit by
logistic regression. choix and evalica fit it too, but each would be a dependency for one
function that scipy, already a dependency, does in a few lines; and neither bootstraps over
*items* (all the battles on one prompt resampled together, as prompts are the unit sampled),
which is the interval this ranking needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from llmcompare.errors import ConfigurationError
from llmcompare.judges._types import Outcome, PairVerdict
from llmcompare.stats import bootstrap_interval, bradley_terry_exists, bradley_terry_fit

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["ELO_BASE", "ELO_PER_LOG_ODDS", "BradleyTerry", "Ranking", "bradley_terry", "ranking"]

ELO_PER_LOG_ODDS = 400.0 / math.log(10.0)
"""Elo points per unit of log-odds: a 400-point gap is 10:1 odds, as in chess and the arenas."""

ELO_BASE = 1000.0
"""Where the scale is anchored: the mean of the models' scores, or the anchor model's score."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class BradleyTerry(BaseModel):
    """Bradley-Terry scores of models on an Elo-like scale, with bootstrap intervals.

    ``P(i beats j) = 1 / (1 + 10 ** ((score_j - score_i) / 400))``.

    Attributes:
        models: The models, best first.
        scores: Each model's score in Elo points.
        intervals: Each score's percentile bootstrap interval, resampling items (each item's
            battles together).
        log_odds: Each model's strength in log-odds (the fit's own scale, mean 0).
        scale: The scale and its anchor, in words.
        anchor: The model held at 1000, or None (the models' mean is 1000).
        bounded: Whether the data bound every score (the maximum-likelihood estimate exists);
            False when a model won, or lost, every battle it had (or two groups of models
            never met): the scores are then held finite by a small ridge and only their order
            means something.
        battles: Battles fitted (ties counted half to each side).
        units: Items the bootstrap resampled (each battle its own without items).
        confidence: The level of the intervals.
        resamples: Bootstrap resamples.
    """

    model_config = _FROZEN

    models: tuple[str, ...]
    scores: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    log_odds: dict[str, float]
    scale: str
    anchor: str | None = None
    bounded: bool = True
    battles: int
    units: int
    confidence: float
    resamples: int

    def lines(self) -> list[str]:
        """One line per model, best first: ``gpt  1062 [1031, 1095]``."""
        width = max(len(m) for m in self.models)
        note = (
            []
            if self.bounded
            else ["(not bounded by the data: a model won or lost every battle; the order holds)"]
        )
        return note + [
            f"{m:<{width}}  {self.scores[m]:.0f} [{self.intervals[m][0]:.0f}, "
            f"{self.intervals[m][1]:.0f}]"
            for m in self.models
        ]


class Ranking(BaseModel):
    """A judged run's ranking: Bradley-Terry scores and the win-rate matrix.

    Attributes:
        bradley_terry: The scores with their intervals.
        win_rate: ``win_rate[a][b]``: a's win rate against b (wins plus half the ties, over
            judged items); None where the two were never judged against each other.
    """

    model_config = _FROZEN

    bradley_terry: BradleyTerry
    win_rate: dict[str, dict[str, float | None]]


def bradley_terry(
    battles: Iterable[Sequence[Any]],
    *,
    anchor: str | None = None,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> BradleyTerry:
    """Bradley-Terry scores from battles, with bootstrap intervals over items.

    Each battle is ``(model_a, model_b, outcome)`` with outcome ``"a"``, ``"b"`` or ``"tie"``
    (a tie counts half a win to each), or ``(model_a, model_b, outcome, item)``: the battles of
    one item are then resampled together, since items are what a run samples; without items
    each battle is resampled alone. Scores are Elo points: 400 / ln(10) per unit of log-odds,
    the models' mean at 1000 (or ``anchor`` at 1000).

    Example:
        >>> found = bradley_terry([("x", "y", "a")] * 3 + [("x", "y", "b")], resamples=200)
        >>> found.models, round(found.scores["x"] - found.scores["y"])  # 400 * log10(3)
        (('x', 'y'), 191)

    Args:
        battles: The battles.
        anchor: A model held at 1000 (default: the mean of all at 1000).
        confidence: The level of the intervals.
        resamples: Bootstrap resamples.
        seed: Seeds the bootstrap.

    Raises:
        ConfigurationError: For a malformed battle, an unknown outcome, fewer than two models,
            or an anchor that is not among them.
    """
    rows = [_battle(b, i) for i, b in enumerate(battles)]
    models = sorted({m for a, b, _, _ in rows for m in (a, b)})
    if len(models) < 2:
        raise ConfigurationError("a ranking needs battles between two models or more")
    if anchor is not None and anchor not in models:
        raise ConfigurationError(f"anchor {anchor!r} is not among the models {models}")
    import numpy as np

    index = {m: i for i, m in enumerate(models)}
    units = {u: k for k, u in enumerate(dict.fromkeys(u for _, _, _, u in rows))}
    m = len(models)
    # One win matrix per unit (item), flattened: resampling units is a matrix product.
    per_unit = np.zeros((len(units), m * m))
    for a, b, outcome, unit in rows:
        i, j, k = index[a], index[b], units[unit]
        share = {"a": 1.0, "b": 0.0, "tie": 0.5}[outcome]
        per_unit[k, i * m + j] += share
        per_unit[k, j * m + i] += 1.0 - share

    def elo(wins: NDArray[np.float64]) -> NDArray[np.float64]:
        theta = bradley_terry_fit(wins.reshape(-1, m, m))
        if anchor is not None:
            theta = theta - theta[:, [index[anchor]]]
        out: NDArray[np.float64] = ELO_BASE + ELO_PER_LOG_ODDS * theta
        return out

    total = per_unit.sum(axis=0)
    point = elo(total)[0]
    bounds = bootstrap_interval(
        lambda counts: elo(counts @ per_unit),
        len(units),
        confidence=confidence,
        seed=seed,
        resamples=resamples,
    )
    order = sorted(models, key=lambda x: -point[index[x]])
    where = f"{anchor} at {ELO_BASE:.0f}" if anchor else f"the models' mean at {ELO_BASE:.0f}"
    return BradleyTerry(
        models=tuple(order),
        scores={x: float(point[index[x]]) for x in order},
        intervals={x: _bounds(bounds[index[x]]) for x in order},
        log_odds={x: float(point[index[x]] - ELO_BASE) / ELO_PER_LOG_ODDS for x in order},
        scale=f"Elo points: 400/ln(10) per unit of log-odds, {where}",
        anchor=anchor,
        bounded=bradley_terry_exists(total.reshape(m, m)),
        battles=len(rows),
        units=len(units),
        confidence=confidence,
        resamples=resamples,
    )


def ranking(
    verdicts: Sequence[PairVerdict],
    models: Sequence[str],
    *,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> Ranking:
    """The ranking of a judged run: its verdicts as battles (each item's resampled together).

    Raises:
        ConfigurationError: When fewer than two models have a verdict.
    """
    battles = [
        (v.model_a, v.model_b, v.winner, f"{v.item_id}\x00{v.sample}")
        for v in verdicts
        if v.winner is not None
    ]
    fitted = bradley_terry(battles, confidence=confidence, resamples=resamples, seed=seed)
    return Ranking(bradley_terry=fitted, win_rate=win_rates(verdicts, models))


def win_rates(
    verdicts: Sequence[PairVerdict], models: Sequence[str]
) -> dict[str, dict[str, float | None]]:
    """``rate[a][b]``: a's wins plus half the ties over the judged items of a against b."""
    points: dict[tuple[str, str], list[float]] = {}
    for v in verdicts:
        if v.winner is None:
            continue
        share = {"a": 1.0, "b": 0.0, "tie": 0.5}[v.winner]
        points.setdefault((v.model_a, v.model_b), []).append(share)
        points.setdefault((v.model_b, v.model_a), []).append(1.0 - share)
    return {
        a: {b: (sum(p) / len(p)) if (p := points.get((a, b))) else None for b in models if b != a}
        for a in models
    }


def _battle(battle: Sequence[Any], i: int) -> tuple[str, str, Outcome, object]:
    if isinstance(battle, str) or len(battle) not in (3, 4):
        raise ConfigurationError(
            f"battle {i} must be (model_a, model_b, outcome) or (model_a, model_b, outcome, "
            f"item), got {battle!r}"
        )
    a, b, outcome = str(battle[0]), str(battle[1]), battle[2]
    if outcome not in ("a", "b", "tie"):
        raise ConfigurationError(
            f"battle {i}: the outcome must be 'a', 'b' or 'tie', got {outcome!r}"
        )
    if a == b:
        raise ConfigurationError(f"battle {i}: a model cannot battle itself ({a!r})")
    unit = battle[3] if len(battle) == 4 else ("battle", i)
    return a, b, outcome, unit


def _bounds(found: tuple[float | None, float | None]) -> tuple[float, float]:
    low, high = found
    assert low is not None
    assert high is not None
    return low, high
