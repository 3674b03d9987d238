"""What one completion cost: API dollars from the price table, or local compute, energy and CO2."""

from __future__ import annotations

import threading
import warnings
from decimal import Decimal
from typing import Annotated, Literal, NamedTuple, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

from llmcompare.cost._api_energy import api_energy
from llmcompare.cost._prices import Price, TierPrice, match_price
from llmcompare.errors import user_stacklevel
from llmcompare.types import Completion

__all__ = [
    "BATCH_DISCOUNT",
    "GENERIC_CLOUD_VM",
    "UNANSWERED",
    "Assessed",
    "Cost",
    "CostStatus",
    "EnergySource",
    "LocalHardware",
    "UnpricedModelWarning",
    "assess",
    "batch_tier",
    "cost_of",
    "energy_sum",
    "unanswered_cost",
    "worse",
]

CostStatus: TypeAlias = Literal["priced", "unpriced", "estimated"]
"""How much a cost can be trusted:

- ``"priced"``: exact token counts (or measured compute time) times a known price or rate;
- ``"estimated"``: some count was estimated, or a generic default rate was assumed;
- ``"unpriced"``: no price is known, so ``usd`` is missing that part (never a silent zero).
"""

EnergySource: TypeAlias = Literal[
    "measured-rapl", "measured-nvml", "estimated", "estimated-api", "mixed"
]
"""Where a cost's energy comes from: measured by the CPU packages' RAPL counters or the GPU's
NVML counter, ``"estimated"`` from the configured watts times compute time, ``"estimated-api"``
estimated for a model behind an API (a range, see :mod:`llmcompare.cost._api_energy`), or
``"mixed"`` for a sum of costs whose energy came from more than one of these."""

_RANK: dict[str, int] = {"priced": 0, "estimated": 1, "unpriced": 2}


def worse(a: CostStatus, b: CostStatus) -> CostStatus:
    """The less trustworthy of two statuses: ``priced`` < ``estimated`` < ``unpriced``."""
    return b if _RANK[b] > _RANK[a] else a


# Every amount is kept to a fixed number of places so that sums are exact and associative.
_USD_PLACES = Decimal("1e-12")  # a millionth of a millionth of a dollar
_KWH_PLACES = Decimal("1e-12")  # 3.6 millijoules
_G_PLACES = Decimal("1e-9")
_ZERO = Decimal(0)


def _fixed(value: Decimal, places: Decimal) -> Decimal:
    """Round to ``places`` only when there are more digits than that (exact values stay as is)."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < _EXPONENT[places]:
        return value.quantize(places)
    return value


_EXPONENT = {p: int(p.as_tuple().exponent) for p in (_USD_PLACES, _KWH_PLACES, _G_PLACES)}


def _merge(a: str, b: str) -> str:
    """Ordered union of newline-separated notes: associative, so sums of costs are too."""
    if not b or a == b:
        return a
    if not a:
        return b
    seen = a.split("\n")
    extra = [line for line in b.split("\n") if line not in seen]
    return "\n".join(seen + extra) if extra else a


def _add_opt(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


class Cost(BaseModel):
    """The cost of one request, or a sum of them, with where the numbers come from.

    Money is :class:`~decimal.Decimal` throughout: adding costs never drifts. ``a + b`` adds the
    amounts, keeps the worse status (``priced`` < ``estimated`` < ``unpriced``) and joins the
    sources and assumptions; ``sum(costs)`` works.

    Attributes:
        usd: US dollars.
        status: ``"priced"``, ``"estimated"`` or ``"unpriced"`` (see :data:`CostStatus`).
        kwh: Energy in kilowatt-hours, when known (local models).
        g_co2: Grams of CO2-equivalent for that energy, when known.
        source: Where the prices or rates come from (one per line).
        assumptions: What was assumed to get the numbers (one per line).
        energy: Where ``kwh`` comes from (see :data:`EnergySource`), when there is energy.
        kwh_range: The low and high ends of an estimated ``kwh`` (API models' energy is a
            range, ``kwh`` its middle), when it is one.
        reasoning_usd: The part of ``usd`` spent on hidden reasoning tokens, when priced.
        tier: The service tier the request was served and priced at (``"flex"``,
            ``"priority"``, ...); None for the standard tier.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    usd: Decimal = _ZERO
    status: CostStatus = "priced"
    kwh: Annotated[Decimal, Field(ge=0)] | None = None
    g_co2: Annotated[Decimal, Field(ge=0)] | None = None
    source: str = ""
    assumptions: str = ""
    energy: EnergySource | None = None
    kwh_range: tuple[Decimal, Decimal] | None = None
    reasoning_usd: Decimal | None = None
    tier: str | None = None

    def __add__(self, other: Cost) -> Cost:
        """Add two costs; the status of the sum is the worse of the two."""
        if not isinstance(other, Cost):
            return NotImplemented
        # model_construct: the sum of two valid costs is valid, no need to validate again.
        return Cost.model_construct(
            usd=self.usd + other.usd,
            status=worse(self.status, other.status),
            kwh=_add_opt(self.kwh, other.kwh),
            g_co2=_add_opt(self.g_co2, other.g_co2),
            source=_merge(self.source, other.source),
            assumptions=_merge(self.assumptions, other.assumptions),
            energy=energy_sum(self.energy, other.energy),
            kwh_range=range_sum(self, other),
            reasoning_usd=_add_opt(self.reasoning_usd, other.reasoning_usd),
            tier=self.tier if self.tier == other.tier else None,
        )

    def __radd__(self, other: object) -> Cost:
        # Lets sum(costs) start from its default 0.
        if other == 0:
            return self
        return NotImplemented

    def per_1k_tokens(self, tokens: int) -> Decimal | None:
        """Dollars per 1,000 tokens for ``tokens`` tokens, or None when there were none."""
        if tokens <= 0:
            return None
        return self.usd * 1000 / tokens


def _span(cost: Cost) -> tuple[Decimal, Decimal] | None:
    if cost.kwh_range is not None:
        return cost.kwh_range
    return None if cost.kwh is None else (cost.kwh, cost.kwh)


def range_sum(a: Cost, b: Cost) -> tuple[Decimal, Decimal] | None:
    """The energy range of ``a + b``: a point energy counts as a range of one value."""
    if a.kwh_range is None and b.kwh_range is None:
        return None
    sa, sb = _span(a), _span(b)
    if sa is None or sb is None:
        return sa or sb
    return (sa[0] + sb[0], sa[1] + sb[1])


def energy_sum(a: EnergySource | None, b: EnergySource | None) -> EnergySource | None:
    """Where the energy of a sum comes from: the parts' common source, else ``"mixed"``."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    return "mixed"


class UnpricedModelWarning(UserWarning):
    """Warned once per model when a completion's model has no known price."""


_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_unpriced(model: str, tier: str | None = None) -> None:
    key = model if tier is None else f"{model}@{tier}"
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    if tier is None:
        message = (
            f"no price known for model {model!r}: its cost is reported as 'unpriced', not $0. "
            "Register one with llmcompare.cost.register_price(...) or load_prices(...)."
        )
    else:
        message = (
            f"no {tier} price known for model {model!r}: answers served at the {tier} tier are "
            "reported as 'unpriced', never charged the standard rate. Register one with "
            f"llmcompare.cost.register_price(Price(..., tiers={{{tier!r}: TierPrice(...)}}))."
        )
    warnings.warn(message, UnpricedModelWarning, stacklevel=user_stacklevel())


# -- local hardware --------------------------------------------------------------------------------

_Rate = Annotated[Decimal, Field(ge=0)]


class LocalHardware(BaseModel):
    """The machine a local model runs on, and what its time and energy cost.

    A local completion costs ``compute_s / 3600 * usd_per_hour`` plus ``kWh * usd_per_kwh``,
    where kWh comes from measured energy when available (RAPL), else ``watts * compute_s``; CO2
    is ``kWh * g_co2_per_kwh``.

    The defaults (:data:`GENERIC_CLOUD_VM`) describe a generic 2-vCPU cloud CPU VM:

    - ``usd_per_hour`` 0.0816: AWS EC2 m7g.large (2 vCPU, 8 GiB) Linux on-demand in us-east-1,
      June 2026 (https://www.factualminds.com/blog/amazon-ec2-on-demand-pricing-instance-families-2026/).
    - ``watts`` 11.5: Cloud Carbon Footprint's AWS coefficients
      (https://www.cloudcarbonfootprint.org/docs/methodology/, Appendix I): 3.5 W per vCPU at
      100% CPU (inference keeps the CPU busy) for 2 vCPUs, plus 0.392 W per GB of memory for
      8 GB, times the average AWS PUE of 1.135: (7 + 3.136) x 1.135 = 11.50 W.
    - ``usd_per_kwh`` 0: a cloud VM's electricity is included in its hourly price.
    - ``g_co2_per_kwh`` 436: world average carbon intensity of electricity generation in 2022,
      Ember Global Electricity Review 2023
      (https://ember-climate.org/insights/research/global-electricity-review-2023/).

    For your own machine, set ``usd_per_hour`` to its amortised cost (or 0), ``watts`` to its
    draw under load, ``usd_per_kwh`` to your tariff and ``g_co2_per_kwh`` to your grid's.

    Attributes:
        name: A label for reports.
        usd_per_hour: What an hour of the machine costs.
        watts: Its average power draw while generating.
        usd_per_kwh: What a kilowatt-hour of electricity costs on top of ``usd_per_hour``.
        g_co2_per_kwh: Grams of CO2-equivalent per kilowatt-hour of the grid it draws from.
        notes: Where the numbers come from.
        gpu: For a hosted model whose server runs on this machine: the index of its GPU (as
            ``nvidia-smi`` numbers them), whose NVML energy counter then measures the run's
            energy instead of ``watts``. None: the stated watts.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "generic 2-vCPU cloud VM"
    usd_per_hour: _Rate = Decimal("0.0816")
    watts: _Rate = Decimal("11.5")
    usd_per_kwh: _Rate = Decimal(0)
    g_co2_per_kwh: _Rate = Decimal(436)
    notes: str = (
        "$0.0816/h: AWS m7g.large on-demand, us-east-1, June 2026; "
        "11.5 W: Cloud Carbon Footprint AWS coefficients (2 vCPU at 100% CPU, 8 GB, PUE 1.135); "
        "$0/kWh: electricity included in the hourly price; "
        "436 gCO2/kWh: world average 2022, Ember Global Electricity Review 2023"
    )
    # Strict: a bool is an int to Python, and "gpu = true" must not measure GPU 1.
    gpu: Annotated[int, Field(ge=0, strict=True)] | None = None


GENERIC_CLOUD_VM = LocalHardware()
"""The default hardware: a generic 2-vCPU cloud CPU VM (see :class:`LocalHardware`)."""


# -- the cost of one completion --------------------------------------------------------------------


def _decimal(x: float) -> Decimal:
    # repr() gives the float's shortest decimal form: 0.1 becomes Decimal("0.1"), not 0.1000...055.
    return Decimal(repr(x))


class Assessed(NamedTuple):
    """The numbers of a :class:`Cost` before it is built (the tracker sums these directly).

    Its fields are :class:`Cost`'s, in the same order.
    """

    usd: Decimal
    status: CostStatus
    kwh: Decimal | None
    g_co2: Decimal | None
    source: str
    assumptions: str
    energy: EnergySource | None
    kwh_range: tuple[Decimal, Decimal] | None = None
    reasoning_usd: Decimal | None = None
    tier: str | None = None

    def as_cost(self) -> Cost:
        """The :class:`Cost` of these numbers."""
        # model_construct: the parts were computed from valid values; no second validation.
        return Cost.model_construct(**self._asdict())


_MEASURED = {
    "measured-rapl": "energy measured with RAPL (the CPU packages, machine-wide)",
    "measured-nvml": "energy measured with NVML (the GPU's own counter)",
}


def _local_cost(
    completion: Completion, hardware: LocalHardware, energy_j: float | None, default_hw: bool
) -> Assessed:
    assert completion.compute_s is not None
    seconds = _decimal(completion.compute_s)
    source: EnergySource
    if energy_j is None and completion.energy_j is not None:
        energy_j = completion.energy_j
        source = completion.energy_method or "measured-rapl"
    else:
        source = "measured-rapl"  # energy_j given by the caller: an EnergyMeter's reading
    if energy_j is not None:
        kwh = _decimal(energy_j) / 3_600_000
        energy = _MEASURED[source]
    else:
        kwh = hardware.watts * seconds / 3_600_000
        energy = f"energy estimated: {hardware.watts} W x compute time"
        source = "estimated"
    kwh = _fixed(kwh, _KWH_PLACES)
    usd = _fixed(seconds * hardware.usd_per_hour / 3600 + kwh * hardware.usd_per_kwh, _USD_PLACES)
    g_co2 = _fixed(kwh * hardware.g_co2_per_kwh, _G_PLACES)
    assumptions = [
        f"local compute on {hardware.name}: ${hardware.usd_per_hour}/h, "
        f"${hardware.usd_per_kwh}/kWh, {hardware.g_co2_per_kwh} gCO2/kWh",
        energy,
    ]
    if default_hw:
        assumptions.append(f"default hardware rates ({hardware.notes})")
    estimated = default_hw or completion.usage.estimated
    return Assessed(
        usd,
        "estimated" if estimated else "priced",
        kwh,
        g_co2,
        f"local hardware: {hardware.name}",
        "\n".join(assumptions),
        source,
    )


UNANSWERED = (
    "an attempt that reached the server and gave no answer (a timeout, a cut stream) may be "
    "billed: charged at its worst case (input bound and max_tokens)"
)
"""The assumption of a cost that holds such attempts (see :func:`unanswered_cost`)."""


def unanswered_cost(usd: Decimal) -> Cost:
    """The cost charged for attempts that reached the server and gave no answer.

    A provider may bill such an attempt (a timeout, a cut stream), so a
    :class:`~llmcompare.cost.CostTracker` charges its worst case; the status is
    ``"estimated"``, and the assumption says so.

    Args:
        usd: The dollars charged.

    Returns:
        The cost.
    """
    return Assessed(usd, "estimated", None, None, "", UNANSWERED, None).as_cost()


def assess(
    completion: Completion, hardware: LocalHardware | None, energy_j: float | None
) -> Assessed:
    """The numbers of :func:`cost_of` without building a model (the tracker's hot path)."""
    answer = _assess_answer(completion, hardware, energy_j)
    extra = completion.unanswered_usd
    if extra is None:
        return answer
    # Earlier attempts that may be billed are part of what the request cost.
    return answer._replace(
        usd=answer.usd + extra,
        status=worse(answer.status, "estimated"),
        assumptions=_merge(answer.assumptions, UNANSWERED),
    )


def _assess_answer(
    completion: Completion, hardware: LocalHardware | None, energy_j: float | None
) -> Assessed:
    """The cost of the answer itself, without earlier attempts that gave none."""
    if completion.compute_s is not None:
        return _local_cost(completion, hardware or GENERIC_CLOUD_VM, energy_j, hardware is None)
    usage = completion.usage
    name = completion.response_model or completion.model
    energy = api_energy(name, usage.output_tokens, completion.latency_s)
    spent = (energy.kwh, energy.g_co2, (energy.low, energy.high))
    tier = _served_tier(completion.service_tier)
    implausible = usage.implausible
    if implausible is not None:
        # Counts the provider reported that cannot be true are not priced: no charge of millions
        # for a server that reported 10^15 tokens, and no guess passed off as a price.
        return _unpriced(f"not priced: {implausible}", "", energy.source, spent, tier)
    found = match_price(completion.model, completion.response_model)
    if found is None:
        _warn_unpriced(name)
        return _unpriced(f"no price known for {name}", "", energy.source, spent, None)
    price = found.price
    assumptions = [found.assumption] if found.assumption else []
    rates = _rates(price, completion, tier, assumptions)
    if rates is None:
        _warn_unpriced(price.model, tier)
        why = (
            f"no {tier} price for {price.model} in the price table: an answer served at the "
            f"{tier} tier is unpriced, not charged the standard rate"
        )
        return _unpriced(why, price.citation, energy.source, spent, tier)
    input_price, cached_price, output_price, write_price = rates
    cached, written = usage.cache_read_tokens, usage.cache_write_tokens
    usd = (
        (usage.input_tokens - cached - written) * input_price
        + cached * cached_price
        + written * write_price
        + usage.output_tokens * output_price
    ).scaleb(-6)
    reasoning_usd = (usage.reasoning_tokens * output_price).scaleb(-6)
    # A snapshot charged at its family's price is an estimate: it may have cost something else.
    estimated = usage.estimated or found.snapshot is not None
    status: CostStatus = "estimated" if estimated else "priced"
    return Assessed(
        _fixed(usd, _USD_PLACES),
        status,
        spent[0],
        spent[1],
        f"{price.citation}\n{energy.source}",
        "\n".join(assumptions),
        "estimated-api",
        spent[2],
        _fixed(reasoning_usd, _USD_PLACES),
        tier,
    )


def _unpriced(
    why: str,
    source: str,
    energy: str,
    spent: tuple[Decimal, Decimal, tuple[Decimal, Decimal]],
    tier: str | None,
) -> Assessed:
    kwh, g_co2, kwh_range = spent
    sources = f"{source}\n{energy}" if source else energy
    return Assessed(
        _ZERO, "unpriced", kwh, g_co2, sources, why, "estimated-api", kwh_range, None, tier
    )


_AT_INPUT = "{} charged at the input price ({} has no {} price)"


def _or_input(listed: Decimal | None, input_price: Decimal, tokens: int) -> Decimal | None:
    """A listed price; the input price when none is listed and no token uses it; else None."""
    if listed is not None:
        return listed
    return input_price if not tokens else None


def _served_tier(reported: str | None) -> str | None:
    """The tier an answer is priced at: None for the standard one."""
    if reported in (None, "default", "auto"):
        return None
    # OpenAI reports a request for "fast" as served at "priority"; it is priced as one.
    return "priority" if reported == "fast" else reported


def _rates(
    price: Price, completion: Completion, tier: str | None, assumptions: list[str]
) -> tuple[Decimal, Decimal, Decimal, Decimal] | None:
    """Input, cached-input, output and cache-write prices for this answer; None: unpriced."""
    usage = completion.usage
    if tier is not None and completion.batch_id is None:
        listed = price.tiers.get(tier)
        if listed is None:
            return None
        assumptions.append(f"{tier} tier: {price.model}'s {tier} prices")
        source: Price | TierPrice = listed
    else:
        source = price
    cached_price = _or_input(source.cached_input, source.input, usage.cache_read_tokens)
    if cached_price is None:
        cached_price = source.input
        assumptions.append(_AT_INPUT.format("cached input", price.model, "cached"))
    write_price = _or_input(source.cache_write, source.input, usage.cache_write_tokens)
    if write_price is None:
        write_price = source.input
        assumptions.append(_AT_INPUT.format("cache writes", price.model, "write"))
    input_price, output_price = source.input, source.output
    if completion.batch_id is not None:
        share = input_price
        input_price, output_price, cached_price = batch_tier(price, cached_price, assumptions)
        write_price = write_price * (input_price / share) if share else write_price
    return input_price, cached_price, output_price, write_price


BATCH_DISCOUNT = Decimal("0.5")
"""What the OpenAI Batch API charges, as a share of the standard price, for a model whose price
entry has no batch prices of its own (OpenAI's documented 50% discount)."""


def batch_tier(
    price: Price, cached_price: Decimal, assumptions: list[str]
) -> tuple[Decimal, Decimal, Decimal]:
    """Input, output and cached-input prices at the Batch API tier, noting what was assumed.

    Args:
        price: The model's price entry.
        cached_price: The cached-input price at the standard tier.
        assumptions: Where the note on the batch prices used is appended.
    """
    if price.batch_input is not None and price.batch_output is not None:
        assumptions.append(f"Batch API tier: {price.model}'s batch prices")
        share = price.batch_input / price.input if price.input else BATCH_DISCOUNT
        return price.batch_input, price.batch_output, cached_price * share
    assumptions.append(
        f"Batch API tier: 50% of {price.model}'s standard prices (OpenAI's documented batch "
        "discount; the price table has no batch price for it)"
    )
    return (
        price.input * BATCH_DISCOUNT,
        price.output * BATCH_DISCOUNT,
        cached_price * BATCH_DISCOUNT,
    )


def cost_of(
    completion: Completion,
    *,
    hardware: LocalHardware | None = None,
    energy_j: float | None = None,
) -> Cost:
    """The cost of one completion.

    - A completion with ``compute_s`` (a local model) costs its compute time on ``hardware``,
      plus energy and CO2 (see :class:`LocalHardware`); with the default hardware its status is
      ``"estimated"``.
    - Any other completion is priced from the price table (:func:`get_price`): uncached
      input at the input price, cached input at the cached price, output (reasoning included)
      at the output price. The price is the model's own entry when either the requested model
      (``completion.model``, ``"chatgpt:gpt-4o-mini"``) or the name the provider reported
      (``completion.response_model``, ``"gpt-4o-mini-2024-07-18"``) has one, the reported name
      first; a reported snapshot without an entry never downgrades a requested model that has
      one. A dated snapshot with no entry of its own (``gpt-3.5-turbo-1106``) is charged at its
      family's price (``gpt-3.5-turbo``) with status ``"estimated"`` and an assumption saying
      so. Estimated usage also gives ``"estimated"``. An unknown model gives status
      ``"unpriced"`` with ``usd`` 0 and a warning, once per model; so does usage the provider
      reported that cannot be true (``usage.implausible``), with the reason as an assumption.
    - Earlier attempts of the request that may be billed (``unanswered_usd``: a timeout, a
      cut stream) are added, and make the status ``"estimated"``.

    Example:
        >>> from llmcompare import Completion, Usage
        >>> from llmcompare.cost import cost_of
        >>> done = Completion(text="hi", finish_reason="stop", model="chatgpt:gpt-4o-mini",
        ...                   usage=Usage(input_tokens=1000, output_tokens=500))
        >>> cost_of(done).usd
        Decimal('0.000450000')

    Args:
        completion: The completion.
        hardware: The machine a local model ran on (default :data:`GENERIC_CLOUD_VM`).
        energy_j: Measured energy of the request in joules, replacing the configured watts.
            By default the completion's own ``energy_j``, measured by its backend.

    Returns:
        The cost with its status, source and assumptions.
    """
    return assess(completion, hardware, energy_j).as_cost()
