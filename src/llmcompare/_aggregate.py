"""From a comparison's rows to the figures a team decides on.

Scores over the same items, intervals, and paired differences between models.

The rules, stated once (the record says which was used):

- An item's score for a model is the mean of its scorers' values on each sample, averaged over
  the samples (k > 1 repeats of the item). Repeats of one item are one cluster: the intervals
  bootstrap over items, never over samples.
- A model has *answered* an item when every sample of it succeeded and was scored.
- The headline score of each model is over the items EVERY model answered, so models are ranked
  on the same questions; a model's failures cannot lift it. (A model that answered nothing at
  all is left out of that rule: it has no score.) A second figure counts each failed
  sample as 0 over every item that could be scored.
- A pair of models is compared on the items both answered, item by item.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmcompare.comparison import Row
    from llmcompare.stats import Difference, Interval

__all__: list[str] = []


def row_score(row: Row, scorer: str | None = None) -> float | None:
    """One row's score: the named scorer's value, or the mean of its scorers'; None if none."""
    if row.completion is None:
        return None
    if scorer is not None:
        return row.scores.get(scorer)
    values = [v for v in row.scores.values() if v is not None]
    return sum(values) / len(values) if values else None


def item_scores(
    rows: Iterable[Row], model: str, scorer: str | None = None
) -> dict[str, float | None]:
    """Per item: the mean over samples of the model's row scores.

    None when a sample failed or was not scored: the item is then not answered.
    """
    by_item: dict[str, list[float | None]] = {}
    for row in rows:
        if row.model == model:
            by_item.setdefault(row.item_id, []).append(row_score(row, scorer))
    out: dict[str, float | None] = {}
    for item, values in by_item.items():
        present = [v for v in values if v is not None]
        out[item] = sum(present) / len(present) if len(present) == len(values) else None
    return out


def failures_as_zero(rows: Iterable[Row], model: str, scoreable: set[str]) -> float | None:
    """Mean over the scoreable items of the model's score, each failed sample counting as 0."""
    per_item: dict[str, list[float]] = {}
    for row in rows:
        if row.model != model or row.item_id not in scoreable:
            continue
        value = 0.0 if row.completion is None else row_score(row)
        if value is not None:
            per_item.setdefault(row.item_id, []).append(value)
    means = [sum(v) / len(v) for v in per_item.values() if v]
    return sum(means) / len(means) if means else None


def scoreable_items(rows: Iterable[Row]) -> set[str]:
    """Items some answer of some model could be scored on (failed answers aside)."""
    return {r.item_id for r in rows if row_score(r) is not None}


def common_items(per_model: dict[str, dict[str, float | None]]) -> list[str]:
    """The items every model answered, in the order of the first model's items.

    A model that answered nothing at all (it could not load, say) is left out: it has no score
    of its own, and it must not blank everyone else's.
    """
    tables = [t for t in per_model.values() if any(v is not None for v in t.values())]
    if not tables:
        return []
    first = tables[0]
    return [i for i in first if all(t.get(i) is not None for t in tables)]


def interval(values: Sequence[float], *, confidence: float, seed: int) -> Interval | None:
    """The confidence interval of a mean, or None for no values."""
    if not values:
        return None
    from llmcompare.stats import mean_interval

    return mean_interval(values, confidence=confidence, seed=seed)


def difference(
    rows: Sequence[Row],
    model_a: str,
    model_b: str,
    *,
    scorer: str | None,
    confidence: float,
    seed: int,
) -> Difference | None:
    """The paired difference of two models over the items both answered; None for no such item."""
    from llmcompare.stats import paired_difference

    a = item_scores(rows, model_a, scorer)
    b = item_scores(rows, model_b, scorer)
    both = [i for i, v in a.items() if v is not None and b.get(i) is not None]
    if not both:
        return None
    return paired_difference(
        [a[i] for i in both],  # type: ignore[misc]  # None filtered above
        [b[i] for i in both],  # type: ignore[misc]
        confidence=confidence,
        seed=seed,
    )
