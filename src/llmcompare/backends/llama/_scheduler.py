"""Continuous batching for the ``llama`` backend: one worker thread per loaded model.

Every caller (``generate``, ``agenerate``, ``stream``, ``astream``, ``generate_batch``, and
through them ``generate_many`` and ``compare``) hands its jobs to the model's
:class:`Scheduler`. One worker thread owns the model's forward passes. Between two decoding steps
it admits the jobs waiting in its queue, in order of arrival, as long as the batch stays within
``max_batch_size`` rows and ``max_batch_tokens`` KV-cache slots: the newcomers' prompts are
prefilled together (a prefix they all share once), and their KV cache is merged into the running
batch's, both left-padded to the same length. Finished rows leave the batch at once; so does a
row whose reader went away (a closed stream) or whose call was cancelled (``llmcompare._stop``).

Greedy output is the same token for token as one request at a time: padding is masked out and
positions count real tokens only. A sampled row draws from its own seeded ``torch.Generator``, so
its answer does not depend on its batch mates.

Imports torch; loaded only when a model first generates.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from llmcompare.backends import _stop
from llmcompare.backends.llama._engine import Engine, Job, _shared_prefix, _spent
from llmcompare.errors import BackendError

__all__ = ["Scheduler", "SchedulerStats"]

_log = logging.getLogger(__name__)

# A shared prefix is prefilled once and copied to every row when it saves at least this many
# token computations: below that, the extra forward pass costs more than it saves.
_MIN_SHARED_PREFIX = 8
_MIN_PREFIX_SAVING = 128


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
    """

    requests: int = 0
    steps: int = 0
    prefills: int = 0
    joined: int = 0
    peak_rows: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)


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
        self._rows: list[Job] = []
        self._cache: Any = None
        # The attention mask; None while no row has padding (transformers then needs none, and
        # does not check a mask for padding at every step: a host-device sync on a GPU).
        self._mask: torch.Tensor | None = None
        self._last_pos: torch.Tensor | None = None
        self._logits: torch.Tensor | None = None
        # Leading padding columns of each row: the columns every row pads are cut away.
        self._pads: list[int] = []
        # Rows with padding after a shared prefix, which no cut removes.
        self._holes: list[bool] = []
        self._mergeable: bool | None = None
        # Set by shutdown(): queued and running jobs fail, later submits fail at once.
        self._closed = False
        self._requests = self._steps = self._prefills = self._joined = self._peak = 0
        self._sizes: Counter[int] = Counter()

    @property
    def stats(self) -> SchedulerStats:
        """What the scheduler has done so far."""
        with self._cond:
            return SchedulerStats(
                requests=self._requests,
                steps=self._steps,
                prefills=self._prefills,
                joined=self._joined,
                peak_rows=self._peak,
                batch_sizes=dict(sorted(self._sizes.items())),
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
                job.error = _closed(self.engine)
                _finish(job)
            return
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name=f"llmcompare-{self.engine.model_id}", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def run(self, jobs: Sequence[Job], since: int) -> None:
        """Run jobs to their end (or their error, in ``job.error``), waiting for all of them.

        Args:
            jobs: The jobs.
            since: The stop token of the call (see ``llmcompare._stop``).
        """
        if not jobs:
            return
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
            with self._cond:
                queued = list(self._queue)
                self._queue.clear()
                if self._thread is threading.current_thread():
                    self._thread = None
            for job in queued:
                job.error = error
                _finish(job)
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
                    job.error = error
                    _finish(job)
                return
            with self._cond:
                if not self._queue and not self._rows:
                    # Nothing to do: the thread ends, so a closed model holds no thread; the
                    # next submit starts another.
                    self._thread = None
                    return
                group, dropped = self._admissible()
            for job in dropped:
                _finish(job)
            if group:
                self._admit(group)
            if self._rows:
                self._step()

    def _admissible(self) -> tuple[list[Job], list[Job]]:
        """Take the waiting jobs that fit the batch now, in order (called holding the lock)."""
        group: list[Job] = []
        dropped: list[Job] = []
        engine = self.engine
        queue = self._queue
        if self._rows and self._mergeable is False:
            return group, dropped  # a cache that cannot be merged: newcomers wait for the end
        rows = len(self._rows)
        # Peak KV width of a right-aligned batch: the longest row now plus the most new tokens
        # any row may still add; every row is padded to it.
        # The cache's real width: rows with holes keep it after the longest row has left.
        longest = self._cache.get_seq_length() if self._rows else 0
        ahead = max((j.max_new - len(j.out) for j in self._rows), default=0)
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
            cache, mask, last_pos, logits, pads, holes = self._prefill(group)
        except Exception as exc:  # noqa: BLE001 - the newcomers fail, the batch runs on
            for job in group:
                job.error = exc
                _finish(job)
            return
        joined = len(self._rows) > 0
        try:
            self._merge(group, cache, mask, last_pos, logits, pads, holes)
        except Exception as exc:  # noqa: BLE001 - fail the rows it touched, not the thread
            # A layer may be half concatenated: the running rows cannot go on either.
            self._fail_rows(exc)
            for job in group:
                job.error = exc
                _finish(job)
            return
        with self._cond:
            self._requests += len(group)
            self._prefills += 1
            if joined:
                self._joined += len(group)

    def _merge(
        self,
        group: list[Job],
        cache: Any,
        mask: torch.Tensor,
        last_pos: torch.Tensor,
        logits: torch.Tensor,
        pads: list[int],
        holes: list[bool],
    ) -> None:
        """Make the prefilled newcomers the batch, or left-pad and append them to it."""
        if not self._rows:
            self._cache, self._last_pos, self._logits = cache, last_pos, logits
            self._rows, self._pads, self._holes = list(group), pads, holes
            self._mask = None if _dense(pads, holes) else mask
        else:
            assert self._last_pos is not None
            assert self._logits is not None
            mine_mask = self._mask
            if mine_mask is None:
                length = self._cache.get_seq_length()
                mine_mask = torch.ones(
                    (len(self._rows), length), dtype=torch.long, device=mask.device
                )
            width = max(mine_mask.shape[1], mask.shape[1])
            for mine, theirs in zip(self._cache.layers, cache.layers, strict=True):
                mine.keys = torch.cat([_pad(mine.keys, width), _pad(theirs.keys, width)])
                mine.values = torch.cat([_pad(mine.values, width), _pad(theirs.values, width)])
            self._pads = [p + width - mine_mask.shape[1] for p in self._pads] + [
                p + width - mask.shape[1] for p in pads
            ]
            self._holes += holes
            merged = torch.cat([_pad(mine_mask, width, -1), _pad(mask, width, -1)])
            self._mask = None if _dense(self._pads, self._holes) else merged
            self._last_pos = torch.cat([self._last_pos, last_pos])
            self._logits = torch.cat([self._logits, logits])
            self._rows.extend(group)

    def _forward(self, cache: Any, **inputs: Any) -> torch.Tensor:
        engine = self.engine
        inputs[engine._cache_arg] = cache
        out = engine.model(**inputs, use_cache=True, return_dict=True, **engine._keep)
        logits: torch.Tensor = out.logits[:, -1, :]
        return logits

    def _prefill(
        self, jobs: list[Job]
    ) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor, list[int], list[bool]]:
        """Run the prompts: the shared prefix once, then every row's own part, left-padded."""
        from transformers import DynamicCache

        engine = self.engine
        device = engine.device
        prompts = [j.prompt for j in jobs]
        rows = len(prompts)
        with torch.inference_mode():
            start = time.perf_counter()
            reading = engine.energy.read() if engine.energy is not None else None
            for job in jobs:
                job.started_at = start
            cache = DynamicCache(config=engine.model.config)
            if self._mergeable is None:
                # Only plain growing layers can be padded and merged (not sliding windows).
                from transformers.cache_utils import DynamicLayer

                self._mergeable = all(type(layer) is DynamicLayer for layer in cache.layers)
            shared = _shared_prefix(prompts) if rows > 1 else 0
            if shared < _MIN_SHARED_PREFIX or shared * (rows - 1) < _MIN_PREFIX_SAVING:
                shared = 0
            if shared:
                prefix = torch.tensor([prompts[0][:shared]], dtype=torch.long, device=device)
                positions = torch.arange(shared, device=device).unsqueeze(0)
                self._forward(cache, input_ids=prefix, position_ids=positions)
                cache.batch_repeat_interleave(rows)
            width = max(len(p) for p in prompts) - shared
            ids = torch.full((rows, width), engine.pad_id, dtype=torch.long)
            own = torch.zeros((rows, width), dtype=torch.long)
            for row, p in enumerate(prompts):
                tail = p[shared:]
                ids[row, width - len(tail) :] = torch.tensor(tail, dtype=torch.long)
                own[row, width - len(tail) :] = 1
            mask = torch.cat([torch.ones((rows, shared), dtype=torch.long), own], dim=1).to(device)
            # Positions count real tokens only, so padding never shifts a row's positions.
            positions = (mask.cumsum(-1) - 1).clamp_(min=0)
            logits = self._forward(
                cache,
                input_ids=ids.to(device),
                attention_mask=mask,
                position_ids=positions[:, shared:],
            )
            elapsed = time.perf_counter() - start
            joules = _spent(engine.energy, reading)
        total = sum(len(p) for p in prompts)
        for job in jobs:
            job.compute_s += elapsed * len(job.prompt) / total
            if joules is not None:
                job.energy_j = (job.energy_j or 0.0) + joules * len(job.prompt) / total
        # With a shared prefix the padding sits after it: no leading column is padding.
        pads = [0 if shared else width - len(p) for p in prompts]
        holes = [bool(shared) and len(p) - shared < width for p in prompts]
        return cache, mask, positions[:, -1:], logits, pads, holes

    def _step(self) -> None:
        """Pick every row's next token, retire finished rows, and run the next forward."""
        try:
            self._decode(self._rows)
        except Exception as exc:  # noqa: BLE001 - a failed step fails its rows, not the thread
            self._fail_rows(exc)

    def _fail_rows(self, exc: Exception) -> None:
        """Fail the rows still in the batch (those that left were answered) and empty it."""
        for job in self._rows:
            job.finish = None
            job.error = exc
            _finish(job)
        self._rows, self._pads, self._holes = [], [], []
        self._cache = self._mask = self._last_pos = self._logits = None

    def _retire(
        self, keep: list[int], rows: int, tokens: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """Drop the rows not in ``keep`` from the batch state; their padding columns too.

        Returns:
            The attention mask (None: no padding), last positions and next input tokens of the
            rows kept.
        """
        mask, last_pos = self._mask, self._last_pos
        assert last_pos is not None
        if len(keep) == rows:
            return mask, last_pos, tokens
        # Finished rows leave the batch: later steps compute only live rows.
        index = torch.tensor(keep, device=self.engine.device)
        self._cache.batch_select_indices(index)
        last_pos, tokens = last_pos[index], tokens[index]
        pads = [self._pads[r] for r in keep]
        self._holes = [self._holes[r] for r in keep]
        if mask is not None:
            mask = mask[index]
            cut = min(pads)
            if cut:
                # Columns that are padding in every row left: drop them from the cache.
                for layer in self._cache.layers:
                    layer.keys = layer.keys[..., cut:, :]
                    layer.values = layer.values[..., cut:, :]
                mask = mask[:, cut:]
                pads = [p - cut for p in pads]
            if _dense(pads, self._holes):
                mask = None
        self._pads = pads
        return mask, last_pos, tokens

    def _decode(self, rows: list[Job]) -> None:
        engine = self.engine
        assert self._logits is not None
        with torch.inference_mode():
            start = time.perf_counter()
            reading = engine.energy.read() if engine.energy is not None else None
            tokens_t, tokens = engine.pick(self._logits, rows)
            # The tokens exist from here on: the time a row's first and last tokens arrive.
            now = time.perf_counter()
            keep: list[int] = []
            leaving: list[Job] = []
            for row, (job, token) in enumerate(zip(rows, tokens, strict=True)):
                if job.cancelled or job.error is not None:  # an error: pick failed this row
                    leaving.append(job)
                elif _stop.requested(job.since):
                    job.error = _interrupted(engine)
                    leaving.append(job)
                elif _accepted(engine, job, token, now):
                    leaving.append(job)
                else:
                    keep.append(row)
            picked = time.perf_counter() - start
            engine.tokens_generated += len(rows)
            with self._cond:
                self._steps += 1
                self._sizes[len(rows)] += 1
                self._peak = max(self._peak, len(rows))
            self._rows = [rows[r] for r in keep]
            # Rows that leave are charged their share of choosing tokens, and answered now.
            for job in leaving:
                job.compute_s += picked / len(rows)
                _finish(job)
            if not keep:
                self._pads, self._holes = [], []
                self._cache = self._mask = self._last_pos = self._logits = None
                return
            mask, last_pos, nxt = self._retire(keep, len(rows), tokens_t)
            if mask is not None:
                mask = torch.cat([mask, mask.new_ones((len(keep), 1))], dim=1)
            last_pos = last_pos + 1
            self._logits = self._forward(
                self._cache,
                input_ids=nxt.reshape(-1, 1),
                attention_mask=mask,
                position_ids=last_pos,
            )
            self._mask, self._last_pos = mask, last_pos
            elapsed = time.perf_counter() - start
            joules = _spent(engine.energy, reading)
        # The forward served the rows that stay; the choosing served every row.
        share = picked / len(rows) + (elapsed - picked) / len(keep)
        for job in self._rows:
            job.compute_s += share
            if joules is not None:
                job.energy_j = (job.energy_j or 0.0) + joules / len(keep)


def _dense(pads: list[int], holes: list[bool]) -> bool:
    """Whether no row has padding: the attention mask would be all ones."""
    return not any(pads) and not any(holes)


def _pad(tensor: torch.Tensor, width: int, dim: int = -2) -> torch.Tensor:
    """Left-pad ``tensor`` with zeros along ``dim`` to ``width``."""
    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


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


def _finish(job: Job) -> None:
    # Once only: a job failed by a later cleanup is not reported twice.
    callback, job.on_done = job.on_done, None
    if callback is not None:
        try:
            callback(job)
        except Exception:  # noqa: BLE001 - a caller's callback must not stop the others' batch
            _log.exception("llama: a finished request's callback failed")
