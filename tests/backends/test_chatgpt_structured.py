"""Structured output on the chatgpt backend: the real openai SDK over real HTTP to the test server.

The expected request body is written out by hand from OpenAI's strict rules, not computed by
the normaliser under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum

import pydantic
import pytest

from helpers import openai_server as srv
from llmcompare import ConfigurationError, compare, generate_many, get_model
from llmcompare.backends.chatgpt import ChatGPTModel
from llmcompare.prompts import builtin_suite
from llmcompare.retry import with_retry
from llmcompare.schema import SchemaError

pytestmark = pytest.mark.slow


class Unit(str, Enum):
    """An enum, kept in $defs by pydantic."""

    kg = "kg"
    lb = "lb"


class Weight(pydantic.BaseModel):
    """A nested object."""

    value: int
    unit: Unit


class Parcel(pydantic.BaseModel):
    """Optional, nested, array and enum fields."""

    sender: str
    weight: Weight
    labels: list[str]
    note: str | None = None


# What OpenAI's strict mode wants for Parcel: every property required, additionalProperties
# false on every object, Optional as a union with null, no titles or defaults.
STRICT_PARCEL = {
    "$defs": {
        "Unit": {
            "description": "An enum, kept in $defs by pydantic.",
            "enum": ["kg", "lb"],
            "type": "string",
        },
        "Weight": {
            "description": "A nested object.",
            "type": "object",
            "properties": {"value": {"type": "integer"}, "unit": {"$ref": "#/$defs/Unit"}},
            "required": ["value", "unit"],
            "additionalProperties": False,
        },
    },
    "type": "object",
    "description": "Optional, nested, array and enum fields.",
    "properties": {
        "sender": {"type": "string"},
        "weight": {"$ref": "#/$defs/Weight"},
        "labels": {"type": "array", "items": {"type": "string"}},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["sender", "weight", "labels", "note"],
    "additionalProperties": False,
}
ANSWER = (
    '{"sender": "Ann", "weight": {"value": 3, "unit": "kg"}, "labels": ["fragile"], "note": null}'
)


@pytest.fixture(scope="module")
def _server() -> Iterator[srv.OpenAIServer]:
    with srv.OpenAIServer() as server:
        yield server


@pytest.fixture
def server(_server: srv.OpenAIServer) -> srv.OpenAIServer:
    _server.reset()
    return _server


def make(server: srv.OpenAIServer, name: str = "gpt-4o-mini") -> ChatGPTModel:
    model = get_model(f"chatgpt:{name}", base_url=server.url, api_key="sk-test-0123456789")
    assert isinstance(model, ChatGPTModel)
    return model


def test_the_body_carries_the_strict_schema_and_parsed_is_the_object(
    server: srv.OpenAIServer,
) -> None:
    server.script(srv.ok(ANSWER))
    with make(server) as model:
        got = model.generate("Ann sends 3 kg, fragile.", response_format=Parcel)
    sent = server.chat_requests[0].body["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["name"] == "Parcel"
    assert sent["json_schema"]["strict"] is True
    assert sent["json_schema"]["schema"] == STRICT_PARCEL
    assert got.parsed == Parcel(
        sender="Ann", weight=Weight(value=3, unit=Unit.kg), labels=["fragile"]
    )
    assert got.parse_error is None
    assert got.sent is not None
    assert got.sent.params["response_format"] == sent


async def test_a_refusal_is_a_result_not_a_parse_error(server: srv.OpenAIServer) -> None:
    server.script(srv.refused("I can't help with that."), srv.refused("No."))
    with make(server) as model:
        got = await model.agenerate("something refused", response_format=Parcel)
        with model.stream("something refused", response_format=Parcel) as stream:
            for _ in stream:
                pass
        streamed = stream.completion
    assert got.refusal == "I can't help with that."
    assert got.parsed is None
    assert got.parse_error is None
    assert streamed.refusal == "No."
    assert streamed.parse_error is None


def test_a_truncated_answer_is_length_and_a_parse_error(server: srv.OpenAIServer) -> None:
    server.script(srv.ok(ANSWER[:30], finish_reason="length"))
    with make(server) as model:
        (result,) = model.generate_batch(["Ann sends 3 kg."], response_format=Parcel, max_tokens=8)
    got = result.unwrap()
    assert got.finish_reason == "length"
    assert got.parsed is None
    assert got.parse_error is not None
    assert got.parse_error.startswith("not JSON")


def test_an_unsupported_schema_is_refused_before_any_request(server: srv.OpenAIServer) -> None:
    class Tagged(pydantic.BaseModel):
        counts: dict[str, int]  # an open map: strict mode cannot express it

    schema = {"type": "object", "properties": {"code": {"type": "string", "minLength": 3}}}
    with make(server) as model:
        with pytest.raises(SchemaError, match="additionalProperties"):
            model.generate("x", response_format=Tagged)
        with pytest.raises(SchemaError, match="'minLength' is unsupported at /properties/code"):
            model.generate("x", response_format=schema)
    assert server.requests == []


def test_a_model_without_structured_outputs_is_named(server: srv.OpenAIServer) -> None:
    with (
        make(server, "gpt-4-turbo") as model,
        pytest.raises(ConfigurationError, match="gpt-4-turbo does not support structured"),
    ):
        model.generate("x", response_format=Parcel)
    assert server.requests == []


def test_a_model_without_structured_outputs_fails_the_whole_run_before_any_request(
    server: srv.OpenAIServer,
) -> None:
    # The built-in suite's JSON items carry schemas. The capable model comes first, so a
    # check made row by row would have sent (and paid for) its rows before the old one failed.
    suite = builtin_suite()
    assert any(item.json_schema is not None for item in suite)
    with make(server) as new, make(server, "gpt-4-turbo") as old:
        with pytest.raises(ConfigurationError, match="chatgpt:gpt-4-turbo: gpt-4-turbo does not"):
            compare({"new": new, "old": old}, suite, progress=False, cache=False)
        calls = [
            lambda: generate_many(old, ["x", "y"], response_format=Parcel, progress=False),
            lambda: old.generate_batch(["x", "y"], response_format=Parcel),
            lambda: with_retry(old).generate_batch(["x"], response_format=Parcel),
        ]
        for call in calls:
            with pytest.raises(ConfigurationError, match="gpt-4o-mini on") as info:
                call()
            assert "\n" not in str(info.value)
        assert server.requests == []
        # Without a format the old model is fine: only the setup that cannot run is refused.
        server.script(srv.ok("plain"))
        assert old.generate_batch(["x"])[0].unwrap().text == "plain"
    assert len(server.requests) == 1
