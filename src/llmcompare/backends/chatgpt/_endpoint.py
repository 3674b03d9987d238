"""One chatgpt model at one server: what its requests send, how its answers and errors come back.

Shared by the interactive calls (``_model.py``) and the Batch API path (``_batch.py``), so both
send exactly the same request bodies and read answers the same way. The SDK is imported on first
use (by :mod:`._sdk`): one sync and one async client are built per model and reused for every
call, and every SDK call runs inside the one error mapping (:class:`._sdk.SDKErrors`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
import time
import warnings
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import unquote, urlsplit, urlunsplit

from llmcompare.backends import _network
from llmcompare.backends.chatgpt._options import ChatGPTOptions, ParameterDroppedWarning
from llmcompare.backends.chatgpt._quirks import COMPATIBLE, Quirks
from llmcompare.backends.chatgpt._tokens import count_text_tokens, count_tokens
from llmcompare.backends.chatgpt._usage import Api, implausible, usage_of
from llmcompare.errors import BackendError, ConfigurationError, register_secret, user_stacklevel
from llmcompare.types import Completion, FinishReason, Request, Sent, Usage

if TYPE_CHECKING:
    import openai
    from openai.types import CompletionUsage
    from openai.types.chat import ChatCompletion
    from openai.types.responses import ResponseUsage
    from pydantic import SecretStr

    from llmcompare.backends.chatgpt._sdk import SDKErrors
    from llmcompare.schema import ResponseFormat

__all__ = ["FINISH", "MAX_OPENAI_STOPS", "Endpoint", "check_base_url", "cut"]

MAX_OPENAI_STOPS = 4
"""OpenAI accepts at most four stop sequences (SDK docstring of ``stop``); with more, all of
them are applied on the client side instead."""

FINISH: dict[str | None, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    # Tool calls are not part of llmcompare's request model; a model that calls one anyway
    # has ended its turn normally.
    "tool_calls": "stop",
    "function_call": "stop",
}
"""The provider's finish reasons in llmcompare's terms (anything else: ``"stop"``)."""


def cut(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the first stop string; returns the text and whether one was found."""
    at = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:at], True) if at >= 0 else (text, False)


class Endpoint:
    """One model name at one server, with its options: requests, answers, errors and clients.

    Args:
        model_id: The llmcompare id, for messages and completions.
        name: The model name sent to the server.
        options: The model's options.
        quirks: The row of the quirks table the model follows.
        secret: The API key, if any.
        base_url: The server's address; None for OpenAI's.
    """

    def __init__(
        self,
        model_id: str,
        name: str,
        options: ChatGPTOptions,
        quirks: Quirks,
        secret: SecretStr | None,
        base_url: str | None,
    ) -> None:
        self.model_id = model_id
        self.name = name
        self.options = options
        self.quirks = quirks
        self._secret = secret
        self._base_url = base_url
        # Every credential held, masked wherever text leaves the backend (messages, the SDK's
        # exceptions, log records): registered for the logs, kept for the messages.
        self._secrets = _secrets_of(secret, options, base_url)
        for value in self._secrets:
            register_secret(value)
        # Where requests go, for messages and the network switch; OpenAI's own address when
        # no base_url is set (the SDK's default).
        self._target = base_url or "https://api.openai.com/v1"
        self._local = _network.is_loopback(self._target)
        self.shown_url = _without_credentials(self._target)
        self._lock = threading.Lock()
        self._sync_client: openai.OpenAI | None = None
        self._async: _LoopClient | None = None
        self._stale_async: list[_LoopClient] = []
        self._errors: SDKErrors | None = None
        self._warned: set[str] = set()
        # Precomputed once: the per-call path only reads these.
        self._sampling = quirks.sampling or (
            quirks.sampling_without_reasoning and options.reasoning_effort == "none"
        )
        self._extra: dict[str, Any] = {}
        if options.reasoning_effort is not None:
            self._extra["reasoning_effort"] = options.reasoning_effort
        for field in ("service_tier", "prompt_cache_key", "prompt_cache_retention"):
            value = getattr(options, field)
            if value is not None:
                self._extra[field] = value

    # -- facts --------------------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        """What decides the answers (see ``ChatGPTModel.cache_identity``); never a secret."""
        # The location without any "user:password@" or query written into the URL: either may
        # hold a secret, and neither says who answers.
        parts = urlsplit(self._target)
        endpoint = parts.netloc.rpartition("@")[2].lower() + parts.path.rstrip("/")
        identity: dict[str, Any] = {
            "provider": "chatgpt",
            "model": self.name,
            "endpoint": endpoint,
        }
        if self.options.family is not None:
            identity["family"] = self.options.family
        if self.options.reasoning_effort is not None:
            identity["reasoning_effort"] = self.options.reasoning_effort
        # Only when not the default: answers cached before these options existed keep their keys.
        if self.options.api != "chat":
            identity["api"] = self.options.api
        if self.options.service_tier is not None:
            identity["service_tier"] = self.options.service_tier
        return identity

    def clean(self, text: str) -> str:
        """Provider text fit for a message: trimmed, and without the key should it echo it."""
        from llmcompare.backends.chatgpt import _sdk

        return _sdk.clean(text, self._secrets)

    # -- clients and errors -------------------------------------------------------------------

    @property
    def errors(self) -> SDKErrors:
        """The context manager every SDK call runs in: it maps the SDK's errors to ours."""
        errors = self._errors
        if errors is None:
            from llmcompare.backends.chatgpt import _sdk

            errors = self._errors = _sdk.SDKErrors(
                model_id=self.model_id,
                model=self.name,
                base_url=self.shown_url,
                secrets=self._secrets,
                timeout=self.options.timeout,
            )
        return errors

    def check_network(self) -> None:
        """Refuse a call to a remote server while the network is switched off for tests."""
        if not self._local:
            _network.check_network(self.model_id, self._target)

    def _settings(self) -> dict[str, Any]:
        options = self.options
        return {
            # Compatible servers that need no key still get a placeholder: the SDK refuses to
            # build a client without one.
            "api_key": self._secret.get_secret_value() if self._secret is not None else "EMPTY",
            "base_url": self._base_url,
            "organization": options.organization,
            "project": options.project,
            "timeout": options.timeout,
            "headers": {k: v.get_secret_value() for k, v in options.headers.items()},
        }

    def client(self) -> openai.OpenAI:
        """The synchronous client (built on first use)."""
        client = self._sync_client
        if client is None:
            with self._lock:
                client = self._sync_client
                if client is None:
                    from llmcompare.backends.chatgpt import _sdk

                    client = self._sync_client = _sdk.make_sync_client(**self._settings())
        return client

    async def aclient(self) -> openai.AsyncOpenAI:
        """The asynchronous client of the running event loop (built on first use there)."""
        loop = asyncio.get_running_loop()
        current = self._async
        if current is not None and current.loop is loop:
            return current.client
        with self._lock:
            current = self._async
            if current is not None and current.loop is loop:
                return current.client
            from llmcompare.backends.chatgpt import _sdk

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
        """Close the clients and their connection pools; a later call opens new ones."""
        sync, async_clients = self._detach_clients()
        if sync is not None:
            sync.close()
        for holder in async_clients:
            holder.close_soon()

    async def aclose(self) -> None:
        """Close the clients from async code, awaiting the async client's shutdown."""
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
                f"{self.model_id}: {setting} is not supported by {self.name} (quirks family "
                f"{self.quirks.family!r}); it was left out of the request",
                ParameterDroppedWarning,
                stacklevel=user_stacklevel(),
            )

    def check_response_format(self, fmt: ResponseFormat) -> None:
        """Refuse structured output on a model that predates it (the quirks table says which).

        Raises:
            ConfigurationError: Naming the model and the fix; nothing was sent.
        """
        quirks = self.quirks
        if not quirks.structured_outputs:
            raise ConfigurationError(
                f"{self.model_id}: {self.name} does not support structured outputs "
                f"(response_format json_schema; quirks family {quirks.family!r}): use a "
                "model from gpt-4o-2024-08-06 / gpt-4o-mini on, or leave response_format out"
            )

    def client_stops(self, request: Request) -> tuple[str, ...]:
        """Stop strings this backend must apply itself (the model does not take them)."""
        stop = request.stop
        if not stop:
            return ()
        if not self.quirks.stop or (self.quirks is not COMPATIBLE and len(stop) > MAX_OPENAI_STOPS):
            return stop
        return ()

    def params(self, request: Request, *, warn: bool = True) -> dict[str, Any]:
        """The request body: what the SDK's ``chat.completions.create`` is called with.

        Args:
            request: The request.
            warn: Warn (once per setting) about settings the model does not take.

        Raises:
            ConfigurationError: When the request's format needs structured outputs the model
                lacks.
        """
        quirks = self.quirks
        params: dict[str, Any] = {
            "model": self.name,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        if request.max_tokens is not None:
            params[quirks.max_tokens_field] = request.max_tokens
        self.add_sampling(request, params, warn=warn)
        if request.stop and not self.client_stops(request):
            params["stop"] = list(request.stop)
        if request.seed is not None:
            params["seed"] = request.seed
        if request.response_format is not None:
            self.check_response_format(request.response_format)
            params["response_format"] = request.response_format.openai()
        if self._extra:
            params.update(self._extra)
        return params

    def add_sampling(self, request: Request, params: dict[str, Any], *, warn: bool) -> None:
        """Put ``temperature`` and ``top_p`` in ``params`` where the model takes them.

        Args:
            request: The request.
            params: The request body being built (either API's).
            warn: Warn (once per setting) about a setting the model does not take.
        """
        for name in ("temperature", "top_p"):
            value = getattr(request, name)
            if value is not None:
                if self._sampling:
                    params[name] = value
                elif warn:
                    self._warn_dropped(name)

    def sent(self, request: Request, params: Mapping[str, Any]) -> Sent:
        """What the provider received, and how it differs from the request's settings."""
        quirks = self.quirks
        notes: list[str] = []
        field = quirks.max_tokens_field
        if request.max_tokens is not None and field != "max_tokens":
            notes.append(
                f"max_tokens sent as {field} (family {quirks.family}): it also counts the "
                "model's hidden reasoning tokens, so the visible answer can be shorter"
            )
        notes += self.dropped_notes(request, params)
        if request.stop and "stop" not in params:
            notes.append(
                "stop strings applied by llmcompare to the answer, not sent: "
                + (
                    f"{self.name} does not take stop"
                    if not quirks.stop
                    else f"more than {MAX_OPENAI_STOPS} stop strings"
                )
            )
        shown = {k: v for k, v in params.items() if k not in ("messages", "stream_options")}
        # Built without validation: the per-request path stays cheap, and these are plain values.
        return Sent.model_construct(params=shown, notes=tuple(notes))

    def dropped_notes(self, request: Request, params: Mapping[str, Any]) -> list[str]:
        """A note for each sampling setting of ``request`` left out of ``params``, and why."""
        return [
            f"{name}={value} not sent: {self.name} (family {self.quirks.family}) accepts only "
            "its default, so it samples at the provider's default"
            for name in ("temperature", "top_p")
            if (value := getattr(request, name)) is not None and name not in params
        ]

    # -- answers ------------------------------------------------------------------------------

    def estimate_usage(self, request: Request, text: str, why: str | None = None) -> Usage:
        """Token counts from the tokenizer, marked as an estimate (the server sent none).

        Args:
            request: The request answered.
            text: The answer.
            why: Why the server's own counts were not believed, when it sent some.
        """
        return Usage(
            input_tokens=count_tokens(self.name, request),
            output_tokens=count_text_tokens(self.name, text) if text else 0,
            estimated=True,
            implausible=why,
        )

    def usage(
        self,
        raw: CompletionUsage | ResponseUsage | None,
        request: Request,
        text: str,
        api: Api = "chat",
    ) -> Usage:
        """The usage of an answer: the server's counts when they can be true, else an estimate.

        Args:
            raw: The usage the server reported, if any.
            request: The request answered.
            text: The answer, to count when the server's counts are missing or not believed.
            api: The API that answered (``max_output_tokens`` counts reasoning by definition).
        """
        if raw is None:
            return self.estimate_usage(request, text)
        why = implausible(
            raw,
            request,
            context_window=self.quirks.context_window,
            reasoning_apart=api == "chat" and self.quirks.max_tokens_field == "max_tokens",
            api=api,
        )
        return usage_of(raw, api) if why is None else self.estimate_usage(request, text, why)

    def completion(
        self,
        response: ChatCompletion,
        request: Request,
        params: Mapping[str, Any],
        start: float,
    ) -> Completion:
        """The completion of an SDK response, with its latency counted from ``start``.

        Raises:
            BackendError: When the response has no choices.
        """
        choices = getattr(response, "choices", None)
        if not choices:
            raise BackendError(
                f"the response from {self.shown_url} has no choices", model_id=self.model_id
            )
        choice = choices[0]
        message = getattr(choice, "message", None)
        # A refusal (structured outputs) is an answer of its own, not text that fails to parse.
        refusal = (getattr(message, "refusal", None) or None) if message is not None else None
        text = (getattr(message, "content", None) or refusal or "") if message is not None else ""
        finish = FINISH.get(getattr(choice, "finish_reason", None), "stop")
        stops = self.client_stops(request)
        if stops:
            text, found = cut(text, stops)
            if found:
                finish = "stop"
        return Completion(
            text=text,
            finish_reason=finish,
            usage=self.usage(getattr(response, "usage", None), request, text),
            model=self.model_id,
            response_model=getattr(response, "model", None),
            request_id=response._request_id,
            # Measured here rather than by the base class, which would otherwise copy the
            # finished completion once more just to add it.
            latency_s=time.perf_counter() - start,
            sent=self.sent(request, params),
            refusal=refusal,
            api="chat",
            service_tier=getattr(response, "service_tier", None),
        )


def check_base_url(url: str, model_id: str, source: str) -> None:
    """Refuse a ``base_url`` the SDK would accept but cannot reach, before anything is sent.

    Without ``http://`` or ``https://`` (``127.0.0.1:8000/v1``) every request would fail later,
    as a retryable connection error.

    Args:
        url: The address as given.
        model_id: The llmcompare id, for the message.
        source: Where the address came from (``"base_url"`` or ``"OPENAI_BASE_URL"``).

    Raises:
        ConfigurationError: One line naming the fix.
    """
    parts = urlsplit(url)
    try:
        host = parts.hostname
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        host = None
    if parts.scheme.lower() in ("http", "https") and host:
        return
    # Shown without anything before an "@": that part may be a password.
    shown = url.rpartition("@")[2] if "@" in url else url
    raise ConfigurationError(
        f"{model_id}: {source} {shown!r} is not an http(s) address with a host: "
        "add http:// or https:// (e.g. http://127.0.0.1:8000/v1)"
    )


_MIN_SECRET = 4


def _secrets_of(
    key: SecretStr | None, options: ChatGPTOptions, base_url: str | None
) -> tuple[str, ...]:
    """Every credential a model holds: its key, header values, and what its base_url carries.

    From ``base_url``: the user name and password (as written and decoded), the basic
    credentials httpx builds from them (a server may echo its ``Authorization`` header), and
    every query value. Longest first, so that a secret containing another is masked whole.
    """
    values = [key.get_secret_value()] if key is not None else []
    values += [v.get_secret_value() for v in options.headers.values()]
    if base_url:
        parts = urlsplit(base_url)
        user, password = parts.username, parts.password
        if password is not None:
            plain = f"{unquote(user or '')}:{unquote(password)}"
            values += [password, unquote(password), base64.b64encode(plain.encode()).decode()]
        if user:
            values += [user, unquote(user)]
        for pair in parts.query.split("&"):
            raw = pair.partition("=")[2]
            values += [raw, unquote(raw.replace("+", " "))]
    # Shorter values are not masked: they would mask ordinary words in the text.
    return tuple(sorted({v for v in values if len(v) >= _MIN_SECRET}, key=len, reverse=True))


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
