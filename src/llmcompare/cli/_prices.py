"""``llmcompare prices MODEL``: a model's prices, tier by tier, and where each comes from."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

import click

from llmcompare.cli._common import EXIT_FAILURES, EXIT_OK

if TYPE_CHECKING:
    from llmcompare.cost import Price, TierPrice


@click.command("prices")
@click.argument("models", nargs=-1, required=True)
def prices_cmd(models: Sequence[str]) -> None:
    """Show MODEL's prices (USD per 1M tokens) and where each comes from.

    MODEL is a model id (chatgpt:gpt-5.4-mini) or a bare name (gpt-5.4-mini). The built-in
    table (OpenAI's pricing page, with its check date) comes first; for a model it lacks,
    pydantic's genai-prices, when installed (pip install "llmcompare[prices]"; its bundled
    snapshot, offline). Exits 1 when a model has no known price.
    """
    from llmcompare.cost import genai_prices_version, match_price

    missing = 0
    for name in models:
        found = match_price(name)
        if found is None:
            missing += 1
            version = genai_prices_version()
            why = (
                f"not in genai-prices {version} either"
                if version
                else 'genai-prices is not installed (pip install "llmcompare[prices]", '
                "Python 3.11+), so only the built-in table was looked in"
            )
            click.echo(f"{name}: no price in the built-in table; {why}")
            continue
        price = found.price
        origin = "genai-prices" if "genai-prices" in price.source else "the built-in table"
        click.echo(f"{name}: priced as {price.model!r} from {origin}: {price.citation}")
        if found.assumption:
            click.echo(f"  ({found.assumption})")
        for line in _lines(price):
            click.echo(f"  {line}")
        if price.note:
            click.echo(f"  note: {price.note}")
    sys.exit(EXIT_FAILURES if missing else EXIT_OK)


def _lines(price: Price) -> list[str]:
    """One line per tier: standard, batch, then each listed service tier."""
    rows = [("standard", _cells(price.input, price.cached_input, price.output, price.cache_write))]
    if price.batch_input is not None and price.batch_output is not None:
        rows.append(("batch", _cells(price.batch_input, None, price.batch_output, None)))
    else:
        rows.append(("batch", "50% of standard (OpenAI's documented discount; none listed)"))
    tiers: dict[str, TierPrice] = price.tiers
    for tier in ("flex", "priority"):
        listed = tiers.get(tier)
        if listed is None:
            rows.append((tier, "not listed: an answer served at this tier is unpriced"))
        else:
            cells = _cells(listed.input, listed.cached_input, listed.output, listed.cache_write)
            rows.append((tier, cells))
    rows.extend(
        (tier, _cells(t.input, t.cached_input, t.output, t.cache_write))
        for tier, t in tiers.items()
        if tier not in ("flex", "priority")
    )
    return [f"{tier:<9} {cells}" for tier, cells in rows]


def _cells(input_: Decimal, cached: Decimal | None, output: Decimal, write: Decimal | None) -> str:
    parts = [f"input {input_}"]
    if cached is not None:
        parts.append(f"cached input {cached}")
    if write is not None:
        parts.append(f"cache write {write}")
    parts.append(f"output {output}")
    return ", ".join(parts)
