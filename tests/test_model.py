"""The base class derives the whole protocol from one method; shown with minimal backends."""

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest

from llmcompare import (
    BackendError,
    Chunk,
    Completion,
    LLMCompareError,
    Model,
    ModelBase,
    ModelInfo,
    Request,
    Usage,
)

INFO = ModelInfo(provider="test", name="m", open_weights=True)


def _answer(model: ModelBase, request: Request, prefix: str) -> Completion:
    if request.messages[-1].content == "fail":
        raise BackendError("scripted failure", model_id=model.id)
    return Completion(
        text=prefix + request.messages[-1].content,
        finish_reason="stop",
        usage=Usage(input_tokens=1, output_tokens=1),
        model=model.id,
    )


class SyncOnly(ModelBase):
    def __init__(self) -> None:
        super().__init__(INFO)
        self.threads: set[int] = set()

    def _generate(self, request: Request) -> Completion:
        self.threads.add(threading.get_ident())
        return _answer(self, request, "sync:")


class AsyncOnly(ModelBase):
    def __init__(self) -> None:
        super().__init__(INFO)

    async def _agenerate(self, request: Request) -> Completion:
        await asyncio.sleep(0)
        return _answer(self, request, "async:")


class Streaming(ModelBase):
    def __init__(self) -> None:
        super().__init__(INFO)
        self.closed = False
        self.produced = 0

    def _generate(self, request: Request) -> Completion:
        return _answer(self, request, "")

    def _stream(self, request: Request) -> Iterator[Chunk]:
        try:
            for word in ["a", "b", "c", "d"]:
                self.produced += 1
                yield Chunk(text=word)
            yield Chunk(finish_reason="stop", usage=Usage(input_tokens=2, output_tokens=4))
        finally:
            self.closed = True


def test_a_backend_must_implement_one_method() -> None:
    class Nothing(ModelBase):
        pass

    with pytest.raises(TypeError, match="_generate or _agenerate"):
        Nothing(INFO)


@pytest.mark.parametrize("cls", [SyncOnly, AsyncOnly, Streaming])
def test_every_backend_satisfies_the_protocol(cls: type[ModelBase]) -> None:
    model = cls()
    assert isinstance(model, Model)
    assert model.id == "test:m"
    assert "test:m" in repr(model)


def test_sync_only_backend_gets_async_without_blocking_the_loop() -> None:
    model = SyncOnly()
    loop_thread = threading.get_ident()

    async def main() -> Completion:
        return await model.agenerate("x")

    completion = asyncio.run(main())
    assert completion.text == "sync:x"
    assert loop_thread not in model.threads  # ran on a worker thread
    assert completion.latency_s > 0


def test_async_only_backend_gets_sync_inside_and_outside_a_loop() -> None:
    model = AsyncOnly()
    assert model.generate("x").text == "async:x"

    async def inside_a_loop() -> str:
        return model.generate("y").text

    assert asyncio.run(inside_a_loop()) == "async:y"


@pytest.mark.parametrize("cls", [SyncOnly, AsyncOnly])
def test_stream_falls_back_to_one_chunk(cls: type[ModelBase]) -> None:
    model = cls()
    stream = model.stream("x")
    chunks = list(stream)
    assert len(chunks) == 1
    assert chunks[0].finish_reason == "stop"
    assert stream.completion.text == chunks[0].text
    assert stream.completion.usage == Usage(input_tokens=1, output_tokens=1)

    async def main() -> list[Chunk]:
        return [c async for c in model.astream("x")]

    assert [c.text for c in asyncio.run(main())] == [chunks[0].text]


def test_stream_builds_the_completion_with_timings() -> None:
    model = Streaming()
    with model.stream("x") as stream:
        texts = [c.text for c in stream]
    assert texts == ["a", "b", "c", "d", ""]
    done = stream.completion
    assert done.text == "abcd"
    assert done.usage == Usage(input_tokens=2, output_tokens=4)
    assert done.ttft_s is not None
    assert 0 <= done.ttft_s <= done.latency_s


def test_completion_before_the_end_is_an_error() -> None:
    stream = Streaming().stream("x")
    next(stream)
    with pytest.raises(LLMCompareError, match="not ended"):
        _ = stream.completion


def test_closing_a_stream_early_stops_the_backend() -> None:
    model = Streaming()
    with model.stream("x") as stream:
        next(stream)
    assert model.closed
    assert model.produced == 1


def test_async_stream_of_a_sync_streaming_backend() -> None:
    model = Streaming()

    async def main() -> Completion:
        stream = model.astream("x")
        async for _ in stream:
            pass
        return stream.completion

    assert asyncio.run(main()).text == "abcd"


def test_async_stream_closed_early_stops_the_backend() -> None:
    model = Streaming()

    async def main() -> None:
        async with model.astream("x") as stream:
            await stream.__anext__()

    asyncio.run(main())
    assert model.closed
    assert model.produced == 1


def test_generate_batch_keeps_order_and_failures() -> None:
    model = SyncOnly()
    results = model.generate_batch(["a", "fail", "c"], max_tokens=3)
    assert [r.index for r in results] == [0, 1, 2]
    assert [r.ok for r in results] == [True, False, True]
    assert results[0].unwrap().text == "sync:a"
    assert results[0].request.max_tokens == 3
    assert isinstance(results[1].error, BackendError)
    with pytest.raises(BackendError, match="scripted failure"):
        results[1].unwrap()


def test_generate_batch_validates_everything_before_running() -> None:
    model = SyncOnly()
    with pytest.raises(ValueError, match="max_tokens"):
        model.generate_batch(["a", "b"], max_tokens=0)
    assert model.threads == set()
    assert model.generate_batch([]) == []


# issue 22, item 12
def test_a_bare_string_is_refused_by_generate_batch_before_anything_is_sent() -> None:
    from llmcompare.retry import RetryPolicy, with_retry

    model = SyncOnly()
    for target in (model, with_retry(model, RetryPolicy())):
        with pytest.raises(TypeError, match=r"pass a list of prompts") as caught:
            target.generate_batch("hello")  # type: ignore[arg-type]
        assert "\n" not in str(caught.value)
    assert model.threads == set()


def test_model_is_a_context_manager() -> None:
    class Closing(SyncOnly):
        closed = 0

        def close(self) -> None:
            self.closed += 1

    with Closing() as model:
        model.generate("x")
    assert model.closed == 1

    async def main() -> Closing:
        async with Closing() as m:
            return m

    assert asyncio.run(main()).closed == 1


class AsyncStreaming(ModelBase):
    def __init__(self) -> None:
        super().__init__(INFO)
        self.closed = False

    async def _agenerate(self, request: Request) -> Completion:
        return _answer(self, request, "")

    async def _astream(self, request: Request) -> AsyncIterator[Chunk]:
        try:
            for word in ["x", "y"]:
                yield Chunk(text=word)
            yield Chunk(finish_reason="stop", usage=Usage(input_tokens=1, output_tokens=2))
        finally:
            self.closed = True


def test_sync_stream_of_an_async_only_backend_inside_and_outside_a_loop() -> None:
    model = AsyncStreaming()
    stream = model.stream("p")
    assert [c.text for c in stream] == ["x", "y", ""]
    assert stream.completion.usage.output_tokens == 2

    async def inside_a_loop() -> str:
        with model.stream("p") as inner:
            return "".join(c.text for c in inner)

    assert asyncio.run(inside_a_loop()) == "xy"
    assert model.closed


class SlowStreaming(Streaming):
    def _stream(self, request: Request) -> Iterator[Chunk]:
        try:
            for word in ["a", "b", "c"]:
                self.produced += 1
                time.sleep(0.2)  # a generation step, still running when the task is cancelled
                yield Chunk(text=word)
            yield Chunk(finish_reason="stop", usage=Usage())
        finally:
            self.closed = True


def test_cancelling_an_async_stream_of_a_sync_backend_stops_it_cleanly() -> None:
    model = SlowStreaming()

    async def consume() -> None:
        async for _ in model.astream("x"):
            pass

    async def main() -> None:
        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)  # cancel while the first step runs on its thread
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert model.closed
    assert model.produced < 3  # generation stopped early


def test_a_backend_batch_without_latency_gets_the_call_time() -> None:
    class Batching(SyncOnly):
        def _generate_batch(self, requests: Sequence[Request]) -> list[Completion | Exception]:
            time.sleep(0.01)
            return [_answer(self, r, "b:") for r in requests]  # latency_s left at 0

    results = Batching().generate_batch(["a", "b"])
    assert all(r.unwrap().latency_s >= 0.01 for r in results)
