"""Structured output on the real embedded model: llguidance token masks, row by row, batched.

Truth is computed another way each time: pydantic parses the raw text itself, jsonschema checks
a dict schema's answers, and a solo run is the reference for a batched one.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from enum import Enum
from typing import Annotated, Any

import jsonschema
import pydantic
import pytest

from helpers import openai_server as srv
from llmcompare import ConfigurationError, Message, Request, compare, generate_many, get_model
from llmcompare.backends.llama import LlamaModel
from llmcompare.prompts import PromptItem

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("llama_backend")]


class Kind(str, Enum):
    """An enum: the grammar allows exactly these strings."""

    cat = "cat"
    dog = "dog"
    bird = "bird"


# A small model can repeat itself inside a free string until max_tokens; a pattern (which
# strict structured outputs accept, unlike maxLength) bounds each string.
Word = Annotated[str, pydantic.Field(pattern=r"^[A-Za-z][A-Za-z ]{0,19}$")]


class Owner(pydantic.BaseModel):
    """A nested object."""

    name: Word
    age: int


class Pet(pydantic.BaseModel):
    """Nested objects, an array, an enum and integers."""

    name: Word
    kind: Kind
    legs: int
    owner: Owner
    toys: list[Word] = pydantic.Field(max_length=3)


ASK = "Reply with JSON describing the pet. "
PROMPTS: list[str | list[Message]] = [
    ASK + "Rex is a dog with 4 legs, owned by Ann (30); he plays with a ball.",
    ASK + "Tweety is a bird with 2 legs, owned by Bob (41); toys: a bell and a mirror.",
    ASK + "Tom is a cat with 4 legs, owned by Jerry (12), with no toys.",
    ASK + "A three-legged dog called Tripod lives with Sam, 25.",
    ASK + "Polly the parrot (a bird) belongs to a pirate aged 50 and loves crackers.",
    ASK + "Whiskers, a cat, owner Mia aged 8, toys: yarn.",
    ASK + "Describe any pet you like.",
    ASK + "Buddy is a golden retriever owned by the Smith family's father, 44.",
    [Message.system("You extract facts."), Message.user(ASK + "Kiwi: bird, 2 legs, Lee, 19.")],
    ASK + "Luna the black cat, 4 legs, owned by Ivan (67), plays with a laser pointer.",
]
MAX_TOKENS = 96


def test_every_answer_validates_and_batched_equals_one_at_a_time(llama: LlamaModel) -> None:
    results = llama.generate_batch(PROMPTS, response_format=Pet, max_tokens=MAX_TOKENS)
    for result in results:
        got = result.unwrap()
        assert got.finish_reason == "stop", got.text
        assert got.parse_error is None
        # pydantic, fed the raw text, agrees: parsed is that very object.
        assert isinstance(got.parsed, Pet)
        assert got.parsed == Pet.model_validate_json(got.text)
        assert got.sent is not None
        assert got.sent.params["response_format"]["json_schema"] == "Pet"
    for result, prompt in zip(results, PROMPTS, strict=True):
        alone = llama.generate(prompt, response_format=Pet, max_tokens=MAX_TOKENS)
        assert result.unwrap().text == alone.text
        assert result.unwrap().parsed == alone.parsed


def test_unconstrained_rows_of_a_mixed_batch_are_untouched(llama: LlamaModel) -> None:
    free = Request.of("Name three primary colors.", max_tokens=24)
    bound = Request.of(PROMPTS[0], response_format=Pet, max_tokens=MAX_TOKENS)
    alone = llama.generate(free)
    mixed = llama.generate_batch([free, bound, free])
    assert mixed[0].unwrap().text == alone.text
    assert mixed[2].unwrap().text == alone.text
    assert mixed[0].unwrap().parsed is None
    assert isinstance(mixed[1].unwrap().parsed, Pet)


def test_max_tokens_mid_object_is_length_and_a_parse_error(llama: LlamaModel) -> None:
    got = llama.generate(PROMPTS[1], response_format=Pet, max_tokens=6)
    assert got.finish_reason == "length"
    assert got.parsed is None
    assert got.parse_error is not None
    assert got.text.startswith("{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(got.text)  # really cut off, not a made-up object


def test_dict_schema_and_stream(llama: LlamaModel) -> None:
    schema = {
        "title": "Colours",
        "type": "object",
        "properties": {
            "colours": {
                "type": "array",
                "items": {"enum": ["red", "green", "blue", "yellow"]},
                "maxItems": 4,
            },
            "count": {"type": "integer", "minimum": 0},
        },
    }
    with llama.stream(
        "List the primary colours as JSON.", response_format=schema, max_tokens=48
    ) as stream:
        text = "".join(chunk.text for chunk in stream)
    got = stream.completion
    assert got.text == text
    assert got.parse_error is None
    value = json.loads(text)
    jsonschema.validate(value, schema)
    assert set(value) == {"colours", "count"}  # every property is required
    assert got.parsed == value


class Short(pydantic.BaseModel):
    """A small answer: a few tokens, so every cut of it fits in one batch."""

    kind: Kind
    legs: int


def test_an_answer_cut_anywhere_is_never_parsed(llama: LlamaModel) -> None:
    full = llama.generate(PROMPTS[0], response_format=Short, max_tokens=MAX_TOKENS)
    assert full.finish_reason == "stop"
    assert full.parsed == Short.model_validate_json(full.text)
    n = full.usage.output_tokens
    # The same greedy answer cut after every token: each cut is a prefix of the full text.
    cuts = llama.generate_batch(
        [Request.of(PROMPTS[0], response_format=Short, max_tokens=k) for k in range(1, n + 1)]
    )
    for k, result in enumerate(cuts, start=1):
        got = result.unwrap()
        assert full.text.startswith(got.text)
        if k < n:
            assert got.finish_reason == "length", (k, got.text)
            assert got.parsed is None, (k, got.text)
            assert got.parse_error is not None
            with pytest.raises(json.JSONDecodeError):
                json.loads(got.text)  # the truth, independently: not one JSON value
        else:  # the budget ends exactly where the object does: complete, so it stops
            assert got.finish_reason == "stop"
            assert got.text == full.text
            assert got.parsed == full.parsed


def test_a_row_whose_grammar_then_allows_only_eos_ends_cleanly(llama: LlamaModel) -> None:
    empty = {"type": "object", "properties": {}}  # "{}" and then nothing but the end
    forced = {"type": "object", "properties": {"a": {"const": "x"}}}
    results = llama.generate_batch(
        [
            Request.of("Reply with JSON.", response_format=empty, max_tokens=1),
            Request.of(PROMPTS[0], response_format=Short, max_tokens=MAX_TOKENS),
            Request.of("Reply with JSON.", response_format=forced, max_tokens=MAX_TOKENS),
        ]
    )
    first, short, third = (r.unwrap() for r in results)
    assert (first.text, first.finish_reason, first.parsed) == ("{}", "stop", {})
    assert (third.text, third.finish_reason, third.parsed) == ('{"a": "x"}', "stop", {"a": "x"})
    assert third.parse_error is None
    # The row beside them is what it is alone.
    assert (
        short.text == llama.generate(PROMPTS[0], response_format=Short, max_tokens=MAX_TOKENS).text
    )


@pytest.fixture(scope="module")
def server() -> Iterator[srv.OpenAIServer]:
    with srv.OpenAIServer() as server:
        yield server


def _gpt(server: srv.OpenAIServer) -> Any:
    return get_model("chatgpt:gpt-4o-mini", base_url=server.url, api_key="sk-test-0123456789")


# An unclosed group: the normaliser passes patterns on; llguidance's regex compiler refuses it.
BAD_PATTERN = {"type": "object", "properties": {"code": {"type": "string", "pattern": "(a"}}}


@pytest.mark.parametrize("hide", [True, False], ids=["no-llguidance", "uncompilable"])
def test_a_setup_llama_cannot_run_fails_the_comparison_before_any_request(
    server: srv.OpenAIServer, llama: LlamaModel, monkeypatch: pytest.MonkeyPatch, hide: bool
) -> None:
    server.reset()
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    if hide:
        monkeypatch.setitem(sys.modules, "llguidance", None)  # import llguidance now fails
        match = (
            r"llama:\S+: response_format on the llama backend needs llguidance: "
            r'pip install "llmcompare\[structured\]"'
        )
    else:
        schema = BAD_PATTERN
        match = r"llama:\S+: llguidance cannot compile the schema 'response': .*unclosed group"
    items = [PromptItem(id="a", prompt="Count.", schema=schema)]
    fresh = LlamaModel()
    # ChatGPT runs first: a row-by-row check would have sent its request already.
    with _gpt(server) as gpt, pytest.raises(ConfigurationError, match=match) as info:
        compare({"gpt": gpt, "llama": fresh}, items, progress=False, cache=False)
    assert "\n" not in str(info.value)
    assert not fresh.loaded  # the check never loads weights
    assert server.requests == []
    # The loaded model (its tokenizer at hand) refuses the same way, on every batch path.
    for call in (
        lambda: llama.generate_batch(["Count."], response_format=schema),
        lambda: generate_many(llama, ["Count."], response_format=schema, progress=False),
    ):
        with pytest.raises(ConfigurationError, match=match):
            call()
