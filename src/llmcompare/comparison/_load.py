"""Load sweeps: each model's items sent again at each level of requests in flight.

A sweep is a way :func:`~llmcompare.comparison.compare` runs (``load=[1, 4, 16, 64]``): after
the answers are gathered, each model's requests are sent at each level, timed, never taken
from the cache (a cached answer measures nothing). A model that batches in process gets
batches of ``level`` rows; any other gets ``level`` requests in flight. Before anything is
sent, :func:`plan_sweep` says how many requests the sweep sends and, for priced models, what
they cost at most; a sweep that may cost more than the budget's dollars is refused.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from llmcompare.batch import generate_many
from llmcompare.batch._slo import Slo
from llmcompare.cost import Budget
from llmcompare.cost._budget import DEFAULT_MAX_TOKENS, worst_case
from llmcompare.cost._units import usd
from llmcompare.errors import ConfigurationError
from llmcompare.model import _native_batching, _native_streaming
from llmcompare.record._aggregate import percentile
from llmcompare.record._load import LoadLevel, Sweep, operating_level
from llmcompare.types import Request, Result

if TYPE_CHECKING:
    from llmcompare.comparison._plan import ModelRun
    from llmcompare.comparison._run import Sending

__all__ = ["check_levels", "plan_sweep", "run_sweeps"]


def check_levels(load: Sequence[int]) -> tuple[int, ...]:
    """The levels as given, each a whole number of requests in flight, at least 1, once each."""
    levels = tuple(load)
    if not levels or any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in levels):
        raise ConfigurationError(
            f"load={list(levels)!r}: give levels of requests in flight, whole numbers >= 1 "
            "(e.g. load=[1, 4, 16, 64])"
        )
    # A level twice would be swept twice and marked twice as the operating point.
    twice = sorted({x for x in levels if levels.count(x) > 1})
    if twice:
        raise ConfigurationError(f"load={list(levels)!r}: each level once ({twice} given twice)")
    return levels


def _requests(run: ModelRun, level: int) -> list[Request]:
    """The model's first sample of each item, repeated to fill ``level`` at least twice over."""
    base = [p.request for p in run.requests if p.sample == 0]
    n = max(len(base), 2 * level)
    return [base[i % len(base)] for i in range(n)] if base else []


def plan_sweep(runs: Sequence[ModelRun], levels: Sequence[int], budget: Budget | None) -> str:
    """What the sweep sends and its worst-case cost, said before anything is sent.

    Raises:
        ConfigurationError: When the priced models' worst case exceeds the budget's dollars.
    """
    count = 0
    worst = Decimal(0)
    priced: list[str] = []
    for run in runs:
        for level in levels:
            requests = _requests(run, level)
            count += len(requests)
            if run.hosted is not None or run.model.info.open_weights:
                continue  # machine time, not a token price: the run's own hardware
            for request in requests:
                _, most = worst_case(run.model.id, request, DEFAULT_MAX_TOKENS)
                if most is not None:
                    worst += most
                    if run.label not in priced:
                        priced.append(run.label)
    said = (
        f"load sweep: {count:,} timed requests ({len(runs)} models x levels "
        f"{', '.join(map(str, levels))}; never from the cache)"
    )
    if priced:
        said += f"; at most {usd(worst)} at the table prices of {', '.join(priced)}"
    if budget is not None and budget.max_usd is not None and worst > budget.max_usd:
        raise ConfigurationError(
            f"{said}: more than the budget's {usd(budget.max_usd)}, so nothing is sent "
            "(fewer levels or items, or a larger budget)"
        )
    return said


def run_sweeps(
    runs: Sequence[ModelRun], levels: Sequence[int], slo: Slo | None, sending: Sending
) -> tuple[Sweep, ...]:
    """Each model's figures at each level, and its operating point under ``slo``."""
    out = []
    for run in runs:
        swept = tuple(_level(run, level, sending) for level in levels)
        out.append(
            Sweep(
                model=run.label, levels=swept, slo=slo, operating_level=operating_level(swept, slo)
            )
        )
        if sending.progress is not False:
            for line in out[-1].lines():
                print(line, file=sys.stderr)
    return tuple(out)


def _level(run: ModelRun, level: int, sending: Sending) -> LoadLevel:
    requests = _requests(run, level)
    batching = _native_batching(run.model)
    results: list[Result] = []
    start = time.perf_counter()
    # An engine that batches takes every pending request: it is given ``level`` at a time.
    chunks = (
        [requests[i : i + level] for i in range(0, len(requests), level)]
        if batching
        else [requests]
    )
    for chunk in chunks:
        results += generate_many(
            run.model,
            chunk,
            concurrency=level,
            retry=sending.retry,
            tracker=sending.tracker,
            progress=False,
            stream=_native_streaming(run.model) and not batching,
        )
    wall = time.perf_counter() - start
    done = [r.completion for r in results if r.completion is not None]
    latencies = [c.latency_s for c in done]
    ttfts = [c.ttft_s for c in done if c.ttft_s is not None]
    per_token = [
        (c.latency_s - c.ttft_s) / (c.usage.output_tokens - 1)
        for c in done
        if c.ttft_s is not None and c.usage.output_tokens > 1
    ]
    return LoadLevel(
        level=level,
        requests=len(results),
        errors=len(results) - len(done),
        wall_s=wall,
        requests_per_s=len(done) / wall if wall > 0 else 0.0,
        output_tokens_per_s=sum(c.usage.output_tokens for c in done) / wall if wall > 0 else 0.0,
        latency_p50_s=percentile(latencies, 50),
        latency_p95_s=percentile(latencies, 95),
        ttft_p50_s=percentile(ttfts, 50),
        ttft_p95_s=percentile(ttfts, 95),
        tpot_s=sum(per_token) / len(per_token) if per_token else None,
    )
