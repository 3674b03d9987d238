"""Service tiers, cache writes, the reasoning share and API energy in costs and reports.

Prices are OpenAI's (the shipped table, with its check dates): gpt-5.4-mini flex 0.375 / 0.0375
/ 2.25 per million; gpt-5.4-nano has no priority price on OpenAI's page; gpt-5.6-terra bills
cache writes at 2.50.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from decimal import Decimal

import pytest

from helpers import openai_server as srv
from llmcompare import BudgetExceeded, Completion, Usage, compare, get_model
from llmcompare.cost import Budget, CostTracker, UnpricedModelWarning, cost_of
from llmcompare.cost import _api_energy as api_energy
from llmcompare.report import summary_table_rows

M = Decimal(10) ** 6


def done(model: str, tier: str | None = None, **usage: int) -> Completion:
    return Completion(
        text="answer",
        finish_reason="stop",
        model=f"chatgpt:{model}",
        usage=Usage(**usage),
        service_tier=tier,
        latency_s=1.0,
    )


@pytest.fixture(scope="module")
def server() -> Iterator[srv.OpenAIServer]:
    with srv.OpenAIServer() as s:
        yield s


# -- tiers -----------------------------------------------------------------------------------------


def test_flex_is_priced_at_flex() -> None:
    cost = cost_of(done("gpt-5.4-mini", "flex", input_tokens=1000, output_tokens=500))
    assert cost.usd == (1000 * Decimal("0.375") + 500 * Decimal("2.25")) / M
    assert (cost.status, cost.tier) == ("priced", "flex")
    assert "flex tier: gpt-5.4-mini's flex prices" in cost.assumptions
    standard = cost_of(done("gpt-5.4-mini", "default", input_tokens=1000, output_tokens=500))
    assert standard.usd == 2 * cost.usd
    assert standard.tier is None


def test_a_tier_without_a_price_is_unpriced_with_the_reason() -> None:
    with pytest.warns(UnpricedModelWarning, match="no priority price known"):
        cost = cost_of(done("gpt-5.4-nano", "priority", input_tokens=1000, output_tokens=500))
    assert (cost.status, cost.usd, cost.tier) == ("unpriced", Decimal(0), "priority")
    assert "no priority price for gpt-5.4-nano" in cost.assumptions
    assert "not charged the standard rate" in cost.assumptions


def test_fast_is_priced_as_priority_and_auto_as_standard() -> None:
    fast = cost_of(done("gpt-5.4-mini", "fast", input_tokens=10**6))
    auto = cost_of(done("gpt-5.4-mini", "auto", input_tokens=10**6))
    assert (fast.usd, fast.tier) == (Decimal("1.50"), "priority")
    assert (auto.usd, auto.tier) == (Decimal("0.75"), None)


def test_cache_writes_at_the_write_rate_and_reasoning_as_output() -> None:
    cost = cost_of(
        done(
            "gpt-5.6-terra",
            input_tokens=1000,
            cache_read_tokens=200,
            cache_write_tokens=300,
            output_tokens=100,
            reasoning_tokens=60,
        )
    )
    # 500 uncached x 2.00 + 200 cached x 0.20 + 300 written x 2.50 + 100 output x 12.00.
    assert cost.usd == (500 * 2 + 200 * Decimal("0.20") + 300 * Decimal("2.50") + 100 * 12) / M
    assert cost.reasoning_usd == 60 * 12 / M
    # A model without a write price charges writes as input, and says so.
    older = cost_of(done("gpt-5.4-mini", input_tokens=1000, cache_write_tokens=300))
    assert older.usd == 1000 * Decimal("0.75") / M
    assert "cache writes charged at the input price" in older.assumptions


def test_a_budget_refuses_priority_without_a_price_before_sending(
    server: srv.OpenAIServer,
) -> None:
    server.reset()
    tracker = CostTracker(Budget(max_usd=1))
    nano = get_model("chatgpt:gpt-5.4-nano", base_url=server.url, service_tier="priority")
    with nano, pytest.raises(BudgetExceeded, match="no priority price"):
        tracker.wrap(nano).generate("hello")
    assert server.chat_requests == []


def test_a_comparison_records_the_tier_that_served_each_answer_and_splits_the_cost(
    server: srv.OpenAIServer,
) -> None:
    server.reset()
    flex = get_model("chatgpt:gpt-5.4-mini", base_url=server.url, service_tier="flex")
    nano = get_model("chatgpt:gpt-5.4-nano", base_url=server.url, service_tier="priority")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unpriced tier and the dropped temperature
        result = compare(
            {"flex": flex, "nano": nano}, ["a b", "c d e"], cache=False, progress=False
        )
    bodies = [r.body for r in server.chat_requests]
    assert sorted(b["service_tier"] for b in bodies) == ["flex", "flex", "priority", "priority"]
    flex_rows = [r for r in result.rows if r.model == "flex"]
    assert {r.completion.service_tier for r in flex_rows if r.completion} == {"flex"}
    assert all(r.cost is not None and r.cost.tier == "flex" for r in flex_rows)
    summary = {s.model: s for s in result.summaries}
    assert set(summary["flex"].cost_by_tier) == {"flex"}
    assert summary["flex"].cost_by_tier["flex"].usd == summary["flex"].cost.usd > 0
    assert summary["nano"].cost.status == "unpriced"
    assert summary["nano"].cost_by_tier["priority"].status == "unpriced"
    rows = {r[0].strip(): r[1:] for r in summary_table_rows(result)}
    assert rows["flex tier ($)"][0] != "-"
    assert rows["priority tier ($)"] == ["-", "unpriced"]


# -- API energy ------------------------------------------------------------------------------------


def test_api_energy_is_an_estimate_with_its_range_from_ecologits() -> None:
    pytest.importorskip("ecologits")
    cost = cost_of(done("gpt-5.4-mini", input_tokens=100, output_tokens=400))
    assert cost.energy == "estimated-api"
    assert cost.kwh_range is not None
    low, high = cost.kwh_range
    assert 0 < low < high
    assert cost.kwh == ((low + high) / 2).quantize(Decimal("1e-12"))
    assert "EcoLogits" in cost.source
    more = cost_of(done("gpt-5.4-mini", input_tokens=100, output_tokens=4000))
    assert more.kwh is not None
    assert more.kwh > cost.kwh  # more tokens, more energy


def test_without_ecologits_api_energy_is_the_stated_per_token_figure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ecologits", None)
    monkeypatch.setitem(sys.modules, "ecologits.tracers.utils", None)
    api_energy._ecologits_function.cache_clear()
    api_energy._ecologits.cache_clear()
    try:
        cost = cost_of(done("gpt-5.4-mini", input_tokens=10, output_tokens=1000))
    finally:
        api_energy._ecologits_function.cache_clear()
        api_energy._ecologits.cache_clear()
    assert cost.energy == "estimated-api"
    assert cost.kwh_range == (Decimal("0.00006"), Decimal("0.0006"))  # 1000 x 0.06 / 0.6 mWh
    assert "Epoch AI" in cost.source


def test_an_unknown_api_model_still_gets_the_labelled_figure() -> None:
    with pytest.warns(UnpricedModelWarning):
        cost = cost_of(done("house-model-x", input_tokens=10, output_tokens=100))
    assert cost.status == "unpriced"
    assert cost.energy == "estimated-api"
    assert cost.kwh_range == (Decimal("0.000006"), Decimal("0.00006"))


def test_the_report_labels_api_energy_and_leaves_a_local_figure_plain(
    server: srv.OpenAIServer,
) -> None:
    from llmcompare.backends.fake import FunctionModel

    class Local(FunctionModel):
        pass

    def local_answer(request: object) -> Completion:
        return Completion(
            text="ok",
            finish_reason="stop",
            model="fake:local",
            usage=Usage(input_tokens=3, output_tokens=1),
            compute_s=2.0,
        )

    local = Local(local_answer, name="local")
    api = get_model("chatgpt:gpt-4o-mini", base_url=server.url)
    result = compare({"api": api, "local": local}, ["x y"], cache=False, progress=False)
    energy = {r[0]: r[1:] for r in summary_table_rows(result)}["energy (kWh)"]
    assert energy[0].endswith("estimated-api")
    assert "[" in energy[0]
    assert "estimated-api" not in energy[1]
    by_model = {s.model: s.cost.energy for s in result.summaries}
    assert by_model == {"api": "estimated-api", "local": "estimated"}
