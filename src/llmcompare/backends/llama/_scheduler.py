"""Continuous batching for the ``llama`` backend: one worker thread per loaded model.

Every caller (``generate``, ``agenerate``, ``stream``, ``astream``, ``generate_batch``, and
through them ``generate_many`` and ``compare``) hands its jobs to the model's
:class:`Scheduler`. One worker thread owns the model's forward passes. Between two decoding steps
it admits the jobs waiting in its queue, in order of arrival, as long as the batch stays within
``max_batch_size`` rows and ``max_batch_tokens`` KV-cache slots: the newcomers' prompts are
prefilled together (a prefix they all share once), and their KV cache is merged into the running
batch's, both left-padded to the same length. Finished rows leave the batch at once; so does a
row whose reader went away (a closed stream) or whose call was cancelled
(``llmcompare.backends._stop``).

Greedy output is the same token for token as one request at a time: padding is masked out and
positions count real tokens only. A sampled row draws from its own seeded ``torch.Generator``, so
its answer does not depend on its batch mates.

At interpreter exit every live scheduler is shut down and its worker joined (an ``atexit``
hook): a daemon thread still inside a torch call when the interpreter finalizes is killed there,
which aborts the process (``terminate called without an active exception``, exit 134).

Imports torch; loaded only when a model first generates.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from llmcompare.backends import _stop
from llmcompare.backends.llama._engine import Engine
from llmcompare.backends.llama._job import Job
from llmcompare.backends.llama._kv import KVBatch
from llmcompare.errors import BackendError

__all__ = ["Scheduler", "SchedulerStats"]

_log = logging.getLogger(__name__)

# How long the requests arriving together may take to all arrive before a batch starts: a
# quiet gap this long ends the wait, which never lasts longer than the maximum.
_SETTLE_GAP_S = 0.002
_SETTLE_MAX_S = 0.05

# Every scheduler not yet collected, for the exit hook below.
_live: weakref.WeakSet[Scheduler] = weakref.WeakSet()


@dataclass(frozen=True)
class SchedulerStats:
    """What a model's scheduler has done so far (a snapshot).

    Attributes:
        requests: Jobs that entered the batch.
        steps: Decoding steps run.
        prefills: Prefill forward passes run (each admits one group of newcomers).
        joined: Jobs admitted into a batch that was already running (continuous batching).
        peak_rows: The most rows one step computed.
        batch_sizes: How many steps ran with each number of rows.
        prompt_tokens: Prompt tokens of the jobs that entered the batch.
        prefix_lookups: Prefills that looked their prompts' shared prefix up in the prefix cache.
        prefix_hits: Lookups that found at least one cached block.
        prefix_tokens_reused: Prompt tokens, row by row, whose KV came from the prefix cache
            instead of being computed; over ``prompt_tokens``, the prefix-hit share.
        prefix_tokens_cached: Tokens whose KV the prefix cache holds now.
        prefix_evictions: Blocks the prefix cache dropped to stay within its bound.
    """

    requests: int = 0
    steps: int = 0
    prefills: int = 0
    joined: int = 0
    peak_rows: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    prefix_lookups: int = 0
    prefix_hits: int = 0
    prefix_tokens_reused: int = 0
    prefix_tokens_cached: int = 0
    prefix_evictions: int = 0


class Scheduler:
    """Runs one model's jobs as one continuously refilled batch, on its own worker thread.

    Args:
        engine: The engine of the loaded model.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cond = threading.Condition()
        self._queue: deque[Job] = deque()
        self._thread: threading.Thread | None = None
        # The running batch, touched by the worker thread only.
        self._batch = KVBatch(engine.max_batch_size, engine.max_batch_tokens, engine.attention)
        # Set by shutdown(): queued and running jobs fail, later submits fail at once.
        self._closed = False
        self._requests = self._steps = self._prefills = self._joined = self._peak = 0
        self._prompt_tokens = 0
        self._sizes: Counter[int] = Counter()
        # Jobs the worker took from the queue and has not put in the batch or answered yet.
        self._taken: list[Job] = []
        _live.add(self)

    @property
    def stats(self) -> SchedulerStats:
        """What the scheduler has done so far."""
        prefix = self.engine.prefix_cache
        with self._cond:
            return SchedulerStats(
                requests=self._requests,
                steps=self._steps,
                prefills=self._prefills,
                joined=self._joined,
                peak_rows=self._peak,
                batch_sizes=dict(sorted(self._sizes.items())),
                prompt_tokens=self._prompt_tokens,
                prefix_lookups=prefix.lookups,
                prefix_hits=prefix.hits,
                prefix_tokens_reused=prefix.tokens_reused,
                prefix_tokens_cached=prefix.tokens,
                prefix_evictions=prefix.evicted,
            )

    # -- callers' side ------------------------------------------------------------------------

    def submit(self, jobs: Sequence[Job]) -> None:
        """Queue jobs; each one's ``on_done`` is called (on the worker thread) when it ends."""
        with self._cond:
            closed = self._closed
            if not closed:
                self._queue.extend(jobs)
        if closed:
            for job in jobs:
                job.fail(_closed(self.engine))
            return
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name=f"llmcompare-{self.engine.model_id}", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def run(self, jobs: Sequence[Job], since: int | None = None) -> None:
        """Run jobs to their end (or their error, in ``job.error``), waiting for all of them.

        When the caller is cancelled (Ctrl-C) meanwhile, the jobs stop at their next step
        instead of running to their end.

        Args:
            jobs: The jobs.
            since: The stop token of the call these jobs belong to (see
                ``llmcompare.backends._stop``); by default, the current one.
        """
        if not jobs:
            return
        if since is None:
            since = _stop.token()
        left = len(jobs)
        done = threading.Event()
        lock = threading.Lock()

        def finished(_: Job) -> None:
            nonlocal left
            with lock:
                left -= 1
                if left == 0:
                    done.set()

        for job in jobs:
            job.since = since
            job.on_done = finished
        self.submit(jobs)
        try:
            done.wait()
        except BaseException:
            # Ctrl-C (or any error) while waiting: the rows leave the batch at the next step
            # instead of running to their end for nobody.
            for job in jobs:
                job.cancelled = True
            raise

    def shutdown(self) -> None:
        """Fail the queued and running jobs and wait for the worker thread to end.

        Called when the model is closed, before its weights are dropped: the worker thread
        holds the engine, so it must not run on. Later submits fail at once.
        """
        with self._cond:
            self._closed = True
            thread = self._thread
            self._cond.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    # -- the worker ---------------------------------------------------------------------------

    def _work(self) -> None:
        try:
            self._serve()
        except BaseException as exc:
            # A bug or a failure outside every step's own handling: the thread must not die
            # silently with callers waiting for it. Every job it holds fails; the next submit
            # starts a fresh thread.
            _log.exception("llama: the scheduler's worker failed")
            error = (
                exc
                if isinstance(exc, Exception)
                else BackendError(
                    f"the scheduler stopped: {type(exc).__name__}", model_id=self.engine.model_id
                )
            )
            self._fail_rows(error)
            # Jobs taken from the queue but not in the batch yet would otherwise wait forever.
            for job in self._taken:
                job.fail(error)
            self._taken = []
            with self._cond:
                queued = list(self._queue)
                self._queue.clear()
                if self._thread is threading.current_thread():
                    self._thread = None
            for job in queued:
                job.fail(error)
            if not isinstance(exc, Exception):
                raise

    def _serve(self) -> None:
        while True:
            with self._cond:
                closing = self._closed
                if closing:
                    queued = list(self._queue)
                    self._queue.clear()
                    self._thread = None
            if closing:
                error = _closed(self.engine)
                self._fail_rows(error)
                for job in queued:
                    job.fail(error)
                return
            with self._cond:
                if not self._queue and not self._batch.rows:
                    # Nothing to do: the thread ends, so a closed model holds no thread; the
                    # next submit starts another.
                    self._thread = None
                    return
            if not self._batch.rows:
                self._settle()
            with self._cond:
                group, dropped = self._admissible()
            # Held until they are in the batch or answered: a failure between the two fails
            # them too (a report happens once, so failing an answered one again is harmless).
            self._taken = [*group, *dropped]
            for job in dropped:
                job.report()
            if group:
                self._admit(group)
            self._taken = []
            if self._batch.rows:
                self._step()

    def _settle(self) -> None:
        """Before a batch starts: wait while requests are still arriving, so they share it.

        Callers that submit one request each at the same moment (``compare``'s concurrent
        requests, each tokenized on its own thread) arrive over a few milliseconds; starting
        with the first alone would prefill the others one by one as they join. The wait ends
        at the first quiet :data:`_SETTLE_GAP_S`, once a full batch is waiting, or after
        :data:`_SETTLE_MAX_S`: a lone request waits one gap (counted in its latency).
        """
        deadline = time.perf_counter() + _SETTLE_MAX_S
        with self._cond:
            waiting = len(self._queue)
        while waiting < self.engine.max_batch_size and time.perf_counter() < deadline:
            time.sleep(_SETTLE_GAP_S)
            with self._cond:
                now = len(self._queue)
            if now == waiting:
                return
            waiting = now

    def _admissible(self) -> tuple[list[Job], list[Job]]:
        """Take the waiting jobs that fit the batch now, in order (called holding the lock)."""
        group: list[Job] = []
        dropped: list[Job] = []
        engine = self.engine
        queue = self._queue
        running = self._batch.rows
        if running and engine.mergeable is False:
            return group, dropped  # a cache that cannot be merged: newcomers wait for the end
        rows = len(running)
        # Peak KV width of a right-aligned batch: the longest row now plus the most new tokens
        # any row may still add; every row is padded to it.
        # The cache's real width: rows with holes keep it after the longest row has left.
        longest = self._batch.width
        ahead = max((j.max_new - len(j.out) for j in running), default=0)
        while queue and rows + len(group) < engine.max_batch_size:
            job = queue[0]
            if job.cancelled or _stop.requested(job.since):
                queue.popleft()
                job.error = _interrupted(engine) if not job.cancelled else None
                dropped.append(job)
                continue
            new_longest = max(longest, len(job.prompt))
            new_ahead = max(ahead, job.max_new)
            if (rows + len(group) + 1) * (new_longest + new_ahead) > engine.max_batch_tokens and (
                rows or group
            ):
                break
            group.append(queue.popleft())
            longest, ahead = new_longest, new_ahead
        return group, dropped

    def _admit(self, group: list[Job]) -> None:
        """Prefill the newcomers, then merge them into the running batch."""
        try:
            # Into a slab: the batch's own when it starts fresh, else the newcomers' own.
            prefilled = self.engine.prefill(group, self._batch.start(group, self.engine.kv_shape))
        except Exception as exc:  # noqa: BLE001 - the newcomers fail, the batch runs on
            for job in group:
                job.fail(exc)
            return
        joined = len(self._batch.rows) > 0
        try:
            self._batch.merge(group, prefilled, slab=bool(self.engine.mergeable))
        except Exception as exc:  # noqa: BLE001 - fail the rows it touched, not the thread
            # A layer may be half concatenated: the running rows cannot go on either.
            self._fail_rows(exc)
            for job in group:
                job.fail(exc)
            return
        with self._cond:
            self._requests += len(group)
            self._prompt_tokens += sum(len(j.prompt) for j in group)
            self._prefills += 1
            if joined:
                self._joined += len(group)

    def _step(self) -> None:
        """Pick every row's next token, retire finished rows, and run the next forward."""
        try:
            self._decode(self._batch.rows)
        except Exception as exc:  # noqa: BLE001 - a failed step fails its rows, not the thread
            self._fail_rows(exc)

    def _fail_rows(self, exc: Exception) -> None:
        """Fail the rows still in the batch (those that left were answered) and empty it."""
        for job in self._batch.rows:
            job.finish = None
            job.fail(exc)
        self._batch.clear()

    def _decode(self, rows: list[Job]) -> None:
        engine = self.engine
        batch = self._batch
        assert batch.logits is not None
        with torch.inference_mode():
            start = time.perf_counter()
            reading = engine.read_energy()
            tokens_t, tokens = engine.pick(batch.logits, rows)
            # The tokens exist from here on: the time a row's first and last tokens arrive.
            keep, leaving = self._sort(rows, tokens, time.perf_counter())
            picked = time.perf_counter() - start
            engine.tokens_generated += len(rows)
            with self._cond:
                self._steps += 1
                self._sizes[len(rows)] += 1
                self._peak = max(self._peak, len(rows))
            # Rows that leave are charged their share of choosing tokens, and answered now.
            for job in leaving:
                job.compute_s += picked / len(rows)
                job.report()
            if not keep:
                batch.clear()
                return
            # The batch retires the rows that left (``batch.rows``: the kept ones after it).
            engine.step(batch, keep, len(rows), tokens_t)
            elapsed = time.perf_counter() - start
            joules = engine.joules_since(reading)
        # The forward served the rows that stay; the choosing served every row.
        share = picked / len(rows) + (elapsed - picked) / len(keep)
        for job in batch.rows:
            job.compute_s += share
            if joules is not None:
                job.energy_j = (job.energy_j or 0.0) + joules / len(keep)

    def _sort(self, rows: list[Job], tokens: list[int], now: float) -> tuple[list[int], list[Job]]:
        """Give each row its token (available at ``now``); the rows that stay, the jobs that leave.

        A row leaves when it finished, failed (``pick`` may have failed it), was cancelled, or
        its call was stopped (Ctrl-C).
        """
        engine = self.engine
        keep: list[int] = []
        leaving: list[Job] = []
        for row, (job, token) in enumerate(zip(rows, tokens, strict=True)):
            if job.cancelled or job.error is not None:
                leaving.append(job)
            elif _stop.requested(job.since):
                job.error = _interrupted(engine)
                leaving.append(job)
            elif _accepted(engine, job, token, now):
                leaving.append(job)
            else:
                keep.append(row)
        return keep, leaving


@atexit.register
def _shutdown_all() -> None:
    """Stop every worker between two steps and wait for it, before the interpreter finalizes.

    Registered when torch is already imported, so it runs before torch's own exit hooks. Jobs
    still queued or running (a stream nobody finished reading) fail as closed.
    """
    for scheduler in list(_live):
        scheduler.shutdown()


def _accepted(engine: Engine, job: Job, token: int, now: float) -> bool:
    """Whether the job is finished with this token; a row whose token fails leaves alone."""
    try:
        return engine.accept(job, token, now)
    except Exception as exc:  # noqa: BLE001 - one row's error (its grammar) is its own
        job.finish = None
        job.error = exc
        return True


def _closed(engine: Engine) -> BackendError:
    return BackendError(
        "the model was closed while this request waited or ran", model_id=engine.model_id
    )


def _interrupted(engine: Engine) -> BackendError:
    return BackendError("interrupted: the run was cancelled", model_id=engine.model_id)
