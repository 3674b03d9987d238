"""The estimated energy of one answer from a model behind an API (``"estimated-api"``).

An API model's energy cannot be measured from here, so it is estimated, as a range, and always
labelled ``estimated-api`` so that it is never read as (or summed unlabelled with) a local
model's measured joules:

- with EcoLogits installed (``pip install "llmcompare[energy]"``), by its method
  (https://ecologits.ai/latest/methodology/llm_inference/): the model's parameter range from its
  published or estimated architecture, energy per output token on its reference GPUs, the
  request's latency, the provider's data-centre PUE, and its emission factor for the CO2 range;
- otherwise, or for a model EcoLogits does not know, from a stated per-token figure: Epoch AI's
  estimate of 0.3 Wh for a typical GPT-4o answer of about 500 output tokens ("How much energy
  does ChatGPT use?", https://epoch.ai/gradient-updates/how-much-energy-does-chatgpt-use,
  February 2025), which Epoch calls relatively pessimistic, as the high end (0.6 mWh per output
  token) and a tenth of it as the low end; CO2 at the world-average grid (436 gCO2/kWh, as
  :class:`~llmcompare.cost.LocalHardware`'s default).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NamedTuple

__all__ = ["FALLBACK_KWH_PER_TOKEN", "ApiEnergy", "api_energy"]

FALLBACK_KWH_PER_TOKEN = (Decimal("0.00000006"), Decimal("0.0000006"))
"""The low and high kWh per output token without EcoLogits: 0.06 and 0.6 mWh (see above)."""

_FALLBACK_G_PER_KWH = Decimal(436)
_FALLBACK_SOURCE = (
    "energy estimated-api: 0.06-0.6 mWh per output token (high end: Epoch AI, 0.3 Wh per "
    "~500-token GPT-4o answer, https://epoch.ai/gradient-updates/how-much-energy-does-chatgpt-use,"
    " Feb 2025; low end a tenth of it); 436 gCO2/kWh world average (Ember 2023)"
)
_PLACES = Decimal("1e-12")


class ApiEnergy(NamedTuple):
    """An estimated energy range for one API answer.

    Attributes:
        low: The low end, in kWh.
        high: The high end, in kWh.
        g_co2: The middle of the CO2 range, in grams CO2-equivalent.
        source: How it was estimated, with its sources (one line).
    """

    low: Decimal
    high: Decimal
    g_co2: Decimal
    source: str

    @property
    def kwh(self) -> Decimal:
        """The middle of the range, in kWh."""
        return ((self.low + self.high) / 2).quantize(_PLACES)


def api_energy(model: str, output_tokens: int, latency_s: float) -> ApiEnergy:
    """Estimate the energy of one API answer (never None: a stated figure at worst).

    Args:
        model: The provider's model name (the reported snapshot, else the requested name).
        output_tokens: Generated tokens, reasoning included.
        latency_s: The request's latency (EcoLogits bounds the generation time with it).

    Returns:
        The range, its CO2 and its source.
    """
    # Rounded latency: a memo that hits across a run's similar answers (EcoLogits costs ~2 ms).
    found = _ecologits(model, max(output_tokens, 0), round(max(latency_s, 0.0), 1))
    if found is not None:
        return found
    low, high = (rate * output_tokens for rate in FALLBACK_KWH_PER_TOKEN)
    g_co2 = ((low + high) / 2 * _FALLBACK_G_PER_KWH).quantize(Decimal("1e-9"))
    return ApiEnergy(low, high, g_co2, _FALLBACK_SOURCE)


@functools.lru_cache(maxsize=4096)
def _ecologits(model: str, output_tokens: int, latency_s: float) -> ApiEnergy | None:
    llm_impacts = _ecologits_function()
    if llm_impacts is None:
        return None
    name = model.split(":", 1)[1] if ":" in model else model
    impacts = llm_impacts("openai", name.removeprefix("openai/"), output_tokens, latency_s or None)
    energy = getattr(impacts, "energy", None)
    if energy is None:  # a model EcoLogits does not know
        return None
    value, gwp = energy.value, getattr(impacts, "gwp", None)
    low, high = (Decimal(repr(float(x))).quantize(_PLACES) for x in _ends(value))
    g_low, g_high = _ends(gwp.value) if gwp is not None else (0.0, 0.0)
    g_co2 = Decimal(repr((g_low + g_high) / 2 * 1000)).quantize(Decimal("1e-9"))
    source = (
        f"energy estimated-api: EcoLogits {_version()} (https://ecologits.ai methodology) for "
        f"openai/{name}, {output_tokens} output tokens"
    )
    return ApiEnergy(low, high, g_co2, source)


def _ends(value: object) -> tuple[float, float]:
    low, high = getattr(value, "min", None), getattr(value, "max", None)
    if low is None or high is None:  # a single value, not a range
        return float(value), float(value)  # type: ignore[arg-type]  # a plain number
    return float(low), float(high)


@functools.cache
def _ecologits_function() -> Callable[..., Any] | None:
    try:
        before = logging.getLoggerClass()
        try:
            from ecologits.tracers.utils import llm_impacts
        finally:
            # EcoLogits sets its own logger class for the whole process on import; put it back.
            logging.setLoggerClass(before)
    except ImportError:
        return None
    # Its precision warnings go to its logger: kept off the console unless logging is set up.
    logging.getLogger("ecologits").addHandler(logging.NullHandler())
    return llm_impacts


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ecologits")
    except PackageNotFoundError:  # pragma: no cover - imported, so installed
        return "?"
