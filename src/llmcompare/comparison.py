"""Run the same prompts on several models and gather, side by side, answers, scores, speed and cost.

:func:`compare` is the main job of llmcompare. Models run one after another (so a local model's
compute is not shared with another model's client work, which would skew its latency), each
through :func:`llmcompare.batch.generate_many`: local models batch tensors, API models run
concurrently, with retry, rate limits and one :class:`~llmcompare.cost.CostTracker` (and its
budget) across the whole run. With ``out=`` the run writes a run folder as it goes and resumes
from it; answers already paid for come from the response cache. The result is a typed
:class:`~llmcompare.record.Comparison` that reports render and that loads back from its JSON.
"""

from __future__ import annotations

import os
import platform
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from typing_extensions import Unpack

from llmcompare import _aggregate
from llmcompare._version import __version__
from llmcompare.batch import generate_many
from llmcompare.batch._results import error_record
from llmcompare.cost import (
    GENERIC_CLOUD_VM,
    Budget,
    CostTracker,
    LocalHardware,
    cost_of,
    oldest_price_date,
)
from llmcompare.errors import ConfigurationError, LLMCompareError
from llmcompare.model import Model, ModelBase, _native_batching, _native_streaming
from llmcompare.plugins import get_model
from llmcompare.prompts import PROMPT_FILE_SUFFIXES, PromptItem, builtin_suite, load_prompts
from llmcompare.record import Comparison, ErrorInfo, ModelSummary, Row, RunInfo
from llmcompare.retry import DEFAULT_POLICY, RetryPolicy
from llmcompare.runs._folder import RunFolder, fingerprint
from llmcompare.runs._journal import journal_in
from llmcompare.schema import check_formats
from llmcompare.scorers import Scorer, check_item, scorer_name
from llmcompare.types import GenerationSettings, Request, Result, Settings

if TYPE_CHECKING:
    from llmcompare.executors import Executor
    from llmcompare.runs import ResponseCache

__all__ = ["DEFAULT_SETTINGS", "compare"]

DEFAULT_SETTINGS: Settings = {"temperature": 0.0, "max_tokens": 256}
"""Settings used when a comparison is given none: greedy, so reruns give the same answers."""


Models = Sequence[Model | str] | Mapping[str, Model | str]
"""Models to compare: a list (each named by its id) or a mapping from a label to a model."""


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
        rpm: Requests-per-minute limit, applied to each model on its own.
        tpm: Tokens-per-minute limit, applied to each model on its own.
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
        **settings: Generation settings shared by every model, on top of the defaults
            (greedy, ``max_tokens=256``).

    Returns:
        The typed record of the run.

    Raises:
        LLMCompareError: When there are no models or no prompts.
        ConfigurationError: For any input that cannot run (nothing was sent).
        KeyboardInterrupt: On Ctrl-C: the answers so far are in ``out``; run again to resume.
    """
    if not models:
        raise LLMCompareError("compare needs at least one model")
    _check_options(samples, confidence, stats_seed, scorers)
    items = _items(prompts)
    shared: dict[str, Any] = {**DEFAULT_SETTINGS, **settings}
    scoring = _aggregate.Scoring(scorers, allow_code_execution=allow_code_execution)
    # Validate every item's scorers before any model runs: a typo should not cost a whole run.
    for item in items:
        for scorer in scoring.for_item(item):
            check_item(scorer, item)

    given = list(models.items()) if isinstance(models, Mapping) else [(None, m) for m in models]
    built = [(label, get_model(m) if isinstance(m, str) else m) for label, m in given]
    owned = [m for (_, m), (_, g) in zip(built, given, strict=True) if isinstance(g, str)]
    store: ResponseCache | None = None
    folder: RunFolder | None = None
    try:
        runs = [_ModelRun(label or model.id, model) for label, model in built]
        labels = [r.label for r in runs]
        if len(set(labels)) != len(labels):
            raise ConfigurationError(
                f"each model must appear once; got {labels} (give a mapping of labels to "
                "models to compare one model twice)"
            )
        unknown = sorted(set(overrides or {}) - set(labels))
        if unknown:
            raise ConfigurationError(
                f"overrides name models that are not in this run: {unknown}; its models: {labels}"
            )
        ks = _greedy_pass_at(pass_at, _pass_at(pass_at, samples), runs, shared, overrides or {})
        tracker = _tracker(budget, hardware, executor, runs)
        # Every request of every model is built (and so validated) before the first is sent.
        for run in runs:
            run.plan(items, samples, shared, (overrides or {}).get(run.label, {}))
        if out is not None:
            folder = RunFolder(
                out,
                _plan_record(runs, items, shared, overrides, samples),
                _config_record(runs, scorers, budget, hardware, concurrency, retry, rpm, tpm),
                force_new=force_new,
            )
        store = _open_cache(cache)
        started = datetime.now(timezone.utc)
        saved = folder.answers() if folder is not None else {}
        for run in runs:
            run.resume(saved)
            # Answers read back were paid for by this comparison: the budget counts them.
            for i, done in run.done.items():
                if done.completion is not None and not run.cached[i]:
                    tracker.record(done.completion)
            if store is not None and not refresh:
                run.from_cache(store, folder)
            run.send(
                concurrency=concurrency,
                retry=retry,
                rpm=rpm,
                tpm=tpm,
                tracker=tracker,
                progress=progress,
                folder=folder,
                store=store,
                refresh=refresh,
                executor=executor,
            )
    finally:
        if folder is not None:
            folder.close()
        if store is not None and cache is True:
            store.close()
        for model in owned:
            model.close()
    if folder is not None and not any(r.sent for r in runs):
        finished = folder.path / "comparison.json"
        if finished.exists():
            # A finished run asked again: nothing was sent, so its record stands (rescored,
            # since scorers may have changed); its timings are the run's, not this call's.
            return _aggregate.rescored(
                Comparison.load(finished),
                scorers,
                replace=False,
                allow_code_execution=allow_code_execution,
            )
    by_id = {item.id: item for item in items}
    rows = tuple(
        _row(by_id[item_id], run.label, sample, result, scoring, hardware, cached)
        for run in runs
        for (item_id, sample), result, cached in zip(
            run.keys, run.results(), run.cached, strict=True
        )
    )
    result = Comparison(
        run=RunInfo(
            llmcompare_version=__version__,
            started_at=started,
            finished_at=datetime.now(timezone.utc),
            python=platform.python_version(),
            platform=f"{platform.system()} {platform.machine()}",
            cpu=cpu_name(),
            gpu=_gpu_name(),
            price_table_date=_oldest_price_date(rows),
            hardware=(hardware or GENERIC_CLOUD_VM)
            if any(r.model.info.open_weights for r in runs)
            else None,
            settings=shared,
            models=tuple(labels),
            model_ids={r.label: r.model.id for r in runs},
            samples=samples,
            confidence=confidence,
            stats_seed=stats_seed,
            scorers=tuple(scorer_name(s) for s in scorers),
            pass_at=ks,
        ),
        items=tuple(items),
        rows=rows,
        summaries=tuple(
            _throughput(summary, run, rows)
            for summary, run in zip(
                _aggregate.summaries(
                    labels,
                    {r.label: r.model.info.open_weights for r in runs},
                    rows,
                    {r.label: r.wall_s for r in runs},
                    confidence,
                    stats_seed,
                    pass_at=ks,
                    code_scorers=scoring.pass_at_k_names(items),
                ),
                runs,
                strict=True,
            )
        ),
        differences=_aggregate.differences(labels, rows, confidence, stats_seed),
    )
    if folder is not None:
        result.save(folder.path / "comparison.json")
    return result


def _check_options(
    samples: int, confidence: float, stats_seed: int, scorers: Sequence[Scorer]
) -> None:
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ConfigurationError(f"samples must be a whole number of at least 1, got {samples!r}")
    if not 0 < confidence < 1:
        raise ConfigurationError(f"confidence must be between 0 and 1, got {confidence!r}")
    if isinstance(stats_seed, bool) or not isinstance(stats_seed, int) or stats_seed < 0:
        raise ConfigurationError(f"stats_seed must be a whole number >= 0, got {stats_seed!r}")
    for scorer in scorers:
        if not callable(scorer):
            raise ConfigurationError(
                f"scorers must be callables (completion, item) -> float | bool | None; got "
                f"{scorer!r}"
            )


def _pass_at(pass_at: Sequence[int] | None, samples: int) -> tuple[int, ...]:
    if pass_at is None:
        return tuple(sorted({1, samples}))
    ks = tuple(pass_at)
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= samples:
            raise ConfigurationError(
                f"pass_at takes whole numbers k with 1 <= k <= samples ({samples}), got {k!r}: "
                "pass@k needs at least k samples of each item"
            )
    return tuple(sorted(set(ks)))


def _greedy_pass_at(
    pass_at: Sequence[int] | None,
    ks: tuple[int, ...],
    runs: Sequence[_ModelRun],
    shared: Mapping[str, Any],
    overrides: Mapping[str, Mapping[str, Any]],
) -> tuple[int, ...]:
    """The k values of pass@k, refusing k > 1 where a model samples greedily.

    At temperature 0 every sample is the same answer, so pass@k would be pass@1 under another
    name: an explicit k > 1 is refused; the default keeps only pass@1.
    """
    greedy = [
        r.label for r in runs if {**shared, **overrides.get(r.label, {})}.get("temperature") == 0
    ]
    if not greedy or max(ks) == 1:
        return ks
    if pass_at is None:
        return (1,)
    raise ConfigurationError(
        f"pass_at={list(ks)} at temperature 0 ({', '.join(greedy)}): greedy samples are one "
        "answer repeated, so pass@k > 1 would be pass@1; set a temperature (e.g. "
        "temperature=0.8) or ask only for pass_at=[1]"
    )


@dataclass
class _ModelRun:
    """One model's part of a comparison: its requests, and where each answer came from."""

    label: str
    model: Model
    requests: list[Request] = field(default_factory=list)
    keys: list[tuple[str, int]] = field(default_factory=list)  # (item id, sample) per request
    hashes: list[str] = field(default_factory=list)  # the identity of each request as sent
    done: dict[int, Result] = field(default_factory=dict)
    cached: list[bool] = field(default_factory=list)
    sent: set[int] = field(default_factory=set)  # requests sent by this call, not read back
    wall_s: float = 0.0
    # The model's cache identity, asked for once (it may load weights) when first needed.
    identity: dict[str, Any] | None = None
    identity_known: bool = False

    def plan(
        self,
        items: Sequence[PromptItem],
        samples: int,
        shared: Mapping[str, Any],
        override: Mapping[str, Any],
    ) -> None:
        merged: dict[str, Any] = {**shared, **dict(override)}
        base = merged.get("seed")
        for sample in range(samples):
            if samples > 1:
                # Each sample its own seed, recorded with its row: samples differ, reruns repeat.
                merged["seed"] = (base or 0) + sample
            for item in items:
                own = item.json_schema
                # An item's schema is its response_format unless the call gives one (or None).
                extra = (
                    {"response_format": own}
                    if own is not None and "response_format" not in merged
                    else {}
                )
                request = Request.of(item.conversation(), **merged, **extra)
                self.requests.append(request)
                self.keys.append((item.id, sample))
                self.hashes.append(fingerprint(request.model_dump(mode="json")))
        self.cached = [False] * len(self.requests)
        # The model refuses now a setup it cannot run (a ChatGPT model without structured
        # outputs, a missing llguidance): every run is planned before any request is sent.
        check_formats(self.model, self.requests)

    def resume(self, saved: Mapping[tuple[str, str, int], Any]) -> None:
        """Take the answers a run folder already holds for exactly these requests."""
        for i, (item_id, sample) in enumerate(self.keys):
            answer = saved.get((self.label, item_id, sample))
            if answer is not None and answer.request == self.hashes[i]:
                self.done[i] = Result(i, self.requests[i], completion=answer.completion)
                self.cached[i] = answer.cached

    def cache_key(self, i: int) -> str | None:
        """Request ``i``'s key in the response cache; None when this model is not cached."""
        if not self.identity_known:
            self.identity, self.identity_known = _identity(self.model), True
        if self.identity is None:
            return None
        from llmcompare.runs import request_key

        return request_key(self.identity, self.requests[i], self.keys[i][1])

    def from_cache(self, store: ResponseCache, folder: RunFolder | None) -> None:
        """Take the answers the response cache holds; they are not sent again."""
        for i in range(len(self.requests)):
            if i in self.done:
                continue
            key = self.cache_key(i)
            if key is None:
                return
            found = store.get(key)
            if found is None:
                continue
            self.done[i] = Result(i, self.requests[i], completion=found)
            self.cached[i] = True
            if folder is not None:
                item_id, sample = self.keys[i]
                folder.record(
                    self.label, item_id, sample, self.hashes[i], completion=found, cached=True
                )

    def send(
        self,
        *,
        concurrency: int,
        retry: RetryPolicy | None,
        rpm: float | None,
        tpm: float | None,
        tracker: CostTracker,
        progress: bool | None,
        folder: RunFolder | None,
        store: ResponseCache | None,
        refresh: bool,
        executor: Executor | None = None,
    ) -> None:
        """Send what is still missing; each answer is saved the moment it arrives."""
        todo = [i for i in range(len(self.requests)) if i not in self.done]
        if not todo:
            return
        model = self.model
        remote = executor if executor is not None and executor.handles(model) else None
        try:
            # Loading weights is not answering: keep it out of the first request's latency.
            # (An executor's workers load their own.)
            if remote is None:
                model.warm_up()
        except Exception as exc:  # noqa: BLE001 - one model that cannot load must not lose the others
            for i in todo:
                self.done[i] = Result(i, self.requests[i], error=exc)
            return

        if store is not None:
            # The identity before the first answer, not on the event loop as answers arrive:
            # a local model's may hash its weights file.
            self.cache_key(todo[0])

        def arrived(result: Result) -> None:
            i = todo[result.index]
            self.sent.add(i)
            item_id, sample = self.keys[i]
            self.done[i] = Result(i, self.requests[i], result.completion, result.error)
            if folder is not None:
                if result.completion is not None:
                    folder.record(
                        self.label, item_id, sample, self.hashes[i], completion=result.completion
                    )
                else:
                    assert result.error is not None
                    folder.record(
                        self.label,
                        item_id,
                        sample,
                        self.hashes[i],
                        error=error_record(result.error),
                    )
            key = self.cache_key(i) if store is not None and result.completion else None
            if store is not None and key is not None and result.completion is not None:
                try:
                    store.put(key, result.completion, model=model.id, replace=refresh)
                except (LLMCompareError, ValueError, OSError) as exc:
                    # A lost cache entry costs a request later; a lost run costs them all.
                    warnings.warn(
                        f"{model.id}: answer not cached ({exc})", RuntimeWarning, stacklevel=2
                    )

        start = time.perf_counter()
        if remote is not None:

            def counted(result: Result) -> None:
                if result.completion is not None:
                    tracker.record(result.completion)
                arrived(result)

            def ready() -> None:
                # The clock starts once every worker has loaded the model, as warm_up is
                # kept out of it in this process.
                nonlocal start
                start = time.perf_counter()

            remote.run(
                model,
                [self.requests[i] for i in todo],
                batch_size=concurrency,
                on_result=counted,
                on_ready=ready,
            )
            self.wall_s = time.perf_counter() - start
            return
        # Batch API ids go to the run folder the moment they exist (llmcompare.runs._journal).
        with journal_in(folder.path if folder is not None else None, fresh=refresh):
            generate_many(
                model,
                [self.requests[i] for i in todo],
                concurrency=concurrency,
                retry=retry,
                rpm=rpm,
                tpm=tpm,
                tracker=tracker,
                progress=progress,
                # Streaming where the model streams and does not batch: each answer's time to
                # first token is then measured, not assumed.
                stream=_native_streaming(model) and not _native_batching(model),
                on_result=arrived,
            )
        self.wall_s = time.perf_counter() - start

    def results(self) -> list[Result]:
        return [self.done[i] for i in range(len(self.requests))]


def _tracker(
    budget: Budget | None,
    hardware: LocalHardware | None,
    executor: Executor | None,
    runs: Sequence[_ModelRun],
) -> CostTracker:
    """The run's cost tracker; a budget with models an executor runs is refused.

    A budget is enforced before each request is sent, which only this process can do.
    """
    if budget is None or executor is None:
        return CostTracker(budget=budget, hardware=hardware)
    remote = [r.label for r in runs if executor.handles(r.model)]
    if remote:
        raise ConfigurationError(
            f"a budget cannot be enforced on models the executor runs ({', '.join(remote)}): "
            "drop the budget, or run them in this process (no executor / --ray-workers)"
        )
    return CostTracker(budget=budget, hardware=hardware)


def _throughput(summary: ModelSummary, run: _ModelRun, rows: Sequence[Row]) -> ModelSummary:
    """Throughput over what this call sent and timed: answers read back were timed elsewhere."""
    # The model's rows are in the order of its requests, so request i is row i.
    mine = [r for r in rows if r.model == run.label]
    tokens = sum(c.usage.output_tokens for i in run.sent if (c := mine[i].completion) is not None)
    rate = tokens / run.wall_s if run.sent and run.wall_s > 0 else None
    return summary.model_copy(update={"output_tokens_per_s": rate})


def _identity(model: Model) -> dict[str, Any] | None:
    """The model's cache identity, or None when it cannot be cached (a test double, say)."""
    from llmcompare.runs import model_identity

    try:
        return model_identity(model)
    except Exception as exc:  # noqa: BLE001 - no identity: no cache for this model, not a failed run
        warnings.warn(
            f"{model.id}: not cached ({type(exc).__name__}: {exc})", RuntimeWarning, stacklevel=3
        )
        return None


def _open_cache(cache: bool | ResponseCache) -> ResponseCache | None:
    if cache is False:
        return None
    if cache is True:
        from llmcompare.runs import ResponseCache

        return ResponseCache()
    return cache


def _plan_record(
    runs: Sequence[_ModelRun],
    items: Sequence[PromptItem],
    shared: Mapping[str, Any],
    overrides: Mapping[str, Settings] | None,
    samples: int,
) -> dict[str, Any]:
    """What makes two runs the same comparison: change any of it and a folder is not resumed.

    The requests as validated (so ``temperature=0`` and ``0.0`` are one setting), not the items'
    references, scorers or tags: scores are computed at the end, so those may change.
    """
    return {
        "models": {r.label: _model_record(r.model) for r in runs},
        "settings": _settings_record(shared),
        "overrides": {k: _settings_record(v) for k, v in (overrides or {}).items()},
        "requests": {r.label: fingerprint(r.hashes) for r in runs},
        "items": len(items),
        "samples": samples,
    }


def _settings_record(settings: Mapping[str, Any]) -> dict[str, Any]:
    # Validated, so that temperature=0 and 0.0, or stop="x" and ["x"], are one setting.
    return GenerationSettings.model_validate(dict(settings)).model_dump(
        mode="json", exclude_unset=True
    )


def _model_record(model: Model) -> Any:
    # An API model's identity is cheap and names its server: the same id on another server is
    # another model. A local model's would load its weights; its id and description say which
    # weights it runs.
    if isinstance(model, ModelBase) and not model.info.open_weights:
        try:
            identity = model.cache_identity()
        except Exception:  # noqa: BLE001 - no identity: the id alone, as for local models
            identity = None
        if identity is not None:
            return {"id": model.id, "identity": identity}
    return {"id": model.id, "description": model.info.description}


def _config_record(
    runs: Sequence[_ModelRun],
    scorers: Sequence[Scorer],
    budget: Budget | None,
    hardware: LocalHardware | None,
    concurrency: int,
    retry: RetryPolicy | None,
    rpm: float | None,
    tpm: float | None,
) -> dict[str, Any]:
    """The rest of the configuration, for the record: scorers, budget, limits (no secrets)."""
    return {
        "llmcompare": __version__,
        "models": [
            {"label": r.label, "id": r.model.id, "info": r.model.info.model_dump(mode="json")}
            for r in runs
        ],
        "scorers": [scorer_name(s) for s in scorers],
        "budget": None if budget is None else budget.model_dump(mode="json"),
        "hardware": None if hardware is None else hardware.model_dump(mode="json"),
        "concurrency": concurrency,
        "retry": None
        if retry is None
        else {"attempts": retry.attempts, "deadline_s": retry.deadline_s},
        "rpm": rpm,
        "tpm": tpm,
    }


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


def _items(
    prompts: Iterable[PromptItem | str | Mapping[str, Any]] | str | Path | Any | None,
) -> list[PromptItem]:
    from llmcompare import sources

    if prompts is None:
        items = builtin_suite()
    elif sources.is_source(prompts):
        items = sources.load_source(prompts)
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


def _row(
    item: PromptItem,
    label: str,
    sample: int,
    result: Result,
    scoring: _aggregate.Scoring,
    hardware: LocalHardware | None,
    cached: bool,
) -> Row:
    seed = result.request.seed
    if result.completion is None:
        assert result.error is not None
        return Row(
            item_id=item.id, model=label, sample=sample, seed=seed, error=ErrorInfo.of(result.error)
        )
    completion = result.completion
    return Row(
        item_id=item.id,
        model=label,
        sample=sample,
        seed=seed,
        completion=completion,
        scores=scoring.score(item, completion),
        cost=cost_of(completion, hardware=hardware),
        cached=cached,
    )


def _oldest_price_date(rows: Sequence[Row]) -> date | None:
    """The oldest check date of the prices this run's API answers were costed with."""
    # The reported name counts: a dated snapshot may have a price entry of its own.
    used = {(r.completion.model, r.completion.response_model) for r in rows if r.completion}
    return oldest_price_date(used)


def _looks_like_file(text: str) -> bool:
    return Path(text).suffix.lower() in PROMPT_FILE_SUFFIXES or (
        "\n" not in text and Path(text).is_file()
    )
