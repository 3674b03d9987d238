"""The generation engine of the ``llama`` backend: a lean batched decoding loop over transformers.

Imports torch; loaded only when a model first generates.

Why not ``model.generate``: for a batch it keeps computing rows that have already finished, and
pads every prompt to the longest one. This loop prefills the prompt prefix that a batch shares
(typically the chat template's system prompt) once, drops finished rows from the KV cache, and
handles stop strings, per-request sampling settings and streaming in the same loop. Greedy
output is the same token for token as one request at a time.
"""

from __future__ import annotations

import inspect
import random
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from llmcompare import _stop
from llmcompare.backends.llama._constrain import Grammars, RowConstraint, mask_logits
from llmcompare.backends.llama._options import DEFAULT_MAX_TOKENS
from llmcompare.energy import EnergyCounter, energy_counter
from llmcompare.errors import BackendError
from llmcompare.types import Chunk, Completion, FinishReason, Request, Sent, Usage

__all__ = ["Engine", "Job"]

# A shared prefix is prefilled once and copied to every row when it saves at least this many
# token computations: below that, the extra forward pass costs more than it saves.
_MIN_SHARED_PREFIX = 8
_MIN_PREFIX_SAVING = 128


class Job:
    """One request inside the engine: its prompt tokens, settings and what it has produced."""

    __slots__ = (
        "compute_s",
        "constraint",
        "done_at",
        "energy_j",
        "finish",
        "first_at",
        "generator",
        "index",
        "max_new",
        "out",
        "prompt",
        "request",
        "started_at",
        "stop_at",
        "stops",
        "temperature",
        "text",
        "top_p",
    )

    def __init__(
        self,
        index: int,
        request: Request,
        prompt: list[int],
        max_new: int,
        temperature: float,
        top_p: float,
        generator: torch.Generator | None,
    ) -> None:
        self.index = index
        self.request = request
        self.prompt = prompt
        self.max_new = max_new
        self.temperature = temperature
        self.top_p = top_p
        self.generator = generator
        self.stops = request.stop
        # The row's JSON grammar state when the request has a response_format.
        self.constraint: RowConstraint | None = None
        self.out: list[int] = []
        self.finish: FinishReason | None = None
        # Where the text is cut when a stop string appeared, and the final text.
        self.stop_at: int | None = None
        self.text: str | None = None
        self.compute_s = 0.0
        # This row's share of the measured energy (None: not measurable here).
        self.energy_j: float | None = None
        # perf_counter() times: its computation started, its first token, its last token.
        self.started_at: float | None = None
        self.first_at: float | None = None
        self.done_at: float | None = None


class Engine:
    """Runs requests on one loaded transformers model and tokenizer.

    Args:
        model_id: The llmcompare id, for errors and completions.
        model: A transformers causal language model, in eval mode on its device.
        tokenizer: Its tokenizer.
        max_batch_size: Most rows in one batch.
        max_batch_tokens: Most token slots (rows x (prompt + new tokens)) in one batch.
        response_model: What produced the weights (file, folder or hub id), for completions.
    """

    def __init__(
        self,
        model_id: str,
        model: Any,
        tokenizer: Any,
        *,
        max_batch_size: int,
        max_batch_tokens: int,
        response_model: str,
    ) -> None:
        self.model_id = model_id
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.response_model = response_model
        self.device: torch.device = next(model.parameters()).device
        self.device_name = str(self.device)
        config = model.config
        self.context_window: int | None = getattr(config, "max_position_embeddings", None)
        self.parameters = sum(p.numel() for p in model.parameters())
        self.eos_ids = _eos_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_id: int = pad if isinstance(pad, int) else min(self.eos_ids, default=0)
        gen = getattr(model, "generation_config", None)
        sample = bool(getattr(gen, "do_sample", False))
        # A request without temperature gets the model's own default: greedy unless its
        # generation config samples.
        self.default_temperature = (
            float(getattr(gen, "temperature", None) or 1.0) if sample else 0.0
        )
        self.default_top_p = float(getattr(gen, "top_p", None) or 1.0) if sample else 1.0
        supports = getattr(model, "_supports_logits_to_keep", None)
        # Only the last position's logits are needed: skip the vocabulary projection elsewhere.
        self._keep: dict[str, int] = {"logits_to_keep": 1} if supports and supports() else {}
        # The keyword the forward takes the KV cache by, found once per model.
        self._cache_arg = _cache_argument(model)
        # One forward pass at a time: concurrent requests interleave step by step instead of
        # oversubscribing the cores, and each step's time is charged to the rows it served.
        self._lock = threading.Lock()
        # Fast tokenizers are not safe to call from two threads at once ("Already borrowed").
        self._tok_lock = threading.Lock()
        self.tokens_generated = 0
        # Measured energy per step, where the device lets it be read (RAPL on a CPU, NVML on an
        # NVIDIA GPU): each step's joules are shared out among its rows, like its time.
        self.energy: EnergyCounter | None = energy_counter(self.device_name)
        # The JSON-schema compiler, made when the first request with a response_format comes.
        self.grammars: Grammars | None = None

    # -- requests -> jobs ---------------------------------------------------------------------

    def encode(self, request: Request) -> list[int]:
        """The prompt tokens of a request: its messages through the chat template.

        Raises:
            BackendError: When the chat template refuses the conversation.
        """
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            try:
                with self._tok_lock:
                    encoded = tok.apply_chat_template(
                        messages, add_generation_prompt=True, tokenize=True
                    )
            except Exception as exc:  # jinja raises its own TemplateError for refused roles
                raise BackendError(
                    f"the chat template refused the conversation: {exc}", model_id=self.model_id
                ) from exc
            ids = encoded["input_ids"] if not isinstance(encoded, list) else encoded
            return [int(i) for i in ids]
        # A base model without a chat template: one user message is the prompt itself.
        if len(messages) == 1 and messages[0]["role"] == "user":
            text = messages[0]["content"]
        else:
            text = "".join(f"{m['role']}: {m['content']}\n\n" for m in messages) + "assistant:"
        with self._tok_lock:
            ids = tok(text)["input_ids"]
        return [int(i) for i in ids]

    def job(self, index: int, request: Request) -> Job:
        """Turn a request into a job: prompt tokens, token budget and sampler.

        Raises:
            BackendError: When the prompt does not fit the context window (not retryable).
        """
        prompt = self.encode(request)
        limit = self.context_window
        if limit is not None and len(prompt) >= limit:
            raise BackendError(
                f"the prompt has {len(prompt)} tokens and the context window is {limit}: "
                "shorten the prompt",
                model_id=self.model_id,
            )
        if not prompt:
            raise BackendError("the prompt encodes to no tokens", model_id=self.model_id)
        max_new = request.max_tokens if request.max_tokens is not None else DEFAULT_MAX_TOKENS
        if limit is not None:
            max_new = min(max_new, limit - len(prompt))
        temperature = (
            request.temperature if request.temperature is not None else self.default_temperature
        )
        top_p = request.top_p if request.top_p is not None else self.default_top_p
        generator = None
        if temperature > 0:
            generator = torch.Generator(device=self.device)
            seed = request.seed if request.seed is not None else random.getrandbits(63)
            generator.manual_seed(seed)
        job = Job(index, request, prompt, max_new, temperature, top_p, generator)
        if request.response_format is not None:
            job.constraint = self._grammars().row(request.response_format)
        return job

    def _grammars(self) -> Grammars:
        if self.grammars is None:
            out = self.model.get_output_embeddings()
            width = out.weight.shape[0] if out is not None else self.model.config.vocab_size
            self.grammars = Grammars(self.model_id, self.tokenizer, int(width), self.eos_ids)
        return self.grammars

    def buckets(self, jobs: Sequence[Job]) -> list[list[Job]]:
        """Group jobs into batches: sorted by prompt length, bounded in rows and token slots."""
        out: list[list[Job]] = []
        current: list[Job] = []
        longest = budget = 0
        for job in sorted(jobs, key=lambda j: len(j.prompt)):
            new_longest = max(longest, len(job.prompt))
            new_budget = max(budget, job.max_new)
            too_big = (len(current) + 1) * (new_longest + new_budget) > self.max_batch_tokens
            if current and (len(current) >= self.max_batch_size or too_big):
                out.append(current)
                current, new_longest, new_budget = [], len(job.prompt), job.max_new
            current.append(job)
            longest, budget = new_longest, new_budget
        if current:
            out.append(current)
        return out

    # -- running ------------------------------------------------------------------------------

    def run(self, jobs: list[Job], since: int | None = None) -> None:
        """Run jobs to completion as one batch.

        Args:
            jobs: The batch.
            since: The stop token of the call these jobs belong to (see ``llmcompare._stop``);
                by default, the current one.

        Raises:
            BackendError: When the caller was cancelled (Ctrl-C) meanwhile: the batch stops at
                its next step instead of running to its end.
        """
        since = _stop.token() if since is None else since
        if _stop.requested(since):
            raise BackendError("interrupted: the run was cancelled", model_id=self.model_id)
        batch = _Batch(self, jobs)
        batch.prefill()
        while batch.alive:
            if _stop.requested(since):
                raise BackendError("interrupted: the run was cancelled", model_id=self.model_id)
            batch.step()

    def completion(
        self, job: Job, request_id: str | None = None, *, since: float | None = None
    ) -> Completion:
        """The completion of a finished job.

        Args:
            job: The job.
            request_id: Its request id.
            since: When the request was handed to the engine (``perf_counter``): latency, time
                to first token and queue wait are counted from it, row by row.
        """
        assert job.finish is not None
        timings: dict[str, float] = {}
        if since is not None:
            if job.done_at is not None:
                timings["latency_s"] = job.done_at - since
            if job.first_at is not None:
                timings["ttft_s"] = job.first_at - since
            if job.started_at is not None:
                timings["queue_s"] = max(0.0, job.started_at - since)
        counter = self.energy
        return Completion(
            text=self.final_text(job),
            finish_reason=job.finish,
            usage=Usage(input_tokens=len(job.prompt), output_tokens=len(job.out)),
            model=self.model_id,
            response_model=self.response_model,
            request_id=request_id,
            compute_s=job.compute_s,
            device=self.device_name,
            energy_j=job.energy_j,
            energy_method=counter.method
            if counter is not None and job.energy_j is not None
            else None,
            sent=self.sent(job),
            **timings,
        )

    def sent(self, job: Job) -> Sent:
        """The settings the job ran with, under transformers' names, and how they differ."""
        params: dict[str, Any] = {"max_new_tokens": job.max_new}
        notes: list[str] = []
        request = job.request
        if job.temperature > 0:
            params.update(do_sample=True, temperature=job.temperature, top_p=job.top_p)
            if request.seed is not None:
                params["seed"] = request.seed
            else:
                notes.append("no seed given: a random seed was drawn, so reruns differ")
        else:
            params["do_sample"] = False
            if request.top_p is not None and request.top_p < 1.0:
                notes.append(f"top_p={request.top_p} has no effect: temperature 0 is greedy")
        if request.stop:
            params["stop_strings"] = list(request.stop)
        if request.response_format is not None:
            params["response_format"] = {
                "json_schema": request.response_format.name,
                "enforced_by": "llguidance token mask",
            }
        if request.max_tokens is not None and job.max_new < request.max_tokens:
            notes.append(
                f"max_tokens={request.max_tokens} cut to {job.max_new}: the context window ends"
            )
        if request.temperature is None:
            notes.append(f"no temperature given: the model's default ({job.temperature}) was used")
        return Sent.model_construct(params=params, notes=tuple(notes))

    def stream(self, job: Job, request_id: str) -> Iterator[Chunk]:
        """Yield a job's text as it is generated; the last chunk has finish_reason and usage.

        Closing the iterator stops generation at the next token.
        """
        batch = _Batch(self, [job])
        batch.prefill()
        sent = ""
        while batch.alive:
            batch.step()
            if job.finish is not None:
                break
            text = self.safe_text(job)
            if len(text) > len(sent) and text.startswith(sent):
                yield Chunk(text=text[len(sent) :])
                sent = text
        final = self.final_text(job)
        rest = final[len(sent) :] if final.startswith(sent) else ""
        yield Chunk(
            text=rest,
            finish_reason=job.finish,
            usage=Usage(input_tokens=len(job.prompt), output_tokens=len(job.out)),
            request_id=request_id,
            response_model=self.response_model,
        )

    # -- text ---------------------------------------------------------------------------------

    def _decode(self, job: Job) -> str:
        ids = job.out
        if ids and ids[-1] in self.eos_ids:
            ids = ids[:-1]
        with self._tok_lock:
            text: str = self.tokenizer.decode(ids, skip_special_tokens=True)
        return text

    def final_text(self, job: Job) -> str:
        """The text of a finished job, cut before its stop string."""
        if job.text is None:
            text = self._decode(job)
            job.text = text if job.stop_at is None else text[: job.stop_at]
        return job.text

    def safe_text(self, job: Job) -> str:
        """The text so far, minus what may still change: a partial character or stop string."""
        text = self._decode(job)
        # A multi-byte character split across tokens decodes as U+FFFD until it completes.
        text = text.rstrip("\ufffd")
        for n in range(min(len(text), max((len(s) for s in job.stops), default=1) - 1), 0, -1):
            if any(s.startswith(text[-n:]) for s in job.stops):
                return text[:-n]
        return text

    def _check_stop(self, job: Job) -> bool:
        text = self._decode(job)
        found = [i for i in (text.find(s) for s in job.stops) if i >= 0]
        if found:
            job.stop_at = min(found)
            return True
        return False

    # -- one row's next token -----------------------------------------------------------------

    def accept(self, job: Job, token: int, now: float) -> bool:
        """Record a generated token (available at ``now``); return True when the job is finished."""
        job.out.append(token)
        if job.first_at is None:
            job.first_at = now
        constraint = job.constraint
        if constraint is not None and token not in self.eos_ids:
            constraint.advance(token)
        if (
            token in self.eos_ids
            or (constraint is not None and constraint.finished)
            or (job.stops and self._check_stop(job))
        ):
            job.finish = "stop"
        elif len(job.out) >= job.max_new:
            job.finish = "length"
        if job.finish is not None:
            job.done_at = now
        return job.finish is not None

    def pick(self, logits: torch.Tensor, jobs: Sequence[Job]) -> list[int]:
        """Choose each row's next token: argmax for greedy rows, seeded sampling for the others.

        Rows with a JSON schema choose among the tokens their grammar allows.
        """
        mask_logits(self.grammars, logits, jobs)
        greedy = torch.argmax(logits, dim=-1)
        if all(j.temperature == 0 for j in jobs):
            return [int(t) for t in greedy.tolist()]
        tokens = [int(t) for t in greedy.tolist()]
        for row, job in enumerate(jobs):
            if job.temperature > 0:
                tokens[row] = _sample(logits[row], job)
        return tokens


def _sample(logits: torch.Tensor, job: Job) -> int:
    probs = torch.softmax(logits.float() / job.temperature, dim=-1)
    if job.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        # Keep the smallest set of tokens whose mass reaches top_p (at least the first).
        drop = torch.cumsum(sorted_probs, dim=-1) - sorted_probs > job.top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        choice = torch.multinomial(sorted_probs, 1, generator=job.generator)
        return int(order[choice].item())
    return int(torch.multinomial(probs, 1, generator=job.generator).item())


def _spent(counter: EnergyCounter | None, start: object | None) -> float | None:
    """Joules since ``start`` on the engine's counter, or None when not measurable."""
    if counter is None or start is None:
        return None
    end = counter.read()
    return None if end is None else counter.joules(start, end)


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    for value in (
        getattr(getattr(model, "generation_config", None), "eos_token_id", None),
        getattr(model.config, "eos_token_id", None),
        tokenizer.eos_token_id,
    ):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return frozenset(ids)


def _cache_argument(model: Any) -> str:
    """The keyword argument the model's forward takes its KV cache by.

    transformers renamed ``past_key_values`` to ``cache``: recent releases (5.24, for one) warn
    with a FutureWarning that the old name goes in 5.40, while the earlier 5.x releases (and a
    model class not migrated yet) know only the old one. The forward's signature says which it
    takes: transformers' decorators keep ``__wrapped__``, so ``inspect.signature`` sees it.
    """
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # no introspectable signature: the name every 5.x accepts
        return "past_key_values"
    return "cache" if "cache" in parameters else "past_key_values"


def _shared_prefix(prompts: Sequence[list[int]]) -> int:
    first = prompts[0]
    # Every row keeps at least one token of its own, whose logits start its answer.
    limit = min(len(p) for p in prompts) - 1
    n = 0
    while n < limit and all(p[n] == first[n] for p in prompts):
        n += 1
    return n


class _Batch:
    """The state of one batch between decoding steps: KV cache, attention mask, positions."""

    def __init__(self, engine: Engine, jobs: list[Job]) -> None:
        self.engine = engine
        self.alive = list(jobs)
        self.cache: Any = None
        self.mask: torch.Tensor | None = None
        self.last_pos: torch.Tensor | None = None
        self.logits: torch.Tensor | None = None

    def _forward(self, cache: Any, **inputs: Any) -> torch.Tensor:
        engine = self.engine
        inputs[engine._cache_arg] = cache
        out = engine.model(**inputs, use_cache=True, return_dict=True, **engine._keep)
        logits: torch.Tensor = out.logits[:, -1, :]
        return logits

    def prefill(self) -> None:
        """Run the prompts: the shared prefix once, then every row's own part, left-padded."""
        from transformers import DynamicCache

        engine = self.engine
        jobs = self.alive
        device = engine.device
        prompts = [j.prompt for j in jobs]
        rows = len(prompts)
        with engine._lock, torch.inference_mode():
            start = time.perf_counter()
            reading = engine.energy.read() if engine.energy is not None else None
            for job in jobs:
                job.started_at = start
            cache = DynamicCache(config=engine.model.config)
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
            self.logits = self._forward(
                cache,
                input_ids=ids.to(device),
                attention_mask=mask,
                position_ids=positions[:, shared:],
            )
            self.cache, self.mask, self.last_pos = cache, mask, positions[:, -1:]
            elapsed = time.perf_counter() - start
            joules = _spent(engine.energy, reading)
        total = sum(len(p) for p in prompts)
        for job in jobs:
            job.compute_s += elapsed * len(job.prompt) / total
            if joules is not None:
                job.energy_j = (job.energy_j or 0.0) + joules * len(job.prompt) / total

    def step(self) -> None:
        """Pick every live row's next token, retire finished rows, and run the next forward."""
        engine = self.engine
        jobs = self.alive
        assert self.logits is not None
        assert self.mask is not None
        assert self.last_pos is not None
        with engine._lock, torch.inference_mode():
            start = time.perf_counter()
            reading = engine.energy.read() if engine.energy is not None else None
            tokens = engine.pick(self.logits, jobs)
            # The tokens exist from here on: the time a row's first and last tokens arrive.
            now = time.perf_counter()
            keep = [
                row
                for row, (job, t) in enumerate(zip(jobs, tokens, strict=True))
                if not engine.accept(job, t, now)
            ]
            engine.tokens_generated += len(jobs)
            if keep:
                mask, last_pos = self.mask, self.last_pos
                if len(keep) < len(jobs):
                    # Finished rows leave the batch: later steps compute only live rows.
                    index = torch.tensor(keep, device=engine.device)
                    self.cache.batch_select_indices(index)
                    mask, last_pos = mask[index], last_pos[index]
                nxt = torch.tensor(
                    [[tokens[r]] for r in keep], dtype=torch.long, device=engine.device
                )
                mask = torch.cat([mask, mask.new_ones((len(keep), 1))], dim=1)
                last_pos = last_pos + 1
                self.logits = self._forward(
                    self.cache, input_ids=nxt, attention_mask=mask, position_ids=last_pos
                )
                self.mask, self.last_pos = mask, last_pos
            elapsed = time.perf_counter() - start
            joules = _spent(engine.energy, reading)
        share = elapsed / len(jobs)
        for job in jobs:
            job.compute_s += share
            if joules is not None:
                job.energy_j = (job.energy_j or 0.0) + joules / len(jobs)
        self.alive = [jobs[r] for r in keep]
        if not keep:
            self.cache = self.logits = self.mask = self.last_pos = None
