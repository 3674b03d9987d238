"""The fake backend: what users test their own code with."""

import asyncio

import pytest

import llmcompare
from llmcompare import BackendError, Completion, LLMCompareError, Model, RateLimitError, Usage
from llmcompare.backends.fake import FunctionModel, ScriptedModel


def test_scripted_replies_in_order_and_history() -> None:
    model = ScriptedModel(["one", "two"])
    assert isinstance(model, Model)
    assert model.generate("a").text == "one"
    assert model.generate([llmcompare.Message.user("b")], seed=4).text == "two"
    assert [r.messages[-1].content for r in model.history] == ["a", "b"]
    assert model.history[1].seed == 4
    with pytest.raises(LLMCompareError, match="used up after 2 requests"):
        model.generate("c")


def test_scripted_failures_and_default() -> None:
    error = RateLimitError("slow down", model_id="fake:scripted", status=429, retry_after=2.0)
    model = ScriptedModel([error, "ok"], default="again")
    with pytest.raises(RateLimitError) as info:
        model.generate("x")
    assert info.value.retry_after == 2.0
    assert info.value.retryable
    assert model.generate("x").text == "ok"
    assert model.generate("x").text == "again"
    assert model.remaining == 0


def test_scripted_usage_function_and_completion() -> None:
    fixed = Usage(input_tokens=7, output_tokens=3, cache_read_tokens=2)
    assert ScriptedModel(["hi"], usage=fixed).generate("x").usage == fixed
    by_fn = ScriptedModel(["a b c"], usage=lambda req, text: Usage(output_tokens=len(text)))
    assert by_fn.generate("x").usage.output_tokens == 5
    full = Completion(text="t", finish_reason="length", usage=Usage(), model="fake:other")
    assert ScriptedModel([full]).generate("x").finish_reason == "length"


def test_default_usage_counts_words() -> None:
    completion = ScriptedModel(["one two three"]).generate("four five")
    assert completion.usage == Usage(input_tokens=2, output_tokens=3)


def test_max_tokens_and_stop_are_honoured() -> None:
    model = ScriptedModel(default="alpha beta gamma delta")
    cut = model.generate("x", max_tokens=2)
    assert (cut.text, cut.finish_reason, cut.usage.output_tokens) == ("alpha beta", "length", 2)
    stopped = model.generate("x", stop=[" gamma"])
    assert (stopped.text, stopped.finish_reason) == ("alpha beta", "stop")


def test_streaming_word_by_word_equals_generate() -> None:
    model = ScriptedModel(default="the quick brown fox")
    stream = model.stream("x")
    chunks = list(stream)
    assert [c.text for c in chunks[:-1]] == ["the ", "quick ", "brown ", "fox"]
    assert chunks[-1].usage == Usage(input_tokens=1, output_tokens=4)
    assert stream.completion.text == model.generate("x").text


def test_async_paths_and_batch_sum_usage() -> None:
    model = ScriptedModel(default="a b", latency_s=0.01)

    async def main() -> list[Completion]:
        return list(await asyncio.gather(*(model.agenerate(f"p{i}") for i in range(5))))

    completions = asyncio.run(main())
    assert all(c.text == "a b" and c.latency_s >= 0.01 for c in completions)
    results = model.generate_batch(["one", "two words", "three more words"])
    total = sum((r.unwrap().usage for r in results), Usage())
    assert total == Usage(input_tokens=6, output_tokens=6)


def test_async_stream() -> None:
    model = ScriptedModel(default="x y")

    async def main() -> str:
        stream = model.astream("p")
        return "".join([c.text async for c in stream]) + "|" + stream.completion.text

    assert asyncio.run(main()) == "x y|x y"


def test_function_model_sync_and_async() -> None:
    sync_model = FunctionModel(lambda req: req.messages[-1].content.upper())
    assert sync_model.generate("hi").text == "HI"

    async def shout(req: llmcompare.Request) -> str:
        await asyncio.sleep(0)
        return req.messages[-1].content + "!"

    async_model = FunctionModel(shout, name="shout")
    assert async_model.id == "fake:shout"
    assert async_model.generate("hi").text == "hi!"
    assert asyncio.run(async_model.agenerate("yo")).text == "yo!"


def test_function_model_errors_are_kept_per_request_in_a_batch() -> None:
    def fn(req: llmcompare.Request) -> str:
        if "bad" in req.messages[-1].content:
            raise BackendError("nope", model_id="fake:function")
        return "fine"

    results = FunctionModel(fn).generate_batch(["good", "bad", "good"])
    assert [r.ok for r in results] == [True, False, True]


def test_registered_fake_model() -> None:
    echo = llmcompare.get_model("fake")
    assert echo.id == "fake:echo"
    assert echo.generate("repeat me").text == "repeat me"
    fixed = llmcompare.get_model("fake:named", reply="Paris.", open_weights=True)
    assert fixed.id == "fake:named"
    assert fixed.info.open_weights
    assert fixed.generate("anything").text == "Paris."
