"""The ChatGPT model object: requests out, completions and chunks back, over the openai SDK.

The SDK is imported on first use (by :mod:`._sdk`), one sync and one async client are built
per model object and reused for every call, and the per-call path does only what each call
needs: build the request dict, call the SDK, map the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from llmcompare.backends import _network
from llmcompare.backends.chatgpt._quirks import COMPATIBLE, Quirks, quirks_for
from llmcompare.backends.chatgpt._tokens import count_text_tokens, count_tokens, user_stacklevel
from llmcompare.errors import BackendError, ConfigurationError, LLMCompareError
from llmcompare.model import ModelBase
from llmcompare.types import Chunk, Completion, FinishReason, ModelInfo, Request, Sent, Usage

if TYPE_CHECKING:
    import openai
    from openai.types import CompletionUsage
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    from llmcompare.schema import ResponseFormat

__all__ = ["DEFAULT_MODEL", "ChatGPTModel", "ChatGPTOptions", "ParameterDroppedWarning"]

DEFAULT_MODEL = "gpt-5.4-mini"
"""The model ``get_model("chatgpt")`` uses: current and cheap at openai 3.54 (it is not on the
SDK's deprecation list, unlike gpt-4o-mini and gpt-5-mini)."""

# OpenAI accepts at most four stop sequences (SDK docstring of ``stop``); with more, all of
# them are applied on the client side instead.
_MAX_OPENAI_STOPS = 4

_FINISH: dict[str | None, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    # Tool calls are not part of llmcompare's request model; a model that calls one anyway
    # has ended its turn normally.
    "tool_calls": "stop",
    "function_call": "stop",
}

_INCLUDE_USAGE = {"include_usage": True}

ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]


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


def _cut(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the first stop string; returns the text and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class _StopCutter:
    """Applies stop strings to streamed text that may split a stop string across chunks."""

    __slots__ = ("_buf", "_hold", "_stops", "stopped")

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = stops
        self._hold = max(len(s) for s in stops) - 1  # a longer tail cannot start a stop string
        self._buf = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        self._buf += text
        out, found = _cut(self._buf, self._stops)
        if found:
            self._buf = ""
            self.stopped = True
            return out
        keep = len(self._buf) - self._hold
        if keep <= 0:
            return ""
        out, self._buf = self._buf[:keep], self._buf[keep:]
        return out

    def flush(self) -> str:
        out, self._buf = self._buf, ""
        return out


def _usage(u: CompletionUsage) -> Usage:
    # getattr: the SDK builds objects without validation, so a compatible server that leaves a
    # field out gives an object without that attribute.
    inp = getattr(u, "prompt_tokens", 0) or 0
    out = getattr(u, "completion_tokens", 0) or 0
    pd = getattr(u, "prompt_tokens_details", None)
    cd = getattr(u, "completion_tokens_details", None)
    cached = (getattr(pd, "cached_tokens", 0) or 0) if pd is not None else 0
    reasoning = (getattr(cd, "reasoning_tokens", 0) or 0) if cd is not None else 0
    # Clamp: a compatible server that reports more cached than prompt tokens must not turn a
    # good answer into a validation error.
    return Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=min(cached, inp),
        reasoning_tokens=min(reasoning, out),
    )


class _StreamMapper:
    """Turns SDK stream events into llmcompare chunks; shared by the sync and async streams."""

    __slots__ = (
        "_cutter",
        "_finish",
        "_half",
        "_model",
        "_parts",
        "_refusal",
        "_request",
        "_request_id",
        "_response_model",
        "_sent_ids",
        "_usage",
    )

    def __init__(self, model: ChatGPTModel, request: Request, request_id: str | None) -> None:
        self._model = model
        self._request = request
        self._request_id = request_id
        stops = model._client_stops(request)
        self._cutter = _StopCutter(stops) if stops else None
        self._parts: list[str] = []
        self._refusal: list[str] = []
        self._finish: str | None = None
        self._usage: CompletionUsage | None = None
        self._response_model: str | None = None
        self._sent_ids = False
        self._half = ""  # a high surrogate that ended the last event: its low half comes next

    def feed(self, event: ChatCompletionChunk) -> Chunk | None:
        # getattr: the SDK does not validate events, and compatible servers leave fields out.
        usage = getattr(event, "usage", None)
        if usage is not None:
            self._usage = usage
        if self._response_model is None:
            self._response_model = getattr(event, "model", None)
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
        if self._cutter is not None:
            text = self._cutter.feed(text)
        text = self._join_halves(text)
        if not text:
            return None
        self._parts.append(text)
        # Validated construction, not model_construct: pydantic-core builds a small model about
        # three times faster than model_construct's Python code, and this runs once per chunk.
        if self._sent_ids:
            return Chunk(text=text)
        self._sent_ids = True
        return Chunk(text=text, request_id=self._request_id, response_model=self._response_model)

    def _join_halves(self, text: str) -> str:
        # A gateway may split an emoji's JSON escape across two events ("\ud83d", "\ude00"):
        # a high half that ends an event waits for the next one, so the pair is joined.
        if self._half:
            text, self._half = self._half + text, ""
        if text and "\ud800" <= text[-1] <= "\udbff":
            text, self._half = text[:-1], text[-1]
        return text

    def end(self) -> Chunk:
        cutter = self._cutter
        stopped = cutter is not None and cutter.stopped
        if self._finish is None and not stopped:
            raise BackendError(
                "the stream ended before the model finished (no finish_reason): the connection "
                "was probably cut",
                model_id=self._model.id,
                retryable=True,
                maybe_billed=True,
            )
        tail = cutter.flush() if cutter is not None and not stopped else ""
        # A half still waiting has lost its pair: the chunk replaces it and says so.
        tail, self._half = self._half + tail, ""
        if tail:
            self._parts.append(tail)
        finish: FinishReason = "stop" if stopped else _FINISH.get(self._finish, "stop")
        if self._usage is not None:
            usage = _usage(self._usage)
        else:
            # The server sent no usage chunk (llama.cpp's server ignores include_usage): count
            # with the tokenizer and say it is an estimate, never a silent zero.
            usage = self._model._estimate_usage(self._request, "".join(self._parts))
        return Chunk(
            text=tail,
            finish_reason=finish,
            usage=usage,
            request_id=self._request_id,
            response_model=self._response_model,
            refusal="".join(self._refusal) or None,
        )


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
            Also when ``options.family`` names no row of the quirks table.
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
        self._quirks = quirks
        self._secret = secret
        self._base_url = base_url
        # Where requests go, for messages and the network switch; OpenAI's own address when
        # no base_url is set (the SDK's default).
        self._target = base_url or "https://api.openai.com/v1"
        self._local = _network.is_loopback(self._target)
        self._shown_url = _without_credentials(self._target)
        self._timeout = options.timeout
        self._lock = threading.Lock()
        self._sync_client: openai.OpenAI | None = None
        self._async: _LoopClient | None = None
        self._stale_async: list[_LoopClient] = []
        self._errors: tuple[type[BaseException], ...] = ()
        self._warned: set[str] = set()
        # Precomputed once: the per-call path only reads these.
        self._sampling = quirks.sampling or (
            quirks.sampling_without_reasoning and options.reasoning_effort == "none"
        )
        self._extra: dict[str, Any] = {}
        if options.reasoning_effort is not None:
            self._extra["reasoning_effort"] = options.reasoning_effort
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
        return self._quirks

    @property
    def batch_api(self) -> bool:
        """Whether ``generate_batch`` goes through the OpenAI Batch API (option ``batch``)."""
        return self._options.batch

    @property
    def base_url(self) -> str:
        """Where requests go (without any credentials written into the URL)."""
        return self._shown_url

    def cache_identity(self) -> dict[str, Any]:
        """What decides the answers: the model name sent and the server that answers.

        The endpoint is the host (and port, when given) and path of ``base_url``
        (``api.openai.com/v1`` by default): a gateway's path can choose the provider or the
        deployment, so it is part of what answers. The key, headers, organization and project
        never appear: the identity is hashed into keys that are written to disk. A forced
        quirks ``family`` and a ``reasoning_effort`` change what is sent, so they are included
        when set.

        Returns:
            ``{"provider": "chatgpt", "model": ..., "endpoint": ...}``, plus ``family`` and
            ``reasoning_effort`` when set.
        """
        # The location without any "user:password@" or query written into the URL: either may
        # hold a secret, and neither says who answers.
        parts = urlsplit(self._target)
        endpoint = parts.netloc.rpartition("@")[2].lower() + parts.path.rstrip("/")
        identity: dict[str, Any] = {
            "provider": "chatgpt",
            "model": self._name,
            "endpoint": endpoint,
        }
        if self._options.family is not None:
            identity["family"] = self._options.family
        if self._options.reasoning_effort is not None:
            identity["reasoning_effort"] = self._options.reasoning_effort
        return identity

    def count_tokens(self, prompt: Request | str | Sequence[Any]) -> int:
        """Count the prompt tokens of a request before sending it (for budgets).

        Args:
            prompt: A string, a sequence of messages or a :class:`~llmcompare.Request`.

        Returns:
            The count, exact with tiktoken, else an estimate with a warning.
        """
        return count_tokens(self._name, prompt)

    # -- clients ------------------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        return {
            # Compatible servers that need no key still get a placeholder: the SDK refuses to
            # build a client without one.
            "api_key": self._secret.get_secret_value() if self._secret is not None else "EMPTY",
            "base_url": self._base_url,
            "organization": self._options.organization,
            "project": self._options.project,
            "timeout": self._timeout,
            "headers": {k: v.get_secret_value() for k, v in self._options.headers.items()},
        }

    def _client(self) -> openai.OpenAI:
        client = self._sync_client
        if client is None:
            with self._lock:
                client = self._sync_client
                if client is None:
                    from llmcompare.backends.chatgpt import _sdk

                    self._errors = _sdk.ERRORS
                    client = self._sync_client = _sdk.make_sync_client(**self._settings())
        return client

    async def _aclient(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        current = self._async
        if current is not None and current.loop is loop:
            return current.client
        with self._lock:
            current = self._async
            if current is not None and current.loop is loop:
                return current.client
            from llmcompare.backends.chatgpt import _sdk

            self._errors = _sdk.ERRORS
            if current is not None and not current.loop.is_closed():
                # Its connections belong to another event loop and cannot be used from this
                # one; it is closed with the model. One whose loop is closed was closed by it.
                self._stale_async.append(current)
            current = self._async = _LoopClient(_sdk.make_async_client(**self._settings()), loop)
        await current.bind()
        return current.client

    def _detach_clients(self) -> tuple[openai.OpenAI | None, list[_LoopClient]]:
        with self._lock:
            sync, self._sync_client = self._sync_client, None
            async_clients = [*self._stale_async]
            if self._async is not None:
                async_clients.append(self._async)
            self._async, self._stale_async = None, []
        return sync, async_clients

    def close(self) -> None:
        """Close the HTTP clients and their connection pools.

        The model stays usable: a later call opens new clients.
        """
        sync, async_clients = self._detach_clients()
        if sync is not None:
            sync.close()
        for holder in async_clients:
            holder.close_soon()

    async def aclose(self) -> None:
        """Close the HTTP clients from async code, awaiting the async client's shutdown."""
        sync, async_clients = self._detach_clients()
        if sync is not None:
            sync.close()
        running = asyncio.get_running_loop()
        for holder in async_clients:
            if holder.loop is running:
                await holder.aclose()
            else:
                holder.close_soon()

    # -- requests -----------------------------------------------------------------------------

    def _warn_dropped(self, setting: str) -> None:
        if setting not in self._warned:
            self._warned.add(setting)
            warnings.warn(
                f"{self.id}: {setting} is not supported by {self._name} (quirks family "
                f"{self._quirks.family!r}); it was left out of the request",
                ParameterDroppedWarning,
                stacklevel=user_stacklevel(),
            )

    def check_response_format(self, fmt: ResponseFormat) -> None:
        """Refuse structured output on a model that predates it (the quirks table says which).

        Raises:
            ConfigurationError: Naming the model and the fix; nothing was sent.
        """
        quirks = self._quirks
        if not quirks.structured_outputs:
            raise ConfigurationError(
                f"{self.id}: {self._name} does not support structured outputs "
                f"(response_format json_schema; quirks family {quirks.family!r}): use a "
                "model from gpt-4o-2024-08-06 / gpt-4o-mini on, or leave response_format out"
            )

    def _client_stops(self, request: Request) -> tuple[str, ...]:
        """Stop strings this backend must apply itself (the model does not take them)."""
        stop = request.stop
        if not stop:
            return ()
        if not self._quirks.stop or (
            self._quirks is not COMPATIBLE and len(stop) > _MAX_OPENAI_STOPS
        ):
            return stop
        return ()

    def _params(self, request: Request, *, warn: bool = True) -> dict[str, Any]:
        quirks = self._quirks
        params: dict[str, Any] = {
            "model": self._name,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        if request.max_tokens is not None:
            params[quirks.max_tokens_field] = request.max_tokens
        if request.temperature is not None:
            if self._sampling:
                params["temperature"] = request.temperature
            elif warn:
                self._warn_dropped("temperature")
        if request.top_p is not None:
            if self._sampling:
                params["top_p"] = request.top_p
            elif warn:
                self._warn_dropped("top_p")
        if request.stop and not self._client_stops(request):
            params["stop"] = list(request.stop)
        if request.seed is not None:
            params["seed"] = request.seed
        if request.response_format is not None:
            self.check_response_format(request.response_format)
            params["response_format"] = request.response_format.openai()
        if self._extra:
            params.update(self._extra)
        return params

    def _sent(self, request: Request, params: Mapping[str, Any]) -> Sent:
        """What the provider received, and how it differs from the request's settings."""
        quirks = self._quirks
        notes: list[str] = []
        field = quirks.max_tokens_field
        if request.max_tokens is not None and field != "max_tokens":
            notes.append(
                f"max_tokens sent as {field} (family {quirks.family}): it also counts the "
                "model's hidden reasoning tokens, so the visible answer can be shorter"
            )
        for name in ("temperature", "top_p"):
            value = getattr(request, name)
            if value is not None and name not in params:
                notes.append(
                    f"{name}={value} not sent: {self._name} (family {quirks.family}) accepts "
                    "only its default, so it samples at the provider's default"
                )
        if request.stop and "stop" not in params:
            notes.append(
                "stop strings applied by llmcompare to the answer, not sent: "
                + (
                    f"{self._name} does not take stop"
                    if not quirks.stop
                    else f"more than {_MAX_OPENAI_STOPS} stop strings"
                )
            )
        shown = {k: v for k, v in params.items() if k not in ("messages", "stream_options")}
        # Built without validation: the per-request path stays cheap, and these are plain values.
        return Sent.model_construct(params=shown, notes=tuple(notes))

    def _finalize_stream(self, completion: Completion, request: Request) -> Completion:
        return completion.model_copy(
            update={"sent": self._sent(request, self._params(request, warn=False))}
        )

    def _error(self, exc: BaseException) -> LLMCompareError:
        from llmcompare.backends.chatgpt import _sdk

        return _sdk.map_error(
            exc,
            model_id=self.id,
            model=self._name,
            base_url=self._shown_url,
            secret=self._secret.get_secret_value() if self._secret is not None else None,
            timeout=self._timeout,
        )

    def _estimate_usage(self, request: Request, text: str) -> Usage:
        return Usage(
            input_tokens=count_tokens(self._name, request),
            output_tokens=count_text_tokens(self._name, text) if text else 0,
            estimated=True,
        )

    def _completion(
        self,
        response: ChatCompletion,
        request: Request,
        params: Mapping[str, Any],
        start: float,
    ) -> Completion:
        choices = getattr(response, "choices", None)
        if not choices:
            raise BackendError(
                f"the response from {self._shown_url} has no choices", model_id=self.id
            )
        choice = choices[0]
        message = getattr(choice, "message", None)
        # A refusal (structured outputs) is an answer of its own, not text that fails to parse.
        refusal = (getattr(message, "refusal", None) or None) if message is not None else None
        text = (getattr(message, "content", None) or refusal or "") if message is not None else ""
        finish = _FINISH.get(getattr(choice, "finish_reason", None), "stop")
        stops = self._client_stops(request)
        if stops:
            text, found = _cut(text, stops)
            if found:
                finish = "stop"
        raw_usage = getattr(response, "usage", None)
        usage = _usage(raw_usage) if raw_usage is not None else self._estimate_usage(request, text)
        return Completion(
            text=text,
            finish_reason=finish,
            usage=usage,
            model=self._id,
            response_model=getattr(response, "model", None),
            request_id=response._request_id,
            # Measured here rather than by the base class, which would otherwise copy the
            # finished completion once more just to add it.
            latency_s=time.perf_counter() - start,
            sent=self._sent(request, params),
            refusal=refusal,
        )

    def _check_network(self) -> None:
        if not self._local:
            _network.check_network(self._id, self._target)

    def _generate(self, request: Request) -> Completion:
        start = time.perf_counter()
        self._check_network()
        client = self._client()
        params = self._params(request)
        try:
            response = client.chat.completions.create(**params)
        except self._errors as exc:
            raise self._error(exc) from exc
        return self._completion(response, request, params, start)

    async def _agenerate(self, request: Request) -> Completion:
        start = time.perf_counter()
        self._check_network()
        client = await self._aclient()
        params = self._params(request)
        try:
            response = await client.chat.completions.create(**params)
        except self._errors as exc:
            raise self._error(exc) from exc
        return self._completion(response, request, params, start)

    def _generate_batch(self, requests: Sequence[Request]) -> list[Completion | Exception]:
        if not self._options.batch:
            return super()._generate_batch(requests)
        from llmcompare.backends.chatgpt._batch import run_batch

        return run_batch(self, requests)

    def _stream(self, request: Request) -> Iterator[Chunk]:
        self._check_network()
        client = self._client()
        params = self._params(request)
        params["stream"] = True
        params["stream_options"] = _INCLUDE_USAGE
        try:
            stream = client.chat.completions.create(**params)
        except self._errors as exc:
            raise self._error(exc) from exc
        try:
            mapper = _StreamMapper(self, request, stream.response.headers.get("x-request-id"))
            try:
                for event in stream:
                    chunk = mapper.feed(event)
                    if chunk is not None:
                        yield chunk
            except self._errors as exc:
                raise self._error(exc) from exc
            yield mapper.end()
        finally:
            stream.close()

    async def _astream(self, request: Request) -> AsyncIterator[Chunk]:
        self._check_network()
        client = await self._aclient()
        params = self._params(request)
        params["stream"] = True
        params["stream_options"] = _INCLUDE_USAGE
        try:
            stream = await client.chat.completions.create(**params)
        except self._errors as exc:
            raise self._error(exc) from exc
        try:
            mapper = _StreamMapper(self, request, stream.response.headers.get("x-request-id"))
            try:
                async for event in stream:
                    chunk = mapper.feed(event)
                    if chunk is not None:
                        yield chunk
            except self._errors as exc:
                raise self._error(exc) from exc
            yield mapper.end()
        finally:
            await stream.close()


def _without_credentials(url: str) -> str:
    """The URL without user:password and query, for messages: either may hold a secret."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class _LoopClient:
    """An async SDK client and the event loop it belongs to, closed when that loop ends.

    Its connections live on that loop. A guard async generator, started on the loop, is
    finalized by the loop's ``shutdown_asyncgens()`` (which ``asyncio.run`` calls before closing
    the loop), and closes the client there: a model used across several ``asyncio.run`` calls
    leaves no socket open behind a closed loop.
    """

    __slots__ = ("_guard", "client", "loop")

    _tasks: ClassVar[set[asyncio.Task[None]]] = set()

    def __init__(self, client: openai.AsyncOpenAI, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop
        self._guard: AsyncGenerator[None, None] | None = None

    async def bind(self) -> None:
        if self._guard is None:
            guard = self._guard = self._close_with_loop()
            await guard.__anext__()  # runs to the yield: the loop now tracks the generator

    async def _close_with_loop(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await self.client.close()

    async def aclose(self) -> None:
        guard, self._guard = self._guard, None
        if guard is not None:
            await guard.aclose()
        await self.client.close()

    def close_soon(self) -> None:
        """Close from sync code: on the client's loop when it still runs, else right away."""
        loop = self.loop
        if loop.is_closed():
            return  # the loop's shutdown closed the client already
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is running:
            task = loop.create_task(self.aclose())
            self._tasks.add(task)  # keep a reference until done, or the task may be collected
            task.add_done_callback(self._tasks.discard)
        elif not loop.is_running():
            # Closing is best effort: the sockets close with the process anyway.
            with contextlib.suppress(Exception):
                loop.run_until_complete(self.aclose())
