"""Small inline SVG charts for the HTML report: scatter with whiskers, bars, cost lines.

Each function draws one chart of the view model (``_tables``: :class:`Scatter`, :class:`Bars`,
:class:`Lines`); the image files of ``charts()`` draw the same data with matplotlib
(``_plot``). Hand-kept rather than matplotlib: a report is a handful of points per chart, the
page must open offline and without matplotlib, and the SVG becomes part of the page (text
searchable, crisp at any zoom, no PNG files). Every point carries its label beside it and the
legend sits below the plot, so it never hides a point. All text is escaped here: model labels
come from the user's configuration.
"""

from __future__ import annotations

import itertools
import math
import textwrap
from collections.abc import Sequence
from html import escape

from llmcompare.cost._units import plain
from llmcompare.report._tables import Bars, Lines, Scatter

__all__: list[str] = []

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")

_W, _H = 460, 300
_LINES_W = 760  # the cost lines get a wide chart: their notes are long sentences
_LEFT, _RIGHT, _TOP, _BOTTOM = 62, 150, 30, 44


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    out = []
    v = start
    while v <= hi + step * 1e-9:
        out.append(round(v, 12))
        v += step
    return out


def _num(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6:
        return f"{plain(v / 1e6)}M"
    if a >= 1e3:
        return f"{plain(v / 1e3)}k"
    return plain(v)


class _Frame:
    """Axes in data coordinates mapped onto the SVG's pixels."""

    def __init__(self, x: tuple[float, float], y: tuple[float, float], width: int = _W) -> None:
        self.x0, self.x1 = x
        self.y0, self.y1 = y
        self.width = width
        self.pw = width - _LEFT - _RIGHT
        self.ph = _H - _TOP - _BOTTOM

    def px(self, x: float) -> float:
        return _LEFT + (x - self.x0) / (self.x1 - self.x0 or 1.0) * self.pw

    def py(self, y: float) -> float:
        return _TOP + self.ph - (y - self.y0) / (self.y1 - self.y0 or 1.0) * self.ph

    def axes(self, title: str, xlabel: str, ylabel: str, xticks: bool = True) -> list[str]:
        parts = [
            f'<text x="{self.width / 2:.0f}" y="18" class="t">{escape(title)}</text>',
            f'<rect x="{_LEFT}" y="{_TOP}" width="{self.pw}" height="{self.ph}" class="f"/>',
        ]
        for t in _ticks(self.y0, self.y1):
            y = self.py(t)
            parts.append(f'<line x1="{_LEFT}" x2="{_LEFT + self.pw}" y1="{y:.1f}" y2="{y:.1f}"/>')
            parts.append(f'<text x="{_LEFT - 4}" y="{y + 4:.1f}" class="yt">{_num(t)}</text>')
        if xticks:
            for t in _ticks(self.x0, self.x1):
                x = self.px(t)
                parts.append(
                    f'<text x="{x:.1f}" y="{_TOP + self.ph + 14}" class="xt">{_num(t)}</text>'
                )
        parts.append(
            f'<text x="{_LEFT + self.pw / 2:.0f}" y="{_H - 8}" class="xl">{escape(xlabel)}</text>'
        )
        parts.append(
            f'<text transform="translate(14 {_TOP + self.ph / 2:.0f}) rotate(-90)" class="xl">'
            f"{escape(ylabel)}</text>"
        )
        return parts


def _svg(
    parts: Sequence[str],
    legend: Sequence[tuple[str, str]],
    notes: Sequence[str],
    width: int = _W,
) -> str:
    # The legend and notes go below the plot: extra height, never over a point. Notes wrap
    # to the chart's width (SVG text does not).
    wrapped = [line for note in notes for line in textwrap.wrap(note, max(40, width // 6))]
    rows = len(legend) + len(wrapped)
    height = _H + 16 * rows + (6 if rows else 0)
    body = list(parts)
    y = _H + 10
    for label, color in legend:
        body.append(f'<rect x="{_LEFT}" y="{y - 8}" width="10" height="10" fill="{color}"/>')
        body.append(f'<text x="{_LEFT + 16}" y="{y + 1}" class="lg">{escape(label)}</text>')
        y += 16
    for note in wrapped:
        body.append(f'<text x="{_LEFT}" y="{y + 1}" class="nt">{escape(note)}</text>')
        y += 16
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" class="chart" role="img">' + "".join(body) + "</svg>"
    )


def _spread_labels(ys: list[float], gap: float = 13.0) -> list[float]:
    """Nudge label baselines apart vertically so that labels of close points do not overlap."""
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    out = list(ys)
    for prev, cur in itertools.pairwise(order):
        if out[cur] - out[prev] < gap:
            out[cur] = out[prev] + gap
    return out


def scatter(chart: Scatter) -> str:
    """A scatter of one point per model, whiskers for intervals, each point labelled."""
    points = chart.points
    xs = [p.x for p in points] or [0.0]
    hi = max(xs)
    frame = _Frame((0.0, hi * 1.15 if hi > 0 else 1.0), (0.0, 1.0))
    parts = frame.axes(chart.title, chart.xlabel, chart.ylabel)
    label_y = _spread_labels([frame.py(p.y) + 4 for p in points])
    legend = []
    for i, p in enumerate(points):
        color = PALETTE[i % len(PALETTE)]
        x, y = frame.px(p.x), frame.py(p.y)
        if p.low is not None and p.high is not None:
            lo, up = frame.py(p.low), frame.py(p.high)
            parts.append(
                f'<path d="M{x:.1f} {lo:.1f}V{up:.1f}M{x - 5:.1f} {lo:.1f}h10M{x - 5:.1f} '
                f'{up:.1f}h10" stroke="{color}" class="w"/>'
            )
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{color}">'
            f"<title>{escape(p.label)}: {p.y:.3f}{escape(p.note)}</title></circle>"
        )
        parts.append(
            f'<text x="{x + 9:.1f}" y="{label_y[i]:.1f}" class="pl">{escape(_short(p.label))}'
            "</text>"
        )
        legend.append((p.label + p.note, color))
    return _svg(parts, legend, ())


def bars(chart: Bars) -> str:
    """One bar per model, its value written on it; a model without a value says so."""
    values, missing = chart.values, chart.missing
    top = max((v for _, v in values if v is not None), default=0.0)
    frame = _Frame((0.0, float(max(len(values), 1))), (0.0, top * 1.15 if top > 0 else 1.0))
    parts = frame.axes(chart.title, "", chart.ylabel, xticks=False)
    legend = []
    for i, (label, v) in enumerate(values):
        color = PALETTE[i % len(PALETTE)]
        x = frame.px(i + 0.2)
        width = frame.px(i + 0.8) - x
        if v is None:
            parts.append(
                f'<text x="{x + width / 2:.1f}" y="{frame.py(0) - 6:.1f}" class="bv">{missing}'
                "</text>"
            )
        else:
            y = frame.py(v)
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
                f'height="{frame.py(0) - y:.1f}" fill="{color}"><title>{escape(label)}: '
                f"{plain(v, 4)}</title></rect>"
            )
            parts.append(
                f'<text x="{x + width / 2:.1f}" y="{y - 4:.1f}" class="bv">{_num(v)}</text>'
            )
        parts.append(
            f'<text x="{x + width / 2:.1f}" y="{_TOP + frame.ph + 14}" class="xt">'
            f"{escape(_short(label, 14))}</text>"
        )
        legend.append((label + ("" if v is not None else f" ({missing})"), color))
    return _svg(parts, legend, ())


def lines(chart: Lines) -> str:
    """Lines through each model's points, with marked points (a crossover) labelled."""
    series = chart.series
    xs = [x for _, pts in series for x, _ in pts] or [1.0]
    ys = [y for _, pts in series for _, y in pts] or [1.0]
    frame = _Frame((0.0, max(xs) or 1.0), (0.0, max(ys) * 1.1 or 1.0), _LINES_W)
    parts = frame.axes(chart.title, chart.xlabel, chart.ylabel)
    legend = []
    for i, (label, pts) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        d = "".join(
            f"{'M' if j == 0 else 'L'}{frame.px(x):.1f} {frame.py(y):.1f}"
            for j, (x, y) in enumerate(pts)
        )
        parts.append(f'<path d="{d}" stroke="{color}" class="ln"><title>{escape(label)}</title>')
        parts.append("</path>")
        if pts:
            x, y = pts[-1]
            parts.append(
                f'<text x="{frame.px(x) + 4:.1f}" y="{frame.py(y) + 4:.1f}" class="pl">'
                f"{escape(_short(label))}</text>"
            )
        legend.append((label, color))
    for x, y, text in chart.marks:
        px, py = frame.px(x), frame.py(y)
        parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="5" class="mk"/>')
        parts.append(
            f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{py:.1f}" y2="{_TOP + frame.ph}" class="mkl"/>'
        )
        parts.append(f'<text x="{px + 7:.1f}" y="{py - 8:.1f}" class="pl">{escape(text)}</text>')
    return _svg(parts, legend, chart.notes, _LINES_W)


def _short(label: str, width: int = 22) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"
