"""The ChatGPT model object: requests out, completions and chunks back, over the openai SDK.

The per-call path does only what each call needs: build the request body, call the SDK inside
the one error mapping, map the answer. Request building, answers, errors and clients are the
:class:`._endpoint.Endpoint`'s, shared with the Batch API path (:mod:`._batch`).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from pydantic import SecretStr

from llmcompare.backends.chatgpt import _calls
from llmcompare.backends.chatgpt._batch import run_batch
from llmcompare.backends.chatgpt._cutter import StreamText
from llmcompare.backends.chatgpt._endpoint import FINISH, Endpoint, check_base_url
from llmcompare.backends.chatgpt._options import (
    DEFAULT_MODEL,
    ChatGPTOptions,
    ParameterDroppedWarning,
)
from llmcompare.backends.chatgpt._quirks import Quirks, quirks_for
from llmcompare.backends.chatgpt._responses import ResponsesApi
from llmcompare.backends.chatgpt._shelf import server_shelf_life, table_shelf_life
from llmcompare.backends.chatgpt._tokens import count_tokens
from llmcompare.errors import BackendError, ConfigurationError
from llmcompare.model import ModelBase
from llmcompare.types import Chunk, Completion, FinishReason, ModelInfo, Request, ShelfLife

if TYPE_CHECKING:
    from openai.types import CompletionUsage
    from openai.types.chat import ChatCompletionChunk

    from llmcompare.schema import ResponseFormat

__all__ = ["DEFAULT_MODEL", "ChatGPTModel", "ChatGPTOptions", "ParameterDroppedWarning"]

_INCLUDE_USAGE = {"include_usage": True}
_UNASKED = object()  # shelf_life() not asked yet (None is an answer: no known date)


class ChatGPTModel(ModelBase):
    """An OpenAI chat model, or any model behind an OpenAI-compatible server.

    Build it with ``llmcompare.get_model("chatgpt:<model>", **options)``; see
    :class:`ChatGPTOptions` for the options.

    Args:
        name: The model name sent to the server (``"gpt-4o-mini"``, ``"o3"``, a vLLM model, ...).
        options: Validated options.

    Raises:
        ConfigurationError: When neither an API key nor a base_url is given (as an option or
            through ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``). Nothing is sent before this check.
            Also when ``options.family`` names no row of the quirks table, and when the
            base_url is not an ``http://`` or ``https://`` address with a host.
    """

    # Only with the batch option (set per object): interactive calls run concurrently instead.
    native_batching = False

    def __init__(self, name: str, options: ChatGPTOptions | None = None) -> None:
        options = options or ChatGPTOptions()
        if not name or not name.strip():
            raise ConfigurationError("chatgpt: the model name is empty; use 'chatgpt:<model>'")
        quirks = quirks_for(name, options.family)
        secret = options.api_key
        if secret is None or not secret.get_secret_value():
            env_key = os.environ.get("OPENAI_API_KEY")
            secret = SecretStr(env_key) if env_key else None
        base_url = options.base_url or os.environ.get("OPENAI_BASE_URL") or None
        if secret is None and base_url is None:
            raise ConfigurationError(
                f"chatgpt:{name}: no OpenAI API key. Set OPENAI_API_KEY (or pass api_key=...), "
                "or pass base_url=... to use an OpenAI-compatible server that needs no key"
            )
        if base_url is not None:
            source = "base_url" if options.base_url else "OPENAI_BASE_URL"
            check_base_url(base_url, f"chatgpt:{name}", source)
        super().__init__(
            ModelInfo(
                provider="chatgpt",
                name=name,
                open_weights=False,
                context_window=quirks.context_window,
                description=f"OpenAI chat model {name} via the openai SDK"
                if base_url is None
                else f"{name} via an OpenAI-compatible server",
            )
        )
        self._name = name
        self._options = options
        self._endpoint = Endpoint(self.id, name, options, quirks, secret, base_url)
        self._shelf: object = _UNASKED
        # The Responses API path, when chosen; None: chat.completions.
        self._responses = ResponsesApi(self._endpoint) if options.api == "responses" else None
        if options.batch:
            # The Batch API takes whole batches: generate_many hands them over at once.
            self.native_batching = True

    # -- facts --------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The model name sent to the server."""
        return self._name

    @property
    def quirks(self) -> Quirks:
        """The row of the quirks table this model follows."""
        return self._endpoint.quirks

    @property
    def batch_api(self) -> bool:
        """Whether ``generate_batch`` goes through the OpenAI Batch API (option ``batch``)."""
        return self._options.batch

    @property
    def api(self) -> str:
        """The OpenAI API that answers: ``"chat"`` or ``"responses"`` (option ``api``)."""
        return self._options.api

    @property
    def service_tier(self) -> str | None:
        """The processing tier asked for (option ``service_tier``); None: the default."""
        return self._options.service_tier

    @property
    def base_url(self) -> str:
        """Where requests go (without any credentials written into the URL)."""
        return self._endpoint.shown_url

    def cache_identity(self) -> dict[str, Any]:
        """What decides the answers: the model name sent and the server that answers.

        The endpoint is the host (and port, when given) and path of ``base_url``
        (``api.openai.com/v1`` by default): a gateway's path can choose the provider or the
        deployment, so it is part of what answers. The key, headers, organization and project
        never appear: the identity is hashed into keys that are written to disk. A forced
        quirks ``family`` and a ``reasoning_effort`` change what is sent, so they are included
        when set; so is the API when it is the Responses API (``"api": "responses"``: the two
        APIs never share a cached answer) and a ``service_tier``.

        Returns:
            ``{"provider": "chatgpt", "model": ..., "endpoint": ...}``, plus ``family``,
            ``reasoning_effort``, ``api`` and ``service_tier`` when set.
        """
        return self._endpoint.identity()

    def shelf_life(self) -> ShelfLife | None:
        """Until when this model is served: the server's ``shutdown_date`` for it, else OpenAI's.

        Asked once per model object: the server's ``/v1/models/{name}`` entry (its
        ``shutdown_date``, when it gives one), else the dated table of OpenAI's deprecations
        page (:data:`llmcompare.backends.chatgpt._shelf.SHUTDOWNS`, with its check date).

        Returns:
            The date and its source, or None when no shutdown is announced.
        """
        if self._shelf is _UNASKED:
            found = server_shelf_life(self._endpoint) or table_shelf_life(self._name)
            self._shelf = found
        return cast("ShelfLife | None", self._shelf)

    def count_tokens(self, prompt: Request | str | Sequence[Any]) -> int:
        """Count the prompt tokens of a request before sending it (for budgets).

        Args:
            prompt: A string, a sequence of messages or a :class:`~llmcompare.Request`.

        Returns:
            The count, exact with tiktoken, else an estimate with a warning.
        """
        return count_tokens(self._name, prompt)

    def check_response_format(self, fmt: ResponseFormat) -> None:
        """Refuse structured output on a model that predates it (the quirks table says which).

        Raises:
            ConfigurationError: Naming the model and the fix; nothing was sent.
        """
        self._endpoint.check_response_format(fmt)

    # -- clients ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP clients and their connection pools.

        The model stays usable: a later call opens new clients.
        """
        self._endpoint.close()

    async def aclose(self) -> None:
        """Close the HTTP clients from async code, awaiting the async client's shutdown."""
        await self._endpoint.aclose()

    # -- calls --------------------------------------------------------------------------------

    def _finalize_stream(self, completion: Completion, request: Request) -> Completion:
        if self._responses is not None:
            return self._responses.finalize(completion, request)
        endpoint = self._endpoint
        sent = endpoint.sent(request, endpoint.params(request, warn=False))
        return completion.model_copy(update={"sent": sent, "api": "chat"})

    def _generate(self, request: Request) -> Completion:
        if self._responses is not None:
            return self._responses.generate(request)
        start = time.perf_counter()
        endpoint = self._endpoint
        params = endpoint.params(request)
        response = _calls.create(endpoint, _chat, params)
        return endpoint.completion(response, request, params, start)

    async def _agenerate(self, request: Request) -> Completion:
        if self._responses is not None:
            return await self._responses.agenerate(request)
        start = time.perf_counter()
        endpoint = self._endpoint
        params = endpoint.params(request)
        response = await _calls.acreate(endpoint, _chat, params)
        return endpoint.completion(response, request, params, start)

    def _generate_batch(self, requests: Sequence[Request]) -> list[Completion | Exception]:
        if not self._options.batch:
            return super()._generate_batch(requests)
        return run_batch(self._endpoint, requests, self._responses)

    def _stream(self, request: Request) -> Iterator[Chunk]:
        if self._responses is not None:
            return self._responses.stream(request)
        return _calls.stream(self._endpoint, _chat, self._body(request), self._mapper(request))

    def _astream(self, request: Request) -> AsyncIterator[Chunk]:
        if self._responses is not None:
            return self._responses.astream(request)
        return _calls.astream(self._endpoint, _chat, self._body(request), self._mapper(request))

    def _body(self, request: Request) -> Callable[[], dict[str, Any]]:
        """The request body of a stream, built when the stream starts."""
        return lambda: _streaming(self._endpoint.params(request))

    def _mapper(self, request: Request) -> Callable[[str | None], _StreamMapper]:
        endpoint = self._endpoint
        return lambda request_id: _StreamMapper(endpoint, request, request_id)


def _chat(client: Any) -> Any:
    """The chat.completions resource of a client."""
    return client.chat.completions


def _streaming(params: dict[str, Any]) -> dict[str, Any]:
    """The request body of a stream: with usage in its last chunk."""
    params["stream"] = True
    params["stream_options"] = _INCLUDE_USAGE
    return params


class _StreamMapper(StreamText):
    """Turns chat.completions stream events into llmcompare chunks (sync and async streams)."""

    __slots__ = ("_finish", "_tier", "_usage")

    def __init__(self, endpoint: Endpoint, request: Request, request_id: str | None) -> None:
        super().__init__(endpoint, request, request_id, endpoint.client_stops(request))
        self._finish: str | None = None
        self._usage: CompletionUsage | None = None
        self._tier: str | None = None

    def feed(self, event: ChatCompletionChunk) -> Chunk | None:
        # getattr: the SDK does not validate events, and compatible servers leave fields out.
        usage = getattr(event, "usage", None)
        if usage is not None:
            self._usage = usage
        if self._response_model is None:
            self._response_model = getattr(event, "model", None)
        tier = getattr(event, "service_tier", None)
        if tier is not None:
            self._tier = tier
        text = ""
        for choice in getattr(event, "choices", None) or ():
            if getattr(choice, "index", 0):
                continue  # n > 1 is never requested; ignore stray choices
            delta = getattr(choice, "delta", None)
            if delta is not None:
                refused = getattr(delta, "refusal", None)
                if refused:
                    self._refusal.append(refused)
                piece = getattr(delta, "content", None) or refused
                if piece:
                    text += piece
            finish = getattr(choice, "finish_reason", None)
            if finish is not None:
                self._finish = finish
        return self.shown(text)

    def end(self) -> Chunk:
        tail, stopped = self.rest()
        if self._finish is None and not stopped:
            raise BackendError(
                "the stream ended before the model finished (no finish_reason): the connection "
                "was probably cut",
                model_id=self._endpoint.model_id,
                retryable=True,
                maybe_billed=True,
            )
        finish: FinishReason = "stop" if stopped else FINISH.get(self._finish, "stop")
        # Without a usage chunk (llama.cpp's server ignores include_usage), counted with the
        # tokenizer and marked as an estimate, never a silent zero.
        usage = self._endpoint.usage(self._usage, self._request, "".join(self._parts))
        return Chunk(
            text=tail,
            finish_reason=finish,
            usage=usage,
            request_id=self._request_id,
            response_model=self._response_model,
            refusal="".join(self._refusal) or None,
            service_tier=self._tier,
        )
