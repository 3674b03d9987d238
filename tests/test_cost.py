"""Cost accounting: cost_of, local costs, RAPL, the tracker and budgets (prices: test_prices.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from functools import reduce
from pathlib import Path
from typing import Any

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers.openai_server import OpenAIServer, RecordedRequest, ok, stream_break
from helpers.openai_server import _count_prompt_tokens as count_prompt_tokens
from llmcompare import (
    BackendError,
    BudgetExceeded,
    Completion,
    ModelBase,
    ModelInfo,
    Request,
    Result,
    Usage,
)
from llmcompare.backends.chatgpt import ChatGPTModel, ChatGPTOptions
from llmcompare.backends.fake import FunctionModel, ScriptedModel
from llmcompare.batch import generate_many
from llmcompare.comparison import compare
from llmcompare.cost import (
    GENERIC_CLOUD_VM,
    Budget,
    Cost,
    CostTracker,
    LocalHardware,
    UnpricedModelWarning,
    cost_of,
    get_price,
    input_token_bound,
    register_price,
    reset_prices,
)
from llmcompare.record import Comparison
from llmcompare.retry import RetryPolicy
from llmcompare.testing import no_wait


@pytest.fixture(autouse=True)
def _fresh_prices() -> Iterator[None]:
    reset_prices()
    yield
    reset_prices()


def done(
    model: str = "chatgpt:gpt-4o-mini",
    response_model: str | None = None,
    compute_s: float | None = None,
    **usage: int | bool,
) -> Completion:
    return Completion(
        text="answer",
        finish_reason="stop",
        usage=Usage(**usage),
        model=model,
        response_model=response_model,
        compute_s=compute_s,
    )


# -- cost_of -------------------------------------------------------------------------------------


def test_cached_input_at_the_cached_price_and_reasoning_as_output() -> None:
    cost = cost_of(
        done(input_tokens=2000, cache_read_tokens=1000, output_tokens=500, reasoning_tokens=400)
    )
    # gpt-4o-mini: 1000 x 0.15 + 1000 x 0.075 + 500 x 0.60, per million tokens.
    assert cost.usd == Decimal("0.000525")
    assert isinstance(cost.usd, Decimal)
    assert cost.status == "priced"
    # An API model's energy is an estimate, labelled as one, with its range.
    assert cost.energy == "estimated-api"
    assert cost.kwh_range is not None
    assert cost.kwh is not None
    assert cost.kwh_range[0] <= cost.kwh <= cost.kwh_range[1]
    assert "https://developers.openai.com/api/docs/pricing (as of 2026-10-12)" in cost.source
    # The 400 reasoning tokens are output tokens: 400 x 0.60 per million.
    assert cost.reasoning_usd == Decimal("0.00024")


def test_cached_tokens_of_a_model_without_cached_price_are_charged_as_input() -> None:
    cost = cost_of(done("chatgpt:gpt-4", input_tokens=1000, cache_read_tokens=500))
    assert cost.usd == Decimal("0.03")
    assert "no cached price" in cost.assumptions


def test_estimated_usage_gives_an_estimated_cost() -> None:
    cost = cost_of(done(input_tokens=100, output_tokens=10, estimated=True))
    assert cost.status == "estimated"
    assert cost.usd > 0


# issue 22, item 22 (the backend's check: tests/backends/test_chatgpt.py)
def test_implausible_usage_is_unpriced_with_its_reason_in_a_sum_too() -> None:
    why = "implausible usage reported: completion_tokens=10**15 for max_tokens=16"
    flagged = Completion(
        text="answer",
        finish_reason="stop",
        usage=Usage(input_tokens=5, output_tokens=1, estimated=True, implausible=why),
        model="chatgpt:gpt-4o-mini",
    )
    cost = cost_of(flagged)
    assert (cost.status, cost.usd) == ("unpriced", 0)
    assert why in cost.assumptions
    total = cost + cost_of(done(input_tokens=1000))
    assert total.status == "unpriced"
    assert total.usd == Decimal("0.00015")
    assert why in total.assumptions


def test_unknown_model_is_unpriced_with_one_warning_never_a_silent_zero() -> None:
    with pytest.warns(UnpricedModelWarning, match="chatgpt:mystery-1"):
        cost = cost_of(done("chatgpt:mystery-1", input_tokens=100))
    assert cost.status == "unpriced"
    assert cost.usd == 0
    assert "no price known" in cost.assumptions
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cost_of(done("chatgpt:mystery-1")).status == "unpriced"  # warned once only
    register_price("mystery-1", input="1", output="1")
    assert cost_of(done("chatgpt:mystery-1", input_tokens=10**6)).usd == Decimal(1)


def test_cost_is_linear_in_usage() -> None:
    a = Usage(input_tokens=1234, cache_read_tokens=1000, output_tokens=77, reasoning_tokens=7)
    b = Usage(input_tokens=99, output_tokens=1001)
    cost_a = cost_of(done(input_tokens=0).model_copy(update={"usage": a}))
    cost_b = cost_of(done(input_tokens=0).model_copy(update={"usage": b}))
    cost_ab = cost_of(done(input_tokens=0).model_copy(update={"usage": a + b}))
    assert (cost_a + cost_b).usd == cost_ab.usd


# -- Cost arithmetic (property tests) ------------------------------------------------------------

amounts = st.decimals(
    min_value=0, max_value=10**6, places=12, allow_nan=False, allow_infinity=False
)
costs = st.builds(
    Cost,
    usd=amounts,
    status=st.sampled_from(["priced", "estimated", "unpriced"]),
    kwh=st.none() | amounts,
    g_co2=st.none() | amounts,
    source=st.sampled_from(["", "https://a", "https://b", "local hardware: x"]),
    assumptions=st.sampled_from(["", "cached as input", "default hardware rates"]),
)


@given(costs, costs, costs)
def test_cost_sums_associate_and_commute_exactly(a: Cost, b: Cost, c: Cost) -> None:
    left, right = (a + b) + c, a + (b + c)
    assert left == right
    assert (a + b).usd == (b + a).usd
    assert (a + b).status == (b + a).status
    for total in (left, right):
        assert isinstance(total.usd, Decimal)
        assert total.usd == a.usd + b.usd + c.usd  # exact: no float anywhere


@given(st.lists(costs, max_size=8))
def test_sum_of_costs_keeps_the_worst_status(items: list[Cost]) -> None:
    total = sum(items, Cost())
    assert total == reduce(lambda x, y: x + y, items, Cost())
    # sum() without a start value begins at the int 0, which Cost must absorb; the leading
    # zero Cost keeps the check meaningful for an empty list too.
    assert sum([Cost(), *items]) == total
    ranks = ["priced", "estimated", "unpriced"]
    worst = max((ranks.index(c.status) for c in items), default=0)
    assert total.status == ranks[worst]
    known = [c.kwh for c in items if c.kwh is not None]
    assert total.kwh == (sum(known, Decimal(0)) if known else None)


@given(st.integers(0, 10**7), st.integers(0, 10**7), st.integers(0, 10**7), st.integers(0, 10**6))
def test_api_costs_are_exact_decimals(inp: int, cached: int, out: int, reasoning: int) -> None:
    usage = Usage(
        input_tokens=inp + cached,
        cache_read_tokens=cached,
        output_tokens=out + reasoning,
        reasoning_tokens=reasoning,
    )
    cost = cost_of(done(input_tokens=0).model_copy(update={"usage": usage}))
    expected = (
        Decimal(inp) * Decimal("0.15")
        + Decimal(cached) * Decimal("0.075")
        + Decimal(out + reasoning) * Decimal("0.60")
    ) / Decimal(10**6)
    assert cost.usd == expected


# -- local models --------------------------------------------------------------------------------


def test_local_cost_from_compute_time_on_the_default_vm() -> None:
    cost = cost_of(done("llama:smollm2", compute_s=36.0, input_tokens=10, output_tokens=5))
    assert cost.status == "estimated"  # generic default rates are an assumption
    assert cost.usd == Decimal("0.0816") * 36 / 3600
    assert cost.kwh == Decimal("11.5") * 36 / 3_600_000
    assert cost.g_co2 == cost.kwh * 436
    assert "2-vCPU" in cost.source
    assert "11.5 W" in cost.assumptions
    assert "m7g.large" in cost.assumptions
    assert GENERIC_CLOUD_VM.usd_per_hour == Decimal("0.0816")


def test_local_cost_on_your_own_hardware_is_priced() -> None:
    laptop = LocalHardware(
        name="laptop", usd_per_hour=0, watts=45, usd_per_kwh="0.30", g_co2_per_kwh=250
    )
    cost = cost_of(done("llama:smollm2", compute_s=80_000.0), hardware=laptop)  # 45 W x 80000 s
    assert cost.status == "priced"
    assert cost.kwh == Decimal(1)
    assert cost.usd == Decimal("0.30")
    assert cost.g_co2 == Decimal(250)
    assert "default hardware" not in cost.assumptions


def test_measured_energy_replaces_the_configured_watts() -> None:
    cost = cost_of(done("llama:smollm2", compute_s=10.0), energy_j=7200.0)
    assert cost.kwh == Decimal("0.002")
    assert "RAPL" in cost.assumptions


def test_local_and_api_costs_compare_per_1k_tokens() -> None:
    api = cost_of(done(input_tokens=1000, output_tokens=1000))
    assert api.per_1k_tokens(2000) == Decimal("0.000375")
    assert Cost().per_1k_tokens(0) is None


def priced_model(name: str = "gpt-4o-mini", reply: str = "four words of reply") -> ScriptedModel:
    return ScriptedModel(default=reply, name=name)


def test_tracker_totals_by_model_and_overall() -> None:
    tracker = CostTracker()
    mini = tracker.wrap(priced_model("gpt-4o-mini"))
    big = tracker.wrap(priced_model("gpt-4o"))
    for _ in range(3):
        mini.generate("one two")
    big.generate("one two three")
    by_model = tracker.by_model
    assert by_model["fake:gpt-4o-mini"].requests == 3
    assert by_model["fake:gpt-4o-mini"].usage == Usage(input_tokens=6, output_tokens=12)
    assert by_model["fake:gpt-4o"].usage == Usage(input_tokens=3, output_tokens=4)
    total = tracker.total
    assert total.requests == 4
    assert total.usage == Usage(input_tokens=9, output_tokens=16)
    assert (
        total.cost.usd == by_model["fake:gpt-4o-mini"].cost.usd + by_model["fake:gpt-4o"].cost.usd
    )
    assert total.cost.usd == tracker.spent_usd
    assert total.cost.status == "priced"
    assert "fake:gpt-4o-mini: 3 requests" in tracker.summary()


def test_tracker_is_thread_safe() -> None:
    tracker = CostTracker(Budget(max_usd=Decimal(1000)))
    model = tracker.wrap(priced_model())

    def work() -> None:
        for _ in range(100):
            model.generate("one two three")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = tracker.total
    assert total.requests == 800
    assert total.usage == Usage(input_tokens=2400, output_tokens=3200)
    assert total.cost.usd == (2400 * Decimal("0.15") + 3200 * Decimal("0.60")) / 10**6
    assert tracker.remaining_usd == Decimal(1000) - total.cost.usd


def test_record_adds_completions_from_elsewhere() -> None:
    with CostTracker() as tracker:
        cost = tracker.record(done(input_tokens=10**6))
    assert cost.usd == Decimal("0.15")
    assert tracker.total.cost.usd == Decimal("0.15")
    assert tracker.by_model["chatgpt:gpt-4o-mini"].requests == 1


def test_failed_requests_count_as_sent_and_cost_nothing() -> None:
    tracker = CostTracker(Budget(max_requests=3))
    model = tracker.wrap(
        ScriptedModel(
            [BackendError("boom", model_id="fake:x", retryable=True), "ok", "ok", "ok"],
            name="gpt-4o-mini",
        )
    )
    with pytest.raises(BackendError):
        model.generate("hi")
    model.generate("hi")
    model.generate("hi")
    with pytest.raises(BudgetExceeded, match="max_requests=3"):
        model.generate("hi")
    total = tracker.total
    assert (total.requests, total.failed, total.refused) == (3, 1, 1)


def test_over_budget_request_is_refused_before_it_is_sent() -> None:
    inner = priced_model()
    tracker = CostTracker(Budget(max_tokens=100))
    model = tracker.wrap(inner)
    with pytest.raises(BudgetExceeded, match="does not fit in max_tokens=100"):
        model.generate("hi")  # no max_tokens: the 4096-token default assumption does not fit
    assert inner.history == []
    model.generate("hi", max_tokens=10)
    assert len(inner.history) == 1


def test_a_usd_budget_refuses_models_without_a_price() -> None:
    inner = ScriptedModel(default="ok", name="mystery-2")
    model = CostTracker(Budget(max_usd="1")).wrap(inner)
    with pytest.raises(BudgetExceeded, match="no price is known"):
        model.generate("hi")
    assert inner.history == []


def bounded_usage(request: Request, text: str) -> Usage:
    # Real usage equal to the worst case the tracker reserves: the tightest budget test.
    assert request.max_tokens is not None
    return Usage(input_tokens=input_token_bound(request), output_tokens=request.max_tokens)


def test_budget_holds_under_200_concurrent_requests_when_50_fit() -> None:
    request_cost = (
        input_token_bound(Request.of("q")) * Decimal("0.15") + 100 * Decimal("0.60")
    ) / 10**6
    budget = Budget(max_usd=request_cost * 50)
    tracker = CostTracker(budget)
    sent: list[Decimal] = []
    lock = threading.Lock()

    async def reply(request: Request) -> str:
        with lock:
            sent.append(tracker.spent_usd)
            assert tracker.spent_usd <= budget.max_usd  # type: ignore[operator]
        await asyncio.sleep(0.001)
        return "answer"

    model = FunctionModel(reply, name="gpt-4o-mini", usage=bounded_usage)
    results = generate_many(
        model, ["q"] * 200, concurrency=200, tracker=tracker, max_tokens=100, progress=False
    )
    assert len(sent) == 50  # exactly what fits, as usage equals the worst case
    assert sum(r.ok for r in results) == 50
    refused = [r.error for r in results if not r.ok]
    assert all(isinstance(e, BudgetExceeded) for e in refused)
    assert tracker.spent_usd == budget.max_usd
    assert tracker.total.refused == 150


async def test_budget_holds_for_concurrent_async_calls_with_smaller_real_usage() -> None:
    budget = Budget(max_tokens=50 * (input_token_bound(Request.of("q")) + 20))
    tracker = CostTracker(budget)
    inner = ScriptedModel(default="short reply", name="gpt-4o-mini")
    model = tracker.wrap(inner)

    async def one() -> bool:
        try:
            await model.agenerate("q", max_tokens=20)
        except BudgetExceeded:
            return False
        return True

    outcome = await asyncio.gather(*(one() for _ in range(200)))
    assert sum(outcome) == len(inner.history) <= 200
    assert sum(outcome) >= 50  # reservations came back as real (smaller) usage settled
    total = tracker.total.usage
    assert total.input_tokens + total.output_tokens <= budget.max_tokens  # type: ignore[operator]


def test_streams_reserve_at_their_first_read_and_settle_or_release() -> None:
    tracker = CostTracker(Budget(max_usd="1"))
    model = tracker.wrap(priced_model())
    full = tracker.remaining_usd
    with model.stream("hi there", max_tokens=50) as stream:
        assert tracker.remaining_usd == full  # nothing is sent before the first read
        first = next(stream).text
        assert tracker.remaining_usd is not None
        assert full is not None
        assert tracker.remaining_usd < full  # reserved while in flight
        text = first + "".join(c.text for c in stream)
    assert text == "four words of reply"
    assert stream.completion.text == text
    assert tracker.total.requests == 1
    spent = tracker.spent_usd
    assert tracker.remaining_usd == Decimal(1) - spent

    stream = model.stream("never read", max_tokens=50)
    stream.close()  # closed unread: nothing was sent, nothing is counted
    assert tracker.remaining_usd == Decimal(1) - spent
    assert tracker.total.requests == 1
    assert tracker.total.failed == 0

    stream = model.stream("read once", max_tokens=50)
    next(stream)
    stream.close()  # closed after the first chunk: sent, so counted as failed, and released
    assert tracker.remaining_usd == Decimal(1) - spent
    assert tracker.total.failed == 1


def test_an_unread_stream_cannot_hold_a_local_probe() -> None:
    tracker = CostTracker(Budget(max_usd="1000"), hardware=LocalHardware(usd_per_hour=3600))
    model = tracker.wrap(LocalBatcher())
    idle = model.stream("a", max_tokens=1)  # created, never read: it holds nothing
    assert model.generate("b", max_tokens=1).text == "ok"
    del idle


def test_a_probe_that_fails_is_followed_by_another_not_by_lost_rows() -> None:
    class FirstFails(LocalBatcher):
        def _generate_batch(self, requests: Sequence[Request]) -> list[Completion | Exception]:
            if self.sent == 0:
                self.sent += len(requests)
                return [BackendError("out of memory", model_id=self.id) for _ in requests]
            return super()._generate_batch(requests)

    tracker = CostTracker(Budget(max_usd="1000"), hardware=LocalHardware(usd_per_hour=3600))
    results = generate_many(
        FirstFails(), list("abcdef"), concurrency=3, tracker=tracker, max_tokens=1
    )
    assert [r.ok for r in results] == [False, True, True, True, True, True]


def test_a_short_probe_does_not_let_long_answers_overrun_the_budget() -> None:
    class Decoder(ModelBase):
        """Local: the prompt is nearly free, each output token costs 0.02 s of compute."""

        def __init__(self) -> None:
            super().__init__(ModelInfo(provider="llama", name="decoder", open_weights=True))

        def _generate(self, request: Request) -> Completion:
            out = request.max_tokens or 1
            return Completion(
                text="x " * out,
                finish_reason="length",
                usage=Usage(input_tokens=5, output_tokens=out),
                model=self.id,
                compute_s=0.001 + 0.02 * out,
            )

    hardware = LocalHardware(usd_per_hour=3600)  # a dollar per second
    tracker = CostTracker(Budget(max_usd="0.1"), hardware=hardware)
    model = tracker.wrap(Decoder())
    model.generate("probe", max_tokens=1)  # 0.021 $, one token: the rate per output token
    prompts = ["long answer please"] * 16
    generate_many(model, prompts, concurrency=8, max_tokens=200, progress=False)
    # Each long answer costs ~4 $: none fits next to the probe, so none is sent.
    assert tracker.spent_usd <= Decimal("0.1")


async def test_async_streams_are_tracked() -> None:
    tracker = CostTracker()
    model = tracker.wrap(priced_model())
    stream = model.astream("hi")
    chunks = [c.text async for c in stream]
    assert "".join(chunks) == "four words of reply"
    assert tracker.total.usage.output_tokens == 4


class LocalBatcher(ModelBase):
    """A local model with its own batching that reports compute time."""

    def __init__(self) -> None:
        super().__init__(ModelInfo(provider="llama", name="tiny", open_weights=True))
        self.sent = 0

    def _generate(self, request: Request) -> Completion:
        return self._generate_batch([request])[0]  # type: ignore[return-value]

    def _generate_batch(self, requests: Sequence[Request]) -> list[Completion | Exception]:
        self.sent += len(requests)
        return [
            Completion(
                text="ok",
                finish_reason="stop",
                usage=Usage(input_tokens=5, output_tokens=1),
                model=self.id,
                compute_s=3.6,
            )
            for _ in requests
        ]


def test_a_tracked_model_passes_warm_up_and_close_through() -> None:
    class Warming(ScriptedModel):
        warmed = 0
        closed = 0

        def warm_up(self) -> None:
            self.warmed += 1

        def close(self) -> None:
            self.closed += 1

    inner = Warming(default="ok")
    with CostTracker() as tracker:
        model = tracker.wrap(inner)
        assert repr(model) == f"<tracked {inner!r}>"
        model.warm_up()  # a comparison warms the raw model; a user may well warm the wrapper
        assert inner.warmed == 1
        with model:
            model.generate("hi")
        assert inner.closed == 1
        assert tracker.total.requests == 1


def test_batch_through_the_tracker_refuses_what_does_not_fit() -> None:
    tracker = CostTracker(Budget(max_requests=3))
    inner = LocalBatcher()
    results = tracker.wrap(inner).generate_batch(["a", "b", "c", "d", "e"])
    assert inner.sent == 3
    assert [r.ok for r in results] == [True, True, True, False, False]
    assert isinstance(results[4].error, BudgetExceeded)
    total = tracker.total
    assert total.cost.kwh == Decimal("11.5") * Decimal("3.6") * 3 / 3_600_000
    assert total.cost.status == "estimated"


def test_local_usd_budget_holds_after_a_probe_measures_the_cost() -> None:
    hardware = LocalHardware(usd_per_hour=3600)  # a dollar per second, to make it obvious
    tracker = CostTracker(Budget(max_usd="400"), hardware=hardware)
    inner = LocalBatcher()  # 3.6 s of compute and one output token a request: $3.60 a token
    model = tracker.wrap(inner)
    # The first request runs alone (a probe): nothing bounds a local cost before it is measured.
    assert tracker.needs_probe(model.id)
    model.generate("a", max_tokens=1)
    assert not tracker.needs_probe(model.id)
    # From then on each request reserves $3.60 x (its input bound + max_tokens) before it goes.
    worst = Decimal("3.6") * (input_token_bound(Request.of("b")) + 1)
    sent = 1
    for _ in range(100):
        try:
            model.generate("b", max_tokens=1)
        except BudgetExceeded:
            break
        sent += 1
    else:
        pytest.fail("the budget never refused a request")
    assert inner.sent == sent
    assert tracker.spent_usd == Decimal("3.6") * sent
    assert tracker.spent_usd <= Decimal(400)  # the budget held
    assert tracker.spent_usd + worst > Decimal(400)  # and only what could not fit was refused
    assert tracker.total.cost.status == "priced"


def test_a_local_probe_goes_alone_and_the_rest_of_its_batch_is_not_sent() -> None:
    tracker = CostTracker(Budget(max_usd="1000"), hardware=LocalHardware(usd_per_hour=3600))
    inner = LocalBatcher()
    results = tracker.wrap(inner).generate_batch(["a", "b", "c"], max_tokens=1)
    assert inner.sent == 1
    assert [r.ok for r in results] == [True, False, False]
    assert "runs alone" in str(results[1].error)
    assert tracker.total.refused == 0  # waiting for a probe is not a refusal by the budget


def test_generate_many_sends_a_local_probe_first_then_batches() -> None:
    tracker = CostTracker(Budget(max_usd="1000"), hardware=LocalHardware(usd_per_hour=3600))
    inner = LocalBatcher()
    results = generate_many(inner, ["a", "b", "c", "d"], tracker=tracker, max_tokens=1)
    assert all(r.ok for r in results)
    assert inner.sent == 4
    assert tracker.spent_usd == Decimal("3.6") * 4


def test_budget_values_are_decimal_and_validated() -> None:
    assert Budget(max_usd="0.10").max_usd == Decimal("0.10")
    with pytest.raises(pydantic.ValidationError):
        Budget(max_usd=-1)
    with pytest.raises(pydantic.ValidationError):
        Budget(max_requests=5, surprise=1)  # type: ignore[call-arg]


def test_measured_energy_on_a_completion_reaches_its_cost_with_the_method() -> None:
    measured = Completion(
        text="ok",
        finish_reason="stop",
        usage=Usage(input_tokens=5, output_tokens=1),
        model="llama:tiny",
        compute_s=2.0,
        energy_j=7200.0,  # 2 Wh
        energy_method="measured-nvml",
    )
    cost = cost_of(measured)
    assert cost.kwh == Decimal("0.002")
    assert cost.energy == "measured-nvml"
    assert "NVML" in cost.assumptions
    estimated = cost_of(measured.model_copy(update={"energy_j": None, "energy_method": None}))
    assert estimated.energy == "estimated"
    assert estimated.kwh == pytest.approx(Decimal("11.5") * 2 / 3_600_000, abs=Decimal("1e-12"))
    assert (cost + estimated).energy == "mixed"
    assert (cost + cost).energy == "measured-nvml"
    tracker = CostTracker()
    tracker.record(measured)
    assert tracker.total.cost.kwh == Decimal("0.002")
    assert tracker.total.cost.energy == "measured-nvml"


# -- money the server counts (issue 22) ------------------------------------------------------------


def server_cost(requests: Sequence[RecordedRequest]) -> Decimal:
    """What the server would bill for the chat requests it received, at gpt-4o-mini's prices.

    Every request that reached the server is billed in full: the server answers it (the echo,
    cut at max_tokens) whether or not the client is still waiting.
    """
    price = get_price("chatgpt:gpt-4o-mini")
    assert price is not None
    total = Decimal(0)
    for r in requests:
        body = r.body
        words = len(body["messages"][-1]["content"].split())
        out = min(words, body.get("max_completion_tokens") or body.get("max_tokens") or words)
        total += (count_prompt_tokens(body["messages"]) * price.input + out * price.output) / 10**6
    return total


# issue 22, item 2
def test_a_dollar_budget_bounds_what_timed_out_requests_may_be_billed() -> None:
    prompts = [" ".join(f"word{i}x{j}" for j in range(300)) for i in range(20)]
    budget = Budget(max_usd=Decimal("0.001"))
    with OpenAIServer() as server, no_wait():
        server.default = ok(delay=0.4)  # every reply comes after the client gave up
        model = ChatGPTModel("gpt-4o-mini", ChatGPTOptions(base_url=server.url, timeout=0.1))
        record = compare([model], prompts, budget=budget, concurrency=1, progress=False)
        billed = server_cost(server.chat_requests)
        reached = len(server.chat_requests)
    assert reached >= 1
    assert billed <= budget.max_usd  # type: ignore[operator]
    # The rows say what may be billed: the attempts that reached the server are charged.
    charged = [r.cost for r in record.rows if r.error is not None and r.cost is not None]
    assert charged
    assert all(c.status == "estimated" and c.usd > 0 for c in charged)
    assert any("may be billed" in c.assumptions for c in charged)
    spent = record.summaries[0].cost.usd
    assert billed <= spent <= budget.max_usd  # type: ignore[operator]


def bound_of(messages: Sequence[str]) -> int:
    """A request's input bound, by hand: UTF-8 bytes of each message, 8 a message, 32 a request."""
    return 32 + sum(8 + len(m.encode()) for m in messages)


def charge_of(messages: Sequence[str], max_tokens: int) -> Decimal:
    """What a budget charges an attempt that timed out, by hand: its worst case.

    The input bound at gpt-4o-mini's $0.15 per million input tokens, and max_tokens at $0.60
    per million.
    """
    return (bound_of(messages) * Decimal("0.15") + max_tokens * Decimal("0.60")) / 10**6


LONG_PROMPTS = [" ".join(f"word{i}x{j}" for j in range(300)) for i in range(20)]


@contextlib.contextmanager
def timing_out(out: Path) -> Iterator[tuple[OpenAIServer, Callable[[Budget], Comparison]]]:
    """A server whose every reply comes long after the client gave up, and a run on ``out``."""
    with OpenAIServer() as server, no_wait():
        server.default = ok(delay=5)
        model = ChatGPTModel("gpt-4o-mini", ChatGPTOptions(base_url=server.url, timeout=0.1))

        def run(budget: Budget) -> Comparison:
            return compare(
                [model],
                LONG_PROMPTS,
                budget=budget,
                concurrency=1,
                out=out,
                cache=False,
                progress=False,
            )

        yield server, run


def test_a_resumed_run_counts_what_its_timed_out_requests_were_charged(tmp_path: Path) -> None:
    budget = Budget(max_usd=Decimal("0.003"))  # room for five attempts at most
    largest = max(charge_of([p], 256) for p in LONG_PROMPTS)  # compare's max_tokens: 256
    out = tmp_path / "run"
    with timing_out(out) as (server, run):
        # The first process stops after two attempts, with money left in the budget, as a
        # Ctrl-C would leave it: charged failures in the run folder, the rest never sent. (A
        # budget is not part of a run's plan: the next call resumes the same run.)
        first = run(Budget(max_usd=budget.max_usd, max_requests=2))
        assert len(server.chat_requests) == 2
        resumed = run(budget)
        bodies = [r.body for r in server.chat_requests]
        charges = [
            charge_of([m["content"] for m in b["messages"]], b["max_tokens"]) for b in bodies
        ]
        # A third process reads both processes' rows back, each once: a budget with room for
        # exactly one more attempt sends exactly one.
        run(Budget(max_usd=sum(charges) + largest))
        third = len(server.chat_requests) - len(bodies)
    assert all(r.error is not None for r in (*first.rows, *resumed.rows))  # no reply arrived
    # Every attempt the server received from the first two processes fits in the budget...
    assert len(bodies) > 2
    assert sum(charges) <= budget.max_usd  # type: ignore[operator]
    # ...and the resumed run used it: no room is left for the largest attempt.
    assert budget.max_usd - sum(charges) < largest  # type: ignore[operator]
    # The resumed record's spending is every charge, the first process's included.
    assert resumed.summaries[0].cost.usd == sum(charges)
    assert sum(r.cost.usd for r in resumed.rows if r.cost is not None) == sum(charges)
    assert third == 1
    # The rows say what each failure was charged: the first, one request timed out twice.
    lines = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    written = [Decimal(x["error"]["charged_usd"]) for x in lines if "charged_usd" in x["error"]]
    assert written[0] == charges[0] + charges[1]
    assert sum(written[:-1]) == sum(charges)


def tokens_of(body: dict[str, Any]) -> int:
    """The tokens a budget charges an attempt that timed out, by hand: its worst case."""
    return bound_of([m["content"] for m in body["messages"]]) + int(body["max_tokens"])


def test_a_resumed_runs_token_budget_counts_the_tokens_its_timed_out_requests_were_charged(
    tmp_path: Path,
) -> None:
    largest = max(bound_of([p]) + 256 for p in LONG_PROMPTS)  # compare's max_tokens: 256
    out = tmp_path / "run"
    with timing_out(out) as (server, run):
        run(Budget(max_requests=2))  # stopped after two attempts, both timed out
        bodies = [r.body for r in server.chat_requests]
        spent = sum(tokens_of(b) for b in bodies)
        # Room for exactly one more attempt next to the two charged (counted afresh: four).
        run(Budget(max_tokens=spent + largest))
        sent = len(server.chat_requests)
    assert len(bodies) == 2
    assert sent == 3
    lines = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    assert sum(x["error"].get("charged_tokens", 0) for x in lines) == spent + tokens_of(
        server.chat_requests[2].body
    )


def test_generate_many_resumed_from_its_results_file_counts_what_the_earlier_run_spent(
    tmp_path: Path,
) -> None:
    file = tmp_path / "results.jsonl"
    with OpenAIServer() as server, no_wait():
        server.script(ok("one", prompt_tokens=11, completion_tokens=3), ok("late", delay=5))
        model = ChatGPTModel("gpt-4o-mini", ChatGPTOptions(base_url=server.url, timeout=0.1))

        def run(budget: Budget) -> tuple[list[Result], CostTracker]:
            tracker = CostTracker(budget)
            results = generate_many(
                model,
                ["a", "b", "c"],
                concurrency=1,
                retry=None,
                tracker=tracker,
                results_file=file,
                max_tokens=10,
                progress=False,
            )
            return results, tracker

        first, _ = run(Budget(max_requests=2))  # a answered, b timed out, c refused
        assert [r.ok for r in first] == [True, False, False]
        assert len(server.chat_requests) == 2
        server.default = ok("again", prompt_tokens=11, completion_tokens=3)
        # Three requests in all: the two the first run sent count, so one more is sent.
        second, tracker = run(Budget(max_requests=3))
        assert len(server.chat_requests) == 3
    assert second[0].unwrap().text == "one"  # read back, not sent again
    assert [r.ok for r in second[1:]] == [True, False]
    assert isinstance(second[2].error, BudgetExceeded)
    answer = (11 * Decimal("0.15") + 3 * Decimal("0.60")) / 10**6
    # Spent: the answer read back, b's charge (its worst case), and b's answer now.
    assert tracker.spent_usd == 2 * answer + charge_of(["b"], 10)
    assert (tracker.total.requests, tracker.total.unanswered) == (3, 1)


@pytest.mark.filterwarnings("ignore::llmcompare.cost.UnpricedModelWarning")  # a fake model
def test_one_tracker_resuming_its_own_results_file_counts_each_request_once(
    tmp_path: Path,
) -> None:
    tracker = CostTracker(Budget(max_requests=3))
    model = ScriptedModel(default="ok")
    file = tmp_path / "results.jsonl"
    generate_many(model, ["a", "b"], tracker=tracker, results_file=file, progress=False)
    # Again, one more prompt, the same tracker (a notebook's retry): a and b are read back,
    # already counted by this tracker; c is the third request and fits.
    again = generate_many(
        model, ["a", "b", "c"], tracker=tracker, results_file=file, progress=False
    )
    assert [r.ok for r in again] == [True, True, True]
    assert len(model.history) == 3
    assert tracker.total.requests == 3
    # Another process (its own tracker) answers d and e in the same file meanwhile: the first
    # tracker, resuming once more, counts those two it had not seen, and no more.
    prompts = ["a", "b", "c", "d", "e"]
    generate_many(model, prompts, tracker=CostTracker(), results_file=file, progress=False)
    assert len(model.history) == 5
    generate_many(model, prompts, tracker=tracker, results_file=file, progress=False)
    assert len(model.history) == 5
    assert tracker.total.requests == 5


@pytest.mark.filterwarnings("ignore::llmcompare.cost.UnpricedModelWarning")  # on purpose
def test_an_unpriced_models_timeouts_are_charged_their_tokens_and_a_token_budget_holds(
    tmp_path: Path,
) -> None:
    attempt = bound_of(["hi"]) + 10  # its worst case: the input bound and max_tokens
    file = tmp_path / "results.jsonl"
    with OpenAIServer() as server, no_wait():
        server.default = ok(delay=5)  # every reply comes long after the client gave up
        # A self-hosted model behind an OpenAI-compatible server: no price in any table.
        model = ChatGPTModel("my-own-llama", ChatGPTOptions(base_url=server.url, timeout=0.1))

        def run(tokens: int) -> Result:
            (result,) = generate_many(
                model,
                ["hi"],
                retry=RetryPolicy(attempts=5),
                tracker=CostTracker(Budget(max_tokens=tokens)),
                results_file=file,
                max_tokens=10,
                progress=False,
            )
            return result

        # Room for two and a half attempts: two are sent, the third would pass the budget.
        first = run(2 * attempt + attempt // 2)
        assert len(server.chat_requests) == 2
        # Resumed with room for exactly one more attempt next to the two charged.
        run(3 * attempt)
        assert len(server.chat_requests) == 3
    assert isinstance(first.error, BackendError)
    assert (first.error.charged_tokens, first.error.charged_usd) == (2 * attempt, None)
    lines = [json.loads(line) for line in file.read_text().splitlines()]
    assert [x["error"].get("charged_tokens") for x in lines] == [2 * attempt, attempt]
    assert all("charged_usd" not in x["error"] for x in lines)


# issue 22, item 2
def test_an_answer_after_a_timed_out_attempt_costs_that_attempt_too() -> None:
    tracker = CostTracker(Budget(max_usd="1"))
    with OpenAIServer() as server, no_wait():
        server.script(ok("late", delay=0.4), ok("in time"), stream_break(after_chunks=1))
        model = ChatGPTModel("gpt-4o-mini", ChatGPTOptions(base_url=server.url, timeout=0.1))
        first, cut = generate_many(
            model,
            ["hi", "there"],
            concurrency=1,
            retry=RetryPolicy(attempts=2),
            tracker=tracker,
            max_tokens=10,
            stream=True,
            progress=False,
        )
        assert len(server.chat_requests) == 3
    # The first request timed out once, then answered: both attempts are on its answer.
    done = first.unwrap()
    assert done.text == "in time"
    worst = (input_token_bound(Request.of("hi")) * Decimal("0.15") + 10 * Decimal("0.6")) / 10**6
    assert done.unanswered_usd == worst
    assert done.unanswered_tokens == input_token_bound(Request.of("hi")) + 10
    assert (
        cost_of(done).usd == worst + cost_of(done.model_copy(update={"unanswered_usd": None})).usd
    )
    assert cost_of(done).status == "estimated"
    # The second was cut mid-stream (not retried: its text had reached the caller): charged,
    # and its error says so.
    assert isinstance(cut.error, BackendError)
    assert cut.error.maybe_billed
    worst_cut = (
        input_token_bound(Request.of("there")) * Decimal("0.15") + 10 * Decimal("0.6")
    ) / 10**6
    assert cut.error.charged_usd == worst_cut
    assert tracker.total.unanswered == 2
    assert tracker.spent_usd == cost_of(done).usd + worst_cut


# issue 22, item 2
def test_without_a_budget_a_request_that_may_be_billed_is_still_charged() -> None:
    timeout = BackendError("timed out", model_id="chatgpt:gpt-4o-mini", maybe_billed=True)
    refused = BackendError("HTTP 500", model_id="chatgpt:gpt-4o-mini", retryable=True)
    tracker = CostTracker()
    model = tracker.wrap(ScriptedModel([timeout, refused], name="gpt-4o-mini"))
    for _ in range(2):
        with pytest.raises(BackendError):
            model.generate("hi", max_tokens=7)
    worst = (input_token_bound(Request.of("hi")) * Decimal("0.15") + 7 * Decimal("0.6")) / 10**6
    assert timeout.charged_usd == worst == tracker.spent_usd
    assert refused.charged_usd is None  # an error status is not billed
    assert (tracker.total.failed, tracker.total.unanswered) == (2, 1)


def test_a_charge_read_back_counts_as_an_unanswered_request_and_its_dollars() -> None:
    tracker = CostTracker(Budget(max_usd="0.001", max_requests=2))
    tracker.record_unanswered("chatgpt:gpt-4o-mini", Decimal("0.0004"))
    total = tracker.total
    assert (total.requests, total.failed, total.unanswered) == (1, 1, 1)
    assert total.cost.usd == tracker.spent_usd == Decimal("0.0004")
    assert total.cost.status == "estimated"
    assert "may be billed" in total.cost.assumptions
    assert tracker.by_model["chatgpt:gpt-4o-mini"].unanswered == 1
    assert tracker.remaining_usd == Decimal("0.0006")
    model = tracker.wrap(ScriptedModel(default="ok", name="gpt-4o-mini"))
    model.generate("hi", max_tokens=5)
    with pytest.raises(BudgetExceeded, match="max_requests=2"):
        model.generate("hi", max_tokens=5)
    with pytest.raises(ValueError, match="finite number of dollars"):
        tracker.record_unanswered("chatgpt:gpt-4o-mini", Decimal(-1))


# issue 22, item 6
def test_a_dollar_budget_under_concurrency_waits_for_requests_in_flight_instead_of_refusing() -> (
    None
):
    budget = Budget(max_usd=Decimal("0.001"))
    prompts = [f"question {i}" for i in range(300)]
    answered: dict[int, int] = {}
    with OpenAIServer() as server:
        server.default = ok(delay=0.005)
        model = ChatGPTModel("gpt-4o-mini", ChatGPTOptions(base_url=server.url))
        for concurrency in (1, 16):
            server.reset()
            server.default = ok(delay=0.005)
            tracker = CostTracker(budget)
            generate_many(
                model,
                prompts,
                concurrency=concurrency,
                tracker=tracker,
                max_tokens=256,
                progress=False,
            )
            answered[concurrency] = len(server.chat_requests)
            assert server_cost(server.chat_requests) <= budget.max_usd  # type: ignore[operator]
            assert tracker.spent_usd <= budget.max_usd  # type: ignore[operator]
    assert answered[1] >= 250
    assert answered[16] >= answered[1] * 0.95


# issue 22, item 6
def test_a_request_never_waits_for_a_stream_its_own_thread_holds() -> None:
    worst = (input_token_bound(Request.of("hi")) * Decimal("0.15") + 10 * Decimal("0.6")) / 10**6
    tracker = CostTracker(Budget(max_usd=worst * 3 / 2))
    model = tracker.wrap(ScriptedModel(default="one two three", name="gpt-4o-mini"))
    with model.stream("hi", max_tokens=10) as stream:
        next(iter(stream))  # the stream's reservation is held from its first read
        # Room comes back only when the stream ends, which this thread would never reach.
        with pytest.raises(BudgetExceeded, match="this thread holds"):
            model.generate("hi", max_tokens=10)
        list(stream)
    assert model.generate("hi", max_tokens=10).text == "one two three"
    assert tracker.total.refused == 1
