"""Run the same prompts on several models and gather, side by side, answers, scores, speed and cost.

:func:`compare` is the main job of llmcompare. Models run one after another (so a local model's
compute is not shared with another model's client work, which would skew its latency), each
through :func:`llmcompare.batch.generate_many`: local models batch tensors, API models run
concurrently, with retry, rate limits and one :class:`~llmcompare.cost.CostTracker` (and its
budget) across the whole run. With ``out=`` the run writes a run folder as it goes and resumes
from it; answers already paid for come from the response cache. The result is a typed
:class:`~llmcompare.record.Comparison` that reports render and that loads back from its JSON.

The steps of :func:`compare`, each in a private module of this package: the inputs checked and
the models built (``_inputs``), every request planned (``_plan``), each model run in turn
(``_run``), the answers aggregated into the record (``_record``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from typing_extensions import Unpack

from llmcompare.comparison._hosting import check_hosted, host
from llmcompare.comparison._inputs import DEFAULT_SETTINGS, Models, build_models, check_inputs
from llmcompare.comparison._judging import check_judge, judge_runs
from llmcompare.comparison._load import check_levels, plan_sweep, run_sweeps
from llmcompare.comparison._plan import config_record, plan_record, plan_runs
from llmcompare.comparison._record import build_record
from llmcompare.comparison._run import Sending, close_all, open_cache, run_models
from llmcompare.comparison._shelf import ShelfLifeWarning, shelf_lives
from llmcompare.comparison._what_if import check_what_if, price_what_if
from llmcompare.cost import Budget, LocalHardware
from llmcompare.judges import Judge, JudgePanel, Judging
from llmcompare.prompts import PromptItem
from llmcompare.ratelimit import RateLimits, check_limits, stated_limits
from llmcompare.record import Comparison, Slo, parse_slo
from llmcompare.retry import DEFAULT_POLICY, RetryPolicy
from llmcompare.runs import RunFolder
from llmcompare.scorers import Scorer
from llmcompare.types import Settings

if TYPE_CHECKING:
    from llmcompare.executors import Executor
    from llmcompare.runs import ResponseCache

__all__ = ["DEFAULT_SETTINGS", "ShelfLifeWarning", "compare"]


def compare(
    models: Models,
    prompts: Iterable[PromptItem | str | Mapping[str, Any]] | str | Path | Any | None = None,
    *,
    scorers: Sequence[Scorer] = (),
    samples: int = 1,
    concurrency: int = 8,
    retry: RetryPolicy | None = DEFAULT_POLICY,
    rpm: float | None = None,
    tpm: float | None = None,
    limits: Mapping[str, RateLimits] | None = None,
    budget: Budget | None = None,
    hardware: LocalHardware | None = None,
    progress: bool | None = None,
    overrides: Mapping[str, Settings] | None = None,
    out: str | os.PathLike[str] | None = None,
    force_new: bool = False,
    cache: bool | ResponseCache = True,
    refresh: bool = False,
    confidence: float = 0.95,
    stats_seed: int = 0,
    executor: Executor | None = None,
    allow_code_execution: bool = False,
    pass_at: Sequence[int] | None = None,
    judge: Judge | JudgePanel | None = None,
    hosted: Mapping[str, str | Mapping[str, Any] | LocalHardware] | None = None,
    load: Sequence[int] | None = None,
    slo: str | Slo | None = None,
    what_if: Sequence[str] = (),
    **settings: Unpack[Settings],
) -> Comparison:
    """Run every prompt on every model and gather answers, scores, latency, tokens and cost.

    Everything that can be checked is checked before the first request is sent: the prompts and
    their ids (unique), every item's scorers and references (a regex that does not compile, a
    numeric reference without a number, an empty ``contains`` reference), the settings of every
    model (``overrides`` must name models of the run), the budget and the run folder.

    Args:
        models: Models, or names for :func:`llmcompare.get_model` (models built from names are
            closed at the end); a mapping ``{label: model}`` names them in the record (two
            OpenAI-compatible servers serving the same model, say).
        prompts: Items, strings, mappings, a prompt file path, a suite name (``"humaneval"``),
            a ``datasets.Dataset`` (or a ``DatasetDict`` with one split), a pandas DataFrame, a
            saved dataset's folder or a hub id ``"hf:NAME[:CONFIG[:SPLIT]]"`` whose columns
            are the item's fields (for other columns, see :func:`llmcompare.sources.load_source`);
            ``None`` runs the built-in suite.
        scorers: Scorers applied to every item, besides each item's own.
        samples: How many times to run each item on each model. With more than one, sample
            ``s`` is sent with ``seed = base + s`` (``base``: the ``seed`` setting, else 0), the
            seeds are recorded per row, and intervals treat an item's samples as one cluster.
            At temperature 0 this shows a backend's own nondeterminism.
        concurrency: Requests in flight per API model; a local model that batches gets every
            pending request, bounded by its own limits (``max_batch_size``).
        retry: Retry policy for transient failures (the default: 4 attempts within 60 s);
            ``None`` retries nothing, as everywhere in llmcompare.
        rpm: Requests-per-minute limit, applied to each model (and judge) on its own.
        tpm: Tokens-per-minute limit, applied to each model (and judge) on its own.
        limits: Each model's own limits, by label, and each judge's, by its ``name`` (a
            judge named like a model of the run gets that model's entry): they replace
            ``rpm`` and ``tpm`` for that model or judge (``RateLimits()``: none at all). The
            record's configuration keeps them as given, and its ``run.rate_limits`` what each
            model and judge was held to.
        budget: Limits on dollars, tokens or requests across the run, enforced before sending.
        hardware: Local cost assumptions (dollars per hour, watts, grid carbon) for open models;
            without it the generic cloud VM of :class:`~llmcompare.cost.LocalHardware` is
            assumed and local costs are marked ``"estimated"``.
        progress: Show a progress bar; ``None`` shows one when stderr is a terminal.
        overrides: Settings per model (by label) that replace the shared ones for that model.
        out: A run folder: the plan first, each answer as it arrives, the record at the end
            (``comparison.json``). Run the same comparison on it again to resume: only what is
            missing is sent. See :class:`~llmcompare.runs.RunFolder`.
        force_new: Start over in an ``out`` folder that holds another comparison, instead of
            refusing it.
        cache: The response cache: ``True`` (the default) uses the shared one
            (:class:`~llmcompare.runs.ResponseCache`), ``False`` none, or give one. An answer
            found there is not sent again; its row says ``cached=True`` and keeps the timings
            and cost of the run that got it. Errors are never cached.
        refresh: Send every request even when the cache has its answer (and store the new
            answers).
        confidence: The level of every interval (0.95: 95%).
        stats_seed: Seed of the bootstraps and permutation tests, so the figures repeat.
        executor: Where local models run: None (the default) in this process; a
            :class:`~llmcompare.executors.RayExecutor` shards each local model's requests across
            Ray actors (API models still run here). Answers are recorded as they arrive either
            way, so resume and the cache work the same. A ``budget`` cannot be enforced on
            an executor's workers, so a budget with a model the executor runs is refused.
        allow_code_execution: Let code scorers (``unit_tests``, as HumanEval's items name)
            run the code the models write, in the sandbox of :mod:`llmcompare.sandbox`. Off by
            default: such items are then refused before anything is sent.
        pass_at: The k values of pass@k reported for code scorers, each at most ``samples``;
            by default 1 and ``samples`` (only 1 at temperature 0, where k > 1 is refused:
            greedy samples are one answer repeated).
        judge: A judge (:class:`~llmcompare.judges.PairwiseJudge`,
            :class:`~llmcompare.judges.PointwiseJudge`) or a
            :class:`~llmcompare.judges.JudgePanel`: once the models have answered, it judges
            every item's answers (each pair of models, or each answer), its requests sent
            through this run (concurrency, retry, rate limits, the budget, the cache, and
            ``judgments.jsonl`` in ``out``). The record's ``judging`` holds the verdicts, each
            pair's figures and the judge's cost, apart from the models'.
        hosted: Hosted models, by label: the machine each is served from (a preset name such
            as ``"h100"``, see :func:`llmcompare.cost.hosting_presets`, or its figures
            ``{"usd_per_hour": 2.99, "watts": 700, "name": ...}``). A hosted model is open
            weights in the record; its requests cost their share of the time the server was
            busy with them at that rate, never a token price.
        load: Levels of requests in flight to sweep (``[1, 4, 16, 64]``): once the models
            have answered, each model's items are sent again at each level, timed and never
            from the cache (an engine that batches gets ``level`` rows a batch). Before
            anything is sent the sweep's request count and worst-case cost are said; a sweep
            whose worst case exceeds the budget's dollars is refused. The record's ``sweeps``
            hold each level's figures.
        slo: A latency target (``"ttft_p95<=1,latency_p95<=10"``, seconds): each swept
            model's operating point is its highest throughput that meets it.
        what_if: Models to price on the same items without sending them anything
            (``"chatgpt:gpt-5.4-mini"``): input tokens counted with the model's tokenizer
            offline, output tokens estimated from the run's answers, at its table prices. The
            record's ``what_if`` holds them, marked estimated, not sent; the decision shows a
            break-even against each.
        **settings: Generation settings shared by every model, on top of the defaults
            (greedy, ``max_tokens=256``).

    Returns:
        The typed record of the run.

    Raises:
        LLMCompareError: When there are no models or no prompts.
        ConfigurationError: For any input that cannot run (nothing was sent).
        KeyboardInterrupt: On Ctrl-C: the answers so far are in ``out``; run again to resume.
    """
    inputs = check_inputs(
        models, prompts, settings, scorers, samples, confidence, stats_seed, allow_code_execution
    )
    judges = check_judge(judge, len(models))
    priced_only = check_what_if(what_if)
    machines = check_hosted(hosted or {})
    built, owned = build_models(models)
    folder: RunFolder | None = None
    store: ResponseCache | None = None
    judging: Judging | None = None
    try:
        try:
            runs, ks, tracker = plan_runs(
                built, inputs, overrides or {}, pass_at, budget, hardware, executor
            )
            labels = [r.label for r in runs]
            # A judge named like a model has that model's entry: one name, one entry.
            own = check_limits(
                limits,
                [*labels, *judges],
                lambda unknown: (
                    f"limits name models that are not in this run, nor judges of it: {unknown}; "
                    f"its models: {labels}; its judges: {list(judges) or 'none'}"
                ),
            )
            # Before anything is sent: a model past or near its shutdown date is warned about.
            shelf = shelf_lives({r.label: r.model for r in runs}, date.today())
            host(runs, machines, tracker)
            levels = check_levels(load) if load is not None else ()
            target = parse_slo(slo) if isinstance(slo, str) else slo
            if levels:
                # Said whatever the progress bar: what a sweep will send and cost, before it does.
                print(plan_sweep(runs, levels, budget), file=sys.stderr)
            sending = Sending(
                concurrency, retry, rpm, tpm, own, tracker, progress, refresh, executor
            )
            if out is not None:
                # From here to its record, the folder is this run's alone (see RunFolder).
                folder = RunFolder(
                    out,
                    plan_record(runs, inputs, overrides),
                    config_record(runs, inputs, budget, hardware, sending),
                    force_new=force_new,
                )
            store = open_cache(cache)
            started = datetime.now(timezone.utc)
            run_models(runs, sending, folder, store)
            sweeps = run_sweeps(runs, levels, target, sending) if levels else ()
            estimates = price_what_if(runs, priced_only) if priced_only else ()
            if judge is not None:
                judging = judge_runs(judge, runs, inputs, sending, folder, store, hardware)
        finally:
            close_all(store if cache is True else None, owned)
        return build_record(
            runs,
            inputs,
            hardware,
            started,
            ks,
            folder,
            judging,
            shelf,
            sweeps,
            estimates,
            # A judge named like a model is that model's entry.
            stated_limits([*labels, *judges], sending.limits, sending.rpm, sending.tpm),
        )
    finally:
        if folder is not None:
            folder.close()
