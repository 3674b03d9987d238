"""Run the same prompts on several models and gather, side by side, answers, scores, speed and cost.

:func:`compare` is the main job of llmcompare. Models run one after another (so a local model's
compute is not shared with another model's client work, which would skew its latency), each
through :func:`llmcompare.batch.generate_many`: local models batch tensors, API models run
concurrently, with retry, rate limits and one :class:`~llmcompare.cost.CostTracker` (and its
budget) across the whole run. The result is a typed :class:`Comparison` that reports render and
that loads back from its JSON.
"""

from __future__ import annotations

import math
import os
import platform
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import Unpack

from llmcompare import _aggregate
from llmcompare._version import __version__
from llmcompare.batch import generate_many
from llmcompare.cost import (
    GENERIC_CLOUD_VM,
    Budget,
    Cost,
    CostTracker,
    LocalHardware,
    cost_of,
    oldest_price_date,
)
from llmcompare.errors import BackendError, ConfigurationError, LLMCompareError, redact
from llmcompare.model import Model
from llmcompare.plugins import get_model
from llmcompare.prompts import PROMPT_FILE_SUFFIXES, PromptItem, builtin_suite, load_prompts
from llmcompare.retry import DEFAULT_POLICY, RetryPolicy
from llmcompare.scorers import Contains, Scorer, check_item, scorer_from_name, scorer_name
from llmcompare.stats import Difference
from llmcompare.types import Completion, Request, Result, Settings, Usage
from llmcompare.wrapper import _native_batching, _native_streaming

__all__ = ["Comparison", "ErrorInfo", "ModelSummary", "Pairwise", "Row", "RunInfo", "compare"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")

DEFAULT_SETTINGS: Settings = {"temperature": 0.0, "max_tokens": 256}
"""Settings used when a comparison is given none: greedy, so reruns give the same answers."""


class ErrorInfo(BaseModel):
    """Why one request failed, kept in the record instead of the exception object.

    Attributes:
        type: The exception class name.
        message: Its message (secrets are already redacted by llmcompare's errors).
        retryable: Whether it was classified retryable, when it was a backend error.
    """

    model_config = _FROZEN

    type: str
    message: str
    retryable: bool | None = None

    @classmethod
    def of(cls, exc: BaseException) -> ErrorInfo:
        """Describe an exception."""
        retryable = exc.retryable if isinstance(exc, BackendError) else None
        # llmcompare's own errors are redacted already; a third-party backend's may not be.
        return cls(type=type(exc).__name__, message=redact(str(exc)), retryable=retryable)


class Row(BaseModel):
    """One prompt answered by one model (one sample of it, when items are repeated).

    Attributes:
        item_id: The prompt item's id.
        model: The model id.
        sample: Which repeat of the item this is (0 unless ``samples`` > 1).
        seed: The seed the request was sent with, when it had one (each sample has its own).
        completion: The answer, when the request succeeded.
        error: Why it failed, otherwise.
        scores: Score per scorer name; ``None`` where a scorer did not apply or failed.
        cost: What the request cost.
    """

    model_config = _FROZEN

    item_id: str
    model: str
    sample: int = 0
    seed: int | None = None
    completion: Completion | None = None
    error: ErrorInfo | None = None
    scores: dict[str, float | None] = Field(default_factory=dict)
    cost: Cost | None = None


class Pairwise(BaseModel):
    """How two models' scores differ, item by item, over the items both answered.

    Attributes:
        model_a: The first model (the difference is ``a - b``).
        model_b: The second model.
        scorer: The scorer compared, or None for each item's mean score.
        difference: The statistics: mean difference, its interval, p-value, wins, ties, losses.
    """

    model_config = _FROZEN

    model_a: str
    model_b: str
    scorer: str | None = None
    difference: Difference

    def line(self) -> str:
        """One line for humans: ``A - B = +0.12 [+0.05, +0.19], p = 0.003, 41 wins / ...``."""
        return self.difference.line(self.model_a, self.model_b)

    def verdict(self, alpha: float = 0.05) -> str:
        """A plain-language verdict, which says so when there are too few items to tell."""
        return self.difference.verdict(alpha, name_a=self.model_a, name_b=self.model_b)


class ModelSummary(BaseModel):
    """Aggregates of one model over the whole prompt set.

    Scores are over the SAME items for every model: ``score`` averages the items every model of
    the comparison answered (``n_scored`` of them), so a model that fails the hard items cannot
    rank first on the easy ones; ``score_failures_as_zero`` counts each failure as a wrong
    answer instead. Repeated samples of an item are averaged first (one cluster per item).

    Attributes:
        model: The model id.
        open_weights: Whether it is an open model (run locally) or behind an API.
        requests: Requests sent (items times samples).
        succeeded: Requests answered.
        success_rate: ``succeeded / requests``.
        mean_scores: Mean of each scorer over the common items it applied to.
        score: Mean over the common items of each item's score: the number to rank by.
        score_ci: Its confidence interval (see the run's ``confidence``), or None.
        score_ci_method: How the interval was computed (``"wilson"``, ``"bootstrap"``, ...).
        n_scored: How many items ``score`` is over (answered by every model).
        score_failures_as_zero: Mean over every scoreable item, failures counting as 0.
        latency_p50_s: Median latency: from handing the request to the model to the answer,
            queueing and retries included.
        latency_p95_s: 95th percentile latency.
        ttft_p50_s: Median time to the first token (streamed requests and local batches).
        output_tokens_per_s: Output tokens over the model's whole run time (throughput).
        usage: Tokens summed over successful requests.
        cost: Cost summed over successful requests (status: the weakest of its parts).
        usd_per_1k_tokens: Dollars per 1,000 tokens (input + output).
        retries: Extra attempts spent on retries.
        wall_s: Seconds the model's whole run took.
        revisions: Model names the provider reported (dated snapshots, paths).
        adjustments: How the settings the model received differ from the shared ones, and why
            (a parameter the provider does not accept, one sent under another name).
    """

    model_config = _FROZEN

    model: str
    open_weights: bool
    requests: int
    succeeded: int
    success_rate: float
    mean_scores: dict[str, float | None]
    score: float | None
    score_ci: tuple[float, float] | None = None
    score_ci_method: str | None = None
    n_scored: int = 0
    score_failures_as_zero: float | None = None
    latency_p50_s: float | None
    latency_p95_s: float | None
    ttft_p50_s: float | None
    output_tokens_per_s: float | None
    usage: Usage
    cost: Cost
    usd_per_1k_tokens: Decimal | None
    retries: int
    wall_s: float
    revisions: tuple[str, ...] = ()
    adjustments: tuple[str, ...] = ()

    @property
    def failed(self) -> int:
        """Requests that failed: a model with failures is flagged in reports."""
        return self.requests - self.succeeded


class RunInfo(BaseModel):
    """What a comparison ran on, stamped on every report.

    Attributes:
        llmcompare_version: The library version.
        started_at: When the run started (UTC).
        finished_at: When it ended (UTC).
        python: Python version.
        platform: Operating system and architecture.
        cpu: CPU name.
        gpu: GPU name, when torch sees one.
        price_table_date: The OLDEST date at which a price used in this run was checked
            against its source: every price is at least this fresh.
        hardware: Local cost assumptions, when local models ran.
        settings: Generation settings shared by all models.
        models: Model ids, in run order.
        samples: How many times each item was run on each model.
        confidence: The level of every interval in the record.
        stats_seed: The seed of every bootstrap and permutation test (the figures repeat
            exactly).
    """

    model_config = _FROZEN

    llmcompare_version: str
    started_at: datetime
    finished_at: datetime
    python: str
    platform: str
    cpu: str
    gpu: str | None = None
    price_table_date: date | None = None
    hardware: LocalHardware | None = None
    settings: dict[str, Any]
    models: tuple[str, ...]
    samples: int = 1
    confidence: float = 0.95
    stats_seed: int = 0


class Comparison(BaseModel):
    """The full typed record of a comparison; JSON round-trips with :meth:`load`.

    Attributes:
        run: What it ran on.
        items: The prompt items.
        rows: One row per item, model and sample.
        summaries: One per model, in run order.
        differences: Every pair of models (in run order), compared on each item's mean score.
    """

    model_config = _FROZEN

    run: RunInfo
    items: tuple[PromptItem, ...]
    rows: tuple[Row, ...]
    summaries: tuple[ModelSummary, ...]
    differences: tuple[Pairwise, ...] = ()

    def row(self, item_id: str, model: str, sample: int = 0) -> Row:
        """The row for one item, model and sample.

        Raises:
            KeyError: When there is none.
        """
        for r in self.rows:
            if r.item_id == item_id and r.model == model and r.sample == sample:
                return r
        raise KeyError((item_id, model, sample))

    def difference(self, model_a: str, model_b: str, scorer: str | None = None) -> Pairwise:
        """Compare two models of the run item by item, over the items both answered.

        Args:
            model_a: A model id of the run.
            model_b: Another one; the difference is ``a - b``.
            scorer: A scorer's name, or None for each item's mean score.

        Returns:
            The paired difference, with its interval and p-value.

        Raises:
            KeyError: When a model is not in the run.
            LLMCompareError: When the two models answered no item in common.
        """
        from llmcompare._aggregate import difference

        for model in (model_a, model_b):
            if model not in self.run.models:
                raise KeyError(f"{model!r} is not a model of this run: {list(self.run.models)}")
        found = difference(
            self.rows,
            model_a,
            model_b,
            scorer=scorer,
            confidence=self.run.confidence,
            seed=self.run.stats_seed,
        )
        if found is None:
            raise LLMCompareError(f"{model_a} and {model_b} answered no item in common")
        return Pairwise(model_a=model_a, model_b=model_b, scorer=scorer, difference=found)

    @property
    def failed(self) -> int:
        """How many requests failed across all models."""
        return sum(1 for r in self.rows if r.error is not None)

    def save(self, path: str | Path) -> Path:
        """Write the record as JSON."""
        p = Path(path)
        p.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | Path) -> Comparison:
        """Read a record written by :meth:`save`."""
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))


def _percentile(values: Sequence[float], q: float) -> float | None:
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


def cpu_name() -> str:
    """The CPU's model name, as the OS reports it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    return (platform.processor() or platform.machine()) + f" ({os.cpu_count()} cores)"


def _gpu_name() -> str | None:
    import sys

    # Only ask torch when a backend already imported it: a comparison of API models stays light.
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if torch.cuda.is_available():
            return str(torch.cuda.get_device_name(0))
    except Exception:  # noqa: BLE001 - the stamp is informative, never fatal
        return None
    return None


class _Scoring:
    """Scorer objects per item, built once per name."""

    def __init__(self, extra: Sequence[Scorer]) -> None:
        self._extra = list(extra)
        self._by_name: dict[str, Scorer] = {}

    def for_item(self, item: PromptItem) -> list[Scorer]:
        if item.scorers is None:
            own: list[Scorer] = [] if self._extra or item.reference is None else [Contains()]
        else:
            own = []
            for spec in item.scorers:
                if spec not in self._by_name:
                    self._by_name[spec] = scorer_from_name(spec)
                own.append(self._by_name[spec])
        return own + self._extra

    def score(self, item: PromptItem, completion: Completion) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for scorer in self.for_item(item):
            try:
                value = scorer(completion, item)
            except Exception as exc:  # noqa: BLE001 - a broken scorer must not lose the run
                warnings.warn(
                    f"scorer {scorer_name(scorer)!r} failed on item {item.id!r}: {exc}",
                    RuntimeWarning,
                    stacklevel=2,
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
                    stacklevel=2,
                )
                score = None
            out[scorer_name(scorer)] = score
        return out


def _summarise(
    model: Model,
    rows: Sequence[Row],
    wall_s: float,
    common: Sequence[str],
    item_scores: Mapping[str, float | None],
    failures_as_zero: float | None,
    confidence: float,
    seed: int,
) -> ModelSummary:
    done = [r.completion for r in rows if r.completion is not None]
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row.scores))
    headline = [v for i in common if (v := item_scores.get(i)) is not None]
    found = _aggregate.interval(headline, confidence=confidence, seed=seed)
    mean_scores = {}
    for name in names:
        per_item = _aggregate.item_scores(rows, model.id, name)
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
    return ModelSummary(
        model=model.id,
        open_weights=model.info.open_weights,
        requests=len(rows),
        succeeded=len(done),
        success_rate=len(done) / len(rows) if rows else 0.0,
        mean_scores=mean_scores,
        score=_mean(headline),
        score_ci=None if found is None else (found.low, found.high),
        score_ci_method=None if found is None else found.method,
        n_scored=len(headline),
        score_failures_as_zero=failures_as_zero,
        latency_p50_s=_percentile([c.latency_s for c in done], 50),
        latency_p95_s=_percentile([c.latency_s for c in done], 95),
        ttft_p50_s=_percentile([c.ttft_s for c in done if c.ttft_s is not None], 50),
        output_tokens_per_s=usage.output_tokens / wall_s if done and wall_s > 0 else None,
        usage=usage,
        cost=total_cost,
        usd_per_1k_tokens=per_1k,
        retries=sum(c.attempts - 1 for c in done),
        wall_s=wall_s,
        revisions=tuple(sorted({c.response_model for c in done if c.response_model})),
        adjustments=tuple(adjustments),
    )


def compare(
    models: Sequence[Model | str],
    prompts: Iterable[PromptItem | str | Mapping[str, Any]] | str | Path | None = None,
    *,
    scorers: Sequence[Scorer] = (),
    samples: int = 1,
    concurrency: int = 8,
    retry: RetryPolicy | None = DEFAULT_POLICY,
    rpm: float | None = None,
    tpm: float | None = None,
    budget: Budget | None = None,
    hardware: LocalHardware | None = None,
    progress: bool | None = None,
    overrides: Mapping[str, Settings] | None = None,
    confidence: float = 0.95,
    stats_seed: int = 0,
    **settings: Unpack[Settings],
) -> Comparison:
    """Run every prompt on every model and gather answers, scores, latency, tokens and cost.

    Everything that can be checked is checked before the first request is sent: the prompts and
    their ids (unique), every item's scorers and references (a regex that does not compile, a
    numeric reference without a number, an empty ``contains`` reference), the settings of every
    model (``overrides`` must name models of the run) and the budget.

    Args:
        models: Models, or names for :func:`llmcompare.get_model` (models built from names are
            closed at the end).
        prompts: Items, strings, mappings, or a prompt file path; ``None`` runs the built-in suite.
        scorers: Scorers applied to every item, besides each item's own.
        samples: How many times to run each item on each model. With more than one, sample
            ``s`` is sent with ``seed = base + s`` (``base``: the ``seed`` setting, else 0), the
            seeds are recorded per row, and intervals treat an item's samples as one cluster.
            At temperature 0 this shows a backend's own nondeterminism.
        concurrency: Requests in flight per model (API models); the batch size given to local
            models that batch.
        retry: Retry policy for transient failures (the default: 4 attempts within 60 s);
            ``None`` retries nothing, as everywhere in llmcompare.
        rpm: Requests-per-minute limit, applied to each model on its own.
        tpm: Tokens-per-minute limit, applied to each model on its own.
        budget: Limits on dollars, tokens or requests across the run, enforced before sending.
        hardware: Local cost assumptions (dollars per hour, watts, grid carbon) for open models;
            without it the generic cloud VM of :class:`~llmcompare.cost.LocalHardware` is
            assumed and local costs are marked ``"estimated"``.
        progress: Show a progress bar; ``None`` shows one when stderr is a terminal.
        overrides: Settings per model id that replace the shared ones for that model.
        confidence: The level of every interval (0.95: 95%).
        stats_seed: Seed of the bootstraps and permutation tests, so the figures repeat.
        **settings: Generation settings shared by every model, on top of the defaults
            (greedy, ``max_tokens=256``).

    Returns:
        The typed record of the run.

    Raises:
        LLMCompareError: When there are no models or no prompts.
        ConfigurationError: For any input that cannot run (nothing was sent).
    """
    if not models:
        raise LLMCompareError("compare needs at least one model")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ConfigurationError(f"samples must be a whole number of at least 1, got {samples!r}")
    if not 0 < confidence < 1:
        raise ConfigurationError(f"confidence must be between 0 and 1, got {confidence!r}")
    if isinstance(stats_seed, bool) or not isinstance(stats_seed, int) or stats_seed < 0:
        raise ConfigurationError(f"stats_seed must be a whole number >= 0, got {stats_seed!r}")
    items = _items(prompts)
    for scorer in scorers:
        if not callable(scorer):
            raise ConfigurationError(
                f"scorers must be callables (completion, item) -> float | bool | None; got "
                f"{scorer!r}"
            )
    shared: dict[str, Any] = {**DEFAULT_SETTINGS, **settings}
    scoring = _Scoring(scorers)
    # Validate every item's scorers before any model runs: a typo should not cost a whole run.
    for item in items:
        for scorer in scoring.for_item(item):
            check_item(scorer, item)

    built = [get_model(m) if isinstance(m, str) else m for m in models]
    owned = [m for m, given in zip(built, models, strict=True) if isinstance(given, str)]
    try:
        ids = [m.id for m in built]
        if len(set(ids)) != len(ids):
            raise ConfigurationError(f"each model must appear once; got {ids}")
        unknown = sorted(set(overrides or {}) - set(ids))
        if unknown:
            raise ConfigurationError(
                f"overrides name models that are not in this run: {unknown}; its models: {ids}"
            )
        # Every request of every model is built (and so validated) before the first is sent.
        plans = [_plan(model, items, samples, shared, overrides) for model in built]
        tracker = CostTracker(budget=budget, hardware=hardware)
        started = datetime.now(timezone.utc)
        by_id = {item.id: item for item in items}
        rows: list[Row] = []
        walls: dict[str, float] = {}
        for model, (requests, keys) in zip(built, plans, strict=True):
            results, wall = _run_model(
                model, requests, concurrency, retry, rpm, tpm, tracker, progress
            )
            walls[model.id] = wall
            rows.extend(
                _row(by_id[item_id], model, sample, result, scoring, hardware)
                for (item_id, sample), result in zip(keys, results, strict=True)
            )
    finally:
        for model in owned:
            model.close()
    record_rows = tuple(rows)
    summaries = _summaries(built, record_rows, walls, confidence, stats_seed)
    differences = tuple(
        Pairwise(model_a=a.id, model_b=b.id, difference=found)
        for i, a in enumerate(built)
        for b in built[i + 1 :]
        if (
            found := _aggregate.difference(
                record_rows, a.id, b.id, scorer=None, confidence=confidence, seed=stats_seed
            )
        )
        is not None
    )
    run = RunInfo(
        llmcompare_version=__version__,
        started_at=started,
        finished_at=datetime.now(timezone.utc),
        python=platform.python_version(),
        platform=f"{platform.system()} {platform.machine()}",
        cpu=cpu_name(),
        gpu=_gpu_name(),
        price_table_date=_oldest_price_date(record_rows),
        hardware=(hardware or GENERIC_CLOUD_VM)
        if any(m.info.open_weights for m in built)
        else None,
        settings=shared,
        models=tuple(m.id for m in built),
        samples=samples,
        confidence=confidence,
        stats_seed=stats_seed,
    )
    return Comparison(
        run=run,
        items=tuple(items),
        rows=record_rows,
        summaries=summaries,
        differences=differences,
    )


def _items(
    prompts: Iterable[PromptItem | str | Mapping[str, Any]] | str | Path | None,
) -> list[PromptItem]:
    if prompts is None:
        items = builtin_suite()
    elif isinstance(prompts, Path) or (isinstance(prompts, str) and _looks_like_file(prompts)):
        items = load_prompts(prompts)
    elif isinstance(prompts, str):
        raise ConfigurationError(
            f"prompts={prompts[:40]!r} is neither a list of prompts nor a prompt file "
            '(.jsonl, .csv, .yaml): to run one prompt, pass a list: ["..."]'
        )
    else:
        items = [PromptItem.of(p, index=i) for i, p in enumerate(prompts)]
    if not items:
        raise LLMCompareError("compare needs at least one prompt")
    counts = Counter(item.id for item in items)
    repeated = sorted(i for i, n in counts.items() if n > 1)
    if repeated:
        raise ConfigurationError(
            f"item ids must be unique, and {repeated} appear more than once: give each item its "
            "own id"
        )
    return items


def _plan(
    model: Model,
    items: Sequence[PromptItem],
    samples: int,
    shared: Mapping[str, Any],
    overrides: Mapping[str, Settings] | None,
) -> tuple[list[Request], list[tuple[str, int]]]:
    """The requests a model gets, sample by sample, with the (item, sample) of each."""
    merged: dict[str, Any] = {**shared, **dict((overrides or {}).get(model.id, {}))}
    base = merged.get("seed")
    requests: list[Request] = []
    keys: list[tuple[str, int]] = []
    for sample in range(samples):
        if samples > 1:
            # Each sample its own seed, recorded with its row: samples differ, reruns repeat.
            merged["seed"] = (base or 0) + sample
        for item in items:
            requests.append(Request.of(item.conversation(), **merged))
            keys.append((item.id, sample))
    return requests, keys


def _run_model(
    model: Model,
    requests: list[Request],
    concurrency: int,
    retry: RetryPolicy | None,
    rpm: float | None,
    tpm: float | None,
    tracker: CostTracker,
    progress: bool | None,
) -> tuple[list[Result], float]:
    t0 = time.perf_counter()
    try:
        # Loading weights is not answering: keep it out of the first request's latency.
        model.warm_up()
    except Exception as exc:  # noqa: BLE001 - one model that cannot load must not lose the others
        return [Result(i, r, error=exc) for i, r in enumerate(requests)], 0.0
    t0 = time.perf_counter()
    results = generate_many(
        model,
        requests,
        concurrency=concurrency,
        retry=retry,
        rpm=rpm,
        tpm=tpm,
        tracker=tracker,
        progress=progress,
        # Streaming where the model streams and does not batch: each answer's time to first
        # token is then measured, not assumed.
        stream=_native_streaming(model) and not _native_batching(model),
    )
    return results, time.perf_counter() - t0


def _summaries(
    models: Sequence[Model],
    rows: Sequence[Row],
    walls: Mapping[str, float],
    confidence: float,
    seed: int,
) -> tuple[ModelSummary, ...]:
    per_model = {m.id: _aggregate.item_scores(rows, m.id) for m in models}
    common = _aggregate.common_items(per_model)
    scoreable = _aggregate.scoreable_items(rows)
    return tuple(
        _summarise(
            model,
            [r for r in rows if r.model == model.id],
            walls.get(model.id, 0.0),
            common,
            per_model[model.id],
            _aggregate.failures_as_zero(rows, model.id, scoreable),
            confidence,
            seed,
        )
        for model in models
    )


def _row(
    item: PromptItem,
    model: Model,
    sample: int,
    result: Result,
    scoring: _Scoring,
    hardware: LocalHardware | None,
) -> Row:
    seed = result.request.seed
    if result.completion is None:
        assert result.error is not None
        return Row(
            item_id=item.id,
            model=model.id,
            sample=sample,
            seed=seed,
            error=ErrorInfo.of(result.error),
        )
    completion = result.completion
    return Row(
        item_id=item.id,
        model=model.id,
        sample=sample,
        seed=seed,
        completion=completion,
        scores=scoring.score(item, completion),
        cost=cost_of(completion, hardware=hardware),
    )


def _oldest_price_date(rows: Sequence[Row]) -> date | None:
    """The oldest check date of the prices this run's API answers were costed with."""
    # The reported name counts: a dated snapshot may have a price entry of its own.
    used = {(r.model, r.completion.response_model) for r in rows if r.completion is not None}
    return oldest_price_date(used)


def _looks_like_file(text: str) -> bool:
    return Path(text).suffix.lower() in PROMPT_FILE_SUFFIXES or (
        "\n" not in text and Path(text).is_file()
    )
