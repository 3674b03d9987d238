"""The chatgpt backend: the real openai SDK over real HTTP to a scripted server on 127.0.0.1.

The server (tests/helpers/openai_server.py) plays OpenAI: it records what the client sent and
answers each request with the behaviour a test scripts (usage details, 429s with each retry header
form, 5xx, a slow reply, a dropped connection, a stream cut halfway or without usage).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import re
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pydantic
import pytest

import llmcompare
from helpers import openai_server as srv
from helpers.tiktoken_cache import seed_tiktoken_cache
from llmcompare import (
    BackendError,
    ConfigurationError,
    Message,
    Model,
    ProviderHTTPError,
    RateLimitError,
    Usage,
    get_model,
)
from llmcompare.backends.chatgpt import (
    DEFAULT_MODEL,
    QUIRKS,
    ChatGPTModel,
    ChatGPTOptions,
    ParameterDroppedWarning,
    TokenEstimateWarning,
    count_text_tokens,
    parse_duration,
    parse_retry_after,
    quirks_for,
)
from llmcompare.testing import no_network

KEY = "sk-test-S3cr3tK3y-0123456789abcdef"
MESSAGES = [Message.system("Be brief."), Message.user("Name three colours")]


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def _server() -> Iterator[srv.OpenAIServer]:
    with srv.OpenAIServer() as server:
        yield server


@pytest.fixture
def server(_server: srv.OpenAIServer) -> srv.OpenAIServer:
    _server.reset()
    return _server


@pytest.fixture
def own_server() -> Iterator[srv.OpenAIServer]:
    """A server of the test's own, for counting connections without other tests' leftovers."""
    with srv.OpenAIServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)


def chatgpt(spec: str, **options: Any) -> ChatGPTModel:
    model = get_model(spec, **options)
    assert isinstance(model, ChatGPTModel)
    return model


def make(server: srv.OpenAIServer, name: str = "gpt-4o-mini", **options: Any) -> ChatGPTModel:
    options.setdefault("api_key", KEY)
    options.setdefault("timeout", 5.0)
    return chatgpt(f"chatgpt:{name}", base_url=server.url, **options)


@pytest.fixture
def model(server: srv.OpenAIServer) -> Iterator[ChatGPTModel]:
    with make(server) as m:
        yield m


def sent(server: srv.OpenAIServer, index: int = -1) -> dict[str, Any]:
    body = server.chat_requests[index].body
    assert isinstance(body, dict)
    return body


# -- configuration ----------------------------------------------------------------------------


def test_no_key_and_no_base_url_is_a_configuration_error_before_any_call() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY") as info:
        get_model("chatgpt:gpt-4o-mini")
    assert "base_url" in str(info.value)


def test_environment_supplies_key_and_base_url(
    server: srv.OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    with chatgpt("chatgpt:gpt-4o-mini") as m:
        assert m.generate("hi").text == "hi"
    assert server.chat_requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_default_model_and_registration(server: srv.OpenAIServer) -> None:
    with chatgpt("chatgpt", base_url=server.url) as m:
        assert isinstance(m, Model)
        assert isinstance(m, ChatGPTModel)
        assert m.id == f"chatgpt:{DEFAULT_MODEL}"
        assert m.info.open_weights is False
        m.generate("hi")
    assert sent(server)["model"] == DEFAULT_MODEL
    assert "chatgpt" in {e.name for e in llmcompare.list_models()}


def test_base_url_alone_needs_no_key(server: srv.OpenAIServer) -> None:
    with chatgpt("chatgpt:local-model", base_url=server.url) as m:
        assert m.generate("works without a key").text == "works without a key"


def test_options_reach_the_server(server: srv.OpenAIServer) -> None:
    with make(
        server, organization="org-123", project="proj_9", headers={"X-Team": "evals"}, timeout=7
    ) as m:
        m.generate("hi")
    headers = server.chat_requests[0].headers
    assert headers["openai-organization"] == "org-123"
    assert headers["openai-project"] == "proj_9"
    assert headers["x-team"] == "evals"
    # Our retry helper owns retries: the SDK must not retry underneath it.
    assert headers["x-stainless-retry-count"] == "0"
    assert headers["x-stainless-read-timeout"] == "7.0"


def test_unknown_and_invalid_options_are_refused(server: srv.OpenAIServer) -> None:
    with pytest.raises(pydantic.ValidationError, match="max_retries"):
        get_model("chatgpt:gpt-4o", base_url=server.url, max_retries=3)
    with pytest.raises(pydantic.ValidationError, match="timeout"):
        get_model("chatgpt:gpt-4o", base_url=server.url, timeout=-1)
    with pytest.raises(ConfigurationError, match="unknown model family 'gpt-99'") as info:
        get_model("chatgpt:x", base_url=server.url, family="gpt-99")
    assert "gpt-5" in str(info.value)
    assert "gpt-4o" in str(info.value)
    with pytest.raises(ConfigurationError, match="use one of"):
        quirks_for("x", family="nope")


# issue 22, item 14
@pytest.mark.parametrize(
    "url", ["127.0.0.1:8000/v1", "localhost:8000/v1", "ftp://127.0.0.1/v1", "http:///v1"]
)
def test_a_base_url_without_http_or_https_is_refused_at_construction_in_one_line(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match=r"add http:// or https://") as info:
        get_model("chatgpt:gpt-4o-mini", base_url=url)
    assert "\n" not in str(info.value)
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    with pytest.raises(ConfigurationError, match="OPENAI_BASE_URL"):
        get_model("chatgpt:gpt-4o-mini")


def test_header_values_are_hidden_in_repr_and_dumps_but_sent(server: srv.OpenAIServer) -> None:
    secret = "azure-secret-4f9a"
    options = ChatGPTOptions(base_url=server.url, headers={"api-key": secret, "X-Team": "evals"})
    dumps = (repr(options), str(options), options.model_dump_json(), str(options.model_dump()))
    for shown in dumps:
        assert secret not in shown
        assert "evals" not in shown
        assert "api-key" in shown  # the names stay visible, for debugging
    server.script(srv.ok("hi"))
    with ChatGPTModel("gpt-4o-mini", options) as m:
        m.generate("hi")
    sent = server.chat_requests[-1].headers
    assert (sent["api-key"], sent["x-team"]) == (secret, "evals")


def test_network_switch_refuses_remote_calls_before_sending(server: srv.OpenAIServer) -> None:
    remote = chatgpt("chatgpt:gpt-4o-mini", api_key=KEY)  # OpenAI's own address
    with no_network():
        with pytest.raises(ConfigurationError, match="network calls are switched off"):
            remote.generate("hi")
        with pytest.raises(ConfigurationError, match="network calls are switched off"):
            list(remote.stream("hi"))
        # Loopback stays allowed: local OpenAI-compatible servers are how tests run.
        with make(server) as local:
            assert local.generate("hi").text == "hi"
    remote.close()


# -- request mapping --------------------------------------------------------------------------


def test_classic_model_gets_every_setting(server: srv.OpenAIServer, model: ChatGPTModel) -> None:
    model.generate(MESSAGES, max_tokens=50, temperature=0.3, top_p=0.9, stop=["\n\n"], seed=7)
    assert sent(server) == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Name three colours"},
        ],
        "max_tokens": 50,
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": ["\n\n"],
        "seed": 7,
    }


@pytest.mark.parametrize("name", ["o3", "o4-mini-2025-04-16", "gpt-5-mini", "gpt-5.4-mini"])
def test_reasoning_models_get_max_completion_tokens_and_no_sampling(
    server: srv.OpenAIServer, name: str
) -> None:
    with make(server, name) as m, pytest.warns(ParameterDroppedWarning) as dropped:
        m.generate("hi", max_tokens=64, temperature=0.2, top_p=0.5, seed=1)
    assert [str(w.message).split(": ")[1].split()[0] for w in dropped] == ["temperature", "top_p"]
    assert dropped[0].filename == __file__  # the warning points at the caller's line
    body = sent(server)
    assert body["max_completion_tokens"] == 64
    assert not {"max_tokens", "temperature", "top_p"} & body.keys()
    assert body["seed"] == 1


def test_reasoning_effort_option_is_sent(server: srv.OpenAIServer) -> None:
    with make(server, "o3-mini", reasoning_effort="low") as m:
        m.generate("hi")
    assert sent(server)["reasoning_effort"] == "low"


def test_gpt5_point_releases_take_temperature_with_reasoning_off(server: srv.OpenAIServer) -> None:
    with make(server, "gpt-5.4-mini", reasoning_effort="none") as m:
        m.generate("hi", temperature=0.0, top_p=0.5, stop=["x"])
    body = sent(server)
    assert (body["temperature"], body["top_p"], body["reasoning_effort"]) == (0.0, 0.5, "none")
    assert "stop" not in body  # still applied on the client side
    other = make(server, "gpt-5-mini", reasoning_effort="minimal")
    with other, pytest.warns(ParameterDroppedWarning):
        other.generate("hi", temperature=0.0)
    assert "temperature" not in sent(server)


def test_family_option_overrides_the_name(server: srv.OpenAIServer) -> None:
    with make(server, "prod-deployment", family="gpt-5") as m:
        assert m.quirks.family == "gpt-5"
        m.generate("hi", max_tokens=5)
    assert sent(server)["max_completion_tokens"] == 5


def test_unknown_model_names_get_the_compatible_shape(server: srv.OpenAIServer) -> None:
    with make(server, "HuggingFaceTB/SmolLM2-135M-Instruct") as m:
        m.generate("hi", max_tokens=5, temperature=0.0, stop=["a", "b", "c", "d", "e"])
    body = sent(server)
    assert body["max_tokens"] == 5
    assert body["temperature"] == 0.0
    assert body["stop"] == ["a", "b", "c", "d", "e"]  # compatible servers take more than four


def test_stop_strings_are_applied_client_side_where_the_model_rejects_them(
    server: srv.OpenAIServer,
) -> None:
    text = "red, green and blue. Then more words follow here."
    server.default = srv.ok(text)
    with make(server, "gpt-5-mini") as m:
        done = m.generate("x", stop=[". Then"])
        assert "stop" not in sent(server)
        assert (done.text, done.finish_reason) == ("red, green and blue", "stop")
        # Streamed, a stop string split across chunks is still found, and no text past it leaks.
        stream = m.stream("x", stop=[". Then"])
        pieces = [c.text for c in stream]
        assert "".join(pieces) == "red, green and blue"
        assert stream.completion.finish_reason == "stop"
        # The model generated (and billed) the whole text: usage is the server's, not cut.
        assert stream.completion.usage == done.usage
        assert not done.usage.estimated


def test_more_than_four_stops_are_applied_client_side_for_openai_models(
    server: srv.OpenAIServer, model: ChatGPTModel
) -> None:
    server.default = srv.ok("one two three four five six")
    done = model.generate("x", stop=["six", "five", "nine", "ten", "four"])
    assert "stop" not in sent(server)
    assert done.text == "one two three "


# -- response mapping -------------------------------------------------------------------------


def test_response_maps_text_usage_details_model_and_request_id(
    server: srv.OpenAIServer, model: ChatGPTModel
) -> None:
    server.script(
        srv.ok(
            "Red, green, blue.",
            prompt_tokens=21,
            completion_tokens=9,
            cached_tokens=16,
            reasoning_tokens=4,
            model="gpt-4o-mini-2024-07-18",
            request_id="req_abc123",
        )
    )
    done = model.generate(MESSAGES)
    assert done.text == "Red, green, blue."
    assert done.finish_reason == "stop"
    assert done.usage == Usage(
        input_tokens=21, output_tokens=9, cache_read_tokens=16, reasoning_tokens=4
    )
    assert done.model == "chatgpt:gpt-4o-mini"
    assert done.response_model == "gpt-4o-mini-2024-07-18"
    assert done.request_id == "req_abc123"
    assert done.latency_s > 0


@pytest.mark.parametrize(
    ("reported", "expected"),
    [("length", "length"), ("content_filter", "content_filter"), ("tool_calls", "stop")],
)
def test_finish_reasons(
    server: srv.OpenAIServer, model: ChatGPTModel, reported: str, expected: str
) -> None:
    server.script(srv.ok("partial", finish_reason=reported))
    assert model.generate("x").finish_reason == expected


def test_max_tokens_truncation_reports_length(
    server: srv.OpenAIServer, model: ChatGPTModel
) -> None:
    done = model.generate("a b c d e f", max_tokens=3)
    assert (done.text, done.finish_reason, done.usage.output_tokens) == ("a b c", "length", 3)


@pytest.mark.filterwarnings("ignore::llmcompare.backends.chatgpt.TokenEstimateWarning")
def test_missing_usage_is_estimated_never_zero(
    server: srv.OpenAIServer, model: ChatGPTModel
) -> None:
    server.script(srv.ok("some answer text", usage=False))
    usage = model.generate("a question of several words").usage
    assert usage.estimated
    assert usage.input_tokens > 0
    assert usage.output_tokens > 0


# issue 22, item 22: usage a server reports is checked against the request before it is priced.
IMPLAUSIBLE = {
    "a huge output": srv.ok("one", prompt_tokens=9, completion_tokens=10**15),
    "negative input": srv.ok("two", prompt_tokens=-5, completion_tokens=1),
    "input past the prompt": srv.ok("three", prompt_tokens=10**9, completion_tokens=1),
    "negative output": srv.ok("four", prompt_tokens=9, completion_tokens=-1),
    "output past max_tokens": srv.ok("five", prompt_tokens=9, completion_tokens=50),
}


@pytest.mark.filterwarnings("ignore::llmcompare.backends.chatgpt.TokenEstimateWarning")
def test_usage_that_cannot_be_true_is_flagged_unpriced_and_never_charged(
    server: srv.OpenAIServer, tmp_path: Path
) -> None:
    server.script(
        *IMPLAUSIBLE.values(),
        # Plausible: 16 answer tokens plus 10 of reasoning the server counts beside them.
        srv.ok("six", prompt_tokens=9, completion_tokens=26, reasoning_tokens=10),
        srv.ok("seven", prompt_tokens=9, completion_tokens=3),
    )
    prompts = [{"id": name, "prompt": "Say one word."} for name in [*IMPLAUSIBLE, "six", "seven"]]
    with make(server) as m:
        result = llmcompare.compare(
            {"gpt": m},
            prompts,
            max_tokens=16,
            concurrency=1,
            retry=None,
            progress=False,
            out=tmp_path / "run",
        )
    rows = {row.item_id: row for row in result.rows}
    assert len(server.chat_requests) == 7  # each answered once; none failed, none re-sent
    for name in IMPLAUSIBLE:
        row = rows[name]
        assert row.error is None, row.error
        assert row.completion is not None
        usage = row.completion.usage
        assert usage.implausible is not None
        assert "implausible usage" in usage.implausible
        assert usage.estimated
        assert 0 < usage.input_tokens < 100
        assert 0 <= usage.output_tokens < 100
        assert row.cost is not None
        assert row.cost.status == "unpriced"
        assert row.cost.usd == 0
        assert "implausible usage" in row.cost.assumptions
    for name in ("six", "seven"):
        row = rows[name]
        assert row.completion is not None
        assert row.completion.usage.implausible is None
        assert row.cost is not None
        assert row.cost.status == "priced"
    # Never a huge charge, in the record and in the run folder.
    assert result.summaries[0].cost.usd < 1
    saved = (tmp_path / "run" / "answers.jsonl").read_text()
    assert saved.count("implausible usage") >= len(IMPLAUSIBLE)
    assert f'"output_tokens":{10**15}' not in saved.replace(" ", "")


# issue 22, item 22
def test_a_stream_reporting_implausible_usage_is_flagged_the_same(
    server: srv.OpenAIServer, model: ChatGPTModel
) -> None:
    from llmcompare.cost import cost_of

    server.script(srv.ok("a streamed answer", prompt_tokens=9, completion_tokens=10**15))
    with model.stream("Say it.", max_tokens=16) as stream:
        list(stream)
    done = stream.completion
    assert done.usage.implausible is not None
    assert "max_tokens" in done.usage.implausible
    cost = cost_of(done)
    assert (cost.status, cost.usd) == ("unpriced", 0)


@pytest.mark.filterwarnings("ignore::llmcompare.backends.chatgpt.TokenEstimateWarning")
def test_a_minimal_compatible_reply_is_accepted(
    server: srv.OpenAIServer, model: ChatGPTModel
) -> None:
    # No usage, no finish_reason, no id: what a bare-bones compatible server may send.
    server.script(srv.raw({"choices": [{"message": {"role": "assistant", "content": "hi"}}]}))
    done = model.generate("x")
    assert (done.text, done.finish_reason, done.response_model) == ("hi", "stop", None)
    assert done.usage.estimated


@pytest.mark.parametrize(
    "body", [{"choices": []}, b"this is not JSON", b'{"choices": [{"message": '], ids=str
)
def test_malformed_replies_are_backend_errors(
    server: srv.OpenAIServer, model: ChatGPTModel, body: object
) -> None:
    server.script(srv.raw(body))
    with pytest.raises(BackendError) as info:
        model.generate("x")
    assert not isinstance(info.value, ProviderHTTPError)


# -- streaming --------------------------------------------------------------------------------


def test_stream_matches_generate_and_asks_for_usage(
    server: srv.OpenAIServer, model: ChatGPTModel
) -> None:
    plain = model.generate(MESSAGES, max_tokens=20)
    with model.stream(MESSAGES, max_tokens=20) as stream:
        chunks = list(stream)
    body = sent(server)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    streamed = stream.completion
    assert "".join(c.text for c in chunks) == streamed.text == plain.text
    assert len([c for c in chunks if c.text]) > 1
    assert chunks[-1].finish_reason == "stop"
    assert streamed.usage == plain.usage
    assert not streamed.usage.estimated
    assert streamed.request_id is not None
    assert streamed.request_id.startswith("req_")
    assert streamed.response_model == "gpt-4o-mini"
    assert streamed.ttft_s is not None
    assert 0 < streamed.ttft_s <= streamed.latency_s


async def test_async_generate_and_stream(server: srv.OpenAIServer, model: ChatGPTModel) -> None:
    server.script(srv.ok("alpha beta", cached_tokens=1, prompt_tokens=3, completion_tokens=2))
    done = await model.agenerate("x")
    assert done.usage == Usage(input_tokens=3, output_tokens=2, cache_read_tokens=1)
    server.script(srv.ok("alpha beta", cached_tokens=1, prompt_tokens=3, completion_tokens=2))
    stream = model.astream("x")
    texts = [c.text async for c in stream]
    assert "".join(texts) == "alpha beta"
    assert stream.completion.usage == done.usage
    assert stream.completion.ttft_s is not None
    await model.aclose()


async def test_concurrent_async_calls_share_one_client(server: srv.OpenAIServer) -> None:
    m = make(server)
    async with m:
        outs = await asyncio.gather(*(m.agenerate(f"n{i}") for i in range(8)))
        assert [o.text for o in outs] == [f"n{i}" for i in range(8)]
        await asyncio.gather(*(m.agenerate("again") for _ in range(8)))
    # Eight concurrent requests open at most eight connections, reused for the second wave.
    assert server.connections <= 8


@pytest.mark.filterwarnings("ignore::llmcompare.backends.chatgpt.TokenEstimateWarning")
def test_stream_without_usage_chunk_is_marked_estimated(
    server: srv.OpenAIServer, model: ChatGPTModel
) -> None:
    server.script(srv.ok("four words of text", stream_usage=False))
    stream = model.stream("a prompt")
    assert "".join(c.text for c in stream) == "four words of text"
    usage = stream.completion.usage
    assert usage.estimated
    assert usage.input_tokens > 0
    assert usage.output_tokens > 0


@pytest.mark.parametrize("fault", ["cut", "error_event"])
def test_error_in_the_middle_of_a_stream_is_a_classified_backend_error(
    server: srv.OpenAIServer, model: ChatGPTModel, fault: str
) -> None:
    server.script(srv.stream_break(after_chunks=2) if fault == "cut" else srv.stream_error_event(2))
    received: list[str] = []

    def read() -> None:
        for chunk in model.stream("one two three four five"):
            received.append(chunk.text)

    with pytest.raises(BackendError) as info:
        read()
    assert "".join(received) == "one two"
    assert info.value.retryable
    assert not isinstance(info.value, ProviderHTTPError)
    assert isinstance(info.value.__cause__, openai.APIError)
    # The next call works: the broken connection is not reused.
    assert model.generate("again").text == "again"


async def test_async_stream_cut_is_a_backend_error(
    server: srv.OpenAIServer, model: ChatGPTModel
) -> None:
    server.script(srv.stream_break(after_chunks=1))
    with pytest.raises(BackendError, match=r"connection .* failed") as info:
        await model.astream("one two three").until_done()
    assert info.value.retryable


def test_stream_stalling_past_the_timeout_is_a_retryable_timeout(server: srv.OpenAIServer) -> None:
    server.script(srv.ok("slow words arrive late", chunk_delay=1.0))
    with make(server, timeout=0.3) as m, pytest.raises(BackendError, match="timed out") as info:
        list(m.stream("x"))
    assert info.value.retryable


def test_closing_a_stream_early_stops_it(server: srv.OpenAIServer, model: ChatGPTModel) -> None:
    with model.stream("one two three four five six") as stream:
        first = next(stream)
    assert first.text == "one"
    assert model.generate("next").text == "next"


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (srv.rate_limited(retry_after="2"), 2.0),
        (srv.rate_limited(retry_after="0.5"), 0.5),
        (srv.rate_limited(retry_after_ms="1500"), 1.5),
        (srv.rate_limited(retry_after_ms="250", retry_after="9"), 0.25),
        (srv.rate_limited(reset_requests="6m0s"), 360.0),
        (srv.rate_limited(reset_tokens="20ms"), 0.02),
        (srv.rate_limited(reset_requests="1s", reset_tokens="1m30s"), 90.0),
        (
            srv.rate_limited(
                reset_requests="1s",
                reset_tokens="1m30s",
                headers={
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-remaining-tokens": "7",
                },
            ),
            1.0,
        ),
        (srv.rate_limited(), None),
    ],
)
def test_rate_limits_carry_retry_after_from_every_header_form(
    server: srv.OpenAIServer, model: ChatGPTModel, behaviour: srv.Behaviour, expected: float | None
) -> None:
    server.script(behaviour)
    with pytest.raises(RateLimitError) as info:
        model.generate("x")
    err = info.value
    assert err.status == 429
    assert err.retryable
    assert err.retry_after == (pytest.approx(expected) if expected is not None else None)
    assert err.model_id == "chatgpt:gpt-4o-mini"
    assert all(name == name.lower() for name in err.headers)
    assert "x-request-id" in err.headers
    assert isinstance(err.__cause__, openai.RateLimitError)


def test_retry_after_as_http_date(server: srv.OpenAIServer, model: ChatGPTModel) -> None:
    server.script(srv.rate_limited(retry_after_date=time.time() + 30))
    with pytest.raises(RateLimitError) as info:
        model.generate("x")
    assert info.value.retry_after is not None
    assert 20 <= info.value.retry_after <= 31  # the date has one-second resolution


def test_quota_exhaustion_is_a_rate_limit_that_retrying_cannot_fix(
    server: srv.OpenAIServer, model: ChatGPTModel
) -> None:
    server.script(
        srv.error(
            429,
            "You exceeded your current quota",
            error_type="insufficient_quota",
            error_code="insufficient_quota",
        )
    )
    with pytest.raises(RateLimitError, match="quota") as info:
        model.generate("x")
    assert not info.value.retryable


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 409])
def test_server_errors_are_retryable(
    server: srv.OpenAIServer, model: ChatGPTModel, status: int
) -> None:
    server.script(srv.error(status, "The server had an error", headers={"Retry-After": "3"}))
    with pytest.raises(ProviderHTTPError) as info:
        model.generate("x")
    err = info.value
    assert (err.status, err.retryable, err.retry_after) == (status, True, 3.0)
    assert not isinstance(err, RateLimitError)
    assert "The server had an error" in str(err)


@pytest.mark.parametrize(
    ("status", "message", "hint"),
    [
        (400, "Unsupported parameter: 'stop'", "request rejected"),
        (404, "The model `gpt-9` does not exist", "check the model name"),
        (422, "field required", "request rejected"),
    ],
)
def test_client_errors_are_not_retryable(
    server: srv.OpenAIServer, model: ChatGPTModel, status: int, message: str, hint: str
) -> None:
    server.script(srv.error(status, message))
    with pytest.raises(ProviderHTTPError, match=hint) as info:
        model.generate("x")
    assert info.value.status == status
    assert not info.value.retryable
    assert message in str(info.value)


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_say_check_the_key_and_never_show_it(
    server: srv.OpenAIServer, model: ChatGPTModel, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Worst case: a server that echoes the whole key back in its error message.
    server.script(srv.error(status, "Incorrect API key provided: {api_key}."))
    with pytest.raises(ProviderHTTPError) as info:
        model.generate("x")
    err = info.value
    assert not err.retryable
    assert "check" in str(err)
    assert "API key" in str(err)
    ours = [str(err), repr(err), *map(str, err.headers.values()), *map(str, err.args)]
    assert not any(KEY in text for text in ours)
    assert KEY not in caplog.text
    assert KEY not in pickle.loads(pickle.dumps(err)).message


def test_credentials_in_base_url_or_headers_are_not_repeated(server: srv.OpenAIServer) -> None:
    host = server.url.removeprefix("http://")
    m = chatgpt("chatgpt:gpt-4o-mini", base_url=f"http://user:hunter2secret@{host}?token=t0ps3cret")
    server.script(srv.error(500, "boom", headers={"x-echo": "hunter2secret"}))
    assert "hunter2secret" not in m.base_url
    with m, pytest.raises(ProviderHTTPError) as info:
        m.generate("x")
    text = str(info.value) + repr(info.value.headers)
    assert "hunter2secret" not in text
    assert "t0ps3cret" not in text
    assert f"http://{host}" in str(info.value)


def test_custom_key_echoed_in_a_header_is_removed(server: srv.OpenAIServer) -> None:
    secret = "my-own-proxy-key-123"  # not OpenAI-shaped: only the backend knows it is secret
    server.script(srv.error(500, "bad key " + secret, headers={"x-debug": "key=" + secret}))
    m = make(server, api_key=secret)
    with m, pytest.raises(ProviderHTTPError) as info:
        m.generate("x")
    assert secret not in str(info.value)
    assert secret not in repr(info.value.headers)


def test_openai_style_masked_key_in_the_full_traceback(
    server: srv.OpenAIServer, model: ChatGPTModel
) -> None:
    # What OpenAI really sends: a masked key. Then not even the SDK's chained exception shows it.
    masked = f"{KEY[:3]}{'*' * 20}{KEY[-4:]}"
    server.script(srv.error(401, f"Incorrect API key provided: {masked}."))
    with pytest.raises(ProviderHTTPError) as info:
        model.generate("x")
    formatted = "".join(traceback.format_exception(info.value))
    assert KEY not in formatted


def test_slow_response_past_the_timeout_is_a_retryable_timeout(server: srv.OpenAIServer) -> None:
    server.script(srv.slow(1.5))
    with make(server, timeout=0.3) as m:
        with pytest.raises(BackendError, match="timed out") as info:
            m.generate("x")
        assert info.value.retryable
        assert not isinstance(info.value, ProviderHTTPError)
        assert isinstance(info.value.__cause__, openai.APITimeoutError)
        assert m.generate("fine again").text == "fine again"


def test_dropped_connection_is_a_retryable_connection_error(
    server: srv.OpenAIServer, model: ChatGPTModel
) -> None:
    server.script(srv.drop_connection())
    with pytest.raises(BackendError, match=r"connection to http://127\.0\.0\.1") as info:
        model.generate("x")
    assert info.value.retryable
    assert isinstance(info.value.__cause__, openai.APIConnectionError)
    assert model.generate("back").text == "back"


def test_nothing_listening_is_a_retryable_connection_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the call: nothing listens there
    m = chatgpt("chatgpt:gpt-4o-mini", base_url=f"http://127.0.0.1:{port}/v1")
    with m, pytest.raises(BackendError) as info:
        m.generate("x")
    assert info.value.retryable


async def test_async_errors_are_mapped_the_same(
    server: srv.OpenAIServer, model: ChatGPTModel
) -> None:
    server.script(srv.rate_limited(retry_after="4"), srv.error(400, "bad"))
    with pytest.raises(RateLimitError) as limited:
        await model.agenerate("x")
    assert limited.value.retry_after == 4.0
    with pytest.raises(ProviderHTTPError) as bad:
        await model.agenerate("x")
    assert not bad.value.retryable
    await model.aclose()


def test_generate_batch_keeps_failures_in_place(
    server: srv.OpenAIServer, model: ChatGPTModel
) -> None:
    server.script(srv.ok("first"), srv.error(500), srv.ok("third"))
    results = model.generate_batch(["a", "b", "c"])
    assert [r.ok for r in results] == [True, False, True]
    assert results[0].unwrap().text == "first"
    assert isinstance(results[1].error, ProviderHTTPError)


# -- secrets ----------------------------------------------------------------------------------


def test_key_never_in_repr_logs_or_serialized_completion(
    server: srv.OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with make(server) as m:
        done = m.generate("hi")
        with m.stream("hi") as stream:
            list(stream)
        server.script(srv.error(500))
        with pytest.raises(ProviderHTTPError):
            m.generate("x")
        for text in (repr(m), str(m), repr(m.info), m.info.model_dump_json()):
            assert KEY not in text
        for text in (done.model_dump_json(), repr(done), stream.completion.model_dump_json()):
            assert KEY not in text
    assert KEY not in caplog.text
    assert server.chat_requests[0].headers["authorization"] == f"Bearer {KEY}"  # it was used


# issue 22, item 11: every credential the backend holds, not only the key.
PROXY_KEY = "proxy-key-0123456789"  # no OpenAI shape: only the backend knows it is a secret
AZURE_KEY = "azure-secret-4f9a77e1"
GATEWAY_TOKEN = "gw-token-99887766"
PASSWORD = "pa55w0rd-xyzzy"
QUERY_SECRET = "query-secret-123456"


def _secrets_of(user: str) -> list[str]:
    import base64

    basic = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
    return [PROXY_KEY, AZURE_KEY, GATEWAY_TOKEN, PASSWORD, QUERY_SECRET, basic]


def _leaky_model(
    server: srv.OpenAIServer, user: str | None = "alice", query: str = ""
) -> ChatGPTModel:
    host = server.url.removeprefix("http://")
    return chatgpt(
        "chatgpt:gpt-4o-mini",
        api_key=PROXY_KEY,
        headers={"api-key": AZURE_KEY, "X-Gateway-Token": GATEWAY_TOKEN},
        base_url=f"http://{user}:{PASSWORD}@{host}{query}" if user else f"http://{host}{query}",
        timeout=5,
    )


def test_a_server_echoing_every_credential_gets_none_into_errors_tracebacks_or_logs(
    server: srv.OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script(srv.echo_request(401), srv.echo_request(500), srv.ok("fine"))
    errors = []
    # The key and the headers; then user:password@ in base_url, which replaces the key with
    # basic credentials (httpx builds them from the URL).
    for user in (None, "alice"):
        with _leaky_model(server, user=user) as m, pytest.raises(ProviderHTTPError) as info:
            m.generate("x")
        errors.append(info.value)
    with _leaky_model(server) as m:
        assert m.generate("x").text == "fine"
    # A query in base_url (a signed gateway address): the SDK posts to another path (a 404
    # here), and httpx logs the address.
    with _leaky_model(server, query=f"?sig={QUERY_SECRET}") as m:
        with pytest.raises(ProviderHTTPError) as info:
            m.generate("x")
        errors.append(info.value)
    # The credentials were sent, so the echoing server repeated them.
    first, second = (r.headers for r in server.chat_requests[:2])
    assert (first["authorization"], first["api-key"]) == (f"Bearer {PROXY_KEY}", AZURE_KEY)
    assert second["authorization"].startswith("Basic ")
    assert "authentication failed" in str(errors[0])
    secrets = _secrets_of("alice")
    for err in errors:
        shown = [
            str(err),
            repr(err),
            repr(err.headers),
            "".join(traceback.format_exception(err)),
            str(err.__cause__),
            repr(err.__cause__),
            pickle.loads(pickle.dumps(err)).message,
        ]
        for text in shown:
            for secret in secrets:
                assert secret not in text, (secret, text)
    assert caplog.records, "the SDK and httpx logged nothing at DEBUG"
    logged = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert "/chat/completions" in logged
    for secret in secrets:
        assert secret not in logged, secret


def test_a_server_echoing_every_credential_gets_none_into_the_run_folder_or_report(
    server: srv.OpenAIServer, tmp_path: Path
) -> None:
    from llmcompare.report import write_report

    server.script(srv.echo_request(401), srv.echo_request(403))
    out = tmp_path / "run"
    with _leaky_model(server, user="bob") as m:
        result = llmcompare.compare(
            {"gpt": m}, ["q1", "q2"], concurrency=1, retry=None, progress=False, out=out
        )
    assert [row.error is not None for row in result.rows] == [True, True]
    assert AZURE_KEY in server.chat_requests[0].headers.values()
    write_report(result, out, ("json", "csv", "html"))
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"answers.jsonl", "comparison.json", "comparison.csv", "report.html"} <= names
    for path in files:
        data = path.read_bytes()
        for secret in _secrets_of("bob"):
            assert secret.encode() not in data, (secret, path.name)


# -- clients ----------------------------------------------------------------------------------


def test_one_client_is_reused_and_close_releases_it(own_server: srv.OpenAIServer) -> None:
    m = make(own_server)
    for _ in range(5):
        m.generate("x")
    assert own_server.connections == 1  # one client, one kept-alive connection
    assert own_server.open_connections == 1
    m.close()
    assert own_server.wait_idle() == 0  # close() really closed the connection
    assert m.generate("reopened").text == "reopened"  # a closed model opens a new client
    assert own_server.connections == 2
    m.close()
    assert own_server.wait_idle() == 0


def test_async_client_is_closed_with_its_event_loop(own_server: srv.OpenAIServer) -> None:
    m = make(own_server)
    # Two asyncio.run calls: the second loop cannot use the first loop's connections, and each
    # loop's client is closed when asyncio.run shuts that loop down, without any close() call.
    assert asyncio.run(m.agenerate("one")).text == "one"
    assert asyncio.run(m.agenerate("two")).text == "two"
    assert own_server.connections == 2
    assert own_server.wait_idle() == 0


async def test_aclose_closes_the_async_connections(own_server: srv.OpenAIServer) -> None:
    async with make(own_server) as m:
        await asyncio.gather(m.agenerate("a"), m.agenerate("b"))
        assert own_server.open_connections >= 1
    assert await asyncio.to_thread(own_server.wait_idle) == 0


# -- tokens and pure helpers ------------------------------------------------------------------


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "always", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


_COUNT = (
    "from llmcompare.backends.chatgpt import count_tokens, count_text_tokens\n"
    "print(count_tokens('gpt-4o-mini', 'Hello world'), count_text_tokens('gpt-4o', 'Hello world'),"
    " count_tokens('chatgpt:gpt-4', [{'role': 'user', 'content': 'Hello world'}]))\n"
)


def test_token_count_without_quicktok_falls_back_to_an_estimate_with_a_warning_offline(
    tmp_path: Path,
) -> None:
    # As if quicktok-v1 were not installed: import quicktok fails.
    hidden = "import sys\nsys.modules['quicktok'] = None\n"
    out = _run(hidden + _COUNT, {"TIKTOKEN_CACHE_DIR": str(tmp_path), "LLMCOMPARE_NO_NETWORK": "1"})
    assert out.returncode == 0, out.stderr
    assert "TokenEstimateWarning" in out.stderr
    assert "network calls are switched off" in out.stderr  # no download was even tried
    # "Hello world": 11 characters at 4 a token is 3, plus chat framing 3 + 1 (role) + 3 (reply).
    assert out.stdout.split() == ["10", "3", "10"]


def test_a_missing_openai_sdk_names_the_extra_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['openai'] = None  # as if the SDK were not installed: import openai fails\n"
        "from llmcompare import get_model\n"
        "model = get_model('chatgpt:gpt-4o-mini', base_url='http://127.0.0.1:9/v1')  # cheap\n"
        "try:\n"
        "    model.generate('hi')\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc, '|', type(exc.__cause__).__name__)\n"
    )
    out = _run(code, {})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ImportError the chatgpt backend needs the openai SDK")
    assert 'pip install "llmcompare[openai]"' in out.stdout
    assert "ModuleNotFoundError" in out.stdout  # the original error is kept as the cause


def test_token_count_is_exact_with_tiktoken(tmp_path: Path) -> None:
    if not seed_tiktoken_cache(tmp_path):
        reason = "quicktok-v1 (offline tiktoken tables) is not installed"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    out = _run(_COUNT, {"TIKTOKEN_CACHE_DIR": str(tmp_path), "LLMCOMPARE_NO_NETWORK": "1"})
    assert out.returncode == 0, out.stderr
    assert "TokenEstimateWarning" not in out.stderr
    # "Hello world" is 2 tokens in both encodings; chat framing adds 3 + 1 (role) + 3 (reply).
    assert out.stdout.split() == ["9", "2", "9"]


def _texts(n: int) -> list[str]:
    """``n`` varied strings: words, numbers, code, whitespace runs, accents, CJK, emoji, and
    text that looks like a special token (counted as text, as ``encode_ordinary`` does)."""
    import random

    rng = random.Random(0)
    parts = [
        "Hello",
        "world",
        " the",
        "capital",
        "of",
        "France",
        "is",
        "Paris",
        ".",
        ",",
        "!",
        "?",
        "12345",
        "3.14159",
        "1,000,000",
        "  ",
        "\n",
        "\n\n",
        "\t",
        "def f(x):",
        "return x**2",
        '{"key": [1, 2]}',
        "naïve",
        "café",
        "Straße",
        "日本語",
        "中文字符",
        "한국어",
        "😀",
        "👩‍💻",
        "<|endoftext|>",
        "<|im_start|>",
        "https://example.com/a?b=c",
        "'s",
        "'re",
        "don't",
        "UPPER",
        "MiXeD",
        "ÆØÅ",
        "—",
        "…",
        "   leading",
        "trailing   ",
        "a" * 40,
    ]
    texts = ["".join(rng.choice(parts) for _ in range(rng.randint(1, 30))) for _ in range(n)]
    # A lone surrogate (half an emoji, cut by a stream): not UTF-8, replaced as tiktoken does.
    return [*texts, "lone \ud83d half", "\ude00 at the start"]


def test_quicktok_counts_exactly_as_tiktoken_on_hundreds_of_strings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The offline counter's token ids are tiktoken's, the reference, for both encodings."""
    import quicktok
    import tiktoken

    from llmcompare.backends.chatgpt import _tokens

    assert seed_tiktoken_cache(tmp_path)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # tiktoken's own tables, offline
    monkeypatch.setattr(_tokens, "_encoders", {})
    texts = _texts(400)
    for name, model in (("o200k_base", "gpt-4o"), ("cl100k_base", "gpt-4")):
        reference = tiktoken.get_encoding(name)
        ours = quicktok.get_encoding(name)
        for text in texts[:-2]:
            assert ours.encode_ordinary(text) == reference.encode_ordinary(text), (name, text)
        for text in texts:
            assert count_text_tokens(model, text) == len(reference.encode_ordinary(text)), text
    # The counts above were quicktok's (tiktoken's table was only the test's reference).
    assert isinstance(_tokens._encoders["o200k_base"], _tokens._Bundled)


def test_importing_the_backend_stays_light() -> None:
    code = (
        "import sys, llmcompare\n"
        "m = llmcompare.get_model('chatgpt:gpt-4o', base_url='http://127.0.0.1:9/v1')\n"
        "print(sorted({n.split('.')[0] for n in sys.modules} & {'openai', 'tiktoken', 'httpx2'}))\n"
    )
    out = _run(code, {})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("gpt-4o-mini-2024-07-18", "gpt-4o"),
        ("gpt-4", "gpt-4"),
        ("gpt-4-turbo-2024-04-09", "gpt-4-turbo"),
        ("gpt-4.1-nano", "gpt-4.1"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("o1", "o1"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("o3-2025-04-16", "o3"),
        ("o4-mini", "o4-mini"),
        ("gpt-5", "gpt-5"),
        ("gpt-5-mini-2025-08-07", "gpt-5"),
        ("gpt-5.4-mini", "gpt-5."),
        ("gpt-5.1", "gpt-5."),
        ("gpt-5-chat-latest", "gpt-5-chat"),
        ("gpt-5.2-chat-latest", "gpt-5.2-chat"),
        ("gpt-6-astra", "gpt-6"),
        ("ft:gpt-4o-mini:acme::abc", "gpt-4o"),
        ("chatgpt:o3", "o3"),
        ("gpt-4ox", "compatible"),
        ("llama-3.1-8b", "compatible"),
    ],
)
def test_quirks_lookup(name: str, family: str) -> None:
    assert quirks_for(name).family == family


def test_every_quirks_row_cites_its_source() -> None:
    for row in QUIRKS:
        assert row.source, row.family
        if row.max_tokens_field == "max_completion_tokens" or not row.sampling or not row.stop:
            assert re.search(r"#\d+|docstring|docs|learnku|assumed", row.source), row.family


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0.5s", 0.5),
        ("2", 2.0),
        ("", None),
        ("soon", None),
        ("5x", None),
        ("nan", None),
        ("-1s", None),
        ("inf", None),
        ("1.5µs", 1.5e-6),
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_parse_retry_after_precedence_and_dates() -> None:
    now = 1_700_000_000.0
    date = "Tue, 14 Nov 2023 22:13:40 GMT"  # now + 20 s
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(20.0)
    assert parse_retry_after({"retry-after": "Tue, 14 Nov 2023 22:00:00 GMT"}, now=now) == 0.0
    assert parse_retry_after({"retry-after": "nonsense"}) is None
    assert parse_retry_after({"retry-after-ms": "10", "retry-after": "3"}) == pytest.approx(0.01)
    # Not a finite, non-negative wait, or a date without a zone: no hint at all.
    assert parse_retry_after({"retry-after": "-4"}) is None
    assert parse_retry_after({"retry-after": "nan"}) is None
    assert parse_retry_after({"retry-after-ms": "inf", "retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "Tue, 14 Nov 2023 22:13:40"}, now=now) is None
    assert parse_retry_after({}) is None


def test_completion_round_trips_through_json(server: srv.OpenAIServer, model: ChatGPTModel) -> None:
    server.script(
        srv.ok("x y", cached_tokens=1, reasoning_tokens=1, prompt_tokens=4, completion_tokens=2)
    )
    done = model.generate("q")
    again = llmcompare.Completion.model_validate_json(done.model_dump_json())
    assert again == done
    assert json.loads(done.model_dump_json())["usage"]["cache_read_tokens"] == 1


def test_warnings_for_dropped_settings_are_given_once(server: srv.OpenAIServer) -> None:
    with make(server, "o3") as m, warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(3):
            m.generate("x", temperature=0.5)
    dropped = [w for w in seen if issubclass(w.category, ParameterDroppedWarning)]
    assert len(dropped) == 1
    assert "temperature" in str(dropped[0].message)


def test_count_tokens_method_and_estimate_warning_class() -> None:
    assert issubclass(TokenEstimateWarning, UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = chatgpt("chatgpt:gpt-4o", base_url="http://127.0.0.1:9/v1")
        assert m.count_tokens("Hello world") > 7


# issue 22, item 1
@pytest.mark.filterwarnings("ignore::llmcompare.backends.chatgpt.TokenEstimateWarning")
def test_an_emoji_streamed_as_two_escaped_halves_is_joined_and_a_lone_half_is_flagged(
    server: srv.OpenAIServer, model: ChatGPTModel
) -> None:
    server.script(
        srv.streamed("Smile ", "\ud83d", "\ude00", " split"),
        srv.streamed("lone ", "\ud83d", " half"),
    )
    with model.stream("hi") as stream:
        chunks = list(stream)
    # Every chunk is valid text as it is handed out, and the answer holds the whole emoji.
    for chunk in chunks:
        chunk.text.encode("utf-8")
    assert "".join(c.text for c in chunks) == stream.completion.text == "Smile \U0001f600 split"
    assert stream.completion.replaced_chars == 0
    with model.stream("hi") as stream:
        list(stream)
    assert stream.completion.text == "lone \ufffd half"
    assert stream.completion.replaced_chars == 1
