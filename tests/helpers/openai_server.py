"""A fault-injecting OpenAI-compatible HTTP server for tests and benchmarks (stdlib only).

It answers ``POST /v1/chat/completions`` (plain JSON and server-sent events) and
``GET /v1/models`` on 127.0.0.1, and it is scripted per request: each chat request takes the next
:class:`Behaviour` from a queue, and an empty queue falls back to a deterministic echo, so a
benchmark can run it unscripted. Every request it receives is recorded (method, path, lower-cased
headers, parsed JSON body) so a test can assert on what the client really sent.

In a test::

    with OpenAIServer() as server:
        server.script(rate_limited(retry_after="2"), ok("hi", prompt_tokens=5, completion_tokens=1))
        client = OpenAI(base_url=server.url, api_key="sk-test", max_retries=0)
        ...
        assert server.requests[0].body["model"] == "gpt-4o-mini"

As a process (for benchmarks)::

    python tests/helpers/openai_server.py --port 0 --chunks 20

prints ``READY http://127.0.0.1:<port>/v1`` on its first line once it accepts connections, and
stops on SIGINT / SIGTERM.

Why asyncio rather than ``http.server``: one event loop serves many keep-alive connections
without a thread each, a slow or streamed reply does not hold a thread, and every reply leaves in
a single ``write`` with ``TCP_NODELAY`` on (asyncio sets it on TCP transports; we set it again to
be explicit), which keeps loopback latency well below a millisecond.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import email.utils
import itertools
import json
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Behaviour",
    "OpenAIServer",
    "RecordedRequest",
    "ResponsesBehaviour",
    "drop_connection",
    "error",
    "ok",
    "rate_limited",
    "raw",
    "refused",
    "responses_body",
    "responses_ok",
    "slow",
    "stream_break",
    "stream_error_event",
]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    411: "Length Required",
    413: "Content Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


# --------------------------------------------------------------------------------------------------
# Behaviours


@dataclass(frozen=True)
class Behaviour:
    """What the server does with one chat-completions request.

    Build these with the helper functions (:func:`ok`, :func:`error`, :func:`rate_limited`,
    :func:`slow`,
    :func:`drop_connection`, :func:`stream_break`, :func:`stream_error_event`) rather than by hand.

    Attributes:
        kind: ``"ok"``, ``"error"``, ``"drop"``, ``"stream_break"`` or ``"stream_error_event"``.
        text: Reply text (``None``: echo the last message, as the default behaviour does).
        chunks: Number of streamed content pieces (``None``: the server's default).
        prompt_tokens: Reported input tokens (``None``: a deterministic count of words).
        completion_tokens: Reported output tokens (``None``: the number of content pieces).
        cached_tokens: ``prompt_tokens_details.cached_tokens`` (``None``: field left out).
        reasoning_tokens: ``completion_tokens_details.reasoning_tokens`` (``None``: field left out).
        finish_reason: Finish reason (``None``: ``"stop"``, or ``"length"`` when truncated).
        model: Model name in the reply (``None``: the requested model).
        usage: Whether to report usage at all (``False``: no ``usage`` in JSON and no usage chunk).
        stream_usage: ``False`` ignores ``stream_options.include_usage`` (as llama.cpp's server
            does).
        status: HTTP status for ``"error"``.
        message: Error message for ``"error"`` and ``"stream_error_event"``.
        error_type: OpenAI error ``type`` for ``"error"``.
        error_code: OpenAI error ``code`` for ``"error"``.
        body: A raw response body that replaces the generated one (``bytes`` or a JSON-able object).
        headers: Extra response headers.
        delay: Seconds to wait before sending anything.
        chunk_delay: Seconds to wait between streamed events.
        after_chunks: For stream faults: content pieces sent before the fault.
        request_id: ``x-request-id`` value (``None``: ``req_<n>``; ``""``: header left out).
        refusal: The reply text is a refusal (``message.refusal``, ``delta.refusal``), as
            structured outputs answer a request they decline; ``content`` is then null.
    """

    kind: Literal["ok", "error", "drop", "stream_break", "stream_error_event"] = "ok"
    text: str | None = None
    chunks: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    finish_reason: str | None = None
    model: str | None = None
    usage: bool = True
    stream_usage: bool = True
    status: int = 200
    message: str = ""
    error_type: str | None = None
    error_code: str | None = None
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunk_delay: float = 0.0
    after_chunks: int = 1
    request_id: str | None = None
    refusal: bool = False


def ok(
    text: str | None = None,
    *,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    cached_tokens: int | None = None,
    reasoning_tokens: int | None = None,
    finish_reason: str | None = None,
    model: str | None = None,
    chunks: int | None = None,
    usage: bool = True,
    stream_usage: bool = True,
    headers: Mapping[str, str] | None = None,
    delay: float = 0.0,
    chunk_delay: float = 0.0,
    request_id: str | None = None,
) -> Behaviour:
    """A 200 reply (JSON, or SSE when the request asks to stream).

    Args:
        text: Reply text; ``None`` echoes the last message.
        prompt_tokens: Reported input tokens.
        completion_tokens: Reported output tokens.
        cached_tokens: Reported ``prompt_tokens_details.cached_tokens``.
        reasoning_tokens: Reported ``completion_tokens_details.reasoning_tokens``.
        finish_reason: Reported finish reason.
        model: Reported model name.
        chunks: Number of streamed content pieces.
        usage: ``False`` leaves usage out entirely.
        stream_usage: ``False`` sends no usage chunk even when the client asks for one.
        headers: Extra response headers.
        delay: Seconds before the reply starts.
        chunk_delay: Seconds between streamed events.
        request_id: ``x-request-id`` value.

    Returns:
        The behaviour.
    """
    return Behaviour(
        kind="ok",
        text=text,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached_tokens=cached_tokens,
        reasoning_tokens=reasoning_tokens,
        finish_reason=finish_reason,
        model=model,
        chunks=chunks,
        usage=usage,
        stream_usage=stream_usage,
        headers=dict(headers or {}),
        delay=delay,
        chunk_delay=chunk_delay,
        request_id=request_id,
    )


def error(
    status: int,
    message: str = "",
    *,
    error_type: str | None = None,
    error_code: str | None = None,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    delay: float = 0.0,
    request_id: str | None = None,
) -> Behaviour:
    """An error reply with an OpenAI-style ``{"error": {...}}`` body.

    Args:
        status: HTTP status (400, 401, 403, 404, 422, 429, 500, 503, ...).
        message: ``error.message``; ``"{api_key}"`` in it is replaced by the key the client sent
            (to check that a client never repeats it).
        error_type: ``error.type`` (default: by status).
        error_code: ``error.code``.
        headers: Extra response headers.
        body: A raw body (bytes, or a JSON-able object) instead of the generated one.
        delay: Seconds before the reply.
        request_id: ``x-request-id`` value.

    Returns:
        The behaviour.
    """
    return Behaviour(
        kind="error",
        status=status,
        message=message or _REASONS.get(status, "error"),
        error_type=error_type or _ERROR_TYPES.get(status, "server_error"),
        error_code=error_code,
        headers=dict(headers or {}),
        body=body,
        delay=delay,
        request_id=request_id,
    )


def rate_limited(
    *,
    retry_after: str | float | None = None,
    retry_after_date: float | None = None,
    retry_after_ms: str | float | None = None,
    reset_requests: str | None = None,
    reset_tokens: str | None = None,
    message: str = "Rate limit reached for requests",
    headers: Mapping[str, str] | None = None,
) -> Behaviour:
    """A 429 with any of the retry header forms OpenAI and compatible servers send.

    Args:
        retry_after: ``Retry-After`` in seconds (or any literal string).
        retry_after_date: ``Retry-After`` as an HTTP date for this Unix time.
        retry_after_ms: ``retry-after-ms``.
        reset_requests: ``x-ratelimit-reset-requests`` (e.g. ``"1s"``, ``"6m0s"``, ``"20ms"``).
        reset_tokens: ``x-ratelimit-reset-tokens``.
        message: Error message.
        headers: More headers.

    Returns:
        The behaviour.
    """
    hdrs: dict[str, str] = {}
    if retry_after is not None:
        hdrs["Retry-After"] = str(retry_after)
    if retry_after_date is not None:
        hdrs["Retry-After"] = email.utils.formatdate(retry_after_date, usegmt=True)
    if retry_after_ms is not None:
        hdrs["retry-after-ms"] = str(retry_after_ms)
    if reset_requests is not None:
        hdrs["x-ratelimit-reset-requests"] = reset_requests
    if reset_tokens is not None:
        hdrs["x-ratelimit-reset-tokens"] = reset_tokens
    hdrs.update(headers or {})
    return error(
        429, message, error_type="requests", error_code="rate_limit_exceeded", headers=hdrs
    )


def raw(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Behaviour:
    """Answer with exactly this body (bytes, or a JSON-able object), for malformed replies.

    Args:
        body: The body to send.
        status: The HTTP status.
        headers: Extra response headers.

    Returns:
        The behaviour.
    """
    return Behaviour(kind="error", status=status, body=body, headers=dict(headers or {}))


def slow(delay: float, then: Behaviour | None = None) -> Behaviour:
    """A reply that starts only after ``delay`` seconds (to exceed a client's timeout).

    Args:
        delay: Seconds to wait.
        then: The reply sent after the wait (default: the echo).

    Returns:
        The behaviour.
    """
    base = then or Behaviour()
    return Behaviour(**{**base.__dict__, "delay": delay})


def refused(message: str = "I'm sorry, I cannot help with that.") -> Behaviour:
    """A 200 reply that declines, as structured outputs do: ``refusal`` set, ``content`` null.

    Args:
        message: The refusal text.

    Returns:
        The behaviour.
    """
    return Behaviour(kind="ok", text=message, refusal=True)


def drop_connection() -> Behaviour:
    """Read the request, then close the connection without a byte of reply.

    Returns:
        The behaviour.
    """
    return Behaviour(kind="drop")


def stream_break(after_chunks: int = 2, text: str | None = None) -> Behaviour:
    """Stream ``after_chunks`` content pieces, then cut the connection mid-body.

    The response announces its full ``Content-Length``, so the client sees an incomplete body
    (what a dropped proxy or a crashed server looks like). A non-streaming request gets half a
    JSON body.

    Args:
        after_chunks: Content pieces sent before the cut.
        text: Reply text (default: the echo).

    Returns:
        The behaviour.
    """
    return Behaviour(kind="stream_break", after_chunks=after_chunks, text=text)


def stream_error_event(
    after_chunks: int = 2, message: str = "The server had an error"
) -> Behaviour:
    """Stream some pieces, then a ``data: {"error": ...}`` event, as OpenAI does when it fails.

    Args:
        after_chunks: Content pieces sent before the error event.
        message: The error message.

    Returns:
        The behaviour.
    """
    return Behaviour(kind="stream_error_event", after_chunks=after_chunks, message=message)


# --------------------------------------------------------------------------------------------------
# Recording


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it.

    Attributes:
        method: HTTP method.
        path: Request target (path and query).
        headers: Headers with lower-cased names.
        body: Parsed JSON body (``None`` when empty or not JSON).
        raw: The raw body bytes.
        at: ``time.monotonic()`` when the request arrived (to check request rates).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes
    at: float = field(default_factory=time.monotonic)


# --------------------------------------------------------------------------------------------------
# Server


def _words(text: str) -> list[str]:
    """Split text into pieces that keep their spaces ("a b" -> ["a", " b"]) and join back."""
    out: list[str] = []
    for i, word in enumerate(text.split(" ")):
        out.append(word if i == 0 else " " + word)
    return [w for w in out if w] or [text]


def _split(text: str, n: int) -> list[str]:
    """Split text into exactly ``n`` pieces that join back to it (when it has enough words)."""
    words = _words(text)
    if n <= 0 or n == len(words):
        return words
    if n < len(words):
        # Spread the words over n pieces.
        per, extra = divmod(len(words), n)
        out, i = [], 0
        for k in range(n):
            take = per + (1 if k < extra else 0)
            out.append("".join(words[i : i + take]))
            i += take
        return out
    # More pieces than words: cycle the words (the reply then has n words).
    cycle = itertools.cycle(w.strip() for w in words)
    return [next(cycle) if k == 0 else " " + next(cycle) for k in range(n)]


def _count_prompt_tokens(messages: Any) -> int:
    """A deterministic stand-in for a tokenizer: words of every message, plus 3 per message."""
    total = 0
    if isinstance(messages, list):
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                total += len(content.split()) + 3
            elif isinstance(content, list):
                total += 3 + sum(
                    len(str(part.get("text", "")).split())
                    for part in content
                    if isinstance(part, dict)
                )
    return total


class OpenAIServer:
    """A scripted OpenAI-compatible server on 127.0.0.1, run in a background thread.

    Args:
        host: Address to bind (loopback only).
        port: Port (0: an ephemeral port; read :attr:`port` after :meth:`start`).
        chunks: Default number of streamed content pieces for the echo (``None``: one per word).
        text: Default reply text (``None``: echo the last message).
        record: Whether to keep every request in :attr:`requests` (benchmarks turn it off).
        api_key: When set, a request without ``Authorization: Bearer <api_key>`` gets a 401.
        models: Model ids listed by ``GET /v1/models``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        chunks: int | None = None,
        text: str | None = None,
        record: bool = True,
        api_key: str | None = None,
        models: Sequence[str] = ("gpt-4o-mini", "gpt-4o", "o3-mini", "gpt-5-mini"),
    ) -> None:
        self.host = host
        self.port = port
        self.chunks = chunks
        self.text = text
        self.record = record
        self.api_key = api_key
        self.models = tuple(models)
        self.default: Behaviour = Behaviour()
        self._queue: deque[Behaviour] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0
        self.opened = asyncio.Event()  # set once serve_forever() has bound its socket

    # -- scripting --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL to give an OpenAI client (``http://127.0.0.1:<port>/v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next chat requests, in order.

        Args:
            *behaviours: One per request; once used up, :attr:`default` answers.
        """
        with self._lock:
            self._queue.extend(behaviours)

    @property
    def pending(self) -> int:
        """Scripted behaviours not used yet."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests received so far (chat and models)."""
        with self._lock:
            return list(self._requests)

    @property
    def open_connections(self) -> int:
        """Client connections open now (a close counts once the client's FIN has arrived)."""
        return len(self._writers)

    def wait_idle(self, timeout: float = 5.0) -> int:
        """Wait until no client connection is open (or the timeout passes).

        Args:
            timeout: Seconds to wait at most.

        Returns:
            The connections still open.
        """
        deadline = time.monotonic() + timeout
        while self._writers and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(self._writers)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The chat-completions requests received so far."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def reset(self) -> None:
        """Forget requests, queued behaviours and the connection count; restore the echo."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self.connections = 0
        self.default = Behaviour()

    def _next_behaviour(self) -> Behaviour:
        with self._lock:
            return self._queue.popleft() if self._queue else self.default

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> OpenAIServer:
        """Start serving in a daemon thread; returns when the socket accepts connections.

        Returns:
            The server itself.
        """
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:  # noqa: BLE001 - reported to start()'s caller
                failure.append(exc)
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._close())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"openai-server-{self.port}", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop serving and close every connection."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _open(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=2**24, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def serve_forever(self) -> None:
        """Serve in the current event loop until cancelled (used by the command line)."""
        try:
            await self._open()
        finally:
            self.opened.set()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    # -- HTTP -------------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                try:
                    method, target, version = lines[0].split(" ", 2)
                except ValueError:
                    return
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                raw = await self._read_body(reader, headers)
                if raw is None:
                    return
                keep_alive = (
                    version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
                )
                if not await self._dispatch(method, target, headers, raw, reader, writer):
                    return
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes | None:
        try:
            if "chunked" in headers.get("transfer-encoding", "").lower():
                parts: list[bytes] = []
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        await reader.readuntil(b"\r\n")
                        return b"".join(parts)
                    parts.append(await reader.readexactly(size))
                    await reader.readexactly(2)
            length = int(headers.get("content-length", "0") or 0)
            return await reader.readexactly(length) if length else b""
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
            ConnectionError,
        ):
            return None

    def _head(
        self, status: int, headers: Mapping[str, str], length: int, content_type: str
    ) -> bytes:
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            f"content-type: {content_type}",
            f"content-length: {length}",
        ]
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _dispatch(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        raw: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer one request; returns False when the connection must be closed."""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        if self.record:
            with self._lock:
                self._requests.append(RecordedRequest(method, target, headers, body, raw))
        path = target.split("?", 1)[0].rstrip("/")
        request_id = f"req_{next(self._counter)}"

        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            writer.write(
                self._error_bytes(
                    Behaviour(kind="error", status=401, message="Incorrect API key provided."),
                    request_id,
                )
            )
            await writer.drain()
            return True
        if method == "GET" and path.endswith("/models"):
            payload = {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": "test"}
                    for m in self.models
                ],
            }
            data = json.dumps(payload).encode()
            writer.write(
                self._head(200, {"x-request-id": request_id}, len(data), "application/json") + data
            )
            await writer.drain()
            return True
        if method == "POST" and path.endswith("/responses"):
            return await _responses_route(self, body, headers, request_id, reader, writer)
        if method == "GET" and "/models/" in path:
            return await _model_route(self, path.rsplit("/", 1)[1], request_id, writer)
        if method != "POST" or not path.endswith("/chat/completions"):
            writer.write(
                self._error_bytes(
                    Behaviour(kind="error", status=404, message=f"no route {method} {path}"),
                    request_id,
                )
            )
            await writer.drain()
            return True
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("messages"), list)
            or "model" not in body
        ):
            bad = Behaviour(
                kind="error", status=400, message="body must be JSON with 'model' and 'messages'"
            )
            writer.write(self._error_bytes(bad, request_id))
            await writer.drain()
            return True

        behaviour = self._next_behaviour()
        if behaviour.request_id is not None:
            request_id = behaviour.request_id
        if behaviour.delay > 0:
            await asyncio.sleep(behaviour.delay)
            if reader.at_eof():  # the client gave up waiting: do not answer into the void
                writer.transport.abort()
                return False
        if behaviour.kind == "drop":
            writer.transport.abort()
            return False
        if behaviour.kind == "error":
            behaviour = with_request_echoed(behaviour, method, target, headers)
            api_key = headers.get("authorization", "").removeprefix("Bearer ")
            writer.write(self._error_bytes(behaviour, request_id, api_key))
            await writer.drain()
            return True
        return await self._reply(behaviour, body, request_id, reader, writer)

    def _error_bytes(self, b: Behaviour, request_id: str, api_key: str = "") -> bytes:
        if isinstance(b.body, bytes):
            data = b.body
        elif b.body is not None:
            data = json.dumps(b.body).encode()
        else:
            message = b.message.replace("{api_key}", api_key)
            err = {"message": message, "type": b.error_type, "param": None, "code": b.error_code}
            data = json.dumps({"error": err}).encode()
        headers = {"x-request-id": request_id, **b.headers} if request_id else dict(b.headers)
        return self._head(b.status, headers, len(data), "application/json") + data

    def _plan(
        self, b: Behaviour, body: dict[str, Any]
    ) -> tuple[list[str], str, dict[str, Any] | None, str]:
        """Work out the reply: content pieces, finish reason, usage object, model name."""
        messages = body["messages"]
        text = b.text if b.text is not None else self.text
        if text is None:
            last = (
                messages[-1].get("content", "")
                if messages and isinstance(messages[-1], dict)
                else ""
            )
            text = last if isinstance(last, str) else json.dumps(last)
        n = b.chunks if b.chunks is not None else self.chunks
        pieces = _split(text, n) if n is not None else _words(text)
        finish = b.finish_reason
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if finish is None:
            finish = "stop"
            stops = body.get("stop")
            if isinstance(stops, str):
                stops = [stops]
            if stops:
                # Like a real server: cut at the first stop string, which is not returned.
                joined = "".join(pieces)
                cut = min((i for i in (joined.find(s) for s in stops if s) if i >= 0), default=-1)
                if cut >= 0:
                    pieces = _words(joined[:cut]) if joined[:cut] else []
            if isinstance(limit, int) and 0 < limit < len(pieces):
                pieces = pieces[:limit]
                finish = "length"
        usage: dict[str, Any] | None = None
        if b.usage:
            prompt = (
                b.prompt_tokens if b.prompt_tokens is not None else _count_prompt_tokens(messages)
            )
            completion = b.completion_tokens if b.completion_tokens is not None else len(pieces)
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
            if b.cached_tokens is not None:
                usage["prompt_tokens_details"] = {
                    "cached_tokens": b.cached_tokens,
                    "audio_tokens": 0,
                }
            if b.reasoning_tokens is not None:
                usage["completion_tokens_details"] = {
                    "reasoning_tokens": b.reasoning_tokens,
                    "audio_tokens": 0,
                }
        model = b.model or str(body.get("model"))
        return pieces, finish, usage, model

    async def _reply(
        self,
        b: Behaviour,
        body: dict[str, Any],
        request_id: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        pieces, finish, usage, model = self._plan(b, body)
        created = int(time.time())
        cid = f"chatcmpl-{request_id}"
        headers = {"x-request-id": request_id, **b.headers} if request_id else dict(b.headers)

        if not body.get("stream"):
            payload: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": None if b.refusal else "".join(pieces),
                            "refusal": "".join(pieces) if b.refusal else None,
                        },
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
                "system_fingerprint": "fp_test",
            }
            payload.update(_served_tier(b, body))
            if usage is not None:
                payload["usage"] = usage
            data = json.dumps(payload).encode()
            if b.kind == "stream_break":
                writer.write(
                    self._head(200, headers, len(data), "application/json") + data[: len(data) // 2]
                )
                await writer.drain()
                writer.transport.abort()
                return False
            writer.write(self._head(200, headers, len(data), "application/json") + data)
            await writer.drain()
            return True

        options = body.get("stream_options") or {}
        with_usage = bool(options.get("include_usage")) and b.stream_usage and usage is not None
        base = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_test",
            **_served_tier(b, body),
        }

        def event(choices: list[dict[str, Any]], chunk_usage: Any = None) -> bytes:
            obj = {**base, "choices": choices}
            if with_usage:
                obj["usage"] = chunk_usage
            return b"data: " + json.dumps(obj).encode() + b"\n\n"

        events = [
            event(
                [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ]
            )
        ]
        events += [
            event(
                [
                    {
                        "index": 0,
                        "delta": {"refusal" if b.refusal else "content": p},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ]
            )
            for p in pieces
        ]
        events.append(event([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}]))
        if with_usage:
            events.append(event([], usage))
        events.append(b"data: [DONE]\n\n")

        if b.kind == "stream_error_event":
            cut = 1 + min(b.after_chunks, len(pieces))
            err = {
                "error": {"message": b.message, "type": "server_error", "param": None, "code": None}
            }
            events = [
                *events[:cut],
                b"data: " + json.dumps(err).encode() + b"\n\n",
                b"data: [DONE]\n\n",
            ]

        data = b"".join(events)
        head = self._head(
            200,
            {**headers, "cache-control": "no-cache"},
            len(data),
            "text/event-stream; charset=utf-8",
        )
        if b.kind == "stream_break":
            cut = 1 + min(b.after_chunks, len(pieces))
            writer.write(head + b"".join(events[:cut]))
            await writer.drain()
            await asyncio.sleep(0.01)  # let the client read what came before the cut
            writer.transport.abort()
            return False
        if b.chunk_delay <= 0:
            writer.write(head + data)  # one write: no Nagle / delayed-ACK stalls
            await writer.drain()
            return True
        writer.write(head + events[0])
        await writer.drain()
        for ev in events[1:]:
            await asyncio.sleep(b.chunk_delay)
            if reader.at_eof():  # the client closed the stream: stop, as a real server would
                writer.transport.abort()
                return False
            writer.write(ev)
            await writer.drain()
        return True


# --------------------------------------------------------------------------------------------------
# The Responses API (POST /v1/responses) and one model's facts (GET /v1/models/{id})
#
# Each /v1/responses request takes the next scripted behaviour from the same queue as chat
# requests: ok(), error(), rate_limited(), refused(), drop_connection(), stream_break() and
# stream_error_event() mean the same here. responses_ok() adds what only this API reports: cache
# writes, the service tier that served the answer, a reasoning item before the text (with a pause
# after it, so the first visible token comes after the first token), a failed response. Usage is
# reported the way OpenAI reports it: in the response, and in the stream's response.completed.


@dataclass(frozen=True)
class ResponsesBehaviour(Behaviour):
    """A :class:`Behaviour` with what only the Responses API reports.

    Attributes:
        cache_write_tokens: ``input_tokens_details.cache_write_tokens``.
        service_tier: The tier reported as serving the answer (``None``: the one asked for,
            ``"default"`` for ``auto`` or none).
        think_delay: Seconds between the reasoning item and the first text (with
            ``reasoning_tokens``: a reasoning item is streamed first).
        failed: Answer ``status: failed`` (a ``response.failed`` event when streaming).
    """

    cache_write_tokens: int | None = None
    service_tier: str | None = None
    think_delay: float = 0.0
    failed: bool = False


def responses_ok(
    text: str | None = None,
    *,
    cache_write_tokens: int | None = None,
    service_tier: str | None = None,
    think_delay: float = 0.0,
    failed: bool = False,
    message: str = "The server had an error processing the response",
    **reply: Any,
) -> ResponsesBehaviour:
    """A Responses API reply (JSON, or server-sent events when the request streams).

    Args:
        text: Reply text; ``None`` echoes the last input message.
        cache_write_tokens: Reported ``input_tokens_details.cache_write_tokens``.
        service_tier: The tier reported as serving the answer.
        think_delay: Seconds after the reasoning item before the first text.
        failed: Answer ``status: failed`` with ``message``.
        message: The error message of a failed response.
        **reply: What :func:`ok` takes, meaning the same here: ``prompt_tokens`` is
            ``input_tokens``, ``reasoning_tokens`` adds a reasoning item before the text,
            ``finish_reason="length"`` (or ``"content_filter"``) answers ``status: incomplete``.

    Returns:
        The behaviour.
    """
    return ResponsesBehaviour(
        **{
            **ok(text, **reply).__dict__,
            "cache_write_tokens": cache_write_tokens,
            "service_tier": service_tier,
            "think_delay": think_delay,
            "failed": failed,
            "message": message,
        }
    )


_INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}

EFFORT_REASONING = {"none": 0, "minimal": 4, "low": 16, "medium": 64, "high": 128, "xhigh": 256}
"""Hidden reasoning tokens an unscripted answer reports for each ``reasoning.effort`` (the echo
of a request without one reasons for none): more effort, more (billed) reasoning."""


def _input_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    items = body.get("input")
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    return [m for m in items or () if isinstance(m, dict)]


def _served_tier(b: Behaviour, body: dict[str, Any]) -> dict[str, str]:
    """``service_tier`` of a reply: the behaviour's, else the one asked for (``auto``: default).

    Empty when the request asks for none and the behaviour names none, as the chat replies of
    this server always were.
    """
    asked = body.get("service_tier")
    served = getattr(b, "service_tier", None)
    if served is None and asked is None:
        return {}
    return {"service_tier": served or (asked if asked != "auto" else "default")}


def responses_body(
    server: OpenAIServer, b: Behaviour, body: dict[str, Any], request_id: str
) -> dict[str, Any]:
    """The Response object answering ``body`` under behaviour ``b`` (also a Batch API line's).

    Args:
        server: The server (its default text and chunking).
        b: The behaviour.
        body: The request body.
        request_id: The request id, from which the response and item ids are made.

    Returns:
        The Response, as JSON-able data.
    """
    messages = _input_messages(body)
    text = b.text if b.text is not None else server.text
    if text is None:
        last = messages[-1].get("content", "") if messages else ""
        text = last if isinstance(last, str) else json.dumps(last)
    n = b.chunks if b.chunks is not None else server.chunks
    pieces = _split(text, n) if n is not None else _words(text)
    limit = body.get("max_output_tokens")
    finish = b.finish_reason
    if finish is None and isinstance(limit, int) and 0 < limit < len(pieces):
        pieces, finish = pieces[:limit], "length"
    status = "completed"
    incomplete = None
    if finish in _INCOMPLETE_REASONS:
        status, incomplete = "incomplete", {"reason": _INCOMPLETE_REASONS[finish]}
    failed = bool(getattr(b, "failed", False))
    effort = (body.get("reasoning") or {}).get("effort")
    reasoning_tokens = (
        b.reasoning_tokens if b.reasoning_tokens is not None else EFFORT_REASONING.get(effort, 0)
    )
    output: list[dict[str, Any]] = []
    if reasoning_tokens:
        output.append({"id": f"rs_{request_id}", "type": "reasoning", "summary": []})
    part: dict[str, Any] = (
        {"type": "refusal", "refusal": "".join(pieces)}
        if b.refusal
        else {"type": "output_text", "text": "".join(pieces), "annotations": [], "logprobs": []}
    )
    if not failed:
        output.append(
            {
                "id": f"msg_{request_id}",
                "type": "message",
                "status": "incomplete" if incomplete else "completed",
                "role": "assistant",
                "content": [part],
            }
        )
    usage: dict[str, Any] | None = None
    if b.usage and not failed:
        prompt = b.prompt_tokens if b.prompt_tokens is not None else _count_prompt_tokens(messages)
        visible = b.completion_tokens if b.completion_tokens is not None else len(pieces)
        reasoning = reasoning_tokens
        usage = {
            "input_tokens": prompt,
            "input_tokens_details": {
                "cached_tokens": b.cached_tokens or 0,
                "cache_write_tokens": getattr(b, "cache_write_tokens", None) or 0,
            },
            "output_tokens": visible + reasoning,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": prompt + visible + reasoning,
        }
    asked = body.get("service_tier")
    served = getattr(b, "service_tier", None) or (
        asked if asked not in (None, "auto") else "default"
    )
    return {
        "id": f"resp_{request_id}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "failed" if failed else status,
        "error": {"code": "server_error", "message": b.message} if failed else None,
        "incomplete_details": incomplete,
        "model": b.model or str(body.get("model")),
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "max_output_tokens": limit,
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "service_tier": served,
        "store": body.get("store", True),
        "text": body.get("text") or {"format": {"type": "text"}},
        "usage": usage,
    }


def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: ".encode() + json.dumps({"type": kind, **data}).encode() + b"\n\n"


def _response_events(final: dict[str, Any], b: Behaviour) -> list[bytes]:
    """The server-sent events of a streamed response, ending with its last state."""
    seq = itertools.count()
    start = {**final, "status": "in_progress", "output": [], "usage": None, "error": None}
    start["incomplete_details"] = None
    events = [
        _sse("response.created", {"sequence_number": next(seq), "response": start}),
        _sse("response.in_progress", {"sequence_number": next(seq), "response": start}),
    ]
    for index, item in enumerate(final["output"]):
        if item["type"] == "reasoning":
            for kind in ("response.output_item.added", "response.output_item.done"):
                events.append(
                    _sse(kind, {"sequence_number": next(seq), "output_index": index, "item": item})
                )
            continue
        part = item["content"][0]
        refusal = part["type"] == "refusal"
        whole = part["refusal"] if refusal else part["text"]
        opened = {**item, "status": "in_progress", "content": []}
        events.append(
            _sse(
                "response.output_item.added",
                {"sequence_number": next(seq), "output_index": index, "item": opened},
            )
        )
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        n = b.chunks if b.chunks is not None else None
        for piece in _split(whole, n) if n is not None else _words(whole):
            kind = "response.refusal.delta" if refusal else "response.output_text.delta"
            extra = {} if refusal else {"logprobs": []}
            events.append(
                _sse(kind, {"sequence_number": next(seq), **where, "delta": piece, **extra})
            )
        events.append(
            _sse(
                "response.output_item.done",
                {"sequence_number": next(seq), "output_index": index, "item": item},
            )
        )
    last = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(
        final["status"], "response.failed"
    )
    events.append(_sse(last, {"sequence_number": next(seq), "response": final}))
    return events


async def _responses_route(
    server: OpenAIServer,
    body: Any,
    headers: dict[str, str],
    request_id: str,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> bool:
    """Answer one POST /v1/responses; returns False when the connection must be closed."""
    if not isinstance(body, dict) or "input" not in body or "model" not in body:
        bad = Behaviour(
            kind="error", status=400, message="body must be JSON with 'model' and 'input'"
        )
        writer.write(server._error_bytes(bad, request_id))
        await writer.drain()
        return True
    b = server._next_behaviour()
    if b.request_id is not None:
        request_id = b.request_id
    if b.delay > 0:
        await asyncio.sleep(b.delay)
        if reader.at_eof():
            writer.transport.abort()
            return False
    if b.kind == "drop":
        writer.transport.abort()
        return False
    if b.kind == "error":
        api_key = headers.get("authorization", "").removeprefix("Bearer ")
        writer.write(server._error_bytes(b, request_id, api_key))
        await writer.drain()
        return True
    final = responses_body(server, b, body, request_id)
    head_headers = {"x-request-id": request_id, **b.headers} if request_id else dict(b.headers)
    if not body.get("stream"):
        data = json.dumps(final).encode()
        head = server._head(200, head_headers, len(data), "application/json")
        if b.kind == "stream_break":
            writer.write(head + data[: len(data) // 2])
            await writer.drain()
            writer.transport.abort()
            return False
        writer.write(head + data)
        await writer.drain()
        return True
    events = _response_events(final, b)
    first_text = next(
        (i for i, e in enumerate(events) if b"output_text.delta" in e or b"refusal.delta" in e),
        len(events) - 1,
    )
    if b.kind == "stream_error_event":
        err = {"code": "server_error", "message": b.message, "param": None, "sequence_number": 99}
        events = [*events[: first_text + b.after_chunks], _sse("error", err)]
    data = b"".join(events)
    head = server._head(
        200, {**head_headers, "cache-control": "no-cache"}, len(data), "text/event-stream"
    )
    if b.kind == "stream_break":
        writer.write(head + b"".join(events[: first_text + b.after_chunks]))
        await writer.drain()
        await asyncio.sleep(0.01)  # let the client read what came before the cut
        writer.transport.abort()
        return False
    think = float(getattr(b, "think_delay", 0.0) or getattr(server, "think_delay", 0.0))
    if not any(b'"type": "reasoning"' in e for e in events):
        think = 0.0
    if b.chunk_delay <= 0 and think <= 0:
        writer.write(head + data)  # one write: no Nagle / delayed-ACK stalls
        await writer.drain()
        return True
    writer.write(head)
    for i, ev in enumerate(events):
        pause = think if i == first_text else b.chunk_delay if i else 0.0
        if pause > 0:
            await asyncio.sleep(pause)
            if reader.at_eof():
                writer.transport.abort()
                return False
        writer.write(ev)
        await writer.drain()
    return True


async def _model_route(
    server: OpenAIServer, model_id: str, request_id: str, writer: asyncio.StreamWriter
) -> bool:
    """Answer GET /v1/models/{id}: the model, with its facts (``server.model_facts[id]``).

    Set ``server.model_facts = {"gpt-4o": {"shutdown_date": "2027-01-14"}}`` to report a
    shutdown date, as OpenAI's model object may.
    """
    if model_id not in server.models:
        missing = Behaviour(
            kind="error", status=404, message=f"The model '{model_id}' does not exist"
        )
        writer.write(server._error_bytes(missing, request_id))
        await writer.drain()
        return True
    facts = getattr(server, "model_facts", {}).get(model_id, {})
    payload = {"id": model_id, "object": "model", "created": 0, "owned_by": "test", **facts}
    data = json.dumps(payload).encode()
    writer.write(
        server._head(200, {"x-request-id": request_id}, len(data), "application/json") + data
    )
    await writer.drain()
    return True


# --------------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server in the foreground (for benchmarks and manual tries).

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=0, help="0 picks a free port (printed on the READY line)"
    )
    parser.add_argument(
        "--chunks", type=int, default=None, help="content pieces per streamed reply"
    )
    parser.add_argument(
        "--text", default=None, help="fixed reply text (default: echo the last message)"
    )
    parser.add_argument(
        "--record", action="store_true", help="keep requests in memory (off for benchmarks)"
    )
    parser.add_argument(
        "--think-delay",
        type=float,
        default=0.0,
        help="seconds a streamed Responses answer that reasons waits before its first text",
    )
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("this test server only binds to loopback")

    server = OpenAIServer(
        args.host, args.port, chunks=args.chunks, text=args.text, record=args.record
    )
    server.think_delay = args.think_delay  # type: ignore[attr-defined]  # read by /v1/responses

    async def run() -> None:
        task = asyncio.ensure_future(server.serve_forever())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, task.cancel)
        await server.opened.wait()
        if task.done():
            task.result()  # binding failed: raise why
        print(f"READY {server.url}", flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run())
    return 0


# --------------------------------------------------------------------------------------------------
# A server that echoes the request in its error text (issue 22, item 11)

ECHO_REQUEST = "{request}"
"""In an error's message: replaced by the request line and every request header, as they came."""


def echo_request(status: int = 401) -> Behaviour:
    """An error whose message repeats the request line and all its headers, credentials included.

    Debug-minded gateways answer like this; a client must not pass the text on as it came.

    Args:
        status: HTTP status of the error.

    Returns:
        The behaviour.
    """
    return error(status, f"rejected: {ECHO_REQUEST}")


def with_request_echoed(
    b: Behaviour, method: str, target: str, headers: Mapping[str, str]
) -> Behaviour:
    """``b`` with :data:`ECHO_REQUEST` in its message replaced by the request (else ``b``)."""
    if ECHO_REQUEST not in b.message:
        return b
    shown = f"{method} {target} " + "; ".join(f"{k}: {v}" for k, v in headers.items())
    return dataclasses.replace(b, message=b.message.replace(ECHO_REQUEST, shown))


if __name__ == "__main__":
    sys.exit(main())


# --------------------------------------------------------------------------------------------------
# Behaviours added for issue 22


def streamed(*pieces: str, model: str = "gpt-4o-mini", finish_reason: str = "stop") -> Behaviour:
    """A 200 event stream of exactly these content pieces, split wherever the test says.

    A piece may hold half of a character: a lone UTF-16 surrogate is written as its JSON escape
    (``"\\ud83d"``), as a gateway that splits an emoji's escape across two events does. Usage
    is not reported (the client estimates it). The reply is the same whatever the request.

    Args:
        pieces: The content of each event, in order.
        model: The model name in the events.
        finish_reason: The finish reason of the last event.

    Returns:
        The behaviour (a raw body: the request is not looked at).
    """
    base = {"id": "chatcmpl-streamed", "object": "chat.completion.chunk", "created": 0}

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        obj = {**base, "model": model, "choices": [choice]}
        # ensure_ascii (the default): a lone surrogate leaves as its escape, never as bytes.
        return b"data: " + json.dumps(obj).encode("ascii") + b"\n\n"

    events = [event({"role": "assistant", "content": ""})]
    events += [event({"content": p}) for p in pieces]
    events.append(event({}, finish_reason))
    events.append(b"data: [DONE]\n\n")
    return raw(b"".join(events), headers={"content-type": "text/event-stream"})


class SlottedServer(OpenAIServer):
    """A server that answers at most ``slots`` requests at once, each in a fixed time per token.

    The scripted stand-in for a serving engine under load: a request waits for a free slot,
    then takes ``per_token_s`` for each word of its reply (one word is one output token).
    With ``L`` requests in flight and ``S`` seconds a reply, it serves ``min(L, slots) / S``
    requests a second, each taking about ``ceil(L / slots) * S``.

    Args:
        slots: Requests served at once.
        per_token_s: Seconds per output token.
        text: The reply (its words are the output tokens).
    """

    def __init__(self, slots: int, per_token_s: float, text: str) -> None:
        super().__init__(text=text)
        self.slots = slots
        self.per_token_s = per_token_s
        self.tokens = len(text.split())
        self._slots: asyncio.Semaphore | None = None

    async def _reply(
        self,
        b: Behaviour,
        body: dict[str, Any],
        request_id: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        if self._slots is None:  # made on the server's own event loop
            self._slots = asyncio.Semaphore(self.slots)
        async with self._slots:
            await asyncio.sleep(self.per_token_s * self.tokens)
            return await super()._reply(b, body, request_id, reader, writer)
