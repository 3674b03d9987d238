"""The :class:`Model` protocol every backend satisfies, and :class:`ModelBase`, which derives it.

A backend writer subclasses :class:`ModelBase` and implements ONE of ``_generate`` (sync) or
``_agenerate`` (async). The base class then provides the whole protocol: sync and async calls,
streaming (a one-chunk fallback unless the backend implements ``_stream`` or ``_astream``) and
``generate_batch`` (request by request unless the backend implements ``_generate_batch``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, Protocol, TypeVar, runtime_checkable

from typing_extensions import Self, Unpack

from llmcompare.errors import LLMCompareError
from llmcompare.model._stream import AsyncStream, Stream, chunk_of, sync_iter
from llmcompare.schema import ResponseFormat, attach, check_formats
from llmcompare.types import (
    Chunk,
    Completion,
    ModelInfo,
    Prompt,
    Request,
    Result,
    Settings,
    ShelfLife,
)

__all__ = ["AsyncStream", "Model", "ModelBase", "Stream"]

_T = TypeVar("_T")


@runtime_checkable
class Model(Protocol):
    """What every llmcompare model offers, whatever runs it.

    Every call takes a prompt (a string, a list of messages or a :class:`~llmcompare.Request`)
    plus keyword settings (``max_tokens``, ``temperature``, ``top_p``, ``stop``, ``seed``).
    """

    @property
    def id(self) -> str:
        """The stable model id, ``"provider:name"``."""
        ...

    @property
    def info(self) -> ModelInfo:
        """Static facts about the model."""
        ...

    def generate(self, prompt: Prompt, /, **settings: Unpack[Settings]) -> Completion:
        """Generate one answer and wait for it."""
        ...

    async def agenerate(self, prompt: Prompt, /, **settings: Unpack[Settings]) -> Completion:
        """Generate one answer without blocking the event loop."""
        ...

    def stream(self, prompt: Prompt, /, **settings: Unpack[Settings]) -> Stream:
        """Stream one answer chunk by chunk."""
        ...

    def astream(self, prompt: Prompt, /, **settings: Unpack[Settings]) -> AsyncStream:
        """Stream one answer chunk by chunk, asynchronously."""
        ...

    def generate_batch(
        self, prompts: Sequence[Prompt], /, **settings: Unpack[Settings]
    ) -> list[Result]:
        """Answer many prompts; one result per prompt, in order, failures kept."""
        ...

    def warm_up(self) -> None:
        """Get ready for the first call (load weights, say); comparisons call it before timing."""
        ...

    def close(self) -> None:
        """Release clients, threads or weights held by the model."""
        ...

    async def aclose(self) -> None:
        """Release resources held by the model, asynchronously."""
        ...

    def __enter__(self) -> Self:
        """Use the model in a ``with`` block; :meth:`close` runs at its end."""
        ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the model."""
        ...

    async def __aenter__(self) -> Self:
        """Use the model in an ``async with`` block; :meth:`aclose` runs at its end."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the model asynchronously."""
        ...


def _refuse_bare_string(prompts: object, call: str) -> None:
    """Refuse one string where many prompts are expected (a string is a sequence of characters).

    Args:
        prompts: What the caller passed as the prompts.
        call: The function's name, for the message.

    Raises:
        TypeError: When ``prompts`` is a string.
    """
    if isinstance(prompts, str):
        raise TypeError(f"{call}() got one string: pass a list of prompts, e.g. [{prompts[:20]!r}]")


def _run_coroutine_sync(make: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine to completion from synchronous code, inside an event loop or not."""
    # asyncio and concurrent.futures are imported here, not at module level: together they
    # are a third of the time of `import llmcompare`, and most programs never need them.
    import asyncio
    import concurrent.futures

    async def main() -> _T:
        return await make()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    # Called from inside a running loop (a notebook, say): blocking it would deadlock, so the
    # coroutine gets a loop of its own on a worker thread, with this context's variables (the
    # run folder a Batch API journal goes to, say), which a bare thread would not see.
    import contextvars

    context = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(context.run, asyncio.run, main()).result()


class ModelBase:
    """Base class that turns one generate method into the whole :class:`Model` protocol.

    Subclasses call ``super().__init__(info)`` and override at least one of :meth:`_generate` or
    :meth:`_agenerate`. They may also override :meth:`_stream` / :meth:`_astream` for real
    streaming, :meth:`_generate_batch` for real batching, :meth:`_finalize_stream` to add
    backend facts to a streamed completion, and :meth:`close` / :meth:`aclose`.

    Args:
        info: Static facts about the model; ``info.id`` becomes the model id.
    """

    native_batching: bool = False
    """Whether ``generate_batch`` runs requests together (tensor batching, say) rather than one
    after another; :func:`~llmcompare.generate_many` then hands the model whole batches. True by
    default for a subclass that overrides :meth:`_generate_batch`; a subclass may set it itself."""

    continuous_batching: bool = False
    """Whether concurrent calls join one running batch (the Llama backend's scheduler): then
    :func:`~llmcompare.generate_many` keeps every pending request in flight at once, each
    answer recorded the moment it finishes, and the model's own limits bound the batch."""

    native_streaming: bool = False
    """Whether the model streams for real (chunk by chunk as generated) rather than in a single
    chunk at the end. True by default for a subclass that overrides :meth:`_stream` or
    :meth:`_astream`; a subclass may set it itself."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass that states a fact keeps it; otherwise what it overrides tells.
        if "native_batching" not in cls.__dict__ and "_generate_batch" in cls.__dict__:
            cls.native_batching = True
        if "native_streaming" not in cls.__dict__ and (
            "_stream" in cls.__dict__ or "_astream" in cls.__dict__
        ):
            cls.native_streaming = True

    def __init__(self, info: ModelInfo) -> None:
        self._info = info
        self._id = info.id
        cls = type(self)
        # Which hooks the subclass really implements decides how each public call is derived.
        self._has_sync = cls._generate is not ModelBase._generate
        self._has_async = cls._agenerate is not ModelBase._agenerate
        self._has_stream = cls._stream is not ModelBase._stream
        self._has_astream = cls._astream is not ModelBase._astream
        if not (self._has_sync or self._has_async):
            raise TypeError(f"{cls.__name__} must override _generate or _agenerate")

    @property
    def id(self) -> str:
        """The stable model id, ``"provider:name"``."""
        return self._id

    @property
    def info(self) -> ModelInfo:
        """Static facts about the model."""
        return self._info

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._id}>"

    # -- hooks for backend writers --------------------------------------------------------------

    def _generate(self, request: Request) -> Completion:
        """Answer one request synchronously. Override this or :meth:`_agenerate`."""
        return _run_coroutine_sync(lambda: self._agenerate(request))

    async def _agenerate(self, request: Request) -> Completion:
        """Answer one request asynchronously. Override this or :meth:`_generate`."""
        import asyncio  # already loaded: an event loop runs (see _run_coroutine_sync)

        return await asyncio.to_thread(self._generate, request)

    def _stream(self, request: Request) -> Iterator[Chunk]:
        """Yield chunks of the answer; the last carries finish_reason and usage.

        The default answers in one chunk.
        """
        completion = self._generate(request)
        yield chunk_of(completion)

    async def _astream(self, request: Request) -> AsyncIterator[Chunk]:
        """Yield chunks of the answer asynchronously; the default derives from the sync hooks."""
        import asyncio  # already loaded: an event loop runs

        if self._has_stream:
            from concurrent.futures import ThreadPoolExecutor

            chunks = self._stream(request)
            done = object()
            # Each step of a sync stream may block on compute, so it runs off the loop, always on
            # the same single thread: a close() after a cancellation then queues behind the step
            # still running, instead of hitting a generator that is already executing.
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmcompare-stream") as pool:
                try:
                    while True:
                        chunk = await asyncio.wrap_future(pool.submit(next, chunks, done))
                        if chunk is done:
                            return
                        assert isinstance(chunk, Chunk)
                        yield chunk
                finally:
                    close = getattr(chunks, "close", None)
                    if close is not None:
                        await asyncio.wrap_future(pool.submit(close))
        else:
            completion = await self._agenerate(request)
            yield chunk_of(completion)

    def _generate_batch(self, requests: Sequence[Request]) -> list[Completion | Exception]:
        """Answer requests in order, one entry per request; errors are returned, not raised."""
        out: list[Completion | Exception] = []
        for request in requests:
            try:
                out.append(self._timed(request))
            except Exception as exc:  # noqa: BLE001 - one failure must not lose the others
                out.append(exc)
        return out

    def _finalize_stream(self, completion: Completion, request: Request) -> Completion:
        """Add backend facts (compute time, device, what was sent) to a streamed completion.

        Args:
            completion: The completion built from the chunks, with the stream's timings.
            request: The request the stream answered.
        """
        return completion

    # -- the public protocol --------------------------------------------------------------------

    def _timed(self, request: Request) -> Completion:
        start = time.perf_counter()
        return attach(_with_latency(self._generate(request), start), request)

    def generate(self, prompt: Prompt, /, **settings: Unpack[Settings]) -> Completion:
        """Generate one answer and wait for it.

        Args:
            prompt: A string, a list of messages or a :class:`~llmcompare.Request`.
            **settings: Generation settings; see :class:`~llmcompare.Settings`.

        Returns:
            The completion, with ``latency_s`` measured around the call.

        Raises:
            pydantic.ValidationError: When the prompt or a setting is invalid.
            BackendError: When the backend fails.
        """
        return self._timed(Request.of(prompt, **settings))

    async def agenerate(self, prompt: Prompt, /, **settings: Unpack[Settings]) -> Completion:
        """Generate one answer without blocking the event loop; see :meth:`generate`."""
        request = Request.of(prompt, **settings)
        start = time.perf_counter()
        return attach(_with_latency(await self._agenerate(request), start), request)

    def stream(self, prompt: Prompt, /, **settings: Unpack[Settings]) -> Stream:
        """Stream one answer; see :class:`Stream`.

        Backends without streaming answer in a single chunk, so the same code works everywhere.
        """
        request = Request.of(prompt, **settings)
        finish = _Finisher(self, request)
        if self._has_stream or not self._has_astream:
            return Stream(self, self._stream(request), finish=finish)
        return Stream(self, sync_iter(self._astream(request)), finish=finish)

    def astream(self, prompt: Prompt, /, **settings: Unpack[Settings]) -> AsyncStream:
        """Stream one answer asynchronously; see :class:`AsyncStream`."""
        request = Request.of(prompt, **settings)
        return AsyncStream(self, self._astream(request), finish=_Finisher(self, request))

    def generate_batch(
        self, prompts: Sequence[Prompt], /, **settings: Unpack[Settings]
    ) -> list[Result]:
        """Answer many prompts; one :class:`~llmcompare.Result` per prompt, in input order.

        Every prompt is validated before anything is generated, so bad input fails the whole
        call at once. After that, a request that fails is recorded in its result and the others
        still complete. Backends with real batching (the Llama backend) run tensors in batches.

        Args:
            prompts: The prompts, in any accepted form.
            **settings: Settings applied to every prompt.

        Returns:
            One result per prompt, in order.

        Raises:
            TypeError: When ``prompts`` is one string rather than a list.
        """
        _refuse_bare_string(prompts, "generate_batch")
        requests = [Request.of(p, **settings) for p in prompts]
        check_formats(self, requests)
        start = time.perf_counter()
        outputs = self._generate_batch(requests) if requests else []
        if len(outputs) != len(requests):
            raise LLMCompareError(
                f"{self._id}: backend returned {len(outputs)} results for {len(requests)} requests"
            )
        return [
            Result(i, req, error=out)
            if isinstance(out, BaseException)
            else Result(i, req, completion=attach(_with_latency(out, start), req))
            for i, (req, out) in enumerate(zip(requests, outputs, strict=True))
        ]

    def check_response_format(self, fmt: ResponseFormat) -> None:
        """Refuse, before anything is sent, a response format this model cannot enforce.

        ``compare``, ``generate_many`` and ``generate_batch`` ask it once per distinct format
        (see :func:`llmcompare.schema.check_formats`); the default accepts every format.
        Override it when a setup can fail (a model without structured outputs, a missing
        grammar engine); it must be cheap and send nothing.

        Args:
            fmt: The normalised format a request carries.

        Raises:
            ConfigurationError: One line naming the model and the fix.
        """

    def cache_identity(self) -> dict[str, Any] | None:
        """What decides this model's answers: the model part of its requests' keys.

        :func:`llmcompare.runs.request_key` hashes it with each request, so two model objects
        share cached answers exactly when their identities are equal. The default is the model
        id; a backend overrides it with everything that changes its answers (weights, dtype,
        library versions, the server) and never a secret (keys, headers): the identity ends up
        in keys written to disk.

        Returns:
            A JSON-serializable mapping, the same on every call and in every process; or None
            when this model's answers must never be cached (a test double, whose scripted
            answers change from one object to the next).
        """
        return {"id": self._id}

    def shelf_life(self) -> ShelfLife | None:
        """Until when this model can be run again: its provider's announced shutdown date.

        A comparison warns, before anything is sent, about a model past or near that date, and
        its record says until when it can be re-run. The default is None (no known date: a
        local model can be run as long as its weights exist).
        """
        return None

    def warm_up(self) -> None:
        """Get ready for the first call (load weights, say) so that it is not slower than the rest.

        Comparisons call it before timing anything. The default does nothing.
        """

    def close(self) -> None:
        """Release resources held by the model. The default holds none."""

    async def aclose(self) -> None:
        """Release resources asynchronously. The default calls :meth:`close` off the loop."""
        import asyncio  # already loaded: an event loop runs

        await asyncio.to_thread(self.close)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


# -- what a model can do, read from the ModelBase class attributes above ------------------------
# Any Model may be asked: one that is not a ModelBase has none of these.


def _native_batching(model: Model) -> bool:
    """Whether a model batches requests itself (:attr:`ModelBase.native_batching`)."""
    return isinstance(model, ModelBase) and model.native_batching


def _continuous_batching(model: Model) -> bool:
    """Whether concurrent calls join one running batch (:attr:`ModelBase.continuous_batching`)."""
    return isinstance(model, ModelBase) and model.continuous_batching


def _native_streaming(model: Model) -> bool:
    """Whether a model streams as it generates (:attr:`ModelBase.native_streaming`)."""
    return isinstance(model, ModelBase) and model.native_streaming


class _Finisher:
    """Calls a backend's ``_finalize_stream`` with the request its stream answered."""

    __slots__ = ("model", "request")

    def __init__(self, model: ModelBase, request: Request) -> None:
        self.model = model
        self.request = request

    def __call__(self, completion: Completion) -> Completion:
        return attach(self.model._finalize_stream(completion, self.request), self.request)


def _with_latency(completion: Completion, start: float) -> Completion:
    """Fill in ``latency_s`` measured from ``start`` unless the backend measured it itself.

    A backend's own batching that leaves latency unset gets the whole call's time: when its
    answers arrived, as far as the caller can tell.
    """
    if completion.latency_s:
        return completion
    return completion.model_copy(update={"latency_s": time.perf_counter() - start})
