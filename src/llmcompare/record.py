"""The record of a comparison: typed, saved as JSON, loaded back equal, re-scored or re-rendered.

These types know nothing of how a comparison runs: a saved record loads, renders and re-scores
without the runner, the backends or torch (``llmcompare report`` and ``llmcompare rescore`` use
only this module, the scorers and :mod:`llmcompare.report`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from llmcompare.cost import Cost, LocalHardware
from llmcompare.errors import BackendError, LLMCompareError, redact
from llmcompare.prompts import PromptItem
from llmcompare.scorers import Scorer
from llmcompare.stats import Difference
from llmcompare.types import Completion, Usage

if TYPE_CHECKING:
    import pandas as pd

    from llmcompare.decision import BreakEven

__all__ = ["Comparison", "ErrorInfo", "ModelSummary", "Pairwise", "PassAtK", "Row", "RunInfo"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


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
        cost: What the request cost (when it was first answered, for a cached answer).
        cached: Whether the answer came from the response cache: nothing was sent for it, and
            its timings and cost are those of the run that first got it (not new spend, not a
            new latency measurement).
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
    cached: bool = False


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

    model_config = _FROZEN

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
        revisions: Model names the provider reported (dated snapshots, paths).
        adjustments: How the settings the model received differ from the shared ones, and why
            (a parameter the provider does not accept, one sent under another name).
        pass_at_k: pass@k for each code scorer and each k of the run's ``pass_at``.
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
    cached: int = 0
    wall_s: float
    revisions: tuple[str, ...] = ()
    adjustments: tuple[str, ...] = ()
    pass_at_k: tuple[PassAtK, ...] = ()

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
        models: The models' labels (their ids unless labels were given), in run order: the
            names rows and summaries use.
        model_ids: Each label's model id (``provider:name``).
        samples: How many times each item was run on each model.
        confidence: The level of every interval in the record.
        stats_seed: The seed of every bootstrap and permutation test (the figures repeat
            exactly).
        scorers: The names of the scorers applied to every item (besides each item's own).
        pass_at: The k values of pass@k reported for code scorers (each at most ``samples``).
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
    model_ids: dict[str, str] = Field(default_factory=dict)
    samples: int = 1
    confidence: float = 0.95
    stats_seed: int = 0
    scorers: tuple[str, ...] = ()
    pass_at: tuple[int, ...] = ()


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
        """The row for one item, model (its label) and sample.

        Raises:
            KeyError: When there is none.
        """
        rows, index = self._row_index
        if rows is not self.rows:  # a model_copy(update=...) carried an index of other rows
            self.__dict__.pop("_row_index", None)
            rows, index = self._row_index
        return index[(item_id, model, sample)]

    @cached_property
    def _row_index(self) -> tuple[tuple[Row, ...], dict[tuple[str, str, int], Row]]:
        # Built once per record: a report looks up every (item, model) pair.
        return self.rows, {(r.item_id, r.model, r.sample): r for r in self.rows}

    def break_even(self, model_a: str, model_b: str) -> BreakEven:
        """Monthly dollars against monthly requests for two models, and where they cross.

        An API model costs the run's mean dollars per request (its mean tokens at its
        prices); a local model runs on the run's hardware kept on all month (730 h at its
        $/hour, one machine per measured-throughput's worth of requests) plus energy per
        request. See :mod:`llmcompare.decision` for the whole model.

        Args:
            model_a: A model label of the run.
            model_b: Another one.

        Returns:
            The crossover volume (requests a month), or None with the reason, and the
            assumptions it rests on.

        Raises:
            KeyError: When a model is not in the run.
        """
        from llmcompare.decision import break_even

        return break_even(self, model_a, model_b)

    def to_pandas(self) -> pd.DataFrame:
        """One row per item, model and sample, with the columns of the answers CSV.

        Raises:
            ConfigurationError: When pandas is not installed.
        """
        from llmcompare.report import answers_frame

        return answers_frame(self)

    def _repr_html_(self) -> str:
        # Notebooks show a comparison as its summary table.
        from llmcompare.report import summary_html

        return summary_html(self)

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

    def rescore(
        self,
        scorers: Sequence[Scorer] = (),
        *,
        replace: bool = False,
        allow_code_execution: bool = False,
    ) -> Comparison:
        """Score the recorded answers again, with new scorers, without sending a request.

        Args:
            scorers: Scorers applied to every item (built ones, or callables of your own).
            replace: Drop each item's own scorers and use only ``scorers``; by default the
                item's own scorers run too, as in :func:`~llmcompare.compare`.
            allow_code_execution: Let the items' ``unit_tests`` scorers run the answers' code
                (see :class:`llmcompare.sandbox.UnitTests`).

        Returns:
            A new record: the same answers, new scores, summaries and pairwise differences.

        Raises:
            ConfigurationError: When a scorer cannot score an item (checked before scoring).
        """
        from llmcompare import _aggregate

        return _aggregate.rescored(
            self, scorers, replace=replace, allow_code_execution=allow_code_execution
        )
