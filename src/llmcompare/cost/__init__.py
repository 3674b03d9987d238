"""What model calls cost: API dollars, local compute, energy and CO2, with budgets.

- Prices: :class:`Price` per million tokens as :class:`~decimal.Decimal`, each with its source and
  date. The current OpenAI chat models ship as package data (``prices.json``); add your own with
  :func:`register_price` or :func:`load_prices` (which also reads the common per-token layout,
  ``input_cost_per_token`` / ``output_cost_per_token`` / ``cache_read_input_token_cost``).
- :func:`cost_of` turns a :class:`~llmcompare.Completion` into a :class:`Cost` that says how it
  was obtained: ``"priced"``, ``"estimated"`` or ``"unpriced"`` (never a silent $0). Local models
  are costed from their measured compute time on :class:`LocalHardware`, with energy and CO2.
  API answers are priced at the service tier that served them (:class:`TierPrice`: flex,
  priority; a tier without a price is unpriced, with the reason), cache writes at the write
  rate, and their energy is estimated as a range labelled ``"estimated-api"``.
- Models the built-in table lacks are priced from pydantic's genai-prices when it is installed
  (``pip install "llmcompare[prices]"``; its bundled snapshot, offline).
- Hosted models (open weights served on stated hardware): :func:`hosted_hardware` from a preset
  (:func:`hosting_presets`, package data with sources) or the user's figures; their answers
  cost their share of the machine's busy time (:func:`busy_costs`), never a token price.
- :class:`CostTracker` sums usage and cost per model and enforces a :class:`Budget` before each
  request is sent.

Example:
    >>> from llmcompare import Completion, Usage
    >>> from llmcompare.cost import cost_of
    >>> done = Completion(text="...", finish_reason="stop", model="chatgpt:gpt-4o-mini",
    ...                   usage=Usage(input_tokens=2000, cache_read_tokens=1000, output_tokens=100))
    >>> cost = cost_of(done)
    >>> cost.usd, cost.status
    (Decimal('0.000285000'), 'priced')

Money is Decimal end to end: amounts are never floats, and sums are exact.
"""

from llmcompare.cost._budget import Budget, input_token_bound
from llmcompare.cost._cost import (
    GENERIC_CLOUD_VM,
    Cost,
    CostStatus,
    EnergySource,
    LocalHardware,
    UnpricedModelWarning,
    cost_of,
)
from llmcompare.cost._genai import genai_prices_version
from llmcompare.cost._hosting import busy_costs, busy_seconds, hosted_hardware, hosting_presets
from llmcompare.cost._prices import (
    TIERS,
    Price,
    PriceMatch,
    TierPrice,
    get_price,
    load_prices,
    match_price,
    oldest_price_date,
    prices,
    register_price,
    reset_prices,
)
from llmcompare.cost._tracker import CostTracker, Totals

__all__ = [
    "GENERIC_CLOUD_VM",
    "TIERS",
    "Budget",
    "Cost",
    "CostStatus",
    "CostTracker",
    "EnergySource",
    "LocalHardware",
    "Price",
    "PriceMatch",
    "TierPrice",
    "Totals",
    "UnpricedModelWarning",
    "busy_costs",
    "busy_seconds",
    "cost_of",
    "genai_prices_version",
    "get_price",
    "hosted_hardware",
    "hosting_presets",
    "input_token_bound",
    "load_prices",
    "match_price",
    "oldest_price_date",
    "prices",
    "register_price",
    "reset_prices",
]
