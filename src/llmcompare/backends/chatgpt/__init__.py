"""The ``chatgpt`` backend: OpenAI chat models, or any OpenAI-compatible server, via the openai SDK.

Registered through llmcompare's own entry points like any third-party plugin::

    from llmcompare import get_model

    gpt = get_model("chatgpt")                       # DEFAULT_MODEL, key from OPENAI_API_KEY
    mini = get_model("chatgpt:gpt-4o-mini", timeout=30)
    local = get_model("chatgpt:my-model", base_url="http://127.0.0.1:8000/v1")  # no key needed

Importing this module is cheap: the openai SDK is imported when a model first sends a request,
and the token counter (quicktok-v1, else tiktoken) when tokens are first counted. Install them
with ``pip install "llmcompare[openai]"``.
"""

from __future__ import annotations

from llmcompare.backends.chatgpt._batch import BatchRequestError
from llmcompare.backends.chatgpt._model import ChatGPTModel
from llmcompare.backends.chatgpt._options import (
    DEFAULT_MODEL,
    ChatGPTOptions,
    ParameterDroppedWarning,
)
from llmcompare.backends.chatgpt._quirks import COMPATIBLE, QUIRKS, Quirks, quirks_for
from llmcompare.backends.chatgpt._tokens import (
    TokenEstimateWarning,
    count_text_tokens,
    count_tokens,
)
from llmcompare.plugins import Register, hookimpl
from llmcompare.retry._after import parse_duration, parse_retry_after

__all__ = [
    "COMPATIBLE",
    "DEFAULT_MODEL",
    "QUIRKS",
    "BatchRequestError",
    "ChatGPTModel",
    "ChatGPTOptions",
    "ParameterDroppedWarning",
    "Quirks",
    "TokenEstimateWarning",
    "count_text_tokens",
    "count_tokens",
    "parse_duration",
    "parse_retry_after",
    "quirks_for",
    "register_models",
]


def _make(variant: str | None, options: ChatGPTOptions) -> ChatGPTModel:
    return ChatGPTModel(variant or DEFAULT_MODEL, options)


@hookimpl
def register_models(register: Register) -> None:
    """Register the ``chatgpt`` model family (plugin hook)."""
    register(
        "chatgpt",
        _make,
        options=ChatGPTOptions,
        description=(
            f"OpenAI chat models via the openai SDK (default {DEFAULT_MODEL}); with base_url, "
            "any OpenAI-compatible server"
        ),
    )
