"""The ranking chart of a judged run: each model's Bradley-Terry score with its whisker (SVG).

Drawn with the same frame, palette and escaping as the page's other charts (``_svg``).
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from llmcompare.report._svg import _TOP, PALETTE, _Frame, _short, _svg

if TYPE_CHECKING:
    from llmcompare.judges import BradleyTerry

__all__ = ["ranking_chart"]


def ranking_chart(bt: BradleyTerry) -> str:
    """Models top to bottom, best first; x is the score, whiskers the bootstrap interval."""
    models = bt.models
    lows = [bt.intervals[m][0] for m in models]
    highs = [bt.intervals[m][1] for m in models]
    lo, hi = min(lows), max(highs)
    pad = max((hi - lo) * 0.1, 10.0)
    n = len(models)
    frame = _Frame((lo - pad, hi + pad), (0.0, float(n)))
    title = f"Ranking: Bradley-Terry score, {bt.confidence:.0%} intervals"
    # The y axis is the models' order: its numeric ticks would mean nothing.
    axes = frame.axes(title, "Elo points (the models' mean at 1000)", "")
    parts = [p for p in axes if 'class="yt"' not in p]
    legend = []
    for i, m in enumerate(models):
        color = PALETTE[i % len(PALETTE)]
        y = frame.py(n - i - 0.5)
        x, x_lo, x_hi = frame.px(bt.scores[m]), frame.px(lows[i]), frame.px(highs[i])
        parts.append(
            f'<path d="M{x_lo:.1f} {y:.1f}H{x_hi:.1f}M{x_lo:.1f} {y - 5:.1f}v10M{x_hi:.1f} '
            f'{y - 5:.1f}v10" stroke="{color}" class="w"/>'
        )
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{color}"><title>{escape(m)}: '
            f"{bt.scores[m]:.0f} [{lows[i]:.0f}, {highs[i]:.0f}]</title></circle>"
        )
        label_y = max(y - 8, _TOP + 10)
        parts.append(
            f'<text x="{x + 7:.1f}" y="{label_y:.1f}" class="pl">{escape(_short(m))}</text>'
        )
        legend.append((f"{m}: {bt.scores[m]:.0f} [{lows[i]:.0f}, {highs[i]:.0f}]", color))
    return _svg(parts, legend, (bt.scale,))
