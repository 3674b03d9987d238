"""ModelWrapper: every call path forwarded, hooks around each request, latency as the caller waited.

The three built-in wrappers (retry, rate limits, cost tracking) are checked here in every
combination and order, against the bare model as the independent truth.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import llmcompare
from helpers.openai_server import OpenAIServer, ok, rate_limited
from llmcompare import (
    Completion,
    CostTracker,
    Model,
    ModelBase,
    ModelInfo,
    ModelWrapper,
    Request,
    Usage,
    compare,
    with_rate_limit,
    with_retry,
)
from llmcompare.backends.fake import ScriptedModel
from llmcompare.cost import Budget
from llmcompare.retry import RetryPolicy

Wrap = Callable[[Model], Model]

WRAPPERS: dict[str, Wrap] = {
    "retry": lambda m: with_retry(m, RetryPolicy(attempts=3)),
    "ratelimit": lambda m: with_rate_limit(m, rpm=60_000, tpm=10_000_000),
    "tracker": lambda m: CostTracker(Budget(max_requests=1000)).wrap(m),
}
# Every non-empty combination of the three, in every order.
STACKS = [
    stack for n in range(1, len(WRAPPERS) + 1) for stack in itertools.permutations(WRAPPERS, n)
]


def build(stack: Sequence[str], inner: Model) -> Model:
    model = inner
    for name in stack:
        model = WRAPPERS[name](model)
    return model


def bare() -> ScriptedModel:
    return ScriptedModel(default="one two three", name="gpt-4o-mini")


@pytest.mark.parametrize("stack", STACKS, ids="+".join)
def test_wrapped_models_stream_the_same_chunks_as_the_bare_model(stack: Sequence[str]) -> None:
    truth = [c.model_dump() for c in bare().stream("hi")]
    assert len(truth) > 1  # the bare model streams for real, so one chunk would be a failure
    model = build(stack, bare())
    with model.stream("hi") as stream:
        got = [c.model_dump() for c in stream]
    assert got == truth
    assert stream.completion.text == "one two three"
    assert stream.completion.usage == bare().generate("hi").usage


@pytest.mark.parametrize("stack", STACKS, ids="+".join)
async def test_wrapped_models_stream_the_same_chunks_asynchronously(stack: Sequence[str]) -> None:
    truth = [c.model_dump() async for c in bare().astream("hi")]
    model = build(stack, bare())
    stream = model.astream("hi")
    got = [c.model_dump() async for c in stream]
    assert got == truth
    assert stream.completion.text == "one two three"


@pytest.mark.parametrize("stack", STACKS, ids="+".join)
def test_wrapped_models_answer_every_path_like_the_bare_model(stack: Sequence[str]) -> None:
    model = build(stack, bare())
    assert model.id == bare().id
    assert model.generate("hi").text == "one two three"
    results = model.generate_batch(["a", "b", "c"])
    assert [r.unwrap().text for r in results] == ["one two three"] * 3


class Batcher(ModelBase):
    """A backend with its own batching: it records the size of every batch it was handed."""

    def __init__(self) -> None:
        super().__init__(ModelInfo(provider="local", name="batcher", open_weights=True))
        self.batches: list[int] = []

    def _generate(self, request: Request) -> Completion:
        return self._generate_batch([request])[0]  # type: ignore[return-value]

    def _generate_batch(self, requests: Sequence[Request]) -> list[Completion | Exception]:
        self.batches.append(len(requests))
        return [
            Completion(
                text=r.messages[-1].content.upper(),
                finish_reason="stop",
                usage=Usage(input_tokens=1, output_tokens=1),
                model=self.id,
                latency_s=0.25 * (i + 1),  # rows finish one after another, as in a real batch
            )
            for i, r in enumerate(requests)
        ]


class Counting(ModelWrapper):
    """A user's own wrapper: only a before-request hook."""

    def __init__(self, inner: Model) -> None:
        super().__init__(inner)
        self.seen: list[str] = []

    def _before(self, request: Request) -> None:
        self.seen.append(request.messages[-1].content)


def test_a_users_wrapper_with_only_a_before_hook_streams_and_batches() -> None:
    streaming = Counting(bare())
    chunks = [c.text for c in streaming.stream("hi")]
    assert chunks == [c.text for c in bare().stream("hi")]
    assert streaming.native_streaming is True
    assert streaming.seen == ["hi"]

    inner = Batcher()
    batching = Counting(inner)
    assert batching.native_batching is True
    results = batching.generate_batch(["a", "b", "c"])
    assert inner.batches == [3]  # one real batch, not three calls
    assert [r.unwrap().text for r in results] == ["A", "B", "C"]
    # Each row keeps its own latency (plus the tiny time spent in the hooks), not the batch's.
    latencies = [r.unwrap().latency_s for r in results]
    assert latencies == sorted(latencies)
    assert latencies == pytest.approx([0.25, 0.5, 0.75], abs=0.05)
    assert batching.seen == ["a", "b", "c"]


def test_generate_many_drives_a_users_wrapper_through_the_inner_batching() -> None:
    inner = Batcher()
    results = llmcompare.generate_many(Counting(inner), [str(i) for i in range(10)], concurrency=4)
    assert [r.unwrap().text for r in results] == [str(i) for i in range(10)]
    assert inner.batches == [10]  # every pending request: concurrency is for API models


def test_hooks_see_failures_and_streams_closed_early() -> None:
    events: list[str] = []

    class Watch(ModelWrapper[str]):
        def _before(self, request: Request) -> str:
            return request.messages[-1].content

        def _after(self, request: Request, completion: Completion, ticket: str) -> Completion:
            events.append(f"after {ticket}")
            return completion.model_copy(update={"text": completion.text + "!"})

        def _failed(self, request: Request, error: BaseException, ticket: str) -> None:
            events.append(f"failed {ticket} {type(error).__name__}")

    model = Watch(ScriptedModel([ValueError("boom")], default="fine"))
    with pytest.raises(ValueError, match="boom"):
        model.generate("one")
    assert model.generate("two").text == "fine!"
    stream = model.stream("three")
    next(stream)
    stream.close()
    model.stream("four").close()  # never read: nothing was sent, no hook runs
    with model.stream("five") as s:
        assert "".join(c.text for c in s) == "fine"
    assert s.completion.text == "fine!"
    assert events == [
        "failed one ValueError",
        "after two",
        "failed three GeneratorExit",
        "after five",
    ]


# -- latency is what the caller waited ---------------------------------------------------------


def chatgpt(server: OpenAIServer) -> Model:
    from llmcompare.backends.chatgpt import ChatGPTModel, ChatGPTOptions

    return ChatGPTModel("gpt-4o-mini", ChatGPTOptions(base_url=server.url, api_key="sk-test-0"))


def test_a_retried_request_reports_the_whole_wait_over_http() -> None:
    with OpenAIServer() as server, chatgpt(server) as model:
        server.script(rate_limited(retry_after="1"), ok("hello there"))
        start = time.perf_counter()
        completion = with_retry(model).generate("hi")
        waited = time.perf_counter() - start
    assert completion.text == "hello there"
    assert completion.attempts == 2
    assert completion.retry_wait_s == pytest.approx(1.0)
    assert 1.0 <= completion.latency_s <= waited


def test_a_retried_stream_counts_its_first_token_from_the_call() -> None:
    with OpenAIServer() as server, chatgpt(server) as model:
        server.script(rate_limited(retry_after="1"), ok("hello there"))
        with with_retry(model).stream("hi") as stream:
            text = "".join(c.text for c in stream)
    assert text == "hello there"
    done = stream.completion
    assert done.attempts == 2
    assert done.ttft_s is not None
    assert 1.0 <= done.ttft_s <= done.latency_s


def test_a_rate_limit_wait_counts_in_the_latency() -> None:
    # 60 per minute: the bucket holds 0.98 of a request and refills 0.98 a second, so the second
    # request waits about a second after the first (less only by the time the first took).
    model = with_rate_limit(ScriptedModel(default="ok"), rpm=60)
    first = model.generate("a")
    second = model.generate("b")
    assert first.latency_s < 0.5
    assert second.latency_s >= 0.5


# -- rate limits reach compare() and the CLI ----------------------------------------------------


def arrivals(server: OpenAIServer) -> list[float]:
    times = [r.at for r in server.chat_requests]
    return [t - times[0] for t in times]


def assert_under(times: Sequence[float], rpm: float) -> None:
    # The limiter refills at rpm / 61 per second and holds one second's worth (burst_s=1), so
    # requests j > i are admitted at least (j - i - burst) / rate seconds apart. The first request
    # is left out: the client's first call (connection, lazy set-up) can make it arrive after
    # others admitted later.
    rate = rpm / 61.0
    burst = rate * 1.0
    for i, j in itertools.combinations(range(1, len(times)), 2):
        assert times[j] - times[i] >= (j - i - burst) / rate - 0.05, (i, j, times)


def test_compare_keeps_the_request_rate_under_rpm() -> None:
    with OpenAIServer() as server, chatgpt(server) as model:
        comparison = compare(
            [model], [f"question {i}" for i in range(6)], rpm=120, concurrency=6, progress=False
        )
        times = arrivals(server)
    assert len(times) == 6
    assert all(r.completion is not None for r in comparison.rows)
    assert_under(times, 120)
    assert times[-1] - times[1] >= 1.0  # two a second at most, after a burst of two


def test_the_cli_takes_rpm(tmp_path: Path) -> None:
    from helpers.cli import run

    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(f'{{"id": "q{i}", "prompt": "question {i}"}}\n' for i in range(5)))
    with OpenAIServer() as server:
        out = run(
            "compare",
            str(prompts),
            "-m",
            "chatgpt:gpt-4o-mini",
            "--rpm",
            "120",
            "--concurrency",
            "5",
            "--no-progress",
            OPENAI_BASE_URL=server.url,
        )
        assert out.returncode == 0, out.stderr
        times = arrivals(server)
    assert len(times) == 5
    assert_under(times, 120)
    assert times[-1] - times[1] >= 0.5  # two a second at most, after a burst of two


def test_the_cli_refuses_a_non_positive_rpm() -> None:
    from helpers.cli import run

    out = run("compare", "-m", "fake", "--rpm", "0")
    assert out.returncode == 2
    assert "--rpm" in out.stderr


def test_retry_none_means_no_retrying_in_compare_as_in_generate_many() -> None:
    from llmcompare import BackendError

    def flaky() -> ScriptedModel:
        return ScriptedModel(
            [BackendError("busy", model_id="fake:s", retryable=True)], default="ok"
        )

    comparison = compare([flaky()], ["q"], retry=None, progress=False)
    assert comparison.rows[0].completion is None
    results = llmcompare.generate_many(flaky(), ["q"], retry=None)
    assert not results[0].ok
