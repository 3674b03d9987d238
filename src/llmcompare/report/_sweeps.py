"""The load sweep as every renderer shows it: a table per model, its operating point, the curve.

- :func:`sweep_table`: one row per level (requests/s, output tokens/s, latency and time to
  first token p50 and p95, time per output token, errors), the operating point marked.
- :func:`operating_sentence`: the level the latency target picks, or why none.
- :func:`sweep_chart`: throughput against p95 latency, a line per swept model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmcompare.report._tables import Lines

if TYPE_CHECKING:
    from llmcompare.record import Comparison, Sweep

__all__ = ["SWEEP_HEADER", "operating_sentence", "sweep_chart", "sweep_table"]

SWEEP_HEADER = (
    "in flight",
    "requests/s",
    "output tokens/s",
    "latency p50 (s)",
    "latency p95 (s)",
    "TTFT p50 (s)",
    "TTFT p95 (s)",
    "TPOT (ms)",
    "errors",
    "",
)
"""The sweep table's columns; TPOT is the time per output token after the first."""


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.3f}"


def sweep_table(sweep: Sweep) -> list[tuple[str, ...]]:
    """One row per level of ``sweep``, in :data:`SWEEP_HEADER`'s columns."""
    return [
        (
            str(x.level),
            f"{x.requests_per_s:,.2f}",
            f"{x.output_tokens_per_s:,.1f}",
            _seconds(x.latency_p50_s),
            _seconds(x.latency_p95_s),
            _seconds(x.ttft_p50_s),
            _seconds(x.ttft_p95_s),
            "-" if x.tpot_s is None else f"{x.tpot_s * 1000:,.1f}",
            str(x.errors),
            "<- operating point" if x.level == sweep.operating_level else "",
        )
        for x in sweep.levels
    ]


def operating_sentence(sweep: Sweep) -> str:
    """The operating point the target picks (its level and throughput), or why there is none."""
    if sweep.slo is None:
        return f"{sweep.model}: no latency target (--slo), so no operating point"
    point = sweep.operating_point
    if point is None:
        return f"{sweep.model}: no level meets {sweep.slo.text}"
    return (
        f"{sweep.model}: operating point {point.level} in flight, {point.requests_per_s:,.2f} "
        f"requests/s, {point.output_tokens_per_s:,.1f} output tokens/s (the highest "
        f"throughput meeting {sweep.slo.text})"
    )


def sweep_chart(comparison: Comparison) -> Lines | None:
    """Throughput against p95 latency, a line per swept model through its levels.

    Each operating point is marked with its level; the target, when there is one, is in the
    notes. None for a run without a sweep.
    """
    sweeps = [s for s in comparison.sweeps if any(x.latency_p95_s is not None for x in s.levels)]
    if not sweeps:
        return None
    marks = []
    for sweep in sweeps:
        point = sweep.operating_point
        if point is not None and point.latency_p95_s is not None:
            marks.append(
                (point.latency_p95_s, point.output_tokens_per_s, f"{point.level} in flight")
            )
    targets = {s.slo.text for s in sweeps if s.slo is not None}
    return Lines(
        title="Throughput against p95 latency, by requests in flight",
        xlabel="latency p95 (s)",
        ylabel="output tokens / s",
        series=tuple(
            (
                s.model,
                tuple(
                    (x.latency_p95_s, x.output_tokens_per_s)
                    for x in s.levels
                    if x.latency_p95_s is not None
                ),
            )
            for s in sweeps
        ),
        marks=tuple(marks),
        notes=tuple(
            f"marked: each model's operating point, the highest throughput meeting {t}"
            for t in sorted(targets)
        ),
    )
