"""The price table: its entries and dates, the lookup, snapshots, and the date reports stamp."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pydantic
import pytest

from llmcompare import Completion, ConfigurationError, Usage
from llmcompare.cost import (
    Price,
    cost_of,
    get_price,
    load_prices,
    oldest_price_date,
    prices,
    register_price,
    reset_prices,
)


@pytest.fixture(autouse=True)
def _fresh_prices() -> Iterator[None]:
    reset_prices()
    yield
    reset_prices()


def done(
    model: str = "chatgpt:gpt-4o-mini", response_model: str | None = None, **usage: int
) -> Completion:
    return Completion(
        text="answer",
        finish_reason="stop",
        usage=Usage(**usage),
        model=model,
        response_model=response_model,
    )


def shipped() -> dict[str, Any]:
    text = resources.files("llmcompare.cost").joinpath("prices.json").read_text("utf-8")
    return dict(json.loads(text))


# -- the shipped table and its dates -------------------------------------------------------------

OPENAI_PRICING = "https://developers.openai.com/api/docs/pricing"
# How a note dates the check of OpenAI's page: "checked there on 2026-10-12".
_CHECKED = re.compile(r"\bchecked there on (\d{4}-\d{2}-\d{2})\b")


def test_as_of_dates_parse_and_none_is_after_the_table_date() -> None:
    data = shipped()
    updated = date.fromisoformat(data["updated"])
    assert updated <= date.today()
    as_of = {e["model"]: date.fromisoformat(e["as_of"]) for e in data["prices"]}
    assert len(as_of) == len(data["prices"])  # one entry per model
    assert max(as_of.values()) <= updated  # no row is checked after the table was compiled
    assert {p.model: p.as_of for p in prices()} == as_of


def test_every_openai_row_cites_openais_pricing_page_with_its_check_date() -> None:
    for entry in shipped()["prices"]:
        assert entry["source"] == OPENAI_PRICING, entry["model"]
        days = [date.fromisoformat(d) for d in _CHECKED.findall(entry["note"])]
        # The first date a note gives is the check of the row's standard (and tier) columns.
        assert days, entry["model"]
        assert date.fromisoformat(entry["as_of"]) == days[0], entry["model"]
    # No row cites a third party for OpenAI's own list prices any more.
    assert "tokenmix" not in json.dumps(shipped()).lower()


# -- entries, lookup, registered and loaded prices ----------------------------------------------


def test_builtin_prices_cover_the_current_openai_chat_models_with_sources() -> None:
    table = {p.model: p for p in prices()}
    for name in (
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "o1",
        "o3",
        "o3-mini",
        "o4-mini",
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
    ):
        price = table[name]
        assert price.source.startswith("https://")
        assert isinstance(price.as_of, date)
        for amount in (price.input, price.output, price.cached_input):
            assert amount is None or isinstance(amount, Decimal)
        assert price.output >= price.input > 0
        assert price.cached_input is None or price.cached_input < price.input
    assert table["gpt-4o-mini"].input == Decimal("0.15")
    assert table["gpt-4o-mini"].cached_input == Decimal("0.075")
    assert table["gpt-4o-mini"].output == Decimal("0.60")


def test_lookup_by_llmcompare_id_and_by_dated_provider_name() -> None:
    assert get_price("chatgpt:gpt-4o-mini").model == "gpt-4o-mini"  # type: ignore[union-attr]
    by_snapshot = get_price("chatgpt:gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert by_snapshot is not None
    assert by_snapshot.model == "gpt-4o-mini"
    assert get_price("chatgpt:gpt-4-0613").model == "gpt-4"  # type: ignore[union-attr]
    # A snapshot with a price of its own is not confused with the current one.
    assert get_price("chatgpt:gpt-4o", "gpt-4o-2024-05-13").input == Decimal(5)  # type: ignore[union-attr]
    assert get_price("chatgpt:gpt-4o", "gpt-4o-2024-08-06").input == Decimal("2.50")  # type: ignore[union-attr]
    # Names that merely start like a priced model are not priced as it (genai-prices, when
    # installed, may price it as itself).
    search = get_price("chatgpt:gpt-4o-mini-search-preview")
    assert search is None or (
        search.model == "gpt-4o-mini-search-preview" and "genai-prices" in search.source
    )
    assert get_price("llama:smollm2-135m") is None


def test_registered_prices_win_and_can_target_one_llmcompare_id() -> None:
    register_price("gpt-4o-mini", input="1", output="2", source="my contract")
    assert get_price("chatgpt:gpt-4o-mini").input == Decimal(1)  # type: ignore[union-attr]
    register_price("chatgpt:my-finetune", input="0.30", output="1.20", cached_input="0.15")
    price = get_price("chatgpt:my-finetune", "ft:gpt-4o-mini:acme::abc")
    assert price is not None
    assert (price.input, price.cached_input, price.output) == (
        Decimal("0.30"),
        Decimal("0.15"),
        Decimal("1.20"),
    )
    assert price.as_of == date.today()
    reset_prices()
    assert get_price("chatgpt:gpt-4o-mini").input == Decimal("0.15")  # type: ignore[union-attr]
    assert get_price("chatgpt:my-finetune") is None


def test_register_refuses_bad_prices() -> None:
    with pytest.raises(pydantic.ValidationError):
        register_price("m", input="-1", output="1")
    with pytest.raises(pydantic.ValidationError):
        register_price("m", input="1")  # no output price
    with pytest.raises(pydantic.ValidationError):
        Price(model="m", input=Decimal(1), output=Decimal(1), surprise=1)  # type: ignore[call-arg]


def test_load_prices_in_the_common_per_token_layout(tmp_path: Path) -> None:
    table = {
        "sample_spec": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0},
        "acme-large": {
            "input_cost_per_token": 2.5e-06,
            "output_cost_per_token": 1e-05,
            "cache_read_input_token_cost": 1.25e-06,
            "litellm_provider": "acme",
            "mode": "chat",
        },
        "acme-small": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07},
        "acme-image": {"output_cost_per_image": 0.04, "mode": "image_generation"},
    }
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(table))
    loaded = load_prices(path, as_of=date(2026, 1, 2))
    assert sorted(p.model for p in loaded) == ["acme-large", "acme-small"]
    large = get_price("chatgpt:acme-large")
    assert large is not None
    # Floats become exact decimals per million tokens.
    assert (large.input, large.cached_input, large.output) == (
        Decimal("2.5"),
        Decimal("1.25"),
        Decimal(10),
    )
    assert str(large.output) == "10"
    assert large.source == str(path)
    assert large.as_of == date(2026, 1, 2)
    small = get_price("x:acme-small")
    assert small is not None
    assert (small.input, small.output) == (Decimal("0.15"), Decimal("0.6"))


def test_load_prices_in_llmcompare_layout_and_bad_files(tmp_path: Path) -> None:
    loaded = load_prices(
        {"prices": [{"model": "mine", "input": "1", "output": "3", "source": "me"}]}
    )
    assert loaded[0].output == Decimal(3)
    assert get_price("fake:mine") == loaded[0]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_prices(bad)
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_prices(tmp_path / "missing.json")


def test_the_dated_response_model_decides_the_price() -> None:
    old = cost_of(done("chatgpt:gpt-4o", "gpt-4o-2024-05-13", input_tokens=1000, output_tokens=0))
    new = cost_of(done("chatgpt:gpt-4o", "gpt-4o-2024-11-20", input_tokens=1000, output_tokens=0))
    assert (old.usd, new.usd) == (Decimal("0.005"), Decimal("0.0025"))
    assert (old.status, new.status) == ("priced", "priced")


# -- snapshots: own entry, or the family's price marked estimated --------------------------------


@pytest.mark.parametrize(
    ("snapshot", "family"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-3.5-turbo-1106", "gpt-3.5-turbo"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4-0613", "gpt-4"),
    ],
)
def test_a_snapshot_without_its_own_entry_is_estimated_at_its_familys_price(
    snapshot: str, family: str
) -> None:
    cost = cost_of(done(f"chatgpt:{snapshot}", snapshot, input_tokens=10**6, output_tokens=10**6))
    price = get_price(f"chatgpt:{family}")
    assert price is not None
    assert get_price(f"chatgpt:{snapshot}") == price
    assert cost.usd == price.input + price.output
    assert cost.status == "estimated"
    assert cost.assumptions == f"priced as {family}: no price entry for the snapshot {snapshot}"
    assert price.citation in cost.source


def test_a_reported_snapshot_of_an_unpriced_alias_is_estimated_too() -> None:
    cost = cost_of(done("chatgpt:my-alias", "gpt-4o-2024-08-06", input_tokens=1000))
    assert cost.status == "estimated"
    assert cost.usd == Decimal("0.0025")
    assert "priced as gpt-4o: no price entry for the snapshot gpt-4o-2024-08-06" in cost.assumptions


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-3.5-turbo", "gpt-4o-mini", "gpt-4o-2024-05-13"])
def test_a_model_with_its_own_entry_is_priced(model: str) -> None:
    cost = cost_of(done(f"chatgpt:{model}", input_tokens=1000, output_tokens=10))
    assert cost.status == "priced"
    assert cost.assumptions == ""
    assert get_price(f"chatgpt:{model}").model == model  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("requested", "reported"),
    [
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
        ("gpt-4o", "gpt-4o-2024-08-06"),
        ("gpt-3.5-turbo", "gpt-3.5-turbo-0125"),
    ],
)
def test_the_reported_snapshot_does_not_downgrade_a_requested_model_with_an_entry(
    requested: str, reported: str
) -> None:
    cost = cost_of(done(f"chatgpt:{requested}", reported, input_tokens=1000, output_tokens=10))
    assert cost.status == "priced"
    assert cost.assumptions == ""
    assert (
        cost.usd == cost_of(done(f"chatgpt:{requested}", input_tokens=1000, output_tokens=10)).usd
    )


def test_a_snapshot_given_its_own_price_is_priced() -> None:
    register_price("gpt-3.5-turbo-1106", input="1.00", output="2.00", source="legacy price list")
    cost = cost_of(done("chatgpt:gpt-3.5-turbo-1106", input_tokens=10**6))
    assert (cost.status, cost.usd, cost.assumptions) == ("priced", Decimal(1), "")


def test_a_family_priced_snapshot_keeps_its_other_assumptions() -> None:
    cost = cost_of(done("chatgpt:gpt-4-0613", input_tokens=1000, cache_read_tokens=500))
    assert cost.status == "estimated"
    assert cost.usd == Decimal("0.03")
    assert cost.assumptions.split("\n") == [
        "priced as gpt-4: no price entry for the snapshot gpt-4-0613",
        "cached input charged at the input price (gpt-4 has no cached price)",
    ]


@pytest.mark.parametrize(
    "name",
    ["acme-2048", "acme-1399", "acme-2024-13-01", "acme-2024-0806", "acme-08-06"],
)
def test_only_plausible_dates_make_a_snapshot(name: str) -> None:
    register_price("acme", input="1", output="1")
    assert get_price(f"x:{name}") is None
    assert get_price("x:acme-1106") is not None
    assert get_price("x:acme-2025-12-31") is not None


# -- the oldest price date, for reports ----------------------------------------------------------


def _as_of(model: str, response_model: str | None = None) -> date:
    price = get_price(model, response_model)
    assert price is not None
    return price.as_of


def test_oldest_price_date_is_the_oldest_of_the_prices_used() -> None:
    models = ["chatgpt:gpt-4", "chatgpt:gpt-4o-mini"]
    assert oldest_price_date(models) == min(_as_of(m) for m in models)
    newest = _as_of("chatgpt:gpt-4")
    assert oldest_price_date(["chatgpt:gpt-4"]) == newest
    # Only the prices used count, not the oldest entry of the table.
    assert newest > min(p.as_of for p in prices())
    # A snapshot without an entry uses its family's price, and so its date.
    assert oldest_price_date(["chatgpt:gpt-4o-2024-08-06"]) == _as_of("chatgpt:gpt-4o")
    # (id, response_model) pairs date the entry the reported name picked.
    pair = ("chatgpt:gpt-4o", "gpt-4o-2024-05-13")
    assert oldest_price_date([pair]) == _as_of(*pair)


def test_oldest_price_date_skips_unpriced_models_and_follows_registered_prices() -> None:
    assert oldest_price_date([]) is None
    assert oldest_price_date(["llama:smollm2-135m", "chatgpt:mystery-1"]) is None
    assert oldest_price_date(["llama:smollm2-135m", "chatgpt:gpt-5"]) == _as_of("chatgpt:gpt-5")
    register_price("chatgpt:mine", input="1", output="1", as_of=date(2024, 2, 29))
    assert oldest_price_date(["chatgpt:gpt-5", "chatgpt:mine"]) == date(2024, 2, 29)
    register_price("gpt-4o-mini", input="1", output="1")  # as_of today: newer than the table
    assert oldest_price_date(["chatgpt:gpt-4o-mini"]) == date.today()
