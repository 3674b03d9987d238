"""Rent or host: two models' monthly dollars against monthly requests, and where they cross.

The cost model is stated in :mod:`llmcompare.decision`; :func:`break_even` applies it to a
record and says every number it rests on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llmcompare.cost import GENERIC_CLOUD_VM, LocalHardware
from llmcompare.cost._units import per_thousand, plain, usd
from llmcompare.decision._quality import energy_basis_of

if TYPE_CHECKING:
    from llmcompare.record import Comparison, LoadLevel, ModelSummary, WhatIf

__all__ = [
    "HOURS_PER_MONTH",
    "MINUTES_PER_MONTH",
    "MONTH_BASIS",
    "UNTIMED_CACHE",
    "BreakEven",
    "CostLine",
    "break_even",
    "rate_limit_note",
    "round_volume",
]

HOURS_PER_MONTH = 730.0
"""Hours in an average month (8,760 / 12): what an always-on machine is paid for."""

MONTH_BASIS = "a machine kept on all month"
"""The break-even's cost basis, named wherever it is shown (the run's figures are the other:
``"paid per second of use"``)."""


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
        crossover: Requests a month above which ``cheaper_above`` costs less for good (at
            every larger volume), or None.
        cheaper_above: The model that costs less above the crossover (or at every volume,
            when there is no crossover but one is always cheaper).
        reason: Why there is no crossover, when there is none.
        assumptions: Every number the figure rests on, one per line.
        first_crossover: The least volume from which the hosted model is cheaper at all, when
            that is below ``crossover`` (above it the API is cheaper again just after each
            added machine); None when the two are the same.
        machines: Machines the hosted model needs at the crossover (None without one).
        not_sent: A model of the pair priced without sending anything (``what_if``), whose
            figures are estimated, not sent; None when both ran.
        limits: Where the decision's volume (the crossover, and the volume asked about) needs
            more than an API model's stated rate limits: one sentence each
            (:func:`rate_limit_note`).
    """

    model_a: str
    model_b: str
    lines: tuple[CostLine | None, CostLine | None]
    crossover: float | None
    cheaper_above: str | None
    reason: str | None
    assumptions: tuple[str, ...] = field(default=())
    first_crossover: float | None = None
    machines: int | None = None
    not_sent: str | None = None
    limits: tuple[str, ...] = ()

    def sentence(self) -> str:
        """The verdict in one sentence, for the report and the terminal."""
        said = self._verdict()
        return said if self.not_sent is None else f"{said} ({self.not_sent}: estimated, not sent)"

    def _verdict(self) -> str:
        if self.crossover is not None and self.cheaper_above is not None:
            other = self.model_b if self.cheaper_above == self.model_a else self.model_a
            line = self.lines[0] if self.cheaper_above == self.model_a else self.lines[1]
            verb = "hosting " if line is not None and line.local else "renting "
            where = " on this hardware" if line is not None and line.local else ""
            said = (
                f"above ~{round_volume(self.crossover)} requests a month, {verb}"
                f"{self.cheaper_above}{where} costs less than {other}"
            )
            if self.first_crossover is None:
                return said
            return (
                f"{said} for good ({self.machines} machines); from ~"
                f"{round_volume(self.first_crossover)} up to there the cheaper one alternates: "
                f"{other} costs less just after each added machine"
            )
        return f"{self.model_a} vs {self.model_b}: {self.reason}"


MINUTES_PER_MONTH = HOURS_PER_MONTH * 60
"""The minutes a monthly volume is spread over to find the average rate a key must serve: the
same month as the machine's (:data:`HOURS_PER_MONTH`), so one decision has one month."""


def rate_limit_note(comparison: Comparison, model: str, volume: float) -> str | None:
    """What ``volume`` requests a month need of an API model's stated limits, when it is more.

    The average is the volume over :data:`MINUTES_PER_MONTH` (peaks need more); tokens a minute
    come from the run's measured mean tokens (input plus output) a request. None when the model
    states no limits, is hosted, or its limits hold the average.

    Example: "at 640,000 requests a month chatgpt:x needs 14.8 requests a minute on average
    (more at peak); its stated limit is 10 rpm: one key cannot serve it".
    """
    limits = comparison.run.rate_limits.get(model)
    s = next((x for x in comparison.summaries if x.model == model), None)
    if limits is None or s is None or s.open_weights or s.succeeded == 0:
        return None
    per_minute = volume / MINUTES_PER_MONTH
    tokens = per_minute * (s.usage.input_tokens + s.usage.output_tokens) / s.succeeded
    over = []
    if limits.rpm is not None and per_minute > limits.rpm:
        over.append(f"{plain(limits.rpm)} rpm")
    if limits.tpm is not None and tokens > limits.tpm:
        over.append(f"{plain(limits.tpm)} tpm")
    if not over:
        return None
    need = f"{plain(per_minute)} requests" + (
        f" ({plain(tokens)} tokens)" if limits.tpm is not None else ""
    )
    stated = f"limits are {' and '.join(over)}" if len(over) > 1 else f"limit is {over[0]}"
    return (
        f"at {volume:,.0f} requests a month {model} needs {need} a minute on average "
        f"(more at peak); its stated {stated}: one key cannot serve it"
    )


def round_volume(n: float) -> str:
    """A volume as the report states it: two significant figures, thousands separators.

    The one rounding of a crossover, in the sentence, on the chart and in the terminal
    (584,123 gives ``"580,000"``; 1,234,567 gives ``"1,200,000"``).
    """
    if n < 100:
        return f"{math.ceil(n):,}"
    digits = math.floor(math.log10(n)) - 1
    return f"{round(n, -digits):,.0f}"


def _per_1k(x: float) -> str:
    """Dollars a request as the reader compares them: per 1,000 requests, plain decimals."""
    return f"{usd(per_thousand(x))} per 1,000 requests"


@dataclass(frozen=True)
class _Served:
    """How a model's answers were served, from its rows: workers and the Batch API.

    ``untimed``: every answer came from the cache and none carries its measurement (written by
    an llmcompare that kept no timings), so the run has no throughput to cost hosting with.
    """

    workers: tuple[str, ...]
    batched: int
    answered: int
    untimed: bool = False


UNTIMED_CACHE = (
    "answers from a cache written before timings were kept; rerun with --refresh "
    "(refresh=True) to measure"
)
"""Why a hosted model read back from an old cache cannot be costed, and what to do."""


def _served(comparison: Comparison, model: str) -> _Served:
    workers: set[str] = set()
    batched = answered = 0
    cached = unstamped = True
    for row in comparison.rows:
        c = row.completion
        if row.model != model or c is None:
            continue
        answered += 1
        batched += c.batch_id is not None
        if c.worker is not None:
            workers.add(c.worker)
        cached = cached and row.cached
        unstamped = unstamped and c.measured_at is None
    untimed = answered > 0 and cached and unstamped
    return _Served(tuple(sorted(workers)), batched, answered, untimed)


def _tier(served: _Served) -> str:
    if served.batched == 0:
        return "at its standard (interactive) prices"
    if served.batched == served.answered:
        return "at its Batch API prices (every request went through the Batch API)"
    return (
        f"at its prices: {served.batched} of {served.answered} requests at the Batch API tier, "
        "the rest at the standard one"
    )


def _cost_line(
    s: ModelSummary,
    hardware: LocalHardware,
    default_hw: bool,
    served: _Served,
    swept: LoadLevel | None = None,
    basis: str | None = None,
) -> tuple[CostLine | None, list[str]]:
    answered = s.succeeded
    if answered == 0:
        return None, [f"{s.model}: no answered request to cost"]
    if s.cost.status == "unpriced":
        return None, [f"{s.model}: unpriced, so it cannot be costed"]
    out_per_req = s.usage.output_tokens / answered
    in_per_req = s.usage.input_tokens / answered
    if not s.open_weights:
        per_request = float(s.cost.usd) / answered
        return CostLine(model=s.model, local=False, usd_per_request=per_request), [
            f"{s.model}: {_per_1k(per_request)}, paid per token (the run's mean of "
            f"{in_per_req:,.0f} input + {out_per_req:,.0f} output tokens a request "
            f"{_tier(served)}), linear in volume"
        ]
    tokens_per_s = s.output_tokens_per_s if swept is None else swept.output_tokens_per_s
    if not tokens_per_s or out_per_req <= 0:
        if served.untimed:
            return None, [f"{s.model}: {UNTIMED_CACHE}"]
        return None, [f"{s.model}: no measured throughput, so hosting it cannot be costed"]
    # A sweep's level is one machine's load; the run's own rate may be several workers'.
    workers = max(1, len(served.workers)) if swept is None else 1
    # Several workers ran side by side: the measured rate is their sum, one machine serves a share.
    per_worker = tokens_per_s / workers
    per_s = per_worker / out_per_req
    capacity = per_s * 3600 * HOURS_PER_MONTH
    kwh = float(s.cost.kwh) / answered if s.cost.kwh is not None else 0.0
    energy = kwh * float(hardware.usd_per_kwh)
    rate = float(hardware.usd_per_hour)
    full_use = rate / (per_s * 3600) + energy
    line = CostLine(
        model=s.model,
        local=True,
        usd_per_request=energy,
        fixed_usd=rate * HOURS_PER_MONTH,
        capacity=capacity,
        full_use_usd_per_request=full_use,
    )
    measured = f"measured {tokens_per_s:.1f} output tokens/s"
    if swept is not None:
        measured += (
            f" at its operating point, {swept.level} requests in flight (the highest "
            "throughput that meets the latency target)"
        )
    elif s.timed_at is not None:
        # A rerun answered from the cache reports the run that timed the answers.
        where = f" on {s.timed_on}" if s.timed_on else ""
        measured += f" (by an earlier run{where} at {s.timed_at:%Y-%m-%d %H:%M} UTC)"
    if workers > 1:
        measured += (
            f" in total over {workers} workers ({', '.join(served.workers)}), each taken as one "
            f"machine at {usd(rate)}/h serving {per_worker:.1f} tokens/s"
        )
    notes = [
        f"{s.model}: hosted on {hardware.name} at {usd(rate)}/h, kept on {HOURS_PER_MONTH:g} h "
        f"a month (${line.fixed_usd:,.2f} per machine)",
        f"{s.model}: {measured}; over {out_per_req:,.0f} output tokens a request that is "
        f"{plain(per_s)} requests/s, {capacity:,.0f} a month per machine, if requests come "
        "evenly all month at "
        + ("that level" if swept is not None else "the run's concurrency")
        + " (peaks need spare machines)",
        f"{s.model}: energy {plain(per_thousand(kwh) * 1000)} Wh per 1,000 requests at "
        f"{usd(hardware.usd_per_kwh)}/kWh ({basis or 'idle draw not counted'})",
        f"{s.model}: {_per_1k(full_use)} if the machine is busy every hour it is paid for "
        "(paid per second of use)",
    ]
    if default_hw:
        notes.append(f"{s.model}: default hardware rates ({hardware.notes})")
    elif basis is not None:  # a hosted model: its machine's rates and where they come from
        notes.append(f"{s.model}: machine rates of {hardware.name} ({hardware.notes})")
    return line, notes


def _what_if_line(w: WhatIf) -> tuple[CostLine, list[str]]:
    """A model priced without sending anything: linear in volume, estimated, not sent."""
    per_request = w.usd_per_request
    return CostLine(model=w.model, local=False, usd_per_request=per_request), [
        f"{w.model}: {_per_1k(per_request)}, paid per token, estimated, not sent (the run's "
        f"{w.requests:,} requests: {w.input_tokens:,} input tokens counted with its tokenizer, "
        f"{w.output_tokens:,} output tokens estimated from the run's answers, at its table "
        "prices), linear in volume"
    ]


@dataclass(frozen=True)
class _Crossing:
    for_good: float | None
    first: float | None
    machines: int | None
    reason: str | None


def _crossover(fixed: CostLine, linear: CostLine) -> _Crossing:
    """The volume from which the local line ``fixed`` costs no more than ``linear`` for good.

    With ``k`` machines (volumes in ``((k-1) C, k C]``) local costs ``k F + e n`` and the API
    ``p n``: local is no dearer from ``k * first`` on, ``first = F / (p - e)``. That is inside
    band ``k`` (so the API wins its start) while ``k * first > (k-1) C``; the last such ``k``
    gives the volume above which local stays cheaper.
    """
    gap = linear.usd_per_request - fixed.usd_per_request
    capacity = fixed.capacity
    assert capacity is not None
    if gap <= 0:
        reason = f"{linear.model} costs less at every volume (hosting adds more per request)"
        return _Crossing(None, None, None, reason)
    first = fixed.fixed_usd / gap
    if first < capacity:
        k = max(1, math.ceil(capacity / (capacity - first)) - 1)
        # Float-safe: k is the largest band whose start the API still wins.
        while (k + 1) * first > k * capacity:
            k += 1
        while k > 1 and k * first <= (k - 1) * capacity:
            k -= 1
        return _Crossing(k * first, first if k > 1 else None, k, None)
    assert fixed.full_use_usd_per_request is not None
    reason = (
        f"{linear.model} costs less at every volume: even fully used, "
        f"{fixed.model} costs {_per_1k(fixed.full_use_usd_per_request)} against "
        f"{_per_1k(linear.usd_per_request)}"
    )
    return _Crossing(None, None, None, reason)


def break_even(
    comparison: Comparison, model_a: str, model_b: str, volume: float | None = None
) -> BreakEven:
    """Monthly cost of two models of a run against monthly requests, and where they cross.

    Args:
        comparison: The record.
        model_a: A model label of the run.
        model_b: Another one.
        volume: A monthly volume to check against the API models' stated rate limits, besides
            the crossover (see :func:`rate_limit_note`).

    Returns:
        The two cost lines, the crossover volume (or None and the reason), and the
        assumptions (see the module docstring for the cost model).

    Raises:
        KeyError: When a model is not in the run.
    """
    by_model = {s.model: s for s in comparison.summaries}
    priced_only = {w.model: w for w in comparison.what_if}
    for model in (model_a, model_b):
        if model not in by_model and model not in priced_only:
            raise KeyError(f"{model!r} is not a model of this run: {list(by_model)}")
    hardware = comparison.run.hardware or GENERIC_CLOUD_VM
    default_hw = comparison.run.hardware is None
    hosted = comparison.run.hosted
    sweeps = {sweep.model: sweep for sweep in comparison.sweeps}

    def line(model: str) -> tuple[CostLine | None, list[str]]:
        if model not in by_model:
            return _what_if_line(priced_only[model])
        # A hosted model is costed on its own machine; the run's hardware is the others'.
        own = hosted.get(model)
        sweep = sweeps.get(model)
        return _cost_line(
            by_model[model],
            own or hardware,
            default_hw and own is None,
            _served(comparison, model),
            None if sweep is None else sweep.operating_point,
            energy_basis_of(comparison, by_model[model]),
        )

    a, notes_a = line(model_a)
    b, notes_b = line(model_b)
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

    def result(
        crossover: float | None,
        cheaper: str | None,
        reason: str | None,
        first: float | None = None,
        machines: int | None = None,
    ) -> BreakEven:
        not_sent = next((m for m in (model_a, model_b) if m not in by_model), None)
        notes = (
            rate_limit_note(comparison, m, v)
            for v in dict.fromkeys(x for x in (crossover, volume) if x is not None)
            for m in (model_a, model_b)
        )
        return BreakEven(
            model_a,
            model_b,
            (a, b),
            crossover,
            cheaper,
            reason,
            assumptions,
            first,
            machines,
            not_sent,
            tuple(n for n in notes if n is not None),
        )

    if a is None or b is None:
        missing = model_a if a is None else model_b
        # The one reason a reader can act on at once is said in the sentence itself.
        said = notes_a if a is None else notes_b
        why = UNTIMED_CACHE if said == [f"{missing}: {UNTIMED_CACHE}"] else "see the assumptions"
        return result(None, None, f"{missing} cannot be costed ({why})")
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
    found = _crossover(local, api)
    if found.for_good is None:
        return result(None, api.model, found.reason)
    return result(found.for_good, local.model, None, found.first, found.machines)
