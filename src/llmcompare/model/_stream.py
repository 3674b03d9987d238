"""The streams a model hands out: :class:`Stream` and :class:`AsyncStream`, read chunk by chunk.

Both build the final :class:`~llmcompare.Completion` (text, usage, time to first token, latency)
from the chunks they pass on. :func:`chunk_of` and :func:`sync_iter` are the two bridges
:class:`~llmcompare.ModelBase` derives streams with: a whole answer as one chunk, and an
async-only stream read from sync code.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING

from typing_extensions import Self

from llmcompare.errors import LLMCompareError
from llmcompare.types import Chunk, Completion, FinishReason, Usage

if TYPE_CHECKING:
    from llmcompare.model import ModelBase

__all__ = ["AsyncStream", "Stream", "chunk_of", "sync_iter"]


class _StreamState:
    """What a stream has seen so far; turns into the final :class:`Completion`."""

    __slots__ = (
        "done",
        "finish",
        "finish_reason",
        "model",
        "parts",
        "refusal",
        "replaced",
        "request_id",
        "response_model",
        "service_tier",
        "started",
        "ttft",
        "usage",
        "visible",
    )

    def __init__(self, model: ModelBase, finish: Callable[[Completion], Completion] | None) -> None:
        self.model = model
        self.finish = finish
        self.parts: list[str] = []
        self.started = 0.0
        self.ttft: float | None = None
        self.visible: float | None = None
        self.service_tier: str | None = None
        self.finish_reason: FinishReason | None = None
        self.usage: Usage | None = None
        self.request_id: str | None = None
        self.response_model: str | None = None
        self.refusal: str | None = None
        self.replaced = 0  # characters the chunks replaced (lone surrogate halves)
        self.done: Completion | None = None

    def begin(self) -> None:
        """Start the clock at the first read, not at creation: a stream may wait to be read."""
        if not self.started:
            self.started = time.perf_counter()

    def see(self, chunk: Chunk) -> None:
        if chunk.text:
            if self.visible is None:
                self.visible = time.perf_counter() - self.started
                if self.ttft is None:
                    self.ttft = self.visible
            self.parts.append(chunk.text)
        elif chunk.thinking and self.ttft is None:
            # Hidden reasoning started: the first token, though nothing shows yet.
            self.ttft = time.perf_counter() - self.started
        self.replaced += chunk.replaced_chars
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.request_id is not None:
            self.request_id = chunk.request_id
        if chunk.response_model is not None:
            self.response_model = chunk.response_model
        if chunk.refusal is not None:
            self.refusal = chunk.refusal
        if chunk.service_tier is not None:
            self.service_tier = chunk.service_tier

    def end(self) -> None:
        if self.done is None:
            built = self.build()
            self.done = built if self.finish is None else self.finish(built)

    def result(self) -> Completion:
        if self.done is None:
            raise LLMCompareError("the stream has not ended: read it to its end first")
        return self.done

    def build(self) -> Completion:
        latency = time.perf_counter() - self.started
        # A backend that ends a stream without usage has not counted anything: say so rather
        # than report a silent zero.
        usage = self.usage if self.usage is not None else Usage(estimated=True)
        return Completion(
            text="".join(self.parts),
            finish_reason=self.finish_reason or "stop",
            usage=usage,
            model=self.model.id,
            response_model=self.response_model,
            request_id=self.request_id,
            latency_s=latency,
            ttft_s=self.ttft if self.ttft is not None else latency,
            ttft_visible_s=self.visible if self.visible is not None else latency,
            refusal=self.refusal,
            service_tier=self.service_tier,
            replaced_chars=self.replaced,
        )


class Stream(Iterator[Chunk]):
    """A synchronous stream of :class:`~llmcompare.Chunk`; also a context manager.

    Iterate it to receive chunks as they are generated. When it is exhausted,
    :attr:`completion` holds the whole answer with its usage and timings. Closing it early
    (``close()``, leaving a ``with`` block, or ``break`` then garbage collection) stops the backend.

    Args:
        model: The model the stream belongs to (its id goes on the completion).
        chunks: The chunks, as the backend yields them.
        finish: Turns the completion built from the chunks into the final one (a wrapper uses it
            to hand back its inner model's completion with the wrapper's own timings).
        abandon: Called when the stream is closed, read to its end or not (a wrapper uses it to
            settle a request that never finished); it must be safe to call more than once.
    """

    def __init__(
        self,
        model: ModelBase,
        chunks: Iterator[Chunk],
        *,
        finish: Callable[[Completion], Completion] | None = None,
        abandon: Callable[[], None] | None = None,
    ) -> None:
        self._chunks = chunks
        self._state = _StreamState(model, finish)
        self._abandon = abandon

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Chunk:
        self._state.begin()
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._state.end()
            raise
        self._state.see(chunk)
        return chunk

    @property
    def completion(self) -> Completion:
        """The whole answer, once the stream has been read to its end.

        Raises:
            LLMCompareError: When the stream has not ended yet.
        """
        return self._state.result()

    def until_done(self) -> Completion:
        """Read the rest of the stream and return the whole answer."""
        for _ in self:
            pass
        return self.completion

    def close(self) -> None:
        """Stop the stream; the backend stops generating."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        if self._abandon is not None:
            self._abandon()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncStream(AsyncIterator[Chunk]):
    """An asynchronous stream of :class:`~llmcompare.Chunk`; also an async context manager.

    The async twin of :class:`Stream`.
    """

    def __init__(
        self,
        model: ModelBase,
        chunks: AsyncIterator[Chunk],
        *,
        finish: Callable[[Completion], Completion] | None = None,
        abandon: Callable[[], None] | None = None,
    ) -> None:
        self._chunks = chunks
        self._state = _StreamState(model, finish)
        self._abandon = abandon

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Chunk:
        self._state.begin()
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            self._state.end()
            raise
        self._state.see(chunk)
        return chunk

    @property
    def completion(self) -> Completion:
        """The whole answer, once the stream has been read to its end.

        Raises:
            LLMCompareError: When the stream has not ended yet.
        """
        return self._state.result()

    async def until_done(self) -> Completion:
        """Read the rest of the stream and return the whole answer."""
        async for _ in self:
            pass
        return self.completion

    async def aclose(self) -> None:
        """Stop the stream; the backend stops generating."""
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            await aclose()
        if self._abandon is not None:
            self._abandon()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def chunk_of(completion: Completion) -> Chunk:
    """A whole answer as the one chunk of a stream (backends that cannot stream)."""
    return Chunk(
        text=completion.text,
        finish_reason=completion.finish_reason,
        usage=completion.usage,
        request_id=completion.request_id,
        response_model=completion.response_model,
        refusal=completion.refusal,
        service_tier=completion.service_tier,
        replaced_chars=completion.replaced_chars,
    )


def sync_iter(chunks: AsyncIterator[Chunk]) -> Iterator[Chunk]:
    """Drive an async-only stream from sync code, on a private event loop in its own thread.

    The loop has a thread of its own so that this works whether or not the calling thread is
    already running an event loop (as in a notebook).
    """
    import asyncio
    import threading

    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, name="llmcompare-astream", daemon=True)
    runner.start()
    try:
        while True:
            try:
                yield asyncio.run_coroutine_threadsafe(_anext(chunks), loop).result()
            except StopAsyncIteration:
                return
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            asyncio.run_coroutine_threadsafe(aclose(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        runner.join()
        loop.close()


async def _anext(chunks: AsyncIterator[Chunk]) -> Chunk:
    return await chunks.__anext__()
