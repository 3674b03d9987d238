"""Per-model-family request quirks of OpenAI chat models: the one table, and its lookup.

OpenAI's chat models do not all accept the same request fields. Rather than scattering ``if
model.startswith(...)`` through the request code, every difference lives here as one row per
family, each with the source of the fact. Lookup is by longest matching name prefix, so dated
snapshots (``gpt-4o-2024-08-06``) and size variants (``gpt-5-mini``) follow their family.

A name that matches no row (a model on vLLM, llama.cpp, Ollama, transformers serve, ...) gets
:data:`COMPATIBLE`: the classic chat-completions fields every OpenAI-compatible server understands.
The ``family`` option of the ``chatgpt`` backend picks a row by name for deployments whose names
say nothing (an Azure deployment called ``prod-chat``, say).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from llmcompare.errors import ConfigurationError

__all__ = ["COMPATIBLE", "QUIRKS", "Quirks", "quirks_for"]

_SDK_PARAMS = "openai 3.54 SDK docstrings, resources/chat/completions/completions.py"
_TIKTOKEN = "tiktoken 0.14 tiktoken/model.py (MODEL_PREFIX_TO_ENCODING)"


@dataclass(frozen=True, slots=True)
class Quirks:
    """How to talk to one family of models.

    Attributes:
        family: The row's name (the prefix it matches).
        max_tokens_field: The request field that carries ``max_tokens``.
        sampling: Whether ``temperature`` and ``top_p`` are accepted. When not, they are left
            out of the request and a warning says so.
        sampling_without_reasoning: Whether ``temperature`` and ``top_p`` become accepted when
            the request sets ``reasoning_effort="none"`` (gpt-5.1 and later).
        stop: Whether ``stop`` is accepted. When not, stop strings are applied to the text on
            the client side (the text is cut at the first one, finish reason ``"stop"``); the
            model still generates, and bills, the tokens after it.
        reasoning: Whether the family spends hidden reasoning tokens.
        structured_outputs: Whether ``response_format={"type": "json_schema", ...}`` is
            accepted. When not, a request with a ``response_format`` is refused before it is sent.
        encoding: The tiktoken encoding used to count tokens before a call.
        context_window: Prompt plus answer tokens, when known.
        source: Where these facts come from.
    """

    family: str
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    sampling: bool = True
    sampling_without_reasoning: bool = False
    stop: bool = True
    reasoning: bool = False
    structured_outputs: bool = True
    encoding: str = "o200k_base"
    context_window: int | None = None
    source: str = ""


COMPATIBLE = Quirks(
    family="compatible",
    source=(
        "classic chat-completions fields (max_tokens, temperature, top_p, stop), which "
        "OpenAI-compatible servers (vLLM, llama.cpp server, Ollama, transformers serve) accept; "
        "token counts for unknown models are an o200k_base estimate"
    ),
)
"""Quirks for a model name that matches no row: the most widely accepted request shape."""

_REASONING_SOURCE = (
    "reasoning models reject max_tokens ('Use max_completion_tokens instead', "
    "openai/openai-python#2046; SDK docstring: max_tokens 'is not compatible with o-series "
    "models') and temperature/top_p (sigoden/aichat#1144, lobehub/lobehub#7747 for o4-mini; "
    "Azure OpenAI reasoning-model docs list both as unsupported)"
)
# Structured outputs (response_format json_schema) came with gpt-4o-mini and gpt-4o-2024-08-06:
# earlier chat models have JSON mode only.
_NO_STRUCTURED = (
    "no structured outputs: response_format json_schema is 'supported on gpt-4o-mini and our new "
    "model: gpt-4o-2024-08-06' (community.openai.com/t/introducing-structured-outputs/896022); "
    "'Older models like gpt-4-turbo and earlier may use JSON mode instead' (OpenAI's "
    "response_format docs, as quoted by aallam/openai-kotlin AssistantRequest.responseFormat)"
)
_GPT5_SOURCE = (
    "gpt-5 family: temperature accepts only the default 1 (tmc/langchaingo#1355, "
    "johny-b/llmcomp#69 for gpt-5.4, itzcrazykns/vane#1173 for gpt-5.6), stop is rejected "
    "(huggingface/smolagents#1662 for gpt-5/-mini/-nano, #1868 for gpt-5.1, #1893 for gpt-5.2), "
    "max_tokens rejected (nalgeon/pokitoki#48, koosoli/ESPHomeDesigner#379 for gpt-5.4)"
)

# Longest prefix wins, so more specific rows (gpt-5-chat, o3-mini) override their family.
QUIRKS: tuple[Quirks, ...] = (
    # -- classic chat models: every field accepted ------------------------------------------
    Quirks(
        "gpt-3.5-turbo",
        structured_outputs=False,
        encoding="cl100k_base",
        context_window=16_385,
        source=f"classic chat model; {_NO_STRUCTURED}; {_TIKTOKEN}",
    ),
    Quirks(
        "gpt-4",
        structured_outputs=False,
        encoding="cl100k_base",
        context_window=8_192,
        source=f"classic chat model; {_NO_STRUCTURED}; {_TIKTOKEN}",
    ),
    Quirks(
        "gpt-4-32k",
        structured_outputs=False,
        encoding="cl100k_base",
        context_window=32_768,
        source=f"classic chat model; {_NO_STRUCTURED}; {_TIKTOKEN}",
    ),
    Quirks(
        "gpt-4-turbo",
        structured_outputs=False,
        encoding="cl100k_base",
        context_window=128_000,
        source=f"classic chat model; {_NO_STRUCTURED}; {_TIKTOKEN}",
    ),
    Quirks(
        "gpt-4o",
        context_window=128_000,
        source=(
            f"classic chat model (max_tokens deprecated but accepted: {_SDK_PARAMS}); {_TIKTOKEN}"
        ),
    ),
    Quirks(
        "gpt-4o-2024-05-13",
        structured_outputs=False,
        context_window=128_000,
        source=f"the first gpt-4o snapshot; {_NO_STRUCTURED}; {_TIKTOKEN}",
    ),
    Quirks(
        "chatgpt-4o",
        context_window=128_000,
        source=f"classic chat model; {_TIKTOKEN}",
    ),
    Quirks(
        "gpt-4.1",
        context_window=1_047_576,
        source=f"classic chat model; {_TIKTOKEN}",
    ),
    Quirks(
        "gpt-4.5",
        context_window=128_000,
        source=f"classic chat model; {_TIKTOKEN}",
    ),
    # -- o-series reasoning models ----------------------------------------------------------
    Quirks(
        "o1",
        max_tokens_field="max_completion_tokens",
        sampling=False,
        reasoning=True,
        context_window=200_000,
        source=f"{_REASONING_SOURCE}; {_TIKTOKEN}",
    ),
    Quirks(
        "o3",
        max_tokens_field="max_completion_tokens",
        sampling=False,
        stop=False,
        reasoning=True,
        context_window=200_000,
        source=(
            f"{_REASONING_SOURCE}; stop: SDK docstring 'Not supported with latest reasoning "
            f"models o3 and o4-mini' ({_SDK_PARAMS}), crewAIInc/crewAI#2738; {_TIKTOKEN}"
        ),
    ),
    Quirks(
        "o3-mini",
        max_tokens_field="max_completion_tokens",
        sampling=False,
        reasoning=True,
        context_window=200_000,
        source=(
            f"{_REASONING_SOURCE}; o3-mini accepts stop, unlike o3 "
            f"(huggingface/smolagents#2366); {_TIKTOKEN}"
        ),
    ),
    Quirks(
        "o4-mini",
        max_tokens_field="max_completion_tokens",
        sampling=False,
        stop=False,
        reasoning=True,
        context_window=200_000,
        source=(
            f"{_REASONING_SOURCE}; stop: SDK docstring ({_SDK_PARAMS}), "
            f"langgenius/dify#18971; {_TIKTOKEN}"
        ),
    ),
    # -- gpt-5 and later: reasoning by default ----------------------------------------------
    Quirks(
        "gpt-5",
        max_tokens_field="max_completion_tokens",
        sampling=False,
        stop=False,
        reasoning=True,
        context_window=400_000,
        source=f"{_GPT5_SOURCE}; {_TIKTOKEN}",
    ),
    # gpt-5.1 and later point releases can switch reasoning off, and then take temperature/top_p.
    Quirks(
        "gpt-5.",
        max_tokens_field="max_completion_tokens",
        sampling=False,
        sampling_without_reasoning=True,
        stop=False,
        reasoning=True,
        context_window=400_000,
        source=(
            f"{_GPT5_SOURCE}; with reasoning_effort='none' temperature and top_p are accepted "
            "(vercel/ai#10932 citing OpenAI's gpt-5.1 docs; learn.microsoft.com ReasoningEffort: "
            f"gpt-5.1 defaults to none); {_TIKTOKEN}"
        ),
    ),
    # The "-chat" snapshots are non-reasoning chat models: temperature works there
    # (learnku.com/articles/90544: 'except gpt-5-chat-latest, temperature must be unset or 1').
    Quirks(
        "gpt-5-chat",
        max_tokens_field="max_completion_tokens",
        stop=False,
        context_window=128_000,
        source=(
            "gpt-5-chat-latest accepts temperature (learnku.com/articles/90544); stop left to the "
            f"client as for gpt-5 (not confirmed either way); {_TIKTOKEN}"
        ),
    ),
    *(
        Quirks(
            f"gpt-5.{minor}-chat",
            max_tokens_field="max_completion_tokens",
            stop=False,
            context_window=128_000,
            source=(
                f"assumed like gpt-5-chat-latest (learnku.com/articles/90544): the SDK lists "
                f"gpt-5.{minor}-chat-latest as a chat snapshot; {_TIKTOKEN}"
            ),
        )
        for minor in (1, 2, 3)
    ),
    Quirks(
        "gpt-6",
        max_tokens_field="max_completion_tokens",
        sampling=False,
        stop=False,
        reasoning=True,
        source=(
            "assumed like the gpt-5 family: openai 3.54 lists gpt-6-* ids "
            "(types/shared/chat_model.py) but no public note on their parameters was found"
        ),
    ),
)

_BY_PREFIX = sorted(QUIRKS, key=lambda q: len(q.family), reverse=True)
_BY_NAME = {q.family: q for q in (*QUIRKS, COMPATIBLE)}


def quirks_for(model: str, family: str | None = None) -> Quirks:
    """Find the quirks row for a model name.

    Args:
        model: The OpenAI model name (``"gpt-4o-mini"``, ``"o3-2025-04-16"``, ...). A leading
            ``"chatgpt:"`` or ``"openai/"`` is ignored; ``"ft:<base>:..."`` fine-tunes follow
            their base model.
        family: Pick this row by name instead of matching ``model`` (see :data:`QUIRKS`).

    Returns:
        The matching row, or :data:`COMPATIBLE` when none matches.

    Raises:
        ConfigurationError: When ``family`` names no row (the message lists those that exist).
    """
    if family is not None:
        try:
            return _BY_NAME[family]
        except KeyError:
            known = ", ".join(sorted(_BY_NAME))
            raise ConfigurationError(
                f"unknown model family {family!r} for {model!r}: use one of {known} "
                "(the family option), or leave it out to match the model name"
            ) from None
    name = model.strip().lower()
    for prefix in ("chatgpt:", "openai/"):
        name = name.removeprefix(prefix)
    if name.startswith("ft:"):
        name = name[3:]
    for row in _BY_PREFIX:
        family = row.family
        # A family must end at a word boundary ("gpt-4" does not match "gpt-4o"), unless its
        # prefix already ends with a separator ("gpt-5." matches "gpt-5.4-mini").
        if name.startswith(family) and (
            len(name) == len(family) or not family[-1].isalnum() or not name[len(family)].isalnum()
        ):
            return row
    return COMPATIBLE
