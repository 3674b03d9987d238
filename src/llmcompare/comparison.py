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
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import Unpack

from llmcompare._version import __version__
from llmcompare.batch import generate_many
from llmcompare.cost import (
    GENERIC_CLOUD_VM,
    Budget,
    Cost,
    CostTracker,
    LocalHardware,
    cost_of,
    prices,
)
from llmcompare.errors import BackendError, ConfigurationError, LLMCompareError, redact
from llmcompare.model import Model
from llmcompare.plugins import get_model
from llmcompare.prompts import PROMPT_FILE_SUFFIXES, PromptItem, builtin_suite, load_prompts
from llmcompare.retry import DEFAULT_POLICY, RetryPolicy
from llmcompare.scorers import Contains, Scorer, scorer_from_name, scorer_name
from llmcompare.types import Completion, Request, Result, Settings, Usage

__all__ = ["Comparison", "ErrorInfo", "ModelSummary", "Row", "RunInfo", "compare"]

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
    """One prompt answered by one model.

    Attributes:
        item_id: The prompt item's id.
        model: The model id.
        completion: The answer, when the request succeeded.
        error: Why it failed, otherwise.
        scores: Score per scorer name; ``None`` where a scorer did not apply or failed.
        cost: What the request cost.
    """

    model_config = _FROZEN

    item_id: str
    model: str
    completion: Completion | None = None
    error: ErrorInfo | None = None
    scores: dict[str, float | None] = Field(default_factory=dict)
    cost: Cost | None = None


class ModelSummary(BaseModel):
    """Aggregates of one model over the whole prompt set.

    Attributes:
        model: The model id.
        open_weights: Whether it is an open model (run locally) or behind an API.
        requests: Prompts sent.
        succeeded: Prompts answered.
        success_rate: ``succeeded / requests``.
        mean_scores: Mean of each scorer over the items it applied to.
        score: Mean over answered items of each item's mean score: one number to rank by.
        latency_p50_s: Median latency.
        latency_p95_s: 95th percentile latency.
        ttft_p50_s: Median time to first token, for streamed requests.
        output_tokens_per_s: Output tokens over the model's whole run time (throughput).
        usage: Tokens summed over successful requests.
        cost: Cost summed over successful requests (status: the weakest of its parts).
        usd_per_1k_tokens: Dollars per 1,000 tokens (input + output).
        retries: Extra attempts spent on retries.
        wall_s: Seconds the model's whole run took.
        revisions: Model names the provider reported (dated snapshots, paths).
    """

    model_config = _FROZEN

    model: str
    open_weights: bool
    requests: int
    succeeded: int
    success_rate: float
    mean_scores: dict[str, float | None]
    score: float | None
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
        price_table_date: Date of the newest entry of the price table used.
        hardware: Local cost assumptions, when local models ran.
        settings: Generation settings shared by all models.
        models: Model ids, in run order.
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


class Comparison(BaseModel):
    """The full typed record of a comparison; JSON round-trips with :meth:`load`.

    Attributes:
        run: What it ran on.
        items: The prompt items.
        rows: One row per item and model.
        summaries: One per model, in run order.
    """

    model_config = _FROZEN

    run: RunInfo
    items: tuple[PromptItem, ...]
    rows: tuple[Row, ...]
    summaries: tuple[ModelSummary, ...]

    def row(self, item_id: str, model: str) -> Row:
        """The row for one item and model.

        Raises:
            KeyError: When there is none.
        """
        for r in self.rows:
            if r.item_id == item_id and r.model == model:
                return r
        raise KeyError((item_id, model))

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
            out[scorer_name(scorer)] = None if value is None else float(value)
        return out


def _summarise(
    model: Model, rows: Sequence[Row], results: Sequence[Result], wall_s: float
) -> ModelSummary:
    done = [r.completion for r in results if r.completion is not None]
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row.scores))
    mean_scores = {n: _mean(row.scores.get(n) for row in rows) for n in names}
    usage = sum((c.usage for c in done), Usage())
    costs = [row.cost for row in rows if row.cost is not None]
    total_cost = sum(costs, Cost()) if costs else Cost(status="unpriced", assumptions="no answer")
    per_1k = (
        None if total_cost.status == "unpriced" else total_cost.per_1k_tokens(usage.total_tokens)
    )
    return ModelSummary(
        model=model.id,
        open_weights=model.info.open_weights,
        requests=len(results),
        succeeded=len(done),
        success_rate=len(done) / len(results) if results else 0.0,
        mean_scores=mean_scores,
        # Each item weighs the same, however many scorers it has.
        score=_mean(_mean(row.scores.values()) for row in rows if row.completion is not None),
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
    )


def compare(
    models: Sequence[Model | str],
    prompts: Iterable[PromptItem | str | Mapping[str, Any]] | str | Path | None = None,
    *,
    scorers: Sequence[Scorer] = (),
    concurrency: int = 8,
    retry: RetryPolicy | None = DEFAULT_POLICY,
    rpm: float | None = None,
    tpm: float | None = None,
    budget: Budget | None = None,
    hardware: LocalHardware | None = None,
    progress: bool | None = None,
    overrides: Mapping[str, Settings] | None = None,
    **settings: Unpack[Settings],
) -> Comparison:
    """Run every prompt on every model and gather answers, scores, latency, tokens and cost.

    Args:
        models: Models, or names for :func:`llmcompare.get_model` (models built from names are
            closed at the end).
        prompts: Items, strings, mappings, or a prompt file path; ``None`` runs the built-in suite.
        scorers: Scorers applied to every item, besides each item's own.
        concurrency: Requests in flight per model (API models); local models batch instead.
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
        **settings: Generation settings shared by every model, on top of the defaults
            (greedy, ``max_tokens=256``).

    Returns:
        The typed record of the run.

    Raises:
        LLMCompareError: When there are no models or no prompts.
    """
    if not models:
        raise LLMCompareError("compare needs at least one model")
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
    shared: dict[str, Any] = {**DEFAULT_SETTINGS, **settings}
    scoring = _Scoring(scorers)
    # Validate every item's scorers before any model runs: a typo should not cost a whole run.
    for item in items:
        scoring.for_item(item)
    tracker = CostTracker(budget=budget, hardware=hardware)

    built = [get_model(m) if isinstance(m, str) else m for m in models]
    owned = [m for m, given in zip(built, models, strict=True) if isinstance(given, str)]
    ids = [m.id for m in built]
    if len(set(ids)) != len(ids):
        raise ConfigurationError(f"each model must appear once; got {ids}")
    started = datetime.now(timezone.utc)
    rows: list[Row] = []
    summaries: list[ModelSummary] = []
    try:
        for model in built:
            merged = {**shared, **dict((overrides or {}).get(model.id, {}))}
            requests = [Request.of(item.conversation(), **merged) for item in items]
            t0 = time.perf_counter()
            try:
                # Loading weights is not answering: keep it out of the first request's latency.
                model.warm_up()
            except Exception as exc:  # noqa: BLE001 - one model that cannot load must not lose the others
                results = [Result(i, r, error=exc) for i, r in enumerate(requests)]
            else:
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
                )
            wall = time.perf_counter() - t0
            model_rows = [
                _row(item, model, result, scoring, hardware)
                for item, result in zip(items, results, strict=True)
            ]
            rows.extend(model_rows)
            summaries.append(_summarise(model, model_rows, results, wall))
    finally:
        for model in owned:
            model.close()
    run = RunInfo(
        llmcompare_version=__version__,
        started_at=started,
        finished_at=datetime.now(timezone.utc),
        python=platform.python_version(),
        platform=f"{platform.system()} {platform.machine()}",
        cpu=cpu_name(),
        gpu=_gpu_name(),
        price_table_date=max((p.as_of for p in prices()), default=None),
        hardware=(hardware or GENERIC_CLOUD_VM)
        if any(m.info.open_weights for m in built)
        else None,
        settings=shared,
        models=tuple(m.id for m in built),
    )
    return Comparison(run=run, items=tuple(items), rows=tuple(rows), summaries=tuple(summaries))


def _row(
    item: PromptItem,
    model: Model,
    result: Result,
    scoring: _Scoring,
    hardware: LocalHardware | None,
) -> Row:
    if result.completion is None:
        assert result.error is not None
        return Row(item_id=item.id, model=model.id, error=ErrorInfo.of(result.error))
    completion = result.completion
    return Row(
        item_id=item.id,
        model=model.id,
        completion=completion,
        scores=scoring.score(item, completion),
        cost=cost_of(completion, hardware=hardware),
    )


def _looks_like_file(text: str) -> bool:
    return Path(text).suffix.lower() in PROMPT_FILE_SUFFIXES or (
        "\n" not in text and Path(text).is_file()
    )
