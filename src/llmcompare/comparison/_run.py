"""Running a comparison's models, one after another, each answer kept the moment it arrives.

A model's turn (:func:`run_model`): the answers its run folder already holds are read back,
then those the response cache holds, and only what is still missing is sent, through
:func:`~llmcompare.batch.generate_many` in this process or an executor's workers. Every answer
goes to the run folder and the cache as it arrives, under its request's key, so a run that stops
resumes where it was and never pays twice.
"""

from __future__ import annotations

import platform
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING

from llmcompare.batch import generate_many
from llmcompare.batch._results import error_record
from llmcompare.cost import CostTracker
from llmcompare.errors import LLMCompareError, user_stacklevel
from llmcompare.model import Model, _native_batching, _native_streaming
from llmcompare.ratelimit import RateLimits, limits_of
from llmcompare.retry import RetryPolicy
from llmcompare.runs import ResponseCache
from llmcompare.runs._folder import Answer, RunFolder
from llmcompare.runs._journal import journal_in
from llmcompare.types import Result

# Where a comparison's answers are timed: named on each answer it sends (Completion.measured_on).
_HOST = platform.node() or "this machine"

if TYPE_CHECKING:
    from llmcompare.comparison._plan import ModelRun, PlannedRequest
    from llmcompare.executors import Executor

__all__ = ["Sending", "close_all", "open_cache", "run_model", "run_models"]


@dataclass(frozen=True)
class Sending:
    """How a comparison sends its requests (see :func:`~llmcompare.compare`'s arguments).

    Attributes:
        concurrency: Requests in flight per API model (a batch's size on an executor).
        retry: The retry policy; None retries nothing.
        rpm: The requests-per-minute limit of each model.
        tpm: The tokens-per-minute limit of each model.
        limits: Own limits by model label and by judge name, replacing ``rpm`` and ``tpm``
            for them.
        tracker: Cost and budget across the whole run.
        progress: Show a progress bar; None: when stderr is a terminal.
        refresh: Send every request even when the cache has its answer.
        executor: Where local models run; None: in this process.
    """

    concurrency: int
    retry: RetryPolicy | None
    rpm: float | None
    tpm: float | None
    limits: Mapping[str, RateLimits]
    tracker: CostTracker
    progress: bool | None
    refresh: bool
    executor: Executor | None


def open_cache(cache: bool | ResponseCache) -> ResponseCache | None:
    """The response cache to use: the shared one, none, or the one given."""
    if cache is False:
        return None
    if cache is True:
        return ResponseCache()
    return cache


def close_all(store: ResponseCache | None, owned: Sequence[Model]) -> None:
    """Close the cache this run opened and the models it built.

    The run folder stays open (and locked) until the record is written in it.
    """
    if store is not None:
        store.close()
    for model in owned:
        model.close()


def run_models(
    runs: Sequence[ModelRun],
    sending: Sending,
    folder: RunFolder | None,
    store: ResponseCache | None,
) -> None:
    """Run every model in turn: a local model's compute is never shared with another's."""
    saved = folder.answers() if folder is not None else {}
    charged = folder.charges() if folder is not None else {}
    for run in runs:
        # A hosted server's GPU on this machine: its counter over the model's whole turn.
        start = run.meter.read() if run.meter is not None else None
        run_model(run, sending, folder, store, saved, charged)
        if run.meter is not None and run.sent:
            run.joules = run.meter.joules(start, run.meter.read())


def run_model(
    run: ModelRun,
    sending: Sending,
    folder: RunFolder | None,
    store: ResponseCache | None,
    saved: Mapping[tuple[str, str, int], Answer],
    charged: Mapping[tuple[str, str, int], Sequence[tuple[str, Decimal | None, int]]],
) -> None:
    """One model's turn: its answers read back, then taken from the cache, then sent."""
    if folder is not None or store is not None:
        run.name_requests(warn=store is not None)
    _resume(run, saved, charged)
    # Answers read back were paid for by this comparison, and failures read back that may be
    # billed (a timeout) were charged, even those a later attempt answered: the budget counts
    # them all, each row once.
    for planned in run.requests:
        done = planned.result
        if done is not None and done.completion is not None and not planned.cached:
            sending.tracker.record(done.completion)
        for usd, tokens in planned.charged_before:
            sending.tracker.record_unanswered(run.model.id, usd, tokens)
    if store is not None and not sending.refresh and run.cacheable:
        _from_cache(run, store, folder)
    _send(run, sending, folder, store if run.cacheable else None)


def _resume(
    run: ModelRun,
    saved: Mapping[tuple[str, str, int], Answer],
    charged: Mapping[tuple[str, str, int], Sequence[tuple[str, Decimal | None, int]]],
) -> None:
    """Take the answers, and the charges of failures, a run folder holds for these requests."""
    for i, planned in enumerate(run.requests):
        where = (run.label, planned.item_id, planned.sample)
        answer = saved.get(where)
        if answer is not None and answer.request == planned.key:
            run.answer(i, answer.completion).cached = answer.cached
        planned.charged_before = tuple(
            (usd, tokens)
            for request, usd, tokens in charged.get(where, ())
            if request == planned.key
        )


def _from_cache(run: ModelRun, store: ResponseCache, folder: RunFolder | None) -> None:
    """Take the answers the response cache holds; they are not sent again."""
    for i, planned in enumerate(run.requests):
        if planned.result is not None:
            continue
        assert planned.key is not None  # named: the cache is in use
        found = store.get(planned.key)
        if found is None:
            continue
        run.answer(i, found).cached = True
        if folder is not None:
            _write(folder, run.label, planned)


def _write(folder: RunFolder, label: str, planned: PlannedRequest) -> None:
    """Append a request's answer (or failure) to the run folder."""
    assert planned.key is not None  # named: a run folder is in use
    assert planned.result is not None
    item_id, sample, key = planned.item_id, planned.sample, planned.key
    completion = planned.result.completion
    if completion is not None:
        folder.record(label, item_id, sample, key, completion=completion, cached=planned.cached)
    else:
        assert planned.result.error is not None
        folder.record(label, item_id, sample, key, error=error_record(planned.result.error))


def _send(
    run: ModelRun,
    sending: Sending,
    folder: RunFolder | None,
    store: ResponseCache | None,
) -> None:
    """Send what is still missing; each answer is saved the moment it arrives."""
    todo = [i for i, planned in enumerate(run.requests) if planned.result is None]
    if not todo:
        return
    executor = sending.executor
    remote = executor if executor is not None and executor.handles(run.model) else None
    # Loading weights is not answering: keep it out of the first request's latency. (An
    # executor's workers load their own.)
    if remote is None and not _warmed_up(run, todo):
        return
    arrived = _Arrivals(run, todo, folder, store, sending.refresh)
    if remote is not None:
        _send_remote(run, todo, remote, sending, arrived)
        return
    limits = limits_of(run.label, sending.limits, sending.rpm, sending.tpm)
    start = time.perf_counter()
    # Batch API ids go to the run folder the moment they exist (llmcompare.runs._journal).
    with journal_in(folder.path if folder is not None else None, fresh=sending.refresh):
        generate_many(
            run.model,
            [run.requests[i].request for i in todo],
            concurrency=sending.concurrency,
            retry=sending.retry,
            rpm=limits.rpm,
            tpm=limits.tpm,
            tracker=sending.tracker,
            progress=sending.progress,
            # Streaming where the model streams and does not batch: each answer's time to
            # first token is then measured, not assumed.
            stream=_native_streaming(run.model) and not _native_batching(run.model),
            on_result=arrived,
        )
    run.wall_s = time.perf_counter() - start


def _warmed_up(run: ModelRun, todo: Sequence[int]) -> bool:
    """Load the model; when it cannot load, that is the answer of every request left."""
    try:
        run.model.warm_up()
    except Exception as exc:  # noqa: BLE001 - one model that cannot load must not lose the others
        for i in todo:
            run.answer(i, error=exc)
        return False
    return True


def _send_remote(
    run: ModelRun,
    todo: Sequence[int],
    executor: Executor,
    sending: Sending,
    arrived: _Arrivals,
) -> None:
    """Send through an executor's workers; the budget's tracker sees each answer here."""
    start = time.perf_counter()

    def counted(result: Result) -> None:
        if result.completion is not None:
            sending.tracker.record(result.completion)
        arrived(result)

    def ready() -> None:
        # The clock starts once every worker has loaded the model, as warm_up is kept out
        # of it in this process.
        nonlocal start
        start = time.perf_counter()

    executor.run(
        run.model,
        [run.requests[i].request for i in todo],
        batch_size=sending.concurrency,
        on_result=counted,
        on_ready=ready,
    )
    run.wall_s = time.perf_counter() - start


class _Arrivals:
    """Where each answer goes the moment it arrives: its request's record, the folder, the cache.

    Called with the results of a list of the requests still to send (``todo``): a result's
    index is its place in that list.
    """

    def __init__(
        self,
        run: ModelRun,
        todo: Sequence[int],
        folder: RunFolder | None,
        store: ResponseCache | None,
        refresh: bool,
    ) -> None:
        self.run = run
        self.todo = todo
        self.folder = folder
        self.store = store
        self.refresh = refresh

    def __call__(self, result: Result) -> None:
        completion = result.completion
        if completion is not None and completion.measured_at is None:
            # Stamped before it is kept anywhere: a rerun from the cache or the folder then
            # reports this measurement, with where and when it was taken.
            completion = completion.model_copy(
                update={"measured_at": datetime.now(timezone.utc), "measured_on": _HOST}
            )
        planned = self.run.answer(self.todo[result.index], completion, result.error)
        planned.sent = True
        if self.folder is not None:
            _write(self.folder, self.run.label, planned)
        if self.store is not None and completion is not None:
            assert planned.key is not None  # named: the cache is in use
            model = self.run.model
            try:
                self.store.put(planned.key, completion, model=model.id, replace=self.refresh)
            except (LLMCompareError, ValueError, OSError) as exc:
                # A lost cache entry costs a request later; a lost run costs them all.
                warnings.warn(
                    f"{model.id}: answer not cached ({exc})",
                    RuntimeWarning,
                    stacklevel=user_stacklevel(),
                )
