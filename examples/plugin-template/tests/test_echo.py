"""Tests of the echo plugin, through llmcompare's public API as users reach it.

They need the plugin installed (``pip install -e .``): llmcompare finds it through its entry
point, exactly as it finds any third-party backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import llmcompare
import pytest
from llmcompare import BackendError, ConfigurationError, Message, Model, Request, Usage
from llmcompare.plugins import reset_registry
from pydantic import ValidationError


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Load plugins from entry points for each test, whatever the environment's allowlist."""
    monkeypatch.delenv("LLMCOMPARE_LOAD_PLUGINS", raising=False)
    previous = reset_registry(None)
    yield
    reset_registry(previous)


def test_llmcompare_discovers_the_plugin() -> None:
    plugins = {p.name: p for p in llmcompare.list_plugins()}

    echo = plugins["echo"]
    assert echo.error is None
    assert echo.distribution == "llmcompare-echo-plugin"
    assert echo.models == ("echo",)
    assert not echo.builtin
    entry = next(e for e in llmcompare.list_models() if e.name == "echo")
    assert entry.aliases == ("parrot",)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("echo", "one two three"),
        ("echo:repeat", "one two three"),
        ("echo:reverse", "three two one"),
        ("echo:shout", "ONE TWO THREE"),
        ("parrot:reverse", "three two one"),
    ],
)
def test_each_variant_applies_its_rule(spec: str, expected: str) -> None:
    model = llmcompare.get_model(spec)

    completion = model.generate("one two three")

    assert isinstance(model, Model)
    assert completion.text == expected
    assert completion.finish_reason == "stop"
    assert completion.model == model.id
    assert completion.latency_s > 0


def test_the_model_id_and_info_come_from_the_variant() -> None:
    model = llmcompare.get_model("echo:reverse", context_window=100)

    assert model.id == "echo:reverse"
    assert model.info.provider == "echo"
    assert model.info.open_weights
    assert model.info.context_window == 100


def test_usage_counts_words_exactly() -> None:
    model = llmcompare.get_model("echo", prefix="You said:")
    prompt = [Message.system("Be brief."), Message.user("a b c d")]

    completion = model.generate(prompt)

    assert completion.text == "You said: a b c d"
    assert completion.usage == Usage(input_tokens=6, output_tokens=6)


def test_the_last_user_message_is_answered() -> None:
    model = llmcompare.get_model("echo")
    prompt = [Message.user("first"), Message.assistant("first"), Message.user("second")]

    assert model.generate(prompt).text == "second"


def test_max_tokens_cuts_words_and_reports_length() -> None:
    completion = llmcompare.get_model("echo").generate("a b c d e", max_tokens=2)

    assert completion.text == "a b"
    assert completion.finish_reason == "length"
    assert completion.usage.output_tokens == 2


def test_stop_strings_cut_before_the_first_one() -> None:
    completion = llmcompare.get_model("echo").generate("alpha beta. gamma; delta", stop=[";", "."])

    assert completion.text == "alpha beta"
    assert completion.finish_reason == "stop"


@pytest.mark.parametrize("words_per_chunk", [1, 2, 10])
def test_stream_joins_to_the_plain_answer(words_per_chunk: int) -> None:
    model = llmcompare.get_model("echo:reverse", words_per_chunk=words_per_chunk)
    prompt = "the quick brown fox jumps"

    with model.stream(prompt) as stream:
        chunks = list(stream)
    plain = model.generate(prompt)

    texts = [c.text for c in chunks[:-1]]
    assert all(texts)
    assert len(texts) == -(-5 // words_per_chunk)
    assert "".join(texts) == plain.text == "jumps fox brown quick the"
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage == plain.usage
    assert stream.completion.text == plain.text
    assert stream.completion.usage == plain.usage
    assert stream.completion.ttft_s is not None


def test_async_calls_and_async_stream() -> None:
    model = llmcompare.get_model("echo:shout")

    async def main() -> tuple[str, str]:
        completion = await model.agenerate("hello there")
        parts = [chunk.text async for chunk in model.astream("hello there")]
        return completion.text, "".join(parts)

    assert asyncio.run(main()) == ("HELLO THERE", "HELLO THERE")


def test_batch_keeps_order_and_a_too_long_prompt_fails_alone() -> None:
    model = llmcompare.get_model("echo:reverse", context_window=3)

    results = model.generate_batch(["a b", "a b c d e", Request.of("x y z")])

    assert [r.ok for r in results] == [True, False, True]
    assert results[0].unwrap().text == "b a"
    assert results[2].unwrap().text == "z y x"
    error = results[1].error
    assert isinstance(error, BackendError)
    assert error.model_id == "echo:reverse"
    assert not error.retryable
    assert "context window of 3" in str(error)


def test_a_misspelled_option_is_an_error_naming_it() -> None:
    with pytest.raises(ValidationError, match="prefx"):
        llmcompare.get_model("echo", prefx="hi")


def test_an_unknown_variant_names_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="repeat, reverse, shout"):
        llmcompare.get_model("echo:whisper")
