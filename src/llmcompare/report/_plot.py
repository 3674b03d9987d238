"""The report's charts as image files (PNG or SVG), drawn with matplotlib.

One chart model, two drawing backends. The series, points and intervals are computed once, in
the view model (``_tables.chart_data``); the HTML page draws them as small hand-kept inline SVG
(``_svg``) and :func:`charts` draws them here. ``charts`` keeps matplotlib rather than drawing
through ``_svg`` because its files are its public behaviour: PNG needs a rasteriser, which the
hand-kept SVG cannot give without another dependency; a standalone SVG file from matplotlib is
a complete XML document, and the box plot of latencies is a chart the page does not draw.
The page in turn keeps its own SVG because it must render without matplotlib (only Jinja2 is
needed), stay a few kilobytes and keep its text searchable.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from llmcompare.errors import ConfigurationError
from llmcompare.report._tables import Bars, Boxes, Scatter, chart_data

if TYPE_CHECKING:
    from llmcompare.record import Comparison

__all__ = ["charts"]


def _scatter(ax: Any, chart: Scatter) -> None:
    for p in chart.points:
        # The whisker is the score's interval: two points whose whiskers overlap may not differ.
        err = None if p.low is None or p.high is None else [[p.y - p.low], [p.high - p.y]]
        # A legend rather than labels beside the points: long model ids would overlap.
        ax.errorbar(
            [p.x], [p.y], yerr=err, fmt="o", markersize=8, capsize=4, label=p.label + p.note
        )
    ax.legend(loc="best", fontsize="small")
    ax.set_xlabel(chart.xlabel)
    ax.set_ylabel(chart.ylabel)
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(chart.title)


def _boxes(ax: Any, chart: Boxes) -> None:
    ax.boxplot(
        [list(values) or [0.0] for _, values in chart.groups],
        tick_labels=[name for name, _ in chart.groups],
    )
    ax.set_ylabel(chart.ylabel)
    ax.set_title(chart.title)


def _bars(ax: Any, chart: Bars) -> None:
    ax.bar([name for name, _ in chart.values], [v or 0.0 for _, v in chart.values])
    ax.set_ylabel(chart.ylabel)
    ax.set_title(chart.title)


def charts(comparison: Comparison, *, fmt: Literal["png", "svg"] = "png") -> dict[str, bytes]:
    """Draw the report's charts.

    Returns:
        Image bytes by chart name: ``quality_vs_cost`` (mean score against dollars per 1K
        tokens), ``latency`` (latency distribution per model), ``throughput`` (tokens/s).

    Raises:
        ConfigurationError: When matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigurationError(
            "charts need matplotlib: pip install 'llmcompare[report]'"
        ) from None

    data = chart_data(comparison)
    drawings: dict[str, Callable[[Any], None]] = {
        "quality_vs_cost": lambda ax: _scatter(ax, data.quality_vs_cost),
        "latency": lambda ax: _boxes(ax, data.latency),
        "throughput": lambda ax: _bars(ax, data.throughput),
    }
    out: dict[str, bytes] = {}
    for name, draw in drawings.items():
        fig, ax = plt.subplots(figsize=(6, 4))
        draw(ax)
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, bbox_inches="tight", dpi=110)
        plt.close(fig)
        out[name] = buf.getvalue()
    return out
