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
from typing import TYPE_CHECKING, Any

from llmcompare import _svg
from llmcompare.decision import BreakEven, break_even, per_correct, round_volume
from llmcompare.errors import ConfigurationError

if TYPE_CHECKING:
    import jinja2

    from llmcompare.record import Comparison, Row

__all__: list[str] = []

_TEMPLATES = "templates"
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
        out["c"] = str(row.cost.usd)
        out["cs"] = row.cost.status
        if row.cost.kwh is not None:
            out["k"] = str(row.cost.kwh)
        if row.cost.assumptions:
            out["as"] = assumptions.add(row.cost.assumptions, row.cost.assumptions)
    if row.cached:
        out["ch"] = 1
    return out


def grid_data(comparison: Comparison) -> dict[str, Any]:
    """The answers as data for the page's script: items once, one cell per item and model."""
    from llmcompare.record._aggregate import item_scores_of

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
    sums = comparison.summaries
    level = f"{comparison.run.confidence:.0%}"

    def point(s: Any, x: float | None, missing: str) -> _svg.Point:
        low, high = s.score_ci if s.score_ci is not None else (None, None)
        note = "" if x is not None else f" ({missing})"
        return _svg.Point(s.model, x or 0.0, s.score or 0.0, low, high, note)

    return [
        _svg.scatter(
            [
                point(
                    s,
                    None if s.usd_per_1k_tokens is None else float(s.usd_per_1k_tokens),
                    "no cost",
                )
                for s in sums
            ],
            title="Quality vs cost",
            xlabel="dollars per 1K tokens",
            ylabel=f"score, {level} interval",
        ),
        _svg.scatter(
            [point(s, s.latency_p50_s, "no latency") for s in sums],
            title="Quality vs latency",
            xlabel="latency p50 (s)",
            ylabel=f"score, {level} interval",
        ),
        _svg.bars(
            [(s.model, s.output_tokens_per_s) for s in sums],
            title="Throughput",
            ylabel="output tokens / s",
        ),
        _svg.bars(
            [(s.model, None if s.cost.kwh is None else float(s.cost.kwh) * 1000) for s in sums],
            title="Energy",
            ylabel="Wh, whole run",
            missing="not measured",
        ),
    ]


def _break_even_chart(found: BreakEven) -> str | None:
    a, b = found.lines
    if a is None or b is None or a.local == b.local:
        return None
    local = a if a.local else b
    assert local.capacity is not None
    top = 2.0 * found.crossover if found.crossover is not None else local.capacity
    steps = 120
    xs = [top * i / steps for i in range(steps + 1)]
    series = [(line.model, [(x, line.monthly_usd(x)) for x in xs]) for line in (a, b)]
    marks = []
    if found.first_crossover is not None:
        x = found.first_crossover
        marks.append((x, local.monthly_usd(x), f"first ~{round_volume(x)} / month"))
    if found.crossover is not None:
        x = found.crossover
        marks.append((x, local.monthly_usd(x), f"~{round_volume(x)} / month"))
    return _svg.lines(
        series,
        title=f"Monthly cost: {found.model_a} vs {found.model_b}",
        xlabel="requests a month",
        ylabel="dollars a month",
        marks=marks,
        notes=[found.sentence(), *found.assumptions],
    )


def context(comparison: Comparison) -> dict[str, Any]:
    """Everything the template shows."""
    from llmcompare.report import notes, stamp, summary_table_rows

    models = comparison.run.models
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1 :]]
    evens = [break_even(comparison, a, b) for a, b in pairs]
    grid = grid_data(comparison)
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
        "stamp": stamp(comparison),
        "summary": summary_table_rows(comparison),
        "pairs": comparison.differences,
        # The pairs have their own table: the notes under it are the rest.
        "notes": [
            n
            for n in notes(comparison)
            if not any(n.startswith(p.line()) for p in comparison.differences)
        ],
        "charts": _charts(comparison),
        "per_correct": per_correct(comparison),
        "break_evens": [(found, _break_even_chart(found)) for found in evens],
        "received": received,
        "summaries": {s.model: s for s in comparison.summaries},
        "settings": json.dumps(comparison.run.settings, indent=1, default=str),
        "data": script_json(grid),
    }


def _asset(name: str) -> str:
    return (resources.files("llmcompare") / _TEMPLATES / name).read_text(encoding="utf-8")


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
        loader=jinja2.PackageLoader("llmcompare", _TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2")


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
    ctx["script"] = Markup(_asset("report.js"))  # noqa: S704
    ctx["style"] = Markup(_asset("report.css"))  # noqa: S704
    return template.render(ctx)
