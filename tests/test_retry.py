"""Retrying transient failures: bounds, classification, waits, streams, batches, logging."""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import logging
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from llmcompare import (
    BackendError,
    Chunk,
    Completion,
    Model,
    ModelBase,
    ModelInfo,
    ProviderHTTPError,
    RateLimitError,
    Request,
    Usage,
)
from llmcompare.backends.fake import ScriptedModel
from llmcompare.retry import RetryPolicy, is_retryable, retry_after_of, with_retry
from llmcompare.testing import no_wait, recorded_waits

MODEL = "fake:scripted"


def transient(message: str = "server busy") -> BackendError:
    return BackendError(message, model_id=MODEL, retryable=True)


def http(
    status: int, retry_after: float | None = None, headers: dict[str, str] | None = None
) -> ProviderHTTPError:
    cls = RateLimitError if status == 429 else ProviderHTTPError
    return cls("scripted", model_id=MODEL, status=status, retry_after=retry_after, headers=headers)


# -- bounds --------------------------------------------------------------------------------------


def test_succeeds_after_transient_failures_and_records_attempts() -> None:
    model = ScriptedModel([transient(), transient(), transient(), "done"])
    with no_wait() as waits:
        completion = with_retry(model, RetryPolicy(attempts=4)).generate("hi")
    assert completion.text == "done"
    assert completion.attempts == 4
    assert len(waits.waits) == 3
    assert completion.retry_wait_s == pytest.approx(waits.total)
    assert len(model.history) == 4


def test_first_try_success_is_returned_untouched() -> None:
    model = ScriptedModel(["done"])
    completion = with_retry(model).generate("hi")
    assert (completion.attempts, completion.retry_wait_s) == (1, 0.0)


def test_gives_up_after_the_attempt_bound_with_the_last_error() -> None:
    errors = [transient("first"), transient("second"), transient("third"), transient("fourth")]
    model = ScriptedModel(errors)
    with no_wait() as waits, pytest.raises(BackendError) as info:
        with_retry(model, RetryPolicy(attempts=3)).generate("hi")
    assert info.value is errors[2]
    assert len(model.history) == 3
    assert len(waits.waits) == 2


def test_gives_up_when_the_next_wait_would_pass_the_deadline() -> None:
    model = ScriptedModel(default=http(429, retry_after=10))
    policy = RetryPolicy(attempts=100, deadline_s=25, max_wait_s=60)
    with no_wait() as waits, pytest.raises(RateLimitError):
        with_retry(model, policy).generate("hi")
    # Attempts at t=0, 10 and 20 (skipped waits count as time passed); a third wait would end
    # at 30 > 25, so it gives up instead of sleeping for nothing.
    assert waits.waits == [10.0, 10.0]
    assert len(model.history) == 3


def test_attempts_one_means_no_retry() -> None:
    model = ScriptedModel([transient(), "never"])
    with pytest.raises(BackendError):
        with_retry(model, RetryPolicy(attempts=1)).generate("hi")
    assert len(model.history) == 1


# -- what is retried -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_never_retries_a_client_error(status: int) -> None:
    model = ScriptedModel([http(status), "never"])
    with no_wait() as waits, pytest.raises(ProviderHTTPError) as info:
        with_retry(model).generate("hi")
    assert info.value.status == status
    assert len(model.history) == 1
    assert waits.waits == []


@pytest.mark.parametrize(
    "error",
    [
        http(429),
        http(500),
        http(502),
        http(503),
        http(504),
        http(408),
        TimeoutError("read timed out"),
        ConnectionResetError("connection reset by peer"),
        transient(),
    ],
    ids=lambda e: type(e).__name__ + str(getattr(e, "status", "")),
)
def test_retries_rate_limits_server_errors_timeouts_and_resets(error: Exception) -> None:
    assert is_retryable(error)
    model = ScriptedModel([error, "ok"])
    with no_wait():
        assert with_retry(model).generate("hi").text == "ok"
    assert len(model.history) == 2


def test_non_retryable_errors_are_raised_at_once() -> None:
    for error in (ValueError("bug"), BackendError("bad", model_id=MODEL), KeyError("x")):
        assert not is_retryable(error)
        model = ScriptedModel([error, "never"])
        with pytest.raises(type(error)):
            with_retry(model).generate("hi")
        assert len(model.history) == 1


# -- waits ---------------------------------------------------------------------------------------


def test_honours_retry_after_and_caps_it() -> None:
    model = ScriptedModel([http(429, retry_after=2), http(503, retry_after=0.5), "ok"])
    with no_wait() as waits:
        completion = with_retry(model).generate("hi")
    assert waits.waits == [2.0, 0.5]
    assert completion.retry_wait_s == pytest.approx(2.5)

    model = ScriptedModel([http(429, retry_after=100), "ok"])
    with no_wait() as waits:
        with_retry(model, RetryPolicy(max_wait_s=5)).generate("hi")
    assert waits.waits == [5.0]


def test_retry_after_can_be_ignored() -> None:
    model = ScriptedModel([http(429, retry_after=9), "ok"])
    policy = RetryPolicy(honour_retry_after=False, jitter=False, initial_wait_s=0.25)
    with no_wait() as waits:
        with_retry(model, policy).generate("hi")
    assert waits.waits == [0.25]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s"}, 360.0),
        ({"x-ratelimit-reset-tokens": "20ms"}, 0.02),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_server_waits_are_read_from_headers(
    headers: dict[str, str], expected: float | None
) -> None:
    assert retry_after_of(http(429, headers=headers)) == (
        pytest.approx(expected) if expected is not None else None
    )


def test_retry_after_as_an_http_date() -> None:
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert retry_after_of(http(429, headers={"retry-after": date})) == pytest.approx(30, abs=2)


BAD_HINTS = [
    {"retry-after": "nan"},
    {"retry-after": "NaN"},
    {"retry-after": "inf"},
    {"retry-after": "-4"},
    {"retry-after": "1_0"},
    {"retry-after-ms": "nan"},
    {"retry-after-ms": "-100"},
    {"retry-after": "9" * 400},  # overflows to inf
    # An HTTP date without a time zone: which clock it means is unknown.
    {"retry-after": email.utils.formatdate(time.time() + 3600, localtime=False)[:-6]},
    {"retry-after": "Tue, 14 Nov 2093 22:13:40"},
    {"x-ratelimit-reset-tokens": "nans"},
    {"x-ratelimit-reset-requests": "-1s"},
]


@pytest.mark.parametrize("headers", BAD_HINTS)
def test_a_bad_server_hint_is_ignored_not_fatal(headers: dict[str, str]) -> None:
    assert retry_after_of(http(429, headers=headers)) is None
    # Really sleeping (no no_wait here): a NaN wait made time.sleep raise ValueError. With the
    # hint ignored, the backoff (0 s here) is used.
    policy = RetryPolicy(jitter=False, initial_wait_s=0.0)
    completion = with_retry(ScriptedModel([http(429, headers=headers), "ok"]), policy).generate(
        "hi"
    )
    assert (completion.text, completion.attempts, completion.retry_wait_s) == ("ok", 2, 0.0)


@pytest.mark.parametrize("given", [float("nan"), float("inf"), -3.0])
def test_a_bad_retry_after_attribute_falls_back_to_the_headers(given: float) -> None:
    error = http(429, retry_after=given, headers={"retry-after": "2"})
    assert retry_after_of(error) == 2.0
    with no_wait() as waits:
        with_retry(
            ScriptedModel([http(429, retry_after=given), "ok"]),
            RetryPolicy(jitter=False, initial_wait_s=0.25),
        ).generate("hi")
    assert waits.waits == [0.25]


def test_a_bad_hint_falls_through_to_the_next_header() -> None:
    headers = {"retry-after-ms": "nan", "retry-after": "-1", "x-ratelimit-reset-tokens": "3s"}
    assert retry_after_of(http(429, headers=headers)) == 3.0


def test_the_exhausted_limit_decides_the_wait_as_in_the_chatgpt_backend() -> None:
    from llmcompare.backends.chatgpt import parse_retry_after

    headers = {
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-tokens": "6m0s",
        "x-ratelimit-remaining-tokens": "5000",
    }
    # Waiting six minutes for a token limit that is not exhausted would be wasted time.
    assert retry_after_of(http(429, headers=headers)) == 1.0
    assert parse_retry_after(headers) == 1.0


def test_backoff_is_exponential_with_full_jitter() -> None:
    policy = RetryPolicy(attempts=8, initial_wait_s=0.5, multiplier=2.0, max_wait_s=5.0)
    bounds = [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    model = ScriptedModel([transient()] * 7 + ["ok"])
    with no_wait() as waits:
        with_retry(model, policy).generate("hi")
    assert len(waits.waits) == 7
    for wait, bound in zip(waits.waits, bounds, strict=True):
        assert 0.0 <= wait <= bound
    exact = dataclasses.replace(policy, jitter=False)
    assert [exact.wait_before(n) for n in range(1, 8)] == bounds


def test_waits_really_sleep_when_not_switched_off() -> None:
    model = ScriptedModel([transient(), "ok"])
    policy = RetryPolicy(jitter=False, initial_wait_s=0.01)
    completion = with_retry(model, policy).generate("hi")
    assert completion.attempts == 2
    assert completion.retry_wait_s == pytest.approx(0.01)


def test_environment_switch_turns_waits_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMCOMPARE_RETRY_NO_WAIT", "1")
    before = len(recorded_waits())
    model = ScriptedModel([http(429, retry_after=15), "ok"])
    assert with_retry(model).generate("hi").attempts == 2  # would sleep 15 s without the switch
    assert recorded_waits()[before:] == [15.0]


def test_policy_is_keyword_only_frozen_and_validated() -> None:
    with pytest.raises(TypeError):
        RetryPolicy(3)  # type: ignore[call-arg]
    policy = RetryPolicy()
    assert (policy.attempts, policy.deadline_s, policy.honour_retry_after) == (4, 60.0, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.attempts = 9  # type: ignore[misc]
    for bad in ({"attempts": 0}, {"deadline_s": 0}, {"max_wait_s": -1}, {"multiplier": 0.5}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            RetryPolicy(**bad)


# -- the wrapper ---------------------------------------------------------------------------------


def test_wrapper_keeps_the_inner_identity() -> None:
    inner = ScriptedModel(["ok"], name="gpt-4o-mini")
    model = with_retry(inner)
    assert isinstance(model, Model)
    assert model.id == inner.id == "fake:gpt-4o-mini"
    assert model.info == inner.info


async def test_async_calls_are_retried() -> None:
    model = ScriptedModel([http(503, retry_after=1.5), transient(), "async ok"])
    with no_wait() as waits:
        completion = await with_retry(model).agenerate("hi", max_tokens=5)
    assert completion.text == "async ok"
    assert completion.attempts == 3
    assert waits.waits[0] == 1.5
    assert model.history[-1].max_tokens == 5


def test_stream_retries_until_the_first_chunk() -> None:
    model = ScriptedModel([http(429, retry_after=1), "hello streaming world"])
    with no_wait() as waits, with_retry(model).stream("hi") as stream:
        text = "".join(chunk.text for chunk in stream)
    assert text == "hello streaming world"
    assert stream.completion.attempts == 2
    assert stream.completion.text == text
    assert waits.waits == [1.0]


async def test_async_stream_retries_until_the_first_chunk() -> None:
    model = ScriptedModel([transient(), transient(), "async stream"])
    with no_wait():
        stream = with_retry(model).astream("hi")
        text = "".join([chunk.text async for chunk in stream])
    assert text == "async stream"
    assert stream.completion.attempts == 3


class BreaksMidStream(ModelBase):
    """Streams one chunk, then fails with a retryable error."""

    def __init__(self) -> None:
        super().__init__(ModelInfo(provider="test", name="breaks", open_weights=True))
        self.opened = 0

    def _generate(self, request: Request) -> Completion:
        raise AssertionError("streaming only")

    def _stream(self, request: Request) -> Iterator[Chunk]:
        self.opened += 1
        yield Chunk(text="partial ")
        raise BackendError("connection dropped mid-stream", model_id=self.id, retryable=True)

    async def _astream(self, request: Request) -> AsyncIterator[Chunk]:
        self.opened += 1
        yield Chunk(text="partial ")
        raise BackendError("connection dropped mid-stream", model_id=self.id, retryable=True)


def test_stream_failure_after_the_first_chunk_is_not_retried() -> None:
    model = BreaksMidStream()
    seen: list[str] = []
    with no_wait() as waits, pytest.raises(BackendError, match="mid-stream"):
        seen.extend(chunk.text for chunk in with_retry(model).stream("hi"))
    assert seen == ["partial "]  # the caller never sees text twice
    assert model.opened == 1
    assert waits.waits == []


async def test_async_stream_failure_after_the_first_chunk_is_not_retried() -> None:
    model = BreaksMidStream()
    with pytest.raises(BackendError, match="mid-stream"):
        async for _ in with_retry(model).astream("hi"):
            pass
    assert model.opened == 1


def test_batch_retries_only_the_retryable_failures() -> None:
    # Replies are consumed in call order: the first round answers the three prompts, the second
    # round retries the one transient failure.
    bad_request = http(400)
    model = ScriptedModel(["a", http(503, retry_after=2), bad_request, "b-retried"])
    with no_wait() as waits:
        results = with_retry(model).generate_batch(["1", "2", "3"])
    assert [r.index for r in results] == [0, 1, 2]
    assert results[0].unwrap().attempts == 1
    assert results[1].unwrap().text == "b-retried"
    assert results[1].unwrap().attempts == 2
    assert results[1].unwrap().retry_wait_s == 2.0
    assert results[2].error is bad_request
    assert waits.waits == [2.0]
    assert len(model.history) == 4


def test_batch_gives_up_at_the_bound() -> None:
    model = ScriptedModel(default=http(500, retry_after=1))
    with no_wait() as waits:
        results = with_retry(model, RetryPolicy(attempts=3)).generate_batch(["1", "2"])
    assert all(isinstance(r.error, ProviderHTTPError) for r in results)
    assert len(model.history) == 6  # 3 rounds of 2
    assert waits.waits == [1.0, 1.0]


# -- logging -------------------------------------------------------------------------------------


def test_each_retry_is_logged_with_model_attempt_wait_and_cause(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "sk-proj-ABCDEFGH12345678"
    model = ScriptedModel([http(429, retry_after=3), transient(f"echoed key {secret}"), "ok"])
    with caplog.at_level(logging.INFO, logger="llmcompare.retry"), no_wait():
        with_retry(model).generate("hi")
    messages = [r.getMessage() for r in caplog.records if r.name == "llmcompare.retry"]
    assert len(messages) == 2
    assert "fake:scripted" in messages[0]
    assert "attempt 1" in messages[0]
    assert "3.000s" in messages[0]
    assert "RateLimitError" in messages[0]
    assert "attempt 2" in messages[1]
    assert secret not in "\n".join(messages)


def test_nothing_is_logged_when_the_logger_is_off(caplog: pytest.LogCaptureFixture) -> None:
    model = ScriptedModel([transient(), "ok"])
    with caplog.at_level(logging.WARNING, logger="llmcompare.retry"), no_wait():
        with_retry(model).generate("hi")
    assert not [r for r in caplog.records if r.name == "llmcompare.retry"]


# -- over real HTTP ------------------------------------------------------------------------------


@pytest.fixture
def openai_server() -> Iterator[object]:
    pytest.importorskip("openai")
    chatgpt = pytest.importorskip("llmcompare.backends.chatgpt")
    assert chatgpt is not None
    from helpers import openai_server as srv

    with srv.OpenAIServer() as server:
        yield server


def _chatgpt(server: object) -> Model:
    from llmcompare.backends.chatgpt import ChatGPTModel, ChatGPTOptions

    url = server.url  # type: ignore[attr-defined]
    return ChatGPTModel("gpt-4o-mini", ChatGPTOptions(base_url=url, api_key="sk-test-0123456789"))


def test_retry_over_http_honours_retry_after_then_succeeds(openai_server: object) -> None:
    from helpers import openai_server as srv

    server = openai_server
    server.script(  # type: ignore[attr-defined]
        srv.rate_limited(retry_after="2"),
        srv.ok("hello there", prompt_tokens=5, completion_tokens=2),
    )
    with no_wait() as waits, _chatgpt(server) as model:
        completion = with_retry(model).generate("hi")
    assert completion.text == "hello there"
    assert completion.attempts == 2
    assert completion.usage == Usage(input_tokens=5, output_tokens=2)
    assert waits.waits == [2.0]
    assert len(server.chat_requests) == 2  # type: ignore[attr-defined]


def test_retry_over_http_never_repeats_a_400(openai_server: object) -> None:
    from helpers import openai_server as srv

    server = openai_server
    server.script(srv.error(400, "bad request"), srv.ok("never"))  # type: ignore[attr-defined]
    with no_wait() as waits, _chatgpt(server) as model, pytest.raises(ProviderHTTPError) as info:
        with_retry(model).generate("hi")
    assert info.value.status == 400
    assert waits.waits == []
    assert len(server.chat_requests) == 1  # type: ignore[attr-defined]


async def test_async_stream_retry_over_http(openai_server: object) -> None:
    from helpers import openai_server as srv

    server = openai_server
    server.script(  # type: ignore[attr-defined]
        srv.error(503, "overloaded", headers={"retry-after-ms": "700"}), srv.ok("streamed reply")
    )
    with no_wait() as waits:
        model = _chatgpt(server)
        stream = with_retry(model).astream("hi")
        text = "".join([chunk.text async for chunk in stream])
        await model.aclose()
    assert text == "streamed reply"
    assert stream.completion.attempts == 2
    assert waits.waits == [pytest.approx(0.7)]


def test_concurrent_no_wait_blocks_record_from_every_thread() -> None:
    model = ScriptedModel(default=http(429, retry_after=1))
    with no_wait() as waits:

        async def many() -> None:
            calls = [asyncio.to_thread(_give_up, model) for _ in range(4)]
            await asyncio.gather(*calls)

        asyncio.run(many())
    assert waits.waits == [1.0] * 4


def _give_up(model: Model) -> None:
    with pytest.raises(RateLimitError):
        with_retry(model, RetryPolicy(attempts=2)).generate("hi")


def test_a_nan_retry_after_over_http_falls_back_to_the_reset_header(openai_server: object) -> None:
    from helpers import openai_server as srv

    server = openai_server
    headers = {
        "retry-after": "nan",
        "x-ratelimit-reset-requests": "2s",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-tokens": "30s",
        "x-ratelimit-remaining-tokens": "900",
    }
    server.script(srv.error(429, "slow down", headers=headers), srv.ok("fine"))  # type: ignore[attr-defined]
    with no_wait() as waits, _chatgpt(server) as model:
        completion = with_retry(model).generate("hi")
    assert completion.text == "fine"
    # The backend's retry_after and the retry layer's reading of the headers are one parser:
    # the exhausted request limit's 2 s, not NaN and not the token limit's 30 s.
    assert waits.waits == [2.0]


# -- the wrapper ---------------------------------------------------------------------------------


class Warming(ModelBase):
    def __init__(self) -> None:
        super().__init__(ModelInfo(provider="test", name="warming", open_weights=True))
        self.warmed = 0
        self.closed = 0

    def _generate(self, request: Request) -> Completion:
        return Completion(text="ok", finish_reason="stop", usage=Usage(), model=self.id)

    def warm_up(self) -> None:
        self.warmed += 1

    def close(self) -> None:
        self.closed += 1


def test_the_retrying_wrapper_passes_warm_up_and_close_through() -> None:
    inner = Warming()
    model = with_retry(inner)
    assert isinstance(model, Model)
    assert (model.id, model.info) == (inner.id, inner.info)
    assert repr(model) == f"<retrying {inner!r}>"
    model.warm_up()
    assert inner.warmed == 1
    with model:
        pass
    assert inner.closed == 1
    asyncio.run(model.aclose())
    assert inner.closed == 2
