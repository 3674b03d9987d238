"""The parts of a record: one answer (:class:`Row`), one model's aggregates, a pair, the run.

Plain frozen pydantic models with no behaviour beyond a line of text: the whole record
(:class:`~llmcompare.record.Comparison`) is made of them.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llmcompare.cost import Cost, LocalHardware
from llmcompare.errors import BackendError, redact
from llmcompare.ratelimit import RateLimits
from llmcompare.stats import Difference
from llmcompare.types import Completion, ShelfLife, Usage, _valid_text

__all__ = ["FROZEN", "ErrorInfo", "ModelSummary", "Pairwise", "PassAtK", "Row", "RunInfo"]

FROZEN = ConfigDict(frozen=True, extra="forbid")
"""Every record type is immutable and refuses unknown fields (a record loads back exactly)."""


class ErrorInfo(BaseModel):
    """Why one request failed, kept in the record instead of the exception object.

    Attributes:
        type: The exception class name.
        message: Its message (secrets are already redacted by llmcompare's errors).
        retryable: Whether it was classified retryable, when it was a backend error.
    """

    model_config = FROZEN

    type: str
    message: str
    retryable: bool | None = None

    @classmethod
    def of(cls, exc: BaseException) -> ErrorInfo:
        """Describe an exception."""
        retryable = exc.retryable if isinstance(exc, BackendError) else None
        # llmcompare's own errors are redacted already; a third-party backend's may not be.
        # A provider's text may hold half a character: the record must always encode.
        message, _ = _valid_text(redact(str(exc)))
        return cls(type=type(exc).__name__, message=message, retryable=retryable)


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
        cost: What the request cost (when it was first answered, for a cached answer).
        cached: Whether the answer came from the response cache: nothing was sent for it, and
            its timings and cost are those of the run that first got it (not new spend, not a
            new latency measurement).
    """

    model_config = FROZEN

    item_id: str
    model: str
    sample: int = 0
    seed: int | None = None
    completion: Completion | None = None
    error: ErrorInfo | None = None
    scores: dict[str, float | None] = Field(default_factory=dict)
    cost: Cost | None = None
    cached: bool = False


class Pairwise(BaseModel):
    """How two models' scores differ, item by item, over the items both answered.

    Attributes:
        model_a: The first model (the difference is ``a - b``).
        model_b: The second model.
        scorer: The scorer compared, or None for each item's mean score.
        difference: The statistics: mean difference, its interval, p-value, wins, ties, losses.
    """

    model_config = FROZEN

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


class PassAtK(BaseModel):
    """pass@k of one model under one pass/fail code scorer (``unit_tests``), over items.

    Per item, the unbiased estimate ``1 - C(n - c, k) / C(n, k)`` from its ``n`` samples of
    which ``c`` passed (Chen et al., 2021; :func:`llmcompare.stats.pass_at_k`); a failed
    sample counts as not passing. The value is the mean over the items, the interval is over
    items (Wilson when every item's estimate is 0 or 1, else a bootstrap over items).

    Attributes:
        scorer: The scorer's name.
        k: The k of pass@k.
        value: The mean over items.
        ci: Its confidence interval (the run's ``confidence``).
        ci_method: How the interval was computed.
        n_items: Items it is over (the items every model answered).
        samples: Samples per item (n).
    """

    model_config = FROZEN

    scorer: str
    k: int
    value: float
    ci: tuple[float, float]
    ci_method: str
    n_items: int
    samples: int


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
        cached: Answers that came from the response cache (nothing sent for them; latency and
            throughput are measured on the others when there are any).
        wall_s: Seconds the model's whole run took (its requests sent in this run).
        timed_at: When an earlier run measured the latency and throughput figures, when every
            answer came from the cache or a run folder (a rerun reports that measurement);
            None when they are this run's own.
        timed_on: Where that earlier run measured them (the host that sent the requests).
        revisions: Model names the provider reported (dated snapshots, paths).
        adjustments: How the settings the model received differ from the shared ones, and why
            (a parameter the provider does not accept, one sent under another name).
        pass_at_k: pass@k for each code scorer and each k of the run's ``pass_at``.
        ttft_visible_p50_s: Median time to the first VISIBLE token (streamed requests): after
            hidden reasoning, which ``ttft_p50_s`` does not wait for.
        apis: The provider APIs that answered (the chatgpt backend: ``"chat"``,
            ``"responses"``).
        cost_by_tier: The cost split by the service tier each answer was served and priced
            at: ``"standard"``, ``"flex"``, ``"priority"``, ``"batch"`` (the Batch API).
    """

    model_config = FROZEN

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
    cached: int = 0
    wall_s: float
    timed_at: datetime | None = None
    timed_on: str | None = None
    revisions: tuple[str, ...] = ()
    adjustments: tuple[str, ...] = ()
    pass_at_k: tuple[PassAtK, ...] = ()
    ttft_visible_p50_s: float | None = None
    apis: tuple[str, ...] = ()
    cost_by_tier: dict[str, Cost] = Field(default_factory=dict)

    @property
    def failed(self) -> int:
        """Requests that failed: a model with failures is flagged in reports."""
        return self.requests - self.succeeded

    @property
    def cache_hit_share(self) -> float | None:
        """The share of input tokens served from a cache, or None without input tokens.

        The API's prompt cache, or a local engine's prefix reuse, as each backend reports it
        in ``cache_read_tokens``.
        """
        u = self.usage
        return u.cache_read_tokens / u.input_tokens if u.input_tokens else None


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
        hosted: The hosted models' machines, by label: each one is open weights served on
            that hardware, costed from machine time at its rate (see
            :func:`llmcompare.cost.hosted_hardware`).
        settings: Generation settings shared by all models.
        models: The models' labels (their ids unless labels were given), in run order: the
            names rows and summaries use.
        model_ids: Each label's model id (``provider:name``).
        samples: How many times each item was run on each model.
        confidence: The level of every interval in the record.
        stats_seed: The seed of every bootstrap and permutation test (the figures repeat
            exactly).
        scorers: The names of the scorers applied to every item (besides each item's own).
        pass_at: The k values of pass@k reported for code scorers (each at most ``samples``).
        shelf_life: Until when each model (by label) can be re-run: its provider's announced
            shutdown date and where it comes from; models without one are left out.
        genai_prices: The version of pydantic's genai-prices that priced the models the
            built-in table lacks, when it priced any.
        rate_limits: Each model's stated rate limits (its own ``limits=`` / config ``rpm`` and
            ``tpm``, else the run's shared ones), by label, and the judge's, by its name;
            those without any are left out. The decision says when a volume needs more than
            one key's limits allow.
    """

    model_config = FROZEN

    llmcompare_version: str
    started_at: datetime
    finished_at: datetime
    python: str
    platform: str
    cpu: str
    gpu: str | None = None
    price_table_date: date | None = None
    hardware: LocalHardware | None = None
    hosted: dict[str, LocalHardware] = Field(default_factory=dict)
    settings: dict[str, Any]
    models: tuple[str, ...]
    model_ids: dict[str, str] = Field(default_factory=dict)
    samples: int = 1
    confidence: float = 0.95
    stats_seed: int = 0
    scorers: tuple[str, ...] = ()
    pass_at: tuple[int, ...] = ()
    shelf_life: dict[str, ShelfLife] = Field(default_factory=dict)
    genai_prices: str | None = None
    rate_limits: dict[str, RateLimits] = Field(default_factory=dict)
