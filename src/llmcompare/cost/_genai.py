"""Prices for models the built-in table lacks, from pydantic's genai-prices (optional).

``pip install "llmcompare[prices]"`` installs `genai-prices <https://github.com/pydantic/genai-prices>`_,
whose package bundles a snapshot of many providers' prices. Only that bundled snapshot is read:
nothing is fetched from the network (genai-prices downloads newer data only when its
``UpdatePrices`` is started, which llmcompare never does). A price found there carries
genai-prices' version and the provider's pricing page in its source, and the date its data
says the rates were checked (else the day it was read, said so in the note).
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from llmcompare.cost._prices import TIERS, Price, TierPrice, add_price_source

__all__ = ["genai_price", "genai_prices_version"]

_CHECKED = re.compile(r"\b(?:verified|checked) on (\d{4}-\d{2}-\d{2})\b")


@functools.cache
def genai_prices_version() -> str | None:
    """The installed genai-prices version, or None when it is not installed."""
    try:
        import genai_prices  # noqa: F401  - only whether it imports
    except ImportError:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("genai-prices")
    except PackageNotFoundError:  # pragma: no cover - imported, so installed
        return "?"


@functools.lru_cache(maxsize=512)
def genai_price(name: str) -> Price | None:
    """The price genai-prices' bundled snapshot gives ``name``, or None (unknown, not installed).

    Args:
        name: A model name (``"gpt-5.6-sol"``, ``"claude-opus-4-8"``), or ``provider/name``.

    Returns:
        The standard price, with the batch and service-tier prices its data lists, at today's
        rates, short context (the first tier of a tiered price).
    """
    if genai_prices_version() is None:
        return None
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    ref = name.strip()
    provider_id, slash, rest = ref.partition("/")
    try:
        if slash:
            provider, model = snapshot.find_provider_model(rest, None, provider_id, None)
        else:
            provider, model = snapshot.find_provider_model(ref, None, None, None)
    except LookupError:
        return None
    now = datetime.now(timezone.utc)
    standard = model.get_prices(now)
    if standard.input_mtok is None or standard.output_mtok is None:
        return None  # priced by other units (images, audio): not a chat model's tokens
    comments = model.price_comments or provider.price_comments or ""
    checked = sorted(date.fromisoformat(d) for d in _CHECKED.findall(comments))
    page = next(iter(provider.pricing_urls or ()), "")
    fields: dict[str, Any] = {
        "model": ref,
        "input": _base(standard.input_mtok),
        "cached_input": _base(standard.cache_read_mtok),
        "output": _base(standard.output_mtok),
        "cache_write": _base(standard.cache_write_mtok),
        "source": f"genai-prices {genai_prices_version()} (pydantic), {provider.name}: {page}",
        "note": (
            f"genai-prices model {model.id!r}"
            + ("" if checked else "; its data gives no check date: dated the day it was read")
            + (f"; {comments}" if comments else "")
        ),
    }
    if checked:
        fields["as_of"] = checked[0]
    batch = model.get_prices(now, {"processing": "batch"})
    if batch.input_mtok != standard.input_mtok and batch.output_mtok is not None:
        fields["batch_input"] = _base(batch.input_mtok)
        fields["batch_output"] = _base(batch.output_mtok)
    tiers: dict[str, TierPrice] = {}
    for tier in TIERS:
        if not any(v.when == {"service_tier": tier} for v in model.price_variants or ()):
            continue
        at = model.get_prices(now, {"service_tier": tier})
        tiers[tier] = TierPrice(
            input=_base(at.input_mtok),
            cached_input=_base(at.cache_read_mtok),
            output=_base(at.output_mtok),
            cache_write=_base(at.cache_write_mtok),
        )
    fields["tiers"] = tiers
    return Price.model_validate(fields)


def _base(value: Any) -> Decimal | None:
    """A per-million price, the short-context one of a tiered price; None when absent."""
    if value is None:
        return None
    return Decimal(getattr(value, "base", value))


# Asked after the built-in table (and a snapshot's family), for the models it lacks.
add_price_source(genai_price)
