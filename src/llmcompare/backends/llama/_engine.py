"""The generation engine of the ``llama`` backend: a lean batched decoding loop over transformers.

Imports torch; loaded only when a model first generates.

Why not ``model.generate``: for a batch it keeps computing rows that have already finished, and
pads every prompt to the longest one. This engine prefills the prompt prefix that a batch shares
(typically the chat template's system prompt) once, takes what it can of it from the prefix
cache across requests (``_prefix.py``), drops finished rows from the KV cache, and
handles stop strings, per-request sampling settings and streaming in the same loop. Greedy
output is the same token for token as one request at a time.

The engine owns the forward passes over the batch's KV layout (``_kv.py``); the scheduler
(``_scheduler.py``) decides which jobs (``_job.py``) run together, and when.
"""

from __future__ import annotations

import inspect
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from llmcompare.backends.llama._constrain import Grammars
from llmcompare.backends.llama._job import Constraint, Job
from llmcompare.backends.llama._kv import (
    PACKABLE,
    KVBatch,
    KVShape,
    Prefilled,
    SlabLayer,
    packed_inputs,
    packing_pays,
    packs,
)
from llmcompare.backends.llama._options import DEFAULT_MAX_TOKENS
from llmcompare.backends.llama._prefix import BLOCK, PrefixCache
from llmcompare.energy import EnergyCounter, energy_counter
from llmcompare.errors import BackendError
from llmcompare.types import Completion, Request, Sent, Usage

__all__ = ["Engine"]

# A shared prefix is prefilled once and copied to every row when it saves at least this many
# token computations: below that, the extra forward pass costs more than it saves.
_MIN_SHARED_PREFIX = 8
_MIN_PREFIX_SAVING = 128


class Engine:
    """Runs requests on one loaded transformers model and tokenizer.

    Args:
        model_id: The llmcompare id, for errors and completions.
        model: A transformers causal language model, in eval mode on its device.
        tokenizer: Its tokenizer.
        max_batch_size: Most rows in one batch.
        max_batch_tokens: Most token slots (rows x (prompt + new tokens)) in one batch.
        response_model: What produced the weights (file, folder or hub id), for completions.
        prefix_cache_tokens: Most prompt-prefix tokens whose KV is kept across requests
            (:class:`PrefixCache`); 0 keeps none.
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
        prefix_cache_tokens: int = 0,
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
        # Which attention the model runs (config._attn_implementation): a prefill into a slab
        # is packed where it takes a ready 4-D mask (see _kv.packed_inputs).
        self.attention: str = getattr(config, "_attn_implementation", None) or "sdpa"
        # Builds a request's per-row constraint (a grammar for structured output, say) when
        # ``job`` is given none; None: no request is constrained. See :class:`Job`.
        # By default a request's response_format becomes a JSON-schema constraint.
        self.constraint_for: Callable[[Request], Constraint | None] | None = self._json_constraint
        # Whether the model's KV cache can be padded and merged (plain growing layers, not
        # sliding windows): found at the first prefill. When not, newcomers wait for the end.
        self.mergeable: bool | None = None
        # The KV cache's shape per layer, from the first prefill of a mergeable model: later
        # batches that start fresh are prefilled straight into their slab (KVBatch.start).
        self.kv_shape: KVShape | None = None
        # Fast tokenizers are not safe to call from two threads at once ("Already borrowed").
        self._tok_lock = threading.Lock()
        self.tokens_generated = 0
        # The KV of prompt prefixes across requests (a few-shot prefix is computed once).
        self.prefix_cache = PrefixCache(prefix_cache_tokens)
        # Measured energy per step, where the device lets it be read (RAPL on a CPU, NVML on an
        # NVIDIA GPU): each step's joules are shared out among its rows, like its time.
        self.energy: EnergyCounter | None = energy_counter(self.device_name)
        # The JSON-schema compiler, made when the first request with a response_format comes.
        self._grammars: Grammars | None = None

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

    def job(self, index: int, request: Request, constraint: Constraint | None = None) -> Job:
        """Turn a request into a job: prompt tokens, token budget and sampler.

        Args:
            index: The job's place in its call.
            request: The request.
            constraint: An optional per-row hook on sampling (see :class:`Job`); by default
                what ``constraint_for`` builds for the request, if set.

        Raises:
            BackendError: When the prompt does not fit the context window, or the request alone
                needs more KV-cache slots than ``max_batch_tokens`` (not retryable).
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
        if len(prompt) + max_new > self.max_batch_tokens:
            raise BackendError(
                f"the request needs {len(prompt) + max_new} KV-cache slots ({len(prompt)} prompt "
                f"tokens + max_tokens {max_new}) and max_batch_tokens is "
                f"{self.max_batch_tokens}: lower max_tokens or raise max_batch_tokens",
                model_id=self.model_id,
            )
        if constraint is None and self.constraint_for is not None:
            constraint = self.constraint_for(request)
        return Job(index, request, prompt, max_new, temperature, top_p, generator, constraint)

    def _json_constraint(self, request: Request) -> Constraint | None:
        """The llguidance constraint of a request with a ``response_format``; None without."""
        fmt = request.response_format
        return None if fmt is None else self.grammars().row(fmt)

    def grammars(self) -> Grammars:
        """The engine's JSON-schema compiler for its tokenizer (made on first use)."""
        if self._grammars is None:
            # The logits' width, which may exceed the tokenizer's vocabulary (padded matrices).
            out = self.model.get_output_embeddings()
            width = out.weight.shape[0] if out is not None else self.model.config.vocab_size
            self._grammars = Grammars(self.model_id, self.tokenizer, int(width), self.eos_ids)
        return self._grammars

    def read_energy(self) -> object | None:
        """A reading of the device's energy counter; None where energy is not measurable."""
        return self.energy.read() if self.energy is not None else None

    def joules_since(self, reading: object | None) -> float | None:
        """Joules spent since ``reading`` (see :meth:`read_energy`); None when not measurable."""
        counter = self.energy
        if counter is None or reading is None:
            return None
        end = counter.read()
        return None if end is None else counter.joules(reading, end)

    # -- the forward passes ----------------------------------------------------------------------

    def forward(self, cache: Any, **inputs: Any) -> torch.Tensor:
        """Run the model on ``inputs`` with its KV cache; the logits of each row's last position."""
        inputs[self._cache_arg] = cache
        out = self.model(**inputs, use_cache=True, return_dict=True, **self._keep)
        logits: torch.Tensor = out.logits[:, -1, :]
        return logits

    def prefill(self, jobs: list[Job], cache: Any = None) -> Prefilled:
        """Run the prompts: the shared prefix once, then every row's own part, left-padded.

        Each job is charged its share of the time and energy, by its prompt's length.

        Args:
            jobs: The newcomers.
            cache: An empty cache to fill (a batch's slab, :meth:`KVBatch.start`); by default a
                transformers ``DynamicCache``.
        """
        from transformers import DynamicCache

        device = self.device
        prompts = [j.prompt for j in jobs]
        rows = len(prompts)
        with torch.inference_mode():
            start = time.perf_counter()
            reading = self.read_energy()
            for job in jobs:
                job.started_at = start
            made = cache is None
            if cache is None:
                cache = DynamicCache(config=self.model.config)
            if self.mergeable is None:
                from transformers.cache_utils import DynamicLayer

                self.mergeable = all(type(layer) is DynamicLayer for layer in cache.layers)
            shared, reused = self._prefill_prefix(cache, prompts)
            for job in jobs:
                job.reused = reused
            width = max(len(p) for p in prompts) - shared
            ids = torch.full((rows, width), self.pad_id, dtype=torch.long)
            own = torch.zeros((rows, width), dtype=torch.long)
            for row, p in enumerate(prompts):
                tail = p[shared:]
                ids[row, width - len(tail) :] = torch.tensor(tail, dtype=torch.long)
                own[row, width - len(tail) :] = 1
            mask = torch.cat([torch.ones((rows, shared), dtype=torch.long), own], dim=1).to(device)
            # Positions count real tokens only, so padding never shifts a row's positions.
            positions = (mask.cumsum(-1) - 1).clamp_(min=0)
            if self._packable(cache, prompts, shared):
                logits = self._prefill_packed(cache, [p[shared:] for p in prompts], shared)
            else:
                logits = self.forward(
                    cache,
                    input_ids=ids.to(device),
                    attention_mask=mask,
                    position_ids=positions[:, shared:],
                )
            if rows == 1 and self.mergeable and self.prefix_cache.capacity:
                # One row has no padding: its whole prompt's KV is in the cache now.
                self.prefix_cache.store(prompts[0], len(prompts[0]) - 1, cache.layers)
            if made and self.mergeable and self.kv_shape is None:
                keys = cache.layers[0].keys
                # An empty tensor for the dtype and device: keys itself would stay alive.
                like = keys.new_empty(0)
                self.kv_shape = KVShape(len(cache.layers), keys.shape[1], keys.shape[3], like)
            elapsed = time.perf_counter() - start
            joules = self.joules_since(reading)
        total = sum(len(p) for p in prompts)
        for job in jobs:
            job.compute_s += elapsed * len(job.prompt) / total
            if joules is not None:
                job.energy_j = (job.energy_j or 0.0) + joules * len(job.prompt) / total
        # With a shared prefix the padding sits after it: no leading column is padding.
        pads = [0 if shared else width - len(p) for p in prompts]
        holes = [bool(shared) and len(p) - shared < width for p in prompts]
        return Prefilled(cache, mask, positions[:, -1:], logits, pads, holes)

    def _packable(self, cache: Any, prompts: list[list[int]], shared: int) -> bool:
        """Whether a prefill into ``cache`` runs packed: into a slab, where it costs less.

        Padded, every row computes the longest row's tokens; packed, each real token is
        computed once, but every pack reads the weights again and its attention spans the
        whole pack: :func:`~llmcompare.backends.llama._kv.packing_pays` weighs the two.
        """
        return (
            # Its costs were measured on a CPU; on a GPU one padded forward is cheap and the
            # packed mask rules out the flash kernels: packing waits for a measurement there.
            self.device.type == "cpu"
            and self.attention in PACKABLE
            and isinstance(cache.layers[0], SlabLayer)
            and packing_pays([len(p) - shared for p in prompts], shared)
        )

    def _prefill_packed(self, cache: Any, tails: list[list[int]], shared: int) -> torch.Tensor:
        """Prefill the rows' own tokens packed into sequences, no padding (``packed_inputs``).

        Returns:
            Each row's logits for its first new token, ``(rows, vocabulary)``.
        """
        dtype = cache.layers[0].slab_keys.dtype
        # A fresh slab (KVBatch.start): its columns count from 0, the prefix first.
        assert cache.layers[0].columns.start == 0
        end = shared + max(len(t) for t in tails)
        logits: list[torch.Tensor] = []
        try:
            for pack in packs([len(t) for t in tails]):
                ids, positions, mask, last, packing = packed_inputs(
                    tails[pack], pack.start, shared, end, self.attention, dtype, self.device
                )
                for layer in cache.layers:
                    # Every pack attends to the shared prefix alone before its own tokens.
                    layer.end, layer.packing = shared, packing
                keep = {"logits_to_keep": last} if self._keep else {}
                out = self.model(
                    input_ids=ids,
                    attention_mask=mask,
                    position_ids=positions,
                    use_cache=True,
                    return_dict=True,
                    **{self._cache_arg: cache},
                    **keep,
                )
                logits.append(out.logits[0] if keep else out.logits[0, last])
        finally:
            for layer in cache.layers:
                layer.end, layer.packing = end, None
        return torch.cat(logits)

    def _prefill_prefix(self, cache: Any, prompts: list[list[int]]) -> tuple[int, int]:
        """Fill ``cache`` with the prefix every prompt shares, once, then repeat it to each row.

        The prefix cache gives what it holds of that prefix; the rest is computed and kept in
        it (a lone row's rest is computed with its own tokens, in one forward). Every row keeps
        at least one token of its own, whose logits start its answer.

        Returns:
            The length of the prefix in ``cache`` (0: none, the rows are prefilled whole), and
            how many of its tokens came from the prefix cache.
        """
        rows = len(prompts)
        first = prompts[0]
        shared = _shared_prefix(prompts) if rows > 1 else len(first) - 1
        store = self.prefix_cache if self.mergeable and self.prefix_cache.capacity else None
        cached = 0
        if store is not None and shared >= BLOCK:
            cached, layers = store.match(first, shared, rows)
            for index, (keys, values) in enumerate(layers or ()):
                cache.update(keys, values, index)
            if rows == 1:
                # The row computes the rest in one forward; prefill keeps its blocks after it.
                return cached, cached
        elif rows == 1 or shared < _MIN_SHARED_PREFIX or shared * (rows - 1) < _MIN_PREFIX_SAVING:
            # Without the prefix cache an extra forward pays only for a prefix many rows share.
            return 0, 0
        if shared > cached:
            device = self.device
            prefix = torch.tensor([first[cached:shared]], dtype=torch.long, device=device)
            positions = torch.arange(cached, shared, device=device).unsqueeze(0)
            self.forward(cache, input_ids=prefix, position_ids=positions)
        if store is not None:
            store.store(first, shared, cache.layers)
        if rows > 1:
            cache.batch_repeat_interleave(rows)
        return shared, cached

    def step(self, batch: KVBatch, keep: list[int], rows: int, tokens: torch.Tensor) -> None:
        """Run the next decoding forward: the kept rows' new tokens go in, their logits come out.

        Args:
            batch: The running batch (``batch.rows`` still the ``rows`` of the last step; the
                kept ones, in their new order, afterwards).
            keep: The rows, of the ``rows`` that computed the last step, that stay.
            rows: How many rows computed the last step.
            tokens: Each of those rows' new token, on the device.
        """
        mask, positions, ids = batch.next_inputs(keep, rows, tokens)
        batch.logits = self.forward(
            batch.cache, input_ids=ids, attention_mask=mask, position_ids=positions
        )

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
            # Prompt tokens the prefix cache supplied are reported as an API reports its prompt
            # cache's: the report's cache-hit share reads them.
            usage=Usage(
                input_tokens=len(job.prompt),
                output_tokens=len(job.out),
                cache_read_tokens=job.reused,
            ),
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

    # -- text ---------------------------------------------------------------------------------

    def _decode(self, ids: Sequence[int]) -> str:
        with self._tok_lock:
            text: str = self.tokenizer.decode(ids, skip_special_tokens=True)
        return text

    def final_text(self, job: Job) -> str:
        """The text of a finished job, cut before its stop string."""
        if job.text is None:
            if job.track:
                job.text = "".join(job.pieces)
            else:
                ids = job.out
                if ids and ids[-1] in self.eos_ids:
                    ids = ids[:-1]
                job.text = self._decode(ids)
        return job.text

    def _new_text(self, job: Job, final: bool) -> str:
        """The text the tokens since the last call add; only a few tokens are decoded.

        Tokens ``out[text_at:read_at]`` were decoded before: decoding them again together with
        the new ones, and taking what the new ones add, keeps the context a tokenizer needs at a
        token boundary (a leading space), while the work stays independent of the output's
        length. A character split across tokens decodes as U+FFFD until it completes: the
        tokens wait, unless this is the end.
        """
        out = job.out
        end = len(out) - 1 if out and out[-1] in self.eos_ids else len(out)
        if end <= job.read_at:
            return ""
        before = self._decode(out[job.text_at : job.read_at]) if job.read_at > job.text_at else ""
        after = self._decode(out[job.text_at : end])
        if not final and (len(after) <= len(before) or after.endswith("\ufffd")):
            return ""
        job.text_at, job.read_at = job.read_at, end
        return after[len(before) :]

    def _take_text(self, job: Job, final: bool) -> bool:
        """Add the new text to the job's final text; return True when a stop string appeared.

        Only the held tail (shorter than the longest stop string) and the new text are searched:
        a stop string that starts earlier was either found before or ended in the tail.
        """
        text = job.held + self._new_text(job, final)
        if not text:
            return False
        found = [i for i in (text.find(s) for s in job.stops) if i >= 0]
        if found:
            self._commit(job, text[: min(found)])
            job.held = ""
            job.stop_at = sum(len(p) for p in job.pieces)
            return True
        keep = 0
        if not final:
            # The longest tail that may still become a stop string waits for the next tokens.
            for n in range(min(len(text), job.stop_len - 1), 0, -1):
                tail = text[-n:]
                if any(s.startswith(tail) for s in job.stops):
                    keep = n
                    break
        self._commit(job, text[: len(text) - keep])
        job.held = text[len(text) - keep :]
        return False

    @staticmethod
    def _commit(job: Job, text: str) -> None:
        if text:
            job.pieces.append(text)
            if job.on_text is not None:
                job.on_text(text)

    # -- one row's next token -----------------------------------------------------------------

    def accept(self, job: Job, token: int, now: float) -> bool:
        """Record a generated token (available at ``now``); return True when the job is finished."""
        job.out.append(token)
        if job.first_at is None:
            job.first_at = now
        constraint = job.constraint
        if constraint is not None:
            constraint.advance(token)
        if (
            token in self.eos_ids
            or (job.track and self._take_text(job, final=False))
            or (constraint is not None and constraint.done)
        ):
            job.finish = "stop"
        elif len(job.out) >= job.max_new:
            job.finish = "length"
        if job.finish is not None:
            job.done_at = now
            if job.track and job.stop_at is None:
                self._take_text(job, final=True)
        return job.finish is not None

    def pick(self, logits: torch.Tensor, jobs: Sequence[Job]) -> tuple[torch.Tensor, list[int]]:
        """Choose each row's next token: argmax for greedy rows, seeded sampling for the others.

        Rows with a constraint have their logits masked first. The tokens stay on the device
        until one read at the end: the only host-device synchronisation of a step. A row whose
        mask or draw fails gets the error in ``job.error`` (it leaves the batch alone); its
        token is meaningless.

        Returns:
            The tokens as a tensor on the device (one per row) and as a list.
        """
        special = [
            row for row, j in enumerate(jobs) if j.temperature > 0 or j.constraint is not None
        ]
        if not special:
            tokens = torch.argmax(logits, dim=-1)
            return tokens, tokens.tolist()
        logits = logits.clone()
        for row in special:
            job = jobs[row]
            if job.constraint is not None:
                try:
                    logits[row] = job.constraint.mask(logits[row])
                except Exception as exc:  # noqa: BLE001 - one row's error is its own
                    job.error = exc
        tokens = torch.argmax(logits, dim=-1)
        for row in special:
            job = jobs[row]
            if job.temperature > 0 and job.error is None:
                try:
                    tokens[row] = _sample(logits[row], job)
                except Exception as exc:  # noqa: BLE001 - say, an all -inf row: its own error
                    job.error = exc
        return tokens, tokens.tolist()


def _sample(logits: torch.Tensor, job: Job) -> torch.Tensor:
    """One token of a sampled row, drawn with the row's own generator (stays on the device)."""
    probs = torch.softmax(logits.float() / job.temperature, dim=-1)
    if job.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        # Keep the smallest set of tokens whose mass reaches top_p (at least the first).
        drop = torch.cumsum(sorted_probs, dim=-1) - sorted_probs > job.top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        choice = torch.multinomial(sorted_probs, 1, generator=job.generator)
        return order[choice][0]
    return torch.multinomial(probs, 1, generator=job.generator)[0]


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
