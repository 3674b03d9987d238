"""A load sweep's figures: each model at each level of requests in flight, and a latency target.

- :class:`LoadLevel`: one level's requests/s, output tokens/s, latency and time to first token
  (p50, p95), time per output token and errors.
- :class:`Sweep`: one model's levels and its operating point: the highest throughput that
  meets the latency target (:class:`~llmcompare.record.Slo`).
- :class:`WhatIf`: a model priced on the run's items without sending anything.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from llmcompare.batch._slo import Slo

__all__ = ["LoadLevel", "Sweep", "WhatIf", "operating_level"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class LoadLevel(BaseModel):
    """One model at one level of requests in flight: what it served and how fast.

    Attributes:
        level: Requests in flight at once (for an engine that batches: rows per batch).
        requests: Requests sent at this level (never answered from the cache).
        errors: Requests that failed.
        wall_s: Seconds from the first request sent to the last answer.
        requests_per_s: Answered requests over ``wall_s``.
        output_tokens_per_s: Output tokens over ``wall_s``.
        latency_p50_s: Median latency.
        latency_p95_s: 95th percentile latency.
        ttft_p50_s: Median time to the first token (None when not measured).
        ttft_p95_s: 95th percentile time to the first token.
        tpot_s: Mean time per output token after the first (None when not measured).
    """

    model_config = _FROZEN

    level: int = Field(ge=1)
    requests: int
    errors: int
    wall_s: float
    requests_per_s: float
    output_tokens_per_s: float
    latency_p50_s: float | None
    latency_p95_s: float | None
    ttft_p50_s: float | None = None
    ttft_p95_s: float | None = None
    tpot_s: float | None = None

    def meets(self, slo: Slo) -> bool:
        """Whether this level met every bound of ``slo`` with no failed request."""
        if self.errors:
            return False
        for metric, bound in slo.bounds.items():
            value = getattr(self, metric)
            if value is None or value > bound:
                return False
        return True


class Sweep(BaseModel):
    """One model's load sweep: its levels, and the level it is best run at.

    Attributes:
        model: The model's label.
        levels: Each level's figures, in the order swept.
        slo: The latency target, when one was given.
        operating_level: The level of the highest output tokens/s that meets ``slo`` (None
            without a target, or when no level meets it).
    """

    model_config = _FROZEN

    model: str
    levels: tuple[LoadLevel, ...]
    slo: Slo | None = None
    operating_level: int | None = None

    @property
    def operating_point(self) -> LoadLevel | None:
        """The figures at :attr:`operating_level`, when there is one."""
        return next((x for x in self.levels if x.level == self.operating_level), None)

    def lines(self) -> list[str]:
        """The sweep as the terminal prints it: one line per level, the operating point marked."""
        out = []
        for x in self.levels:
            mark = "  <- operating point" if x.level == self.operating_level else ""
            out.append(
                f"{self.model} @ {x.level:>3} in flight: {x.requests_per_s:,.2f} req/s, "
                f"{x.output_tokens_per_s:,.1f} tok/s, latency p50 {_seconds(x.latency_p50_s)} "
                f"p95 {_seconds(x.latency_p95_s)}, TTFT p95 {_seconds(x.ttft_p95_s)}, "
                f"errors {x.errors}{mark}"
            )
        if self.slo is not None and self.operating_level is None:
            out.append(f"{self.model}: no level meets {self.slo.text}")
        return out


def _seconds(value: float | None) -> str:
    # Not measured (every request of the level failed): "-", never a latency of 0.
    return "-" if value is None else f"{value:.3f} s"


def operating_level(levels: tuple[LoadLevel, ...], slo: Slo | None) -> int | None:
    """The level of the highest output tokens/s that meets ``slo`` (None: no target, or none)."""
    if slo is None:
        return None
    met = [x for x in levels if x.meets(slo)]
    return max(met, key=lambda x: x.output_tokens_per_s).level if met else None


class WhatIf(BaseModel):
    """A model priced on the run's items without sending anything: estimated, not sent.

    Attributes:
        model: The model priced (``"chatgpt:gpt-5.4-mini"``).
        requests: The requests priced (the run's items times samples).
        input_tokens: Their input tokens, counted exactly with the model's tokenizer offline.
        output_tokens: Their output tokens, estimated: the run's measured answers to each
            item re-tokenized with that tokenizer (their mean over the run's models).
        usd: What they would cost at the model's table prices.
        price_date: When those prices were checked.
        price_source: Where those prices come from (the provider's pricing page).
    """

    model_config = _FROZEN

    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    usd: Decimal
    price_date: date | None = None
    price_source: str = ""

    @property
    def usd_per_request(self) -> float:
        """Dollars a request, estimated."""
        return float(self.usd) / self.requests if self.requests else 0.0
