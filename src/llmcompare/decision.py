"""The decision behind a comparison: rent a closed model or host an open one.

- :func:`per_correct`: dollars and kWh per correct answer of each model.
- :func:`break_even`: monthly dollars against monthly requests for two models, and the volume
  above which one costs less than the other (:class:`BreakEven`).

The cost model, stated once (every :class:`BreakEven` repeats it in its ``assumptions``):

- An **API model** costs the same for every request: the run's mean dollars per request, i.e.
  its mean input and output tokens per request at the run's prices. Monthly dollars are linear
  in the volume.
- A **local model** runs on the run's stated hardware (``RunInfo.hardware``, by default a
  generic cloud VM), **kept on all month** (730 hours) so that requests are answered when they
  come: one machine costs ``usd_per_hour x 730`` a month whatever the volume, and serves at
  most its measured throughput (output tokens/s over the mean output tokens per request)
  times the month's seconds; a larger volume needs another machine. Energy is added per
  request (the run's measured or estimated kWh per request times ``usd_per_kwh``); an idle
  machine's draw is not counted.
- A machine rented per second of use instead (scaled to zero when idle) makes the local cost
  linear too: that figure, the **local cost per request at full use**, is given beside the
  crossover so a reader can judge either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llmcompare.cost import GENERIC_CLOUD_VM, LocalHardware

if TYPE_CHECKING:
    from llmcompare.record import Comparison, ModelSummary

__all__ = ["HOURS_PER_MONTH", "BreakEven", "CostLine", "PerCorrect", "break_even", "per_correct"]

HOURS_PER_MONTH = 730.0
"""Hours in an average month (8,760 / 12): what an always-on machine is paid for."""


@dataclass(frozen=True)
class PerCorrect:
    """What one correct answer of a model cost in the run.

    A correct answer is a score of 1: each answered request adds its score (the mean of its
    scorers), so partial credit counts partly and a failed request counts 0.

    Attributes:
        model: The model's label.
        correct: Correct answers in the run (the sum of the scores).
        usd: Dollars per correct answer, or None when nothing was correct or it is unpriced.
        kwh: Kilowatt-hours per correct answer, or None when energy is unknown (API models).
    """

    model: str
    correct: float
    usd: float | None
    kwh: float | None


def per_correct(comparison: Comparison) -> list[PerCorrect]:
    """Dollars and kWh per correct answer of each model, in run order."""
    from llmcompare._aggregate import row_score

    correct = dict.fromkeys(comparison.run.models, 0.0)
    for row in comparison.rows:
        score = row_score(row)
        if score is not None:
            correct[row.model] = correct.get(row.model, 0.0) + score
    out = []
    for s in comparison.summaries:
        n = correct.get(s.model, 0.0)
        usd = None if n <= 0 or s.cost.status == "unpriced" else float(s.cost.usd) / n
        kwh = None if n <= 0 or s.cost.kwh is None else float(s.cost.kwh) / n
        out.append(PerCorrect(model=s.model, correct=n, usd=usd, kwh=kwh))
    return out


@dataclass(frozen=True)
class CostLine:
    """One model's monthly dollars as a function of monthly requests.

    ``monthly_usd(n) = machines(n) * fixed_usd + n * usd_per_request``, where ``machines(n)``
    is 0 for an API model and ``ceil(n / capacity)`` (at least 1) for a local one.

    Attributes:
        model: The model's label.
        local: Whether it is hosted (open weights on the stated hardware).
        usd_per_request: Dollars each request adds (API: price x mean tokens; local: energy).
        fixed_usd: Dollars a month per machine kept on (0 for an API model).
        capacity: Requests a month one machine serves at the measured throughput (None: API).
        full_use_usd_per_request: A local request's cost when the machine is busy every hour
            it is paid for (None for an API model).
    """

    model: str
    local: bool
    usd_per_request: float
    fixed_usd: float = 0.0
    capacity: float | None = None
    full_use_usd_per_request: float | None = None

    def machines(self, requests: float) -> int:
        """Machines needed for ``requests`` a month (0 for an API model)."""
        if not self.local or self.capacity is None:
            return 0
        return max(1, math.ceil(requests / self.capacity))

    def monthly_usd(self, requests: float) -> float:
        """Dollars a month at ``requests`` requests a month."""
        return self.machines(requests) * self.fixed_usd + requests * self.usd_per_request


@dataclass(frozen=True)
class BreakEven:
    """Where two models' monthly costs cross (see the module docstring for the cost model).

    Attributes:
        model_a: The first model's label.
        model_b: The second model's label.
        lines: Each model's monthly cost (``a`` then ``b``), None for a model that cannot be
            costed (unpriced, or no measured throughput).
        crossover: Requests a month above which ``cheaper_above`` costs less, or None.
        cheaper_above: The model that costs less above the crossover (or at every volume,
            when there is no crossover but one is always cheaper).
        reason: Why there is no crossover, when there is none.
        assumptions: Every number the figure rests on, one per line.
    """

    model_a: str
    model_b: str
    lines: tuple[CostLine | None, CostLine | None]
    crossover: float | None
    cheaper_above: str | None
    reason: str | None
    assumptions: tuple[str, ...] = field(default=())

    def sentence(self) -> str:
        """The verdict in one sentence, for the report and the terminal."""
        if self.crossover is not None and self.cheaper_above is not None:
            other = self.model_b if self.cheaper_above == self.model_a else self.model_a
            line = self.lines[0] if self.cheaper_above == self.model_a else self.lines[1]
            verb = "hosting " if line is not None and line.local else "renting "
            where = " on this hardware" if line is not None and line.local else ""
            return (
                f"above ~{_round_volume(self.crossover)} requests a month, {verb}"
                f"{self.cheaper_above}{where} costs less than {other}"
            )
        return f"{self.model_a} vs {self.model_b}: {self.reason}"


def _round_volume(n: float) -> str:
    """A volume to two significant figures with thousands separators (584,000; 1,200,000)."""
    if n < 100:
        return f"{math.ceil(n):,}"
    digits = math.floor(math.log10(n)) - 1
    return f"{round(n, -digits):,.0f}"


def _cost_line(
    s: ModelSummary, hardware: LocalHardware, default_hw: bool
) -> tuple[CostLine | None, list[str]]:
    answered = s.succeeded
    if answered == 0:
        return None, [f"{s.model}: no answered request to cost"]
    if s.cost.status == "unpriced":
        return None, [f"{s.model}: unpriced, so it cannot be costed"]
    out_per_req = s.usage.output_tokens / answered
    in_per_req = s.usage.input_tokens / answered
    if not s.open_weights:
        usd = float(s.cost.usd) / answered
        return CostLine(model=s.model, local=False, usd_per_request=usd), [
            f"{s.model}: ${usd:.6f} a request (the run's mean of {in_per_req:.0f} input + "
            f"{out_per_req:.0f} output tokens at its prices), linear in volume"
        ]
    if not s.output_tokens_per_s or out_per_req <= 0:
        return None, [f"{s.model}: no measured throughput, so hosting it cannot be costed"]
    per_s = s.output_tokens_per_s / out_per_req
    capacity = per_s * 3600 * HOURS_PER_MONTH
    kwh = float(s.cost.kwh) / answered if s.cost.kwh is not None else 0.0
    energy = kwh * float(hardware.usd_per_kwh)
    rate = float(hardware.usd_per_hour)
    line = CostLine(
        model=s.model,
        local=True,
        usd_per_request=energy,
        fixed_usd=rate * HOURS_PER_MONTH,
        capacity=capacity,
        full_use_usd_per_request=rate / (per_s * 3600) + energy,
    )
    notes = [
        f"{s.model}: hosted on {hardware.name} at ${rate:g}/h, kept on {HOURS_PER_MONTH:g} h a "
        f"month (${line.fixed_usd:,.2f} per machine)",
        f"{s.model}: measured {s.output_tokens_per_s:.1f} output tokens/s over "
        f"{out_per_req:.0f} output tokens a request = {per_s:.3g} requests/s, "
        f"{capacity:,.0f} a month per machine",
        f"{s.model}: energy {kwh:.3g} kWh a request at ${hardware.usd_per_kwh}/kWh "
        "(idle draw not counted)",
        f"{s.model}: ${line.full_use_usd_per_request:.6f} a request if the machine is busy "
        "every hour it is paid for (rented per second of use)",
    ]
    if default_hw:
        notes.append(f"{s.model}: default hardware rates ({hardware.notes})")
    return line, notes


def _crossover(fixed: CostLine, linear: CostLine) -> tuple[float | None, str | None]:
    """The least volume from which the local line ``fixed`` costs no more than ``linear``."""
    gap = linear.usd_per_request - fixed.usd_per_request
    assert fixed.capacity is not None
    if gap <= 0:
        return None, f"{linear.model} costs less at every volume (hosting adds more per request)"
    first = fixed.fixed_usd / gap
    if first <= fixed.capacity:
        return first, None
    assert fixed.full_use_usd_per_request is not None
    return None, (
        f"{linear.model} costs less at every volume: even fully used, a request on "
        f"{fixed.model} costs ${fixed.full_use_usd_per_request:.6f} against "
        f"${linear.usd_per_request:.6f}"
    )


def break_even(comparison: Comparison, model_a: str, model_b: str) -> BreakEven:
    """Monthly cost of two models of a run against monthly requests, and where they cross.

    Args:
        comparison: The record.
        model_a: A model label of the run.
        model_b: Another one.

    Returns:
        The two cost lines, the crossover volume (or None and the reason), and the
        assumptions (see the module docstring for the cost model).

    Raises:
        KeyError: When a model is not in the run.
    """
    by_model = {s.model: s for s in comparison.summaries}
    for model in (model_a, model_b):
        if model not in by_model:
            raise KeyError(f"{model!r} is not a model of this run: {list(by_model)}")
    hardware = comparison.run.hardware or GENERIC_CLOUD_VM
    default_hw = comparison.run.hardware is None
    a, notes_a = _cost_line(by_model[model_a], hardware, default_hw)
    b, notes_b = _cost_line(by_model[model_b], hardware, default_hw)
    assumptions = (
        *notes_a,
        *notes_b,
        f"a month is {HOURS_PER_MONTH:g} hours; prices as of "
        + (
            comparison.run.price_table_date.isoformat()
            if comparison.run.price_table_date
            else "n/a"
        ),
    )

    def result(crossover: float | None, cheaper: str | None, reason: str | None) -> BreakEven:
        return BreakEven(model_a, model_b, (a, b), crossover, cheaper, reason, assumptions)

    if a is None or b is None:
        missing = model_a if a is None else model_b
        return result(None, None, f"{missing} cannot be costed (see the assumptions)")
    if a.local == b.local:
        kind = "hosted" if a.local else "API"
        if a.local:
            assert a.full_use_usd_per_request is not None
            assert b.full_use_usd_per_request is not None
            per_a, per_b = a.full_use_usd_per_request, b.full_use_usd_per_request
        else:
            per_a, per_b = a.usd_per_request, b.usd_per_request
        if per_a == per_b:
            return result(None, None, f"both are {kind} and cost the same per request")
        cheaper = model_a if per_a < per_b else model_b
        return result(
            None,
            cheaper,
            f"both are {kind} models, costed alike: no crossover, {cheaper} costs less per request",
        )
    local, api = (a, b) if a.local else (b, a)
    if local.fixed_usd == 0 and local.usd_per_request < api.usd_per_request:
        return result(
            None,
            local.model,
            f"{local.model} costs less at every volume: its machine costs nothing by the hour",
        )
    crossover, reason = _crossover(local, api)
    if crossover is None:
        return result(None, api.model, reason)
    return result(crossover, local.model, None)
