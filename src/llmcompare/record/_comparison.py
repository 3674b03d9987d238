"""The whole record of a comparison: typed, saved as JSON, loaded back equal, re-scored.

:class:`Comparison` knows nothing of how a comparison runs: a saved record loads, renders and
re-scores without the runner, the backends or torch (``llmcompare report`` and ``llmcompare
rescore`` use only this package, the scorers and :mod:`llmcompare.report`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ValidationError

from llmcompare.cost import Budget, CostTracker
from llmcompare.errors import ConfigurationError, LLMCompareError
from llmcompare.judges import Judge, JudgePanel, Judging, Ranking, judge_answers, ranking
from llmcompare.prompts import PromptItem
from llmcompare.ratelimit import stated_limits
from llmcompare.record import _aggregate
from llmcompare.record._load import Sweep, WhatIf
from llmcompare.record._types import FROZEN, ModelSummary, Pairwise, Row, RunInfo
from llmcompare.retry import DEFAULT_POLICY, RetryPolicy
from llmcompare.runs import ResponseCache, write_whole
from llmcompare.scorers import Scorer

if TYPE_CHECKING:
    import pandas as pd

    from llmcompare.decision import BreakEven
    from llmcompare.ratelimit import RateLimits

__all__ = ["Comparison"]


class _DamagedRecord(ConfigurationError, ValueError):
    """A record file that is not a whole record: the fix is in the message.

    A ``ValueError`` too, as pydantic's validation error was: code that caught that still does.
    """


class Comparison(BaseModel):
    """The full typed record of a comparison; JSON round-trips with :meth:`load`.

    Attributes:
        run: What it ran on.
        items: The prompt items.
        rows: One row per item, model and sample.
        summaries: One per model, in run order.
        differences: Every pair of models (in run order), compared on each item's mean score.
        judging: The judge's verdicts, each pair's figures and the judge's own cost, when the
            run was judged (``compare(judge=...)``, :meth:`rejudge`).
        sweeps: Each swept model's load sweep (``compare(..., load=[...])``): its figures at
            each level of requests in flight and its operating point.
        what_if: Models priced on the same items without sending anything
            (``compare(..., what_if=[...])``): estimated, not sent.
    """

    model_config = FROZEN

    run: RunInfo
    items: tuple[PromptItem, ...]
    rows: tuple[Row, ...]
    summaries: tuple[ModelSummary, ...]
    differences: tuple[Pairwise, ...] = ()
    judging: Judging | None = None
    sweeps: tuple[Sweep, ...] = ()
    what_if: tuple[WhatIf, ...] = ()

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

    def break_even(self, model_a: str, model_b: str, volume: float | None = None) -> BreakEven:
        """Monthly dollars against monthly requests for two models, and where they cross.

        An API model costs the run's mean dollars per request (its mean tokens at its
        prices); a local model runs on the run's hardware kept on all month (730 h at its
        $/hour, one machine per measured-throughput's worth of requests) plus energy per
        request. See :mod:`llmcompare.decision` for the whole model.

        Args:
            model_a: A model label of the run.
            model_b: Another one.
            volume: A monthly volume to check against the API models' stated rate limits
                (the crossover always is): the result's ``limits`` say when one key cannot
                serve it.

        Returns:
            The crossover volume (requests a month), or None with the reason, and the
            assumptions it rests on.

        Raises:
            KeyError: When a model is not in the run.
        """
        # Whitelisted facade import: decision reads the record, so it is imported on use.
        from llmcompare.decision import break_even

        return break_even(self, model_a, model_b, volume)

    def to_pandas(self) -> pd.DataFrame:
        """One row per item, model and sample, with the columns of the answers CSV.

        Raises:
            ConfigurationError: When pandas is not installed.
        """
        # Whitelisted facade import (upward, to the report that renders this record).
        from llmcompare.report import answers_frame

        return answers_frame(self)

    def _repr_html_(self) -> str:
        # Notebooks show a comparison as its summary table. Whitelisted facade import
        # (upward, to the report that renders this record).
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
        for model in (model_a, model_b):
            if model not in self.run.models:
                raise KeyError(f"{model!r} is not a model of this run: {list(self.run.models)}")
        found = _aggregate.difference(
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
        """Write the record as JSON, whole or not at all.

        The JSON goes to a temporary file in the same folder, synced to disk, which then
        replaces ``path`` in one step: a kill or a full disk leaves the earlier file (or none),
        never a part of one.

        Raises:
            OSError: When it cannot be written (the earlier file is left as it was).
        """
        return write_whole(path, self.model_dump_json(indent=2).encode("utf-8"))

    @classmethod
    def load(cls, path: str | Path) -> Comparison:
        """Read a record written by :meth:`save`.

        Raises:
            OSError: When the file cannot be read (it does not exist, say).
            ConfigurationError: When it is not a whole record (empty, cut short, not JSON, of
                another shape): one line that names the file and the fix. It is also a
                ``ValueError``, as a validation error was before.
        """
        p = Path(path)
        data = p.read_bytes()
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            first = exc.errors(include_input=False, include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            why = (
                "it is empty"
                if not data.strip()
                else (f"{where}: " if where else "") + first["msg"]
            )
            raise _DamagedRecord(
                f"{p} is not a whole record ({why}): run the same comparison on its folder "
                "again to rebuild it from answers.jsonl (nothing is sent for the answers there)"
            ) from None

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
        return _aggregate.rescored(
            self, scorers, replace=replace, allow_code_execution=allow_code_execution
        )

    def rejudge(
        self,
        judge: Judge | JudgePanel,
        *,
        out: str | os.PathLike[str] | None = None,
        cache: bool | ResponseCache = True,
        budget: Budget | None = None,
        concurrency: int = 8,
        retry: RetryPolicy | None = DEFAULT_POLICY,
        rpm: float | None = None,
        tpm: float | None = None,
        limits: Mapping[str, RateLimits] | None = None,
        progress: bool | None = None,
        refresh: bool = False,
    ) -> Comparison:
        """Judge the recorded answers again with another judge; no compared model is asked.

        The judge's requests run like a comparison's: concurrent, retried, rate-limited, under
        ``budget``, answered from the response cache when it has them, and (with ``out``, the
        run folder) written to ``judgments.jsonl`` as they arrive, so a stopped rejudge
        resumes. The answers that failed are not judged.

        Args:
            judge: A judge or a panel.
            out: The run folder to keep the judge's replies in, or None.
            cache: The response cache: True the shared one, False none, or give one.
            budget: Limits on the judge's dollars, tokens or requests.
            concurrency: Requests in flight per judge model.
            retry: The retry policy; None retries nothing.
            rpm: Requests per minute, at most, per judge model without limits of its own.
            tpm: Tokens per minute, at most, per judge model without limits of its own.
            limits: Own limits by name, as ``compare``'s ``limits=``: a judge's replace ``rpm``
                and ``tpm`` for it (``RateLimits()``: none at all). Entries of the record's
                models are allowed and unused (none is asked), so a config's plan's
                ``limits`` pass as they are.
            progress: Show a progress bar; None: when stderr is a terminal.
            refresh: Ask the judge again even when the cache has its reply.

        Returns:
            A new record: the same answers and scores, this judge's ``judging``, and in
            ``run.rate_limits`` this judge's limits instead of the earlier judge's (a judge
            named like a model of the record leaves that model's entry as it was: the
            decision reads the models' limits).

        Raises:
            ConfigurationError: For a pairwise judge of a one-model run, or ``limits`` naming
                neither a judge nor a model of the record, or not a
                :class:`~llmcompare.ratelimit.RateLimits` (nothing was sent).
        """
        answers = {
            (r.item_id, r.model, r.sample): r.completion
            for r in self.rows
            if r.completion is not None
        }
        # A plan's limits hold the models' entries too: not the judge's (a judge named like a
        # model has that entry).
        models = set(self.run.models) - {j.name for j in judge.judges}
        if isinstance(limits, Mapping):
            limits = {name: own for name, own in limits.items() if name not in models}
        store = ResponseCache() if cache is True else (cache or None)
        try:
            judging = judge_answers(
                judge,
                self.items,
                answers,
                self.run.models,
                tracker=CostTracker(budget, hardware=self.run.hardware),
                cache=store,
                out=out,
                concurrency=concurrency,
                retry=retry,
                rpm=rpm,
                tpm=tpm,
                limits=limits,
                progress=progress,
                refresh=refresh,
                hardware=self.run.hardware,
                confidence=self.run.confidence,
                seed=self.run.stats_seed,
            )
        finally:
            if cache is True and store is not None:
                store.close()
        # The limits the record states: the models' as they were, this judge's (its own, else
        # the shared ones) instead of the earlier judge's. A judge named like a model is that
        # model's entry, as in ``compare``.
        ran = self.run.models
        stated = {n: own for n, own in self.run.rate_limits.items() if n in ran}
        judges = [j.name for j in judge.judges if j.name not in ran]
        stated |= stated_limits(judges, limits or {}, rpm, tpm)
        run = self.run.model_copy(update={"rate_limits": stated})
        return self.model_copy(update={"judging": judging, "run": run})

    def ranking(self, *, resamples: int = 1000) -> Ranking:
        """The judged run's ranking: Bradley-Terry scores and the win-rate matrix.

        Bradley-Terry by maximum likelihood on the verdicts (a tie half a win to each), with
        bootstrap intervals over items at the run's confidence and seed, on an Elo-like scale
        (the models' mean at 1000); see :func:`llmcompare.judges.bradley_terry`.

        Raises:
            LLMCompareError: When the run was not judged, or no pair got a verdict.
        """
        if self.judging is None:
            raise LLMCompareError(
                "this run was not judged: compare(..., judge=...) or comparison.rejudge(judge)"
            )
        if not any(v.winner is not None for v in self.judging.verdicts):
            raise LLMCompareError("no pair of answers got a verdict: there is nothing to rank")
        return ranking(
            self.judging.verdicts,
            self.run.models,
            confidence=self.run.confidence,
            resamples=resamples,
            seed=self.run.stats_seed,
        )
