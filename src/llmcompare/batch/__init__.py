"""Run many prompts through any :class:`~llmcompare.Model`: concurrent, limited, resumable.

:func:`generate_many` (and its async twin :func:`agenerate_many`) returns exactly one
:class:`~llmcompare.Result` per prompt, in input order, holding the completion or the error: one
failure never loses the others. Optional parts, each off by default:

- ``retry``: a :class:`~llmcompare.retry.RetryPolicy` for transient failures (``None``, the
  default, retries nothing, as everywhere in llmcompare);
- ``rpm`` / ``tpm``: a token bucket (:class:`~llmcompare.ratelimit.RateLimiter`) that keeps
  requests and tokens per minute under your provider's limits;
- ``tracker``: a :class:`~llmcompare.cost.CostTracker` that records cost and enforces a budget;
- ``results_file``: a JSONL file each finished request is written to at once, so a run that
  was killed resumes where it stopped;
- ``progress``: a progress bar on stderr (tqdm when installed), on by default in a terminal.

A model with its own batching (:attr:`~llmcompare.ModelBase.native_batching`) is given all
pending requests at once, bounded by its own limits rather than by ``concurrency`` (which is for
API models): one ``generate_batch`` on a worker thread, or, for a model whose concurrent calls
join one running batch (:attr:`~llmcompare.ModelBase.continuous_batching`: the Llama backend),
every request in flight at once, each answer recorded as it finishes. The helpers are the same
wrappers you can use alone:
:func:`~llmcompare.with_rate_limit`, :func:`~llmcompare.with_retry` and
:meth:`~llmcompare.CostTracker.wrap`.

Example:
    >>> from llmcompare.backends.fake import ScriptedModel
    >>> from llmcompare.batch import generate_many
    >>> model = ScriptedModel(default=lambda request: request.messages[-1].content.upper())
    >>> [r.unwrap().text for r in generate_many(model, ["a", "b", "c"], concurrency=2)]
    ['A', 'B', 'C']
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from typing_extensions import Unpack

from llmcompare.backends import _stop
from llmcompare.batch._progress import Progress
from llmcompare.batch._results import ResultsFile, read_results
from llmcompare.model import (
    Model,
    _continuous_batching,
    _native_batching,
    _refuse_bare_string,
    _run_coroutine_sync,
)
from llmcompare.ratelimit import with_rate_limit
from llmcompare.retry import RetryPolicy, with_retry
from llmcompare.schema import check_formats
from llmcompare.types import Completion, Prompt, Request, Result, Settings

if TYPE_CHECKING:
    from llmcompare.cost import CostTracker

__all__ = ["agenerate_many", "generate_many", "read_results"]


def _compose(
    model: Model,
    retry: RetryPolicy | None,
    rpm: float | None,
    tpm: float | None,
    tracker: CostTracker | None,
) -> Model:
    # Innermost first: the limiter gates every attempt, and the tracker sees every attempt
    # too: each is checked against the budget before it is sent, and one that reached the
    # server without an answer (a timeout) is charged, so a retry can never pass the budget.
    runner = model
    # Interactive rate limits do not apply to a Batch API model (chatgpt's batch=True): its
    # requests go in one upload, under the Batch API's own limits.
    if (rpm is not None or tpm is not None) and getattr(model, "batch_api", False) is not True:
        runner = with_rate_limit(runner, rpm=rpm, tpm=tpm)
    if tracker is not None:
        runner = tracker.wrap(runner)
    if retry is not None:
        runner = with_retry(runner, retry)
    return runner


async def agenerate_many(
    model: Model,
    prompts: Sequence[Prompt],
    *,
    concurrency: int = 8,
    retry: RetryPolicy | None = None,
    rpm: float | None = None,
    tpm: float | None = None,
    tracker: CostTracker | None = None,
    progress: bool | None = None,
    results_file: str | os.PathLike[str] | None = None,
    stream: bool = False,
    on_result: Callable[[Result], None] | None = None,
    **settings: Unpack[Settings],
) -> list[Result]:
    """Answer many prompts concurrently; the async twin of :func:`generate_many`.

    Cancelling the task stops cleanly: requests in flight are cancelled, and results already
    finished are in the results file.

    Args:
        model: Any model.
        prompts: The prompts, in any accepted form; all are validated before anything is sent.
        concurrency: Requests in flight at once, for models without their own batching (API
            models); a model with its own batching gets every pending request, bounded by its
            own limits (``max_batch_size`` for the Llama backend).
        retry: Retry transient failures with this policy; ``None`` retries nothing.
        rpm: Requests-per-minute limit.
        tpm: Tokens-per-minute limit (estimated before sending, corrected after).
        tracker: Record costs and enforce its budget (refused requests get a
            :class:`~llmcompare.BudgetExceeded` result).
        progress: Show a progress bar on stderr; None shows it when stderr is a terminal.
        results_file: A JSONL file to write each finished request to, and to resume from:
            requests that succeeded in an earlier run with the same model, prompts and settings
            are not sent again (failed ones are). With a ``tracker``, what the earlier runs
            spent (those answers, and failures charged as maybe billed) counts towards its
            budget, each line once per tracker: its dollars and tokens bound every process of
            the run.
        stream: Read each answer as a stream, so its time to first token (``ttft_s``) is
            measured; the completion is the same. (A model with its own batching is driven
            through its batches, which report each row's first token anyway.)
        on_result: Called with each result the moment it finishes (in finishing order, on the
            event loop's thread): to save it, show it or stop early.
        **settings: Generation settings applied to every prompt.

    Returns:
        One result per prompt, in input order.

    Raises:
        TypeError: When ``prompts`` is one string rather than a list.
        ValueError: When ``concurrency`` is below 1.
        pydantic.ValidationError: When a prompt or setting is invalid (nothing was sent).
        ConfigurationError: When ``results_file`` holds results of other requests.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    _refuse_bare_string(prompts, "agenerate_many")
    requests = [Request.of(p, **settings) for p in prompts]
    # A setup the model cannot run (no structured outputs, say) fails now, not row by row.
    check_formats(model, requests)
    results: list[Result | None] = [None] * len(requests)
    store = None if results_file is None else ResultsFile(results_file, model.id, requests)
    if store is not None:
        for index, result in store.load(requests).items():
            results[index] = result
        if tracker is not None:
            _count_spent(tracker, store, model.id)
    todo = [i for i, r in enumerate(results) if r is None]
    bar = Progress(len(requests), len(requests) - len(todo), progress, model.id)
    sink = _Sink(results, store, bar, on_result)
    try:
        if todo:
            runner = _compose(model, retry, rpm, tpm, tracker)
            if _native_batching(runner):
                # A dollar budget on a local model: requests run alone until one has succeeded
                # (the probe), so its measured cost bounds what each row of the batches after it
                # reserves. A probe that fails is followed by another, never by a lost batch.
                while (
                    todo
                    and tracker is not None
                    and model.info.open_weights
                    and tracker.needs_probe(model.id)
                ):
                    await _run_batches(runner, requests, todo[:1], 1, sink)
                    todo = todo[1:]
                if _continuous_batching(runner):
                    # Shortest first, as a backend orders its own batch: the rows that start
                    # together need the least padding (results still land at their index).
                    todo.sort(key=lambda i: _length(requests[i]))
                    await _run_each(runner, requests, todo, len(todo), sink, False)
                else:
                    await _run_batches(runner, requests, todo, max(len(todo), 1), sink)
            else:
                await _run_each(runner, requests, todo, concurrency, sink, stream)
    finally:
        bar.close()
        if store is not None:
            store.close()
    return [r for r in results if r is not None]


def _length(request: Request) -> int:
    """A request's prompt length in characters: a proxy for its tokens, known before encoding."""
    return sum(len(m.content) for m in request.messages)


# The lines of each results file each tracker has counted (read back, or written while it
# counted their requests itself): a tracker resuming a file again (a retry in the same
# notebook) counts only the lines it has not, those another process wrote meanwhile included.
_COUNTED: weakref.WeakKeyDictionary[CostTracker, dict[Path, Counter[str]]] = (
    weakref.WeakKeyDictionary()
)


def _count_spent(tracker: CostTracker, store: ResultsFile, model_id: str) -> None:
    """Count towards ``tracker`` what the file's lines spent that it has not counted yet.

    An answer read back counts as :meth:`~llmcompare.cost.CostTracker.record` counts it, a
    failure charged as maybe billed (a timeout) as ``record_unanswered`` does; a line is
    known by its text, and identical lines each count.
    """
    seen = _COUNTED.setdefault(tracker, {}).setdefault(store.path.resolve(), Counter())
    now: Counter[str] = Counter()
    for line, spent in store.spent:
        now[line] += 1
        if now[line] <= seen[line]:
            continue
        if isinstance(spent, Completion):
            tracker.record(spent)
        else:
            tracker.record_unanswered(model_id, *spent)
    seen |= now
    # What this call writes, the tracker counts as it is sent.
    store.on_line = lambda line: seen.update((line,))


class _Sink:
    """Where each finished request goes, the moment it finishes: results, file, bar, callback."""

    __slots__ = ("bar", "on_result", "results", "store")

    def __init__(
        self,
        results: list[Result | None],
        store: ResultsFile | None,
        bar: Progress,
        on_result: Callable[[Result], None] | None,
    ) -> None:
        self.results = results
        self.store = store
        self.bar = bar
        self.on_result = on_result

    def put(self, result: Result) -> None:
        self.results[result.index] = result
        if self.store is not None:
            self.store.write(result)
        if self.on_result is not None:
            self.on_result(result)
        self.bar.update(result.completion is not None)


async def _run_each(
    runner: Model,
    requests: list[Request],
    todo: list[int],
    concurrency: int,
    sink: _Sink,
    stream: bool,
) -> None:
    pending = iter(todo)

    async def worker() -> None:
        # A fixed pool of workers pulling from one iterator: no task per request, and never
        # more than `concurrency` requests in flight.
        for i in pending:
            request = requests[i]
            try:
                if stream:
                    async with runner.astream(request) as answer:
                        completion = await answer.until_done()
                else:
                    completion = await runner.agenerate(request)
                result = Result(i, request, completion=completion)
            except Exception as exc:  # noqa: BLE001 - the error is the result (not cancellation)
                result = Result(i, request, error=exc)
            sink.put(result)

    workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(todo)))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise


async def _run_batches(
    runner: Model, requests: list[Request], todo: list[int], size: int, sink: _Sink
) -> None:
    for start in range(0, len(todo), size):
        chunk = todo[start : start + size]
        batch = [requests[i] for i in chunk]
        try:
            # The backend batches tensors on a worker thread; the event loop stays free. The
            # stop token is taken here, on the loop: a Ctrl-C before the thread starts counts.
            _stop.take()
            outs: Sequence[Result] = await asyncio.to_thread(runner.generate_batch, batch)
        except asyncio.CancelledError:
            # The thread cannot be cancelled, and the loop waits for it before it closes: ask
            # the engine to stop at its next step, so Ctrl-C takes effect within a step.
            _stop.request()
            raise
        except Exception as exc:  # noqa: BLE001 - a whole failed batch: each request gets it
            outs = [Result(k, r, error=exc) for k, r in enumerate(batch)]
        for i, out in zip(chunk, outs, strict=True):
            sink.put(
                Result(i, requests[i], completion=out.completion)
                if out.completion is not None
                else Result(i, requests[i], error=out.error)
            )


def generate_many(
    model: Model,
    prompts: Sequence[Prompt],
    *,
    concurrency: int = 8,
    retry: RetryPolicy | None = None,
    rpm: float | None = None,
    tpm: float | None = None,
    tracker: CostTracker | None = None,
    progress: bool | None = None,
    results_file: str | os.PathLike[str] | None = None,
    stream: bool = False,
    on_result: Callable[[Result], None] | None = None,
    **settings: Unpack[Settings],
) -> list[Result]:
    """Answer many prompts concurrently: one result per prompt, in order, failures kept.

    Runs :func:`agenerate_many` on a private event loop (also when called from inside one, as in
    a notebook), with a thread pool of ``concurrency`` threads for models that only have a
    synchronous ``generate``.

    Example:
        >>> from llmcompare.backends.fake import ScriptedModel
        >>> from llmcompare.batch import generate_many
        >>> results = generate_many(ScriptedModel(default="ok"), ["a", "b"], max_tokens=5)
        >>> [r.ok for r in results]
        [True, True]

    Args:
        model: Any model.
        prompts: The prompts, in any accepted form; all are validated before anything is sent.
        concurrency: Requests in flight at once, for models without their own batching (API
            models); a model with its own batching gets every pending request, bounded by its
            own limits (``max_batch_size`` for the Llama backend).
        retry: Retry transient failures with this policy; ``None`` retries nothing.
        rpm: Requests-per-minute limit.
        tpm: Tokens-per-minute limit (estimated before sending, corrected after).
        tracker: Record costs and enforce its budget (refused requests get a
            :class:`~llmcompare.BudgetExceeded` result).
        progress: Show a progress bar on stderr; None shows it when stderr is a terminal.
        results_file: A JSONL file to write each finished request to, and to resume from (with
            a ``tracker``, what earlier runs on it spent counts towards its budget).
        stream: Read each answer as a stream, to measure its time to first token.
        on_result: Called with each result the moment it finishes.
        **settings: Generation settings applied to every prompt.

    Returns:
        One result per prompt, in input order.

    Raises:
        TypeError: When ``prompts`` is one string rather than a list.
        ValueError: When ``concurrency`` is below 1.
        pydantic.ValidationError: When a prompt or setting is invalid (nothing was sent).
        ConfigurationError: When ``results_file`` holds results of other requests.
    """

    async def main() -> list[Result]:
        loop = asyncio.get_running_loop()
        # Sync-only models run on threads via asyncio.to_thread: give it enough of them.
        loop.set_default_executor(
            concurrent.futures.ThreadPoolExecutor(
                max_workers=concurrency, thread_name_prefix="llmcompare-batch"
            )
        )
        return await agenerate_many(
            model,
            prompts,
            concurrency=concurrency,
            retry=retry,
            rpm=rpm,
            tpm=tpm,
            tracker=tracker,
            progress=progress,
            results_file=results_file,
            stream=stream,
            on_result=on_result,
            **settings,
        )

    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    _refuse_bare_string(prompts, "generate_many")
    return _run_coroutine_sync(main)
