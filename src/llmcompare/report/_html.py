"""The interactive HTML report: one self-contained page rendered from Jinja2 templates.

The answers travel as ONE JSON blob (``<script type="application/json">``) that the page's
small script turns into the grid, so a row costs its data once, not markup repeated per row.
Everything the reader sees that comes from a model is set with ``textContent`` by the script or
escaped by Jinja; the blob itself is escaped so that no answer can end the script element.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmcompare.cost._units import plain, usd
from llmcompare.decision import MONTH_BASIS, per_correct, per_judged_good
from llmcompare.decision._quality import energy_basis_of
from llmcompare.errors import ConfigurationError
from llmcompare.record._aggregate import item_scores_of
from llmcompare.report import _svg
from llmcompare.report._judging import grid_verdicts, judging_view
from llmcompare.report._judging_svg import ranking_chart
from llmcompare.report._sweeps import sweep_chart
from llmcompare.report._tables import break_even_chart, chart_data, view
from llmcompare.runs import write_whole

if TYPE_CHECKING:
    import jinja2

    from llmcompare.decision import BreakEven
    from llmcompare.record import Comparison, Row

__all__ = ["write_html"]

# The templates and the page's script and style: package data of this package (in the wheel).
_PACKAGE, _TEMPLATES = "llmcompare.report", "templates"
# What ends a <script> element or starts a comment inside one, and the line separators that
# older parsers treat as newlines: written as JSON escapes, the same string once parsed.
_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_UNSAFE_TABLE = str.maketrans(_UNSAFE)


def script_json(data: object) -> str:
    """JSON safe to put inside a ``<script type="application/json">`` element."""
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        # A scorer of the user's returned NaN or infinity, which JSON.parse would refuse.
        text = json.dumps(_finite(data), ensure_ascii=False, separators=(",", ":"))
    return text.translate(_UNSAFE_TABLE)


def _finite(value: Any) -> Any:
    """The value with every NaN or infinity replaced by None (no score)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _prompt_text(comparison: Comparison) -> Iterator[tuple[str, str]]:
    for item in comparison.items:
        messages = item.conversation()
        if len(messages) == 1 and item.prompt is not None:
            yield item.id, item.prompt
        else:
            yield item.id, "\n\n".join(f"[{m.role}]\n{m.content}" for m in messages)


class _Interned:
    """Distinct values stored once (a model's settings as sent, its cost assumptions)."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self._index: dict[str, int] = {}

    def add(self, key: str, value: Any) -> int:
        # ``key`` is a cheap repr of the value (json.dumps per row would cost most of a render).
        found = self._index.get(key)
        if found is None:
            found = self._index[key] = len(self.values)
            self.values.append(value)
        return found


def _cell(row: Row, sent: _Interned, assumptions: _Interned) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if row.sample:
        out["sm"] = row.sample
    if row.scores:
        out["s"] = row.scores
    c = row.completion
    if c is None:
        assert row.error is not None
        out["e"] = f"{row.error.type}: {row.error.message}"
    else:
        out["a"] = c.text
        out["fr"] = c.finish_reason
        u = c.usage
        out["u"] = [u.input_tokens, u.output_tokens, u.cache_read_tokens, u.reasoning_tokens]
        if u.estimated:
            out["ue"] = 1
        out["l"] = round(c.latency_s, 4)
        if c.ttft_s is not None:
            out["f"] = round(c.ttft_s, 4)
        if c.attempts > 1:
            out["at"] = c.attempts
        if c.sent is not None:
            key = repr(c.sent.params) + repr(c.sent.notes)
            out["sn"] = sent.add(key, {"params": c.sent.params, "notes": list(c.sent.notes)})
    if row.cost is not None:
        # Plain decimals ("0.0000198"), never Decimal's exponent form ("1.98E-5").
        out["c"] = f"{row.cost.usd:f}"
        out["cs"] = row.cost.status
        if row.cost.kwh is not None:
            out["k"] = f"{row.cost.kwh:f}"
        if row.cost.assumptions:
            out["as"] = assumptions.add(row.cost.assumptions, row.cost.assumptions)
    if row.cached:
        out["ch"] = 1
    return out


def grid_data(comparison: Comparison) -> dict[str, Any]:
    """The answers as data for the page's script: items once, one cell per item and model."""
    models = list(comparison.run.models)
    col = {m: i for i, m in enumerate(models)}
    item_scores = [item_scores_of(comparison.rows, m) for m in models]
    cells: dict[str, list[list[dict[str, Any]]]] = {
        item.id: [[] for _ in models] for item in comparison.items
    }
    sent, assumptions = _Interned(), _Interned()
    scorers: dict[str, None] = {}
    received: dict[str, dict[int, None]] = {m: {} for m in models}
    for row in comparison.rows:
        scorers.update(dict.fromkeys(row.scores))
        if row.item_id in cells and row.model in col:
            cell = _cell(row, sent, assumptions)
            cells[row.item_id][col[row.model]].append(cell)
            if "sn" in cell:
                received[row.model][cell["sn"]] = None
    tags: dict[str, None] = {}
    items = []
    prompts = dict(_prompt_text(comparison))
    judged = comparison.judging
    verdicts = grid_verdicts(judged, models) if judged is not None else {}
    for item in comparison.items:
        tags.update(dict.fromkeys(item.tags))
        items.append(
            {
                "id": item.id,
                "p": prompts[item.id],
                "t": list(item.tags),
                "r": item.reference,
                "m": [scores.get(item.id) for scores in item_scores],
                "c": cells[item.id],
                # The judge's verdicts on this item's answers, when the run was judged.
                **({"v": verdicts.get(item.id, [])} if judged is not None else {}),
            }
        )
    return {
        "models": models,
        "scorers": list(scorers),
        "tags": list(tags),
        "items": items,
        "sent": sent.values,
        "assume": assumptions.values,
        # Each model's distinct settings as sent (indexes into "sent"), for the run stamp.
        "received": {m: list(found) for m, found in received.items()},
    }


def _charts(comparison: Comparison) -> list[str]:
    charts = chart_data(comparison)
    swept = sweep_chart(comparison)
    return [
        _svg.scatter(charts.quality_vs_cost),
        _svg.scatter(charts.quality_vs_latency),
        _svg.bars(charts.throughput),
        _svg.bars(charts.energy),
        *([] if swept is None else [_svg.lines(swept)]),
    ]


def _break_even_svg(found: BreakEven) -> str | None:
    chart = break_even_chart(found)
    return None if chart is None else _svg.lines(chart)


def context(comparison: Comparison) -> dict[str, Any]:
    """Everything the template shows."""
    tables = view(comparison)
    grid = grid_data(comparison)
    judged_view = judging_view(comparison)
    received = {
        model: [
            {
                "params": json.dumps(grid["sent"][i]["params"], default=str),
                "notes": grid["sent"][i]["notes"],
            }
            for i in found
        ]
        for model, found in grid.pop("received").items()
    }
    return {
        "run": comparison.run,
        "stamp": tables.stamp,
        "header": tables.header,
        "summary": tables.summary,
        "pairs": tables.pairs,
        # The pairs have their own table: the notes under it are the rest.
        "notes": [n for n in tables.notes if n.kind != "pair"],
        "charts": _charts(comparison),
        "per_correct": per_correct(comparison),
        "figures": tables.figures,
        "correct": tables.correct,
        "month_basis": MONTH_BASIS,
        "plain": plain,
        "usd": usd,
        "per_judged": per_judged_good(comparison),
        # Any score at all: without one, the judged quality stands in for "correct".
        "has_scores": any(v is not None for row in comparison.rows for v in row.scores.values()),
        "judging": judged_view,
        "ranking_svg": (
            ranking_chart(judged_view.ranking.bradley_terry)
            if judged_view is not None and judged_view.ranking is not None
            else None
        ),
        "break_evens": [(found, _break_even_svg(found)) for found in tables.break_evens],
        "received": received,
        "summaries": {s.model: s for s in comparison.summaries},
        # Named from the rows' energy, not the machine's gpu: a cached rerun measures nothing.
        "hosted_energy": {s.model: energy_basis_of(comparison, s) for s in comparison.summaries},
        "settings": json.dumps(comparison.run.settings, indent=1, default=str),
        "data": script_json(grid),
    }


def _asset(name: str) -> str:
    return (resources.files(_PACKAGE) / _TEMPLATES / name).read_text(encoding="utf-8")


@functools.cache
def _template() -> jinja2.Template:
    """The page's template, compiled once per process."""
    try:
        import jinja2
    except ImportError:
        raise ConfigurationError(
            "the HTML report needs Jinja2: pip install 'llmcompare[report]'"
        ) from None
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(_PACKAGE, _TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2")


def write_html(comparison: Comparison, path: str | Path) -> Path:
    """Write one self-contained, interactive HTML page (it opens offline and can be mailed).

    The page has the summary with intervals and each pair's verdict, the decision view
    (dollars and kWh per correct answer, the break-even volume), SVG charts with interval
    whiskers, the answers as a grid with filters and sorting (a row expands to the prompt,
    every answer, the request as sent, usage, timings and cost), and the run's stamp.

    Raises:
        ConfigurationError: When Jinja2 is not installed (``pip install 'llmcompare[report]'``).
    """
    return write_whole(path, render(comparison).encode("utf-8"))


def render(comparison: Comparison) -> str:
    """The whole page as a string.

    Raises:
        ConfigurationError: When Jinja2 is not installed.
    """
    template = _template()
    from markupsafe import Markup  # installed with Jinja2

    ctx = context(comparison)
    # Our own SVG (text escaped in _svg), our own script and style, and the escaped blob.
    ctx["charts"] = [Markup(c) for c in ctx["charts"]]  # noqa: S704
    ctx["break_evens"] = [
        (found, None if chart is None else Markup(chart))  # noqa: S704
        for found, chart in ctx["break_evens"]
    ]
    ctx["data"] = Markup(ctx["data"])  # noqa: S704
    if ctx["ranking_svg"] is not None:
        ctx["ranking_svg"] = Markup(ctx["ranking_svg"])  # noqa: S704
    ctx["script"] = Markup(_asset("report.js"))  # noqa: S704
    ctx["style"] = Markup(_asset("report.css"))  # noqa: S704
    return template.render(ctx)
