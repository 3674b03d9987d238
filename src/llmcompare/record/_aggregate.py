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

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from llmcompare.cost import Cost
from llmcompare.errors import LLMCompareError, user_stacklevel
from llmcompare.prompts import PromptItem
from llmcompare.record._types import ModelSummary, Pairwise, PassAtK, Row
from llmcompare.scorers import Contains, Scorer, check_item, scorer_from_name, scorer_name
from llmcompare.stats import mean_interval, paired_difference, pass_at_k
from llmcompare.types import Completion, Usage

if TYPE_CHECKING:
    from llmcompare.record._comparison import Comparison
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


def item_scores_of(
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
    a = item_scores_of(rows, model_a, scorer)
    b = item_scores_of(rows, model_b, scorer)
    both = [i for i, v in a.items() if v is not None and b.get(i) is not None]
    if not both:
        return None
    return paired_difference(
        [a[i] for i in both],  # type: ignore[misc]  # None filtered above
        [b[i] for i in both],  # type: ignore[misc]
        confidence=confidence,
        seed=seed,
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in [0, 100]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


class Scoring:
    """Scorer objects per item, built once per name."""

    def __init__(self, extra: Sequence[Scorer], *, allow_code_execution: bool = False) -> None:
        self._extra = list(extra)
        self._by_name: dict[str, Scorer] = {}
        self._allow_code = allow_code_execution

    def for_item(self, item: PromptItem) -> list[Scorer]:
        if item.scorers is None:
            own: list[Scorer] = [] if self._extra or item.reference is None else [Contains()]
        else:
            own = []
            for spec in item.scorers:
                if spec not in self._by_name:
                    self._by_name[spec] = scorer_from_name(
                        spec, allow_code_execution=self._allow_code
                    )
                own.append(self._by_name[spec])
        # A shared scorer of the same name (one configured by the caller) scores instead.
        shared = {scorer_name(s) for s in self._extra}
        return [s for s in own if scorer_name(s) not in shared] + self._extra

    def pass_at_k_names(self, items: Iterable[PromptItem]) -> tuple[str, ...]:
        """The names of the pass/fail code scorers (``pass_at_k = True``) these items use."""
        names: dict[str, None] = {}
        for item in items:
            for scorer in self.for_item(item):
                if getattr(scorer, "pass_at_k", False):
                    names[scorer_name(scorer)] = None
        return tuple(names)

    def score(self, item: PromptItem, completion: Completion) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for scorer in self.for_item(item):
            try:
                value = scorer(completion, item)
            except Exception as exc:  # noqa: BLE001 - a broken scorer must not lose the run
                warnings.warn(
                    f"scorer {scorer_name(scorer)!r} failed on item {item.id!r}: {exc}",
                    RuntimeWarning,
                    stacklevel=user_stacklevel(),
                )
                value = None
            score = None if value is None else float(value)
            if score is not None and not 0.0 <= score <= 1.0:  # NaN fails this too
                # A score outside [0, 1] would make every mean and interval meaningless; the
                # answer is kept, the score is not.
                warnings.warn(
                    f"scorer {scorer_name(scorer)!r} gave {value!r} on item {item.id!r}: scores "
                    "must be in [0, 1], so it is recorded as no score",
                    RuntimeWarning,
                    stacklevel=user_stacklevel(),
                )
                score = None
            out[scorer_name(scorer)] = score
        return out


@dataclass(frozen=True)
class _Timing:
    span_s: float
    at: datetime
    on: str | None


def _earlier_timing(done: Sequence[Completion]) -> _Timing | None:
    """The span over which an earlier run timed these cached answers, when each was stamped.

    From the first request's start (its arrival less its latency) to the last arrival: the
    wall time of the run that sent them, so its throughput is reported again. Answers of
    several runs (hours apart) are taken as sent one after another: the span is at most the
    sum of their latencies.
    """
    stamps = [c.measured_at for c in done]
    if not done or any(t is None for t in stamps):
        return None
    ends = [t.timestamp() for t in stamps if t is not None]
    starts = [end - c.latency_s for end, c in zip(ends, done, strict=True)]
    span = min(max(ends) - min(starts), sum(c.latency_s for c in done))
    if span <= 0:
        return None
    first = min(t for t in stamps if t is not None)
    hosts = sorted({c.measured_on for c in done if c.measured_on})
    return _Timing(span, first, ", ".join(hosts) or None)


def summarise(
    label: str,
    open_weights: bool,
    rows: Sequence[Row],
    wall_s: float,
    common: Sequence[str],
    scores: Mapping[str, float | None],
    failures_as_zero: float | None,
    confidence: float,
    seed: int,
) -> ModelSummary:
    done = [r.completion for r in rows if r.completion is not None]
    # Timings and throughput are this run's measurements: a cached answer's are not new ones.
    fresh = [r.completion for r in rows if r.completion is not None and not r.cached]
    # Nothing sent by this run (every answer from the cache or a run folder): the answers'
    # own timings, from the run that sent them.
    earlier = _earlier_timing(done) if wall_s <= 0 else None
    if earlier is not None:
        fresh = done
    timed_s = wall_s if earlier is None else earlier.span_s
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row.scores))
    headline = [v for i in common if (v := scores.get(i)) is not None]
    found = interval(headline, confidence=confidence, seed=seed)
    mean_scores = {}
    for name in names:
        per_item = item_scores_of(rows, label, name)
        mean_scores[name] = _mean(per_item.get(i) for i in common)
    usage = sum((c.usage for c in done), Usage())
    costs = [row.cost for row in rows if row.cost is not None]
    total_cost = sum(costs, Cost()) if costs else Cost(status="unpriced", assumptions="no answer")
    per_1k = (
        None if total_cost.status == "unpriced" else total_cost.per_1k_tokens(usage.total_tokens)
    )
    adjustments: dict[str, None] = {}
    for c in done:
        if c.sent is not None:
            adjustments.update(dict.fromkeys(c.sent.notes))
    visible = [c.ttft_visible_s for c in fresh if c.ttft_visible_s is not None]
    return ModelSummary(
        model=label,
        open_weights=open_weights,
        requests=len(rows),
        succeeded=len(done),
        success_rate=len(done) / len(rows) if rows else 0.0,
        mean_scores=mean_scores,
        score=_mean(headline),
        score_ci=None if found is None else (found.low, found.high),
        score_ci_method=None if found is None else found.method,
        n_scored=len(headline),
        score_failures_as_zero=failures_as_zero,
        latency_p50_s=percentile([c.latency_s for c in fresh], 50),
        latency_p95_s=percentile([c.latency_s for c in fresh], 95),
        ttft_p50_s=percentile([c.ttft_s for c in fresh if c.ttft_s is not None], 50),
        output_tokens_per_s=(
            sum(c.usage.output_tokens for c in fresh) / timed_s if fresh and timed_s > 0 else None
        ),
        cached=sum(r.cached for r in rows),
        usage=usage,
        cost=total_cost,
        usd_per_1k_tokens=per_1k,
        retries=sum(c.attempts - 1 for c in done),
        wall_s=wall_s,
        timed_at=None if earlier is None else earlier.at,
        timed_on=None if earlier is None else earlier.on,
        revisions=tuple(sorted({c.response_model for c in done if c.response_model})),
        adjustments=tuple(adjustments),
        ttft_visible_p50_s=percentile(visible, 50),
        apis=tuple(sorted({c.api for c in done if c.api})),
        cost_by_tier=_cost_by_tier(rows),
    )


def _cost_by_tier(rows: Sequence[Row]) -> dict[str, Cost]:
    """Each tier's share of a model's cost: ``standard``, ``flex``, ``priority``, ``batch``."""
    out: dict[str, Cost] = {}
    for row in rows:
        if row.cost is None or row.completion is None:
            continue
        tier = "batch" if row.completion.batch_id else (row.cost.tier or "standard")
        out[tier] = out[tier] + row.cost if tier in out else row.cost
    return out


def summaries(
    labels: Sequence[str],
    open_weights: Mapping[str, bool],
    rows: Sequence[Row],
    walls: Mapping[str, float],
    confidence: float,
    seed: int,
    *,
    pass_at: Sequence[int] = (),
    code_scorers: Sequence[str] = (),
) -> tuple[ModelSummary, ...]:
    """One summary per model, every score over the items every model answered.

    With ``pass_at`` and ``code_scorers``, each summary also has pass@k for those scorers.
    """
    per_model = {label: item_scores_of(rows, label) for label in labels}
    common = common_items(per_model)
    scoreable = scoreable_items(rows)
    return tuple(
        summarise(
            label,
            open_weights[label],
            [r for r in rows if r.model == label],
            walls.get(label, 0.0),
            common,
            per_model[label],
            failures_as_zero(rows, label, scoreable),
            confidence,
            seed,
        ).model_copy(
            update={
                "pass_at_k": pass_at_k_of(
                    rows, label, code_scorers, pass_at, common, confidence=confidence, seed=seed
                )
            }
        )
        for label in labels
    )


def pass_at_k_of(
    rows: Sequence[Row],
    model: str,
    scorers: Sequence[str],
    ks: Sequence[int],
    common: Sequence[str],
    *,
    confidence: float,
    seed: int,
) -> tuple[PassAtK, ...]:
    """pass@k of one model for each pass/fail scorer and k, over the common items it scored.

    A sample passes when the scorer gave it 1; a failed or unscored sample does not pass.
    """
    out = []
    for name in scorers:
        # item -> (samples, passes), for the common items this scorer applies to
        counts: dict[str, list[int]] = {}
        wanted = set(common)
        for row in rows:
            if row.model != model or row.item_id not in wanted:
                continue
            n_c = counts.setdefault(row.item_id, [0, 0])
            n_c[0] += 1
            n_c[1] += row.scores.get(name) == 1.0
        applies = {r.item_id for r in rows if r.model == model and name in r.scores}
        scored = [i for i in common if i in applies]
        if not scored:
            continue
        n = min(counts[i][0] for i in scored)
        for k in ks:
            if k > n:
                continue
            values = [pass_at_k(counts[i][0], counts[i][1], k) for i in scored]
            found = interval(values, confidence=confidence, seed=seed)
            assert found is not None
            out.append(
                PassAtK(
                    scorer=name,
                    k=k,
                    value=found.mean,
                    ci=(found.low, found.high),
                    ci_method=found.method,
                    n_items=len(values),
                    samples=n,
                )
            )
    return tuple(out)


def differences(
    labels: Sequence[str], rows: Sequence[Row], confidence: float, seed: int
) -> tuple[Pairwise, ...]:
    """Every pair of models, in run order, compared item by item on each item's mean score."""
    out = []
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            found = difference(rows, a, b, scorer=None, confidence=confidence, seed=seed)
            if found is not None:
                out.append(Pairwise(model_a=a, model_b=b, difference=found))
    return tuple(out)


def rescored(
    record: Comparison,
    scorers: Sequence[Scorer],
    *,
    replace: bool,
    allow_code_execution: bool = False,
) -> Comparison:
    """The record with every answer scored again; see :meth:`Comparison.rescore`."""
    items = record.items
    if replace:
        items = tuple(item.model_copy(update={"scorers": ()}) for item in items)
    else:
        # The run's own shared scorers, rebuilt by name; one of your own cannot be, say so.
        built: list[Scorer] = []
        for name in record.run.scorers:
            try:
                built.append(scorer_from_name(name))
            except LLMCompareError:
                warnings.warn(
                    f"the run's scorer {name!r} is not a built-in one: pass it to rescore() to "
                    "keep its scores",
                    RuntimeWarning,
                    stacklevel=user_stacklevel(),
                )
        given = {scorer_name(s) for s in scorers}
        scorers = [*[s for s in built if scorer_name(s) not in given], *scorers]
    scoring = Scoring(scorers, allow_code_execution=allow_code_execution)
    for item in items:
        for scorer in scoring.for_item(item):
            check_item(scorer, item)
    by_id = {item.id: item for item in items}
    rows = tuple(
        row
        if row.completion is None
        else row.model_copy(update={"scores": scoring.score(by_id[row.item_id], row.completion)})
        for row in record.rows
    )
    run = record.run
    old = {s.model: s for s in record.summaries}
    new = summaries(
        run.models,
        {m: old[m].open_weights for m in run.models},
        rows,
        {m: old[m].wall_s for m in run.models},
        run.confidence,
        run.stats_seed,
        pass_at=run.pass_at,
        code_scorers=scoring.pass_at_k_names(items),
    )
    return record.model_copy(
        update={
            "items": record.items,
            "rows": rows,
            "summaries": new,
            "differences": differences(run.models, rows, run.confidence, run.stats_seed),
        }
    )
