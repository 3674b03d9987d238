"""The Responses API path of the chatgpt backend (option ``api="responses"``).

Beside the chat.completions path, sharing everything that is not the wire format: the model
name, quirks and options, the clients, the one error mapping (:class:`._sdk.SDKErrors`, which
every SDK call here runs inside) and the token estimate. What differs, and lives here:

- the request body of ``POST /v1/responses``: ``input`` (the messages as they are),
  ``max_output_tokens``, ``text.format`` (a strict ``json_schema``), ``reasoning.effort``,
  ``store: false`` (llmcompare keeps its own record); stop strings and seeds, which the
  Responses API does not take, are applied by llmcompare / not sent, and the record says so;
- the answer: ``output_text`` items, a ``refusal`` item as a refusal, ``status: incomplete``
  (``max_output_tokens``) as finish ``length``, ``status: failed`` as a provider error, usage
  from ``input_tokens_details`` (cached, cache writes) and ``output_tokens_details``
  (reasoning);
- the stream: server-sent events, whose ``response.completed`` (or ``response.incomplete``)
  event carries the usage. A reasoning item that starts before any text is the first token
  (``ttft_s``); the first text delta is the first visible token (``ttft_visible_s``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from llmcompare.backends.chatgpt import _calls
from llmcompare.backends.chatgpt._cutter import StreamText
from llmcompare.backends.chatgpt._endpoint import cut
from llmcompare.errors import BackendError, ConfigurationError
from llmcompare.types import Chunk, Completion, FinishReason, Request, Sent

if TYPE_CHECKING:
    from llmcompare.backends.chatgpt._endpoint import Endpoint

__all__ = ["MIN_OUTPUT_TOKENS", "URL", "ResponsesApi"]

URL = "/v1/responses"
"""The endpoint of the Responses API (also the ``url`` of its Batch API lines)."""

MIN_OUTPUT_TOKENS = 16
"""OpenAI refuses a ``max_output_tokens`` below 16 ("integer below minimum value")."""

_INCOMPLETE: dict[str | None, FinishReason] = {
    "max_output_tokens": "length",
    "content_filter": "content_filter",
}
"""Why a response is ``incomplete``, in llmcompare's terms (anything else: ``"stop"``)."""


def _outputs(response: Any) -> tuple[str, str | None]:
    """The visible text and the refusal (if any) of a response's ``output`` items."""
    texts: list[str] = []
    refusals: list[str] = []
    for item in getattr(response, "output", None) or ():
        if getattr(item, "type", None) != "message":
            continue  # reasoning, tool calls: nothing visible
        for part in getattr(item, "content", None) or ():
            kind = getattr(part, "type", None)
            if kind == "output_text":
                texts.append(getattr(part, "text", "") or "")
            elif kind == "refusal":
                refusals.append(getattr(part, "refusal", "") or "")
    refusal = "".join(refusals) or None
    return "".join(texts) or refusal or "", refusal


def _finish(response: Any) -> FinishReason:
    if getattr(response, "status", None) == "incomplete":
        details = getattr(response, "incomplete_details", None)
        return _INCOMPLETE.get(getattr(details, "reason", None), "stop")
    return "stop"


def _raise_failure(error: Any, status: str | None, url: str) -> None:
    """Raise a failed response's error as the SDK would, for the one error mapping to map."""
    import httpx2
    import openai

    message = str(getattr(error, "message", None) or f"the response ended with status {status}")
    code = getattr(error, "code", None)
    # The mapping retries what is not the request's fault: server errors, rate limits.
    kind = "invalid_request_error" if str(code or "").startswith("invalid") else "server_error"
    body = {"message": message, "type": kind, "code": code, "param": None}
    raise openai.APIError(message, request=httpx2.Request("POST", url + "/responses"), body=body)


class ResponsesApi:
    """The Responses API of one chatgpt model: request bodies, answers and streams.

    Args:
        endpoint: The model's endpoint (names, options, quirks, clients, error mapping).
    """

    url = URL

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        options = endpoint.options
        # Precomputed once: the per-call path only reads it.
        self._extra: dict[str, Any] = {"store": False}
        if options.reasoning_effort is not None:
            self._extra["reasoning"] = {"effort": options.reasoning_effort}
        for name in ("service_tier", "prompt_cache_key", "prompt_cache_retention"):
            value = getattr(options, name)
            if value is not None:
                self._extra[name] = value

    # -- requests -----------------------------------------------------------------------------

    def params(self, request: Request, *, warn: bool = True) -> dict[str, Any]:
        """The request body: what the SDK's ``responses.create`` is called with.

        Args:
            request: The request.
            warn: Warn (once per setting) about settings the model does not take.

        Raises:
            ConfigurationError: When ``max_tokens`` is below what the API accepts, or the
                request's format needs structured outputs the model lacks; nothing is sent.
        """
        endpoint = self.endpoint
        params: dict[str, Any] = {
            "model": endpoint.name,
            "input": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        limit = request.max_tokens
        if limit is not None:
            if limit < MIN_OUTPUT_TOKENS:
                raise ConfigurationError(
                    f"{endpoint.model_id}: the Responses API takes max_tokens (max_output_tokens) "
                    f"of {MIN_OUTPUT_TOKENS} or more, got {limit}; raise it or use api='chat'"
                )
            params["max_output_tokens"] = limit
        endpoint.add_sampling(request, params, warn=warn)
        fmt = request.response_format
        if fmt is not None:
            endpoint.check_response_format(fmt)
            schema = fmt.openai()["json_schema"]
            params["text"] = {"format": {"type": "json_schema", **schema}}
        params.update(self._extra)
        return params

    def sent(self, request: Request, params: Mapping[str, Any]) -> Sent:
        """What the provider received, and how it differs from the request's settings."""
        endpoint = self.endpoint
        notes: list[str] = []
        if request.max_tokens is not None:
            notes.append(
                "max_tokens sent as max_output_tokens (Responses API): it also counts the "
                "model's hidden reasoning tokens, so the visible answer can be shorter"
            )
        notes += endpoint.dropped_notes(request, params)
        if request.stop:
            notes.append(
                "stop strings applied by llmcompare to the answer, not sent: the Responses API "
                "does not take stop"
            )
        if request.seed is not None:
            notes.append(f"seed={request.seed} not sent: the Responses API does not take a seed")
        shown = {k: v for k, v in params.items() if k != "input"}
        return Sent.model_construct(params=shown, notes=tuple(notes))

    # -- answers ------------------------------------------------------------------------------

    def completion(
        self, response: Any, request: Request, params: Mapping[str, Any], start: float
    ) -> Completion:
        """The completion of a Responses API answer, its latency counted from ``start``.

        Raises:
            LLMCompareError: A ``failed`` response, through the one error mapping.
        """
        endpoint = self.endpoint
        status = getattr(response, "status", None)
        if status not in (None, "completed", "incomplete"):
            with endpoint.errors:
                _raise_failure(getattr(response, "error", None), status, endpoint.shown_url)
        text, refusal = _outputs(response)
        finish = _finish(response)
        if request.stop:
            text, found = cut(text, request.stop)
            if found:
                finish = "stop"
        usage = endpoint.usage(getattr(response, "usage", None), request, text, "responses")
        return Completion(
            text=text,
            finish_reason=finish,
            usage=usage,
            model=endpoint.model_id,
            response_model=getattr(response, "model", None),
            request_id=getattr(response, "_request_id", None),
            latency_s=time.perf_counter() - start,
            sent=self.sent(request, params),
            refusal=refusal,
            api="responses",
            service_tier=getattr(response, "service_tier", None),
        )

    def answer(
        self, body: Mapping[str, Any], request_id: str | None, request: Request, start: float
    ) -> Completion:
        """The completion of one Batch API output line's body (a Response object).

        Raises:
            ValueError: When the body is not a Response (pydantic's ``ValidationError``).
        """
        from openai.types.responses import Response

        response = Response.model_validate(body)
        # As the SDK does for interactive answers (openai._models.add_request_id).
        object.__setattr__(response, "_request_id", request_id)
        return self.completion(response, request, self.params(request, warn=False), start)

    def finalize(self, completion: Completion, request: Request) -> Completion:
        """A streamed completion with what was sent and the API used."""
        sent = self.sent(request, self.params(request, warn=False))
        return completion.model_copy(update={"sent": sent, "api": "responses"})

    # -- calls --------------------------------------------------------------------------------

    def generate(self, request: Request) -> Completion:
        """One answer, synchronously."""
        start = time.perf_counter()
        params = self.params(request)
        response = _calls.create(self.endpoint, _responses, params)
        return self.completion(response, request, params, start)

    async def agenerate(self, request: Request) -> Completion:
        """One answer, asynchronously."""
        start = time.perf_counter()
        params = self.params(request)
        response = await _calls.acreate(self.endpoint, _responses, params)
        return self.completion(response, request, params, start)

    def stream(self, request: Request) -> Iterator[Chunk]:
        """The answer as chunks, synchronously; the last one carries usage and finish."""
        return _calls.stream(self.endpoint, _responses, self._body(request), self._events(request))

    def astream(self, request: Request) -> AsyncIterator[Chunk]:
        """The answer as chunks, asynchronously; the last one carries usage and finish."""
        return _calls.astream(self.endpoint, _responses, self._body(request), self._events(request))

    def _body(self, request: Request) -> Callable[[], dict[str, Any]]:
        return lambda: {**self.params(request), "stream": True}

    def _events(self, request: Request) -> Callable[[str | None], _Events]:
        endpoint = self.endpoint
        return lambda request_id: _Events(endpoint, request, request_id)


def _responses(client: Any) -> Any:
    """The Responses API resource of a client."""
    return client.responses


class _Events(StreamText):
    """Turns Responses stream events into llmcompare chunks (sync and async streams)."""

    __slots__ = ("_final", "_thinking")

    def __init__(self, endpoint: Endpoint, request: Request, request_id: str | None) -> None:
        # The Responses API takes no stop strings: llmcompare applies every one.
        super().__init__(endpoint, request, request_id, request.stop)
        self._final: Any = None
        self._thinking = False

    def feed(self, event: Any) -> Chunk | None:
        kind = getattr(event, "type", None)
        if kind in ("response.created", "response.in_progress"):
            response = getattr(event, "response", None)
            self._response_model = getattr(response, "model", None) or self._response_model
            return None
        if kind in ("response.completed", "response.incomplete"):
            self._final = getattr(event, "response", None)
            return None
        if kind == "response.failed":
            response = getattr(event, "response", None)
            _raise_failure(getattr(response, "error", None), "failed", self._endpoint.shown_url)
        if kind == "error":
            _raise_failure(event, "error", self._endpoint.shown_url)
        text = ""
        if kind == "response.output_text.delta":
            text = getattr(event, "delta", "") or ""
        elif kind == "response.refusal.delta":
            text = getattr(event, "delta", "") or ""
            self._refusal.append(text)
        elif kind == "response.output_item.added" or kind in (
            "response.reasoning_summary_text.delta",
            "response.reasoning_text.delta",
        ):
            item = getattr(event, "item", None)
            reasoning = kind != "response.output_item.added" or (
                getattr(item, "type", None) == "reasoning"
            )
            if reasoning and not self._thinking and not self._parts:
                self._thinking = True
                return self.shown("", thinking=True)
            return None
        return self.shown(text)

    def end(self) -> Chunk:
        tail, stopped = self.rest()
        final = self._final
        if final is None and not stopped:
            raise BackendError(
                "the stream ended before the response completed (no response.completed "
                "event): the connection was probably cut",
                model_id=self._endpoint.model_id,
                retryable=True,
                maybe_billed=True,
            )
        finish: FinishReason = "stop" if stopped else _finish(final)
        # A server that completes without usage has not counted anything: estimated, and said
        # so, never a silent zero; usage that cannot be true is estimated with the reason.
        usage = self._endpoint.usage(
            getattr(final, "usage", None), self._request, "".join(self._parts), "responses"
        )
        return Chunk(
            text=tail,
            finish_reason=finish,
            usage=usage,
            request_id=self._request_id,
            response_model=getattr(final, "model", None) or self._response_model,
            refusal="".join(self._refusal) or None,
            service_tier=getattr(final, "service_tier", None),
        )
