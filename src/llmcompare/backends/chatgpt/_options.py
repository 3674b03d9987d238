"""Options of the ``chatgpt`` backend (cheap to import: pydantic only)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = [
    "DEFAULT_MODEL",
    "Api",
    "ChatGPTOptions",
    "ParameterDroppedWarning",
    "ReasoningEffort",
    "ServiceTier",
]

DEFAULT_MODEL = "gpt-5.4-mini"
"""The model ``get_model("chatgpt")`` uses: current and cheap at openai 3.54 (it is not on the
SDK's deprecation list, unlike gpt-4o-mini and gpt-5-mini)."""

ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]

Api = Literal["chat", "responses"]
"""Which OpenAI API answers: chat.completions (``"chat"``) or the Responses API."""

ServiceTier = Literal["auto", "default", "flex", "priority"]
"""The processing tier asked for (``service_tier``); the answer says which one served it."""


class ParameterDroppedWarning(UserWarning):
    """A setting was left out of the request because the model rejects it."""


class ChatGPTOptions(BaseModel):
    """Options of the ``chatgpt`` backend (``get_model("chatgpt:<model>", **options)``).

    Attributes:
        api_key: The API key (default: ``OPENAI_API_KEY``). Kept as a secret: never printed.
        base_url: The API address (default: ``OPENAI_BASE_URL``, else OpenAI's). Point it at any
            OpenAI-compatible server (vLLM, llama.cpp's server, Ollama, transformers serve); a
            key is then optional.
        organization: OpenAI organization id (default: ``OPENAI_ORG_ID``).
        project: OpenAI project id (default: ``OPENAI_PROJECT_ID``).
        timeout: Seconds before a request times out (default: the SDK's, 600 s).
        headers: Extra HTTP headers sent with every request. They often carry credentials
            (Azure's ``api-key``, a gateway token), so their values are kept as secrets:
            ``repr``, ``str`` and JSON dumps show only the header names.
        family: Force a row of the quirks table (e.g. ``"gpt-5"`` for a deployment whose name
            does not say what it serves); see :data:`llmcompare.backends.chatgpt.QUIRKS`.
        reasoning_effort: ``reasoning_effort`` sent to reasoning models (default: the model's).
        batch: Answer ``generate_batch`` (and so ``generate_many`` and ``compare``) through the
            OpenAI Batch API: half the price, no rate limits, answers within 24 hours; latency
            is then the batch's turnaround. See :mod:`llmcompare.backends.chatgpt._batch`.
        api: ``"chat"`` (the default: chat.completions, which every OpenAI-compatible server
            speaks) or ``"responses"`` (OpenAI's Responses API, ``POST /v1/responses``, which
            OpenAI recommends for reasoning models). Each answer records the API used.
        service_tier: The processing tier to ask for: ``"auto"`` (the project's setting),
            ``"default"``, ``"flex"`` (about the Batch price, answered at once, may be refused
            with a 429) or ``"priority"`` (about twice the price, with a latency target). The
            tier that served each answer is recorded and priced.
        prompt_cache_key: OpenAI's ``prompt_cache_key``: requests with the same key share
            prompt-cache entries (better cache hits across a comparison's requests).
        prompt_cache_retention: OpenAI's ``prompt_cache_retention`` (``"in_memory"`` or
            ``"24h"``): how long cached prefixes may live.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: SecretStr | None = None
    base_url: str | None = None
    organization: str | None = None
    project: str | None = None
    timeout: float | None = Field(default=None, gt=0)
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    family: str | None = None
    reasoning_effort: ReasoningEffort | None = None
    batch: bool = False
    api: Api = "chat"
    service_tier: ServiceTier | None = None
    prompt_cache_key: str | None = Field(default=None, min_length=1)
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
