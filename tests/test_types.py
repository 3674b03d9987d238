import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from llmcompare import Chunk, Completion, Message, Request, Usage, compare
from llmcompare.backends.fake import FunctionModel
from llmcompare.types import GenerationSettings


def test_every_prompt_form_normalises_to_the_same_request() -> None:
    expected = Request(messages=(Message.user("hi"),), max_tokens=5, temperature=0.0)
    assert Request.of("hi", max_tokens=5, temperature=0.0) == expected
    assert Request.of([Message.user("hi")], max_tokens=5, temperature=0.0) == expected
    assert Request.of([{"role": "user", "content": "hi"}], max_tokens=5, temperature=0) == expected
    assert Request.of(Request.of("hi"), max_tokens=5, temperature=0.0) == expected
    # A request passed with no settings is returned as it is.
    assert Request.of(expected) is expected


def test_settings_override_those_of_a_given_request() -> None:
    base = Request.of("hi", max_tokens=5, seed=1)
    assert Request.of(base, max_tokens=9).max_tokens == 9
    assert Request.of(base, max_tokens=9).seed == 1


@pytest.mark.parametrize(
    ("prompt", "settings", "field"),
    [
        ([], {}, "messages"),
        ([{"role": "robot", "content": "x"}], {}, "role"),
        ("x", {"max_tokens": 0}, "max_tokens"),
        ("x", {"max_tokens": -3}, "max_tokens"),
        ("x", {"temperature": 3}, "temperature"),
        ("x", {"top_p": 0}, "top_p"),
        ("x", {"stop": [""]}, "stop"),
        ("x", {"max_token": 5}, "max_token"),
    ],
)
def test_bad_input_names_the_field(prompt: object, settings: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Request.of(prompt, **settings)  # type: ignore[arg-type]
    assert field in str(info.value)


def test_a_single_stop_string_is_one_stop_string() -> None:
    assert Request.of("x", stop="END").stop == ("END",)


def test_bytes_are_refused() -> None:
    with pytest.raises(TypeError):
        Request.of(b"hi")  # type: ignore[arg-type]


def test_usage_buckets_are_inclusive() -> None:
    with pytest.raises(ValidationError, match="cache_read_tokens"):
        Usage(input_tokens=1, cache_read_tokens=2)
    with pytest.raises(ValidationError, match="reasoning_tokens"):
        Usage(output_tokens=1, reasoning_tokens=2)


def test_usage_is_frozen_and_adds_into_a_new_value() -> None:
    a = Usage(input_tokens=10, output_tokens=5, cache_read_tokens=4, reasoning_tokens=1)
    b = Usage(input_tokens=1, output_tokens=2, estimated=True)
    c = a + b
    assert c == Usage(
        input_tokens=11, output_tokens=7, cache_read_tokens=4, reasoning_tokens=1, estimated=True
    )
    assert a.input_tokens == 10
    assert sum([a, a, a]) == Usage(
        input_tokens=30, output_tokens=15, cache_read_tokens=12, reasoning_tokens=3
    )
    assert c.total_tokens == 18
    with pytest.raises(ValidationError):
        a.input_tokens = 3  # type: ignore[misc]


usages = st.builds(
    lambda i, o, c, r: Usage(
        input_tokens=i, output_tokens=o, cache_read_tokens=min(c, i), reasoning_tokens=min(r, o)
    ),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
)


@given(usages, usages, usages)
def test_usage_addition_associates_and_stays_valid(a: Usage, b: Usage, c: Usage) -> None:
    assert (a + b) + c == a + (b + c)
    # The sum re-validates: inclusive buckets of valid parts stay inclusive.
    Usage.model_validate((a + b).model_dump())


def test_values_round_trip_through_json() -> None:
    completion = Completion(
        text="Paris.",
        finish_reason="stop",
        usage=Usage(input_tokens=3, output_tokens=2, cache_read_tokens=1),
        model="fake:x",
        request_id="req_1",
        latency_s=0.5,
        ttft_s=0.1,
        attempts=2,
    )
    assert Completion.model_validate_json(completion.model_dump_json()) == completion
    request = Request.of([Message.system("be brief"), Message.user("hi")], stop=["\n"], seed=3)
    assert Request.model_validate(json.loads(request.model_dump_json())) == request


# issue 22, item 1
def test_a_split_surrogate_pair_is_joined_and_a_lone_half_is_replaced_and_flagged() -> None:
    # A gateway that streams an emoji as two escaped halves gives Python two lone surrogates.
    joined = Completion(
        text="Smile \ud83d\ude00 split", finish_reason="stop", usage=Usage(), model="m"
    )
    assert joined.text == "Smile \U0001f600 split"
    assert joined.replaced_chars == 0
    lone = Completion(text="a \ud83d b \ude00", finish_reason="stop", usage=Usage(), model="m")
    assert lone.text == "a \ufffd b \ufffd"
    assert lone.replaced_chars == 2
    # Valid text is untouched, its flag kept as given, and every value encodes and round-trips.
    again = Completion.model_validate_json(lone.model_dump_json())
    assert again == lone
    assert Chunk(text="\udc00x").text == "\ufffdx"
    assert Chunk(text="\udc00x").replaced_chars == 1
    assert Completion(text="x", finish_reason="stop", usage=Usage(), model="m", refusal="\ud83d")
    for value in (joined, lone, Chunk(text="\ud83d")):
        value.model_dump_json().encode("utf-8")


# issue 22, item 1: the repro, through compare and its run folder
def test_an_answer_holding_surrogates_is_recorded_valid_and_never_asked_again(
    tmp_path: Path,
) -> None:
    calls: list[str] = []

    def answer(request: Request) -> str:
        calls.append(request.messages[-1].content)
        return "Smile \ud83d\ude00 split" if len(calls) % 2 else "lone \ud83d half"

    model = FunctionModel(answer, name="m")
    record = compare([model], ["hi", "there"], out=tmp_path / "o", progress=False)
    texts = sorted(r.completion.text for r in record.rows if r.completion is not None)
    assert texts == ["Smile \U0001f600 split", "lone \ufffd half"]
    flags = {r.completion.text: r.completion.replaced_chars for r in record.rows if r.completion}
    assert flags == {"Smile \U0001f600 split": 0, "lone \ufffd half": 1}
    # The run folder reads back: a rerun asks nothing again and gives the same record.
    again = compare([model], ["hi", "there"], out=tmp_path / "o", progress=False)
    assert len(calls) == 2
    assert [r.completion for r in again.rows] == [r.completion for r in record.rows]


# issue 22, item 1
def test_a_prompt_with_half_a_character_is_refused_and_a_split_pair_joined() -> None:
    assert Message.user("Smile \ud83d\ude00").content == "Smile \U0001f600"
    with pytest.raises(ValidationError, match="half of a character"):
        Request.of("Smile \ud83d")


# issue 22, item 15
@pytest.mark.parametrize("value", [True, False, "5", 5.0])
def test_a_token_count_is_an_int_not_a_bool_a_string_or_a_float(value: object) -> None:
    with pytest.raises(ValidationError, match="max_tokens") as info:
        Request.of("hi", max_tokens=value)
    assert [e["type"] for e in info.value.errors()] == ["int_type"]
    with pytest.raises(ValidationError, match="max_tokens"):
        GenerationSettings(max_tokens=value)  # type: ignore[arg-type]
    # An int is one, and a saved request (JSON) still reads back.
    request = Request.of("hi", max_tokens=5)
    assert Request.model_validate_json(request.model_dump_json()).max_tokens == 5
