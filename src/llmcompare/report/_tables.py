"""The report's view model: what every renderer shows, computed once from the record.

The terminal report (``_terminal``), the HTML page (``_html``), the notebook summary
(``_notebook``) and both chart backends (``_svg`` on the page, ``_plot`` for image files) read
these values and nothing else of each other: no renderer parses another renderer's output.

- :func:`view`: the tables (summary rows, pair rows, notes, break-evens, stamp) in one value.
- :func:`chart_data`: every chart's series, points and intervals; :func:`break_even_chart`
  the monthly cost lines of one pair of models.
- :func:`notes`, :func:`summary_table_rows`, :func:`break_even_lines`, :func:`stamp`: the same
  values as plain strings (the public ``llmcompare.report`` functions).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from llmcompare.cost._units import plain
from llmcompare.decision import (
    MONTH_BASIS,
    BreakEven,
    Figure,
    break_even,
    correct_unit,
    figures,
    round_volume,
)

if TYPE_CHECKING:
    from llmcompare.record import Comparison, ModelSummary

__all__ = [
    "Bars",
    "Boxes",
    "Charts",
    "Lines",
    "Note",
    "PairRow",
    "Point",
    "Scatter",
    "SummaryRow",
    "View",
    "break_even_chart",
    "break_even_lines",
    "break_evens",
    "chart_data",
    "header_row",
    "notes",
    "pair_rows",
    "stamp",
    "summary_rows",
    "summary_table_rows",
    "view",
]

_SHELF_WARN_DAYS = 30  # a model this close to its shutdown is a warning, as compare warns

NoteKind = Literal["pair", "warning", "info"]
"""What a note is: a pair's verdict, a warning that changes how to read a figure, or context."""


@dataclass(frozen=True)
class Note:
    """One thing a reader must know to trust the table.

    Attributes:
        kind: ``"pair"`` (a pair of models' difference and verdict, which the page shows in
            its own table), ``"warning"`` (failures, settings not sent as asked, Batch API
            latency) or ``"info"`` (cached answers, cost assumptions).
        text: The note, without its marker.
    """

    kind: NoteKind
    text: str

    @property
    def line(self) -> str:
        """The note as one line for humans: a warning starts with ``!``.

        Example:
            >>> Note("warning", "m failed 1 of 6 requests").line
            '! m failed 1 of 6 requests'
            >>> Note("info", "m: 2 of 6 answers from the response cache").line
            'm: 2 of 6 answers from the response cache'
        """
        return f"! {self.text}" if self.kind == "warning" else self.text


@dataclass(frozen=True)
class SummaryRow:
    """One row of the summary table: a metric's label, then one cell per model.

    Attributes:
        label: What the row measures.
        cells: One value per model, in run order, formatted.
        sub: Whether the row details the one above it (a scorer under the score).
    """

    label: str
    cells: tuple[str, ...]
    sub: bool = False

    def strings(self) -> list[str]:
        """The row as plain strings, a sub-row's label indented by two spaces.

        Example:
            >>> SummaryRow("contains", ("1.00", "0.50"), sub=True).strings()
            ['  contains', '1.00', '0.50']
        """
        return [f"  {self.label}" if self.sub else self.label, *self.cells]


@dataclass(frozen=True)
class PairRow:
    """One pair of models compared item by item.

    Attributes:
        model_a: The first model (the difference is ``a - b``).
        model_b: The second model.
        scorer: The scorer compared, or None for each item's mean score.
        difference: The difference with its interval, p-value, wins, ties and losses.
        verdict: The plain-language verdict.
    """

    model_a: str
    model_b: str
    scorer: str | None
    difference: str
    verdict: str


@dataclass(frozen=True)
class View:
    """Everything the terminal report and the page show of a record, besides the answers.

    Attributes:
        header: The summary table's header row (``model``, then each model).
        summary: The summary table's rows, one per metric.
        pairs: Each pair of models' difference and verdict.
        notes: The pairs' verdicts, failures, settings not sent as asked, cost assumptions.
        break_evens: Each pair of models' break-even volume, in run order.
        stamp: One line saying what the run was.
        figures: Each model's dollars and Wh per 1,000 requests and correct answers.
        correct: What a correct answer is in this run (``"correct answers"``, or ``"expected
            correct answers"`` when scores are partial).
    """

    header: SummaryRow
    summary: tuple[SummaryRow, ...]
    pairs: tuple[PairRow, ...]
    notes: tuple[Note, ...]
    break_evens: tuple[BreakEven, ...]
    stamp: str
    figures: tuple[Figure, ...] = ()
    correct: str = "correct answers"

    @property
    def break_even_lines(self) -> list[str]:
        """One line per pair of models: the volume above which one costs less."""
        return [f"break-even: {found.sentence()}" for found in self.break_evens]

    @property
    def decision_lines(self) -> list[str]:
        """The decision as the terminal says it, each cost basis named.

        Each break-even sentence first (with any volume one API key cannot serve under it),
        then each model's figures.
        """
        lines = []
        for line, found in zip(self.break_even_lines, self.break_evens, strict=True):
            # What one API key cannot serve, right under the sentence it qualifies.
            lines += [f"{line} ({MONTH_BASIS})", *(f"rate limits: {n}" for n in found.limits)]
        return lines + [f.line(self.correct) for f in self.figures]


def view(comparison: Comparison) -> View:
    """The tables of a record, each computed once."""
    pairs = pair_rows(comparison)
    return View(
        header=header_row(comparison),
        summary=tuple(summary_rows(comparison)),
        pairs=pairs,
        notes=tuple(_notes(comparison, pairs)),
        break_evens=break_evens(comparison),
        stamp=stamp(comparison),
        figures=tuple(figures(comparison)),
        correct=correct_unit(comparison),
    )


# -- the summary table -----------------------------------------------------------------------------


def _fmt(value: float | Decimal | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        # Money and energy: three significant figures, never an exponent ("0.0000198").
        return plain(value) if value < 1 else f"{value:,.2f}"
    return f"{value:,.{digits}f}"


def _cost_cell(s: ModelSummary) -> str:
    if s.cost.status == "unpriced":
        return "unpriced"
    mark = "~" if s.cost.status == "estimated" else ""
    return mark + _fmt(s.cost.usd)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _tier_cell(s: ModelSummary, tier: str) -> str:
    cost = s.cost_by_tier.get(tier)
    if cost is None:
        return "-"
    if cost.status == "unpriced":
        return "unpriced"
    return ("~" if cost.status == "estimated" else "") + _fmt(cost.usd)


def _reasoning_share(s: ModelSummary) -> str:
    spent = s.cost.reasoning_usd
    if spent is None or s.cost.status == "unpriced" or not s.cost.usd:
        return "-"
    return f"{float(spent / s.cost.usd):.0%}"


def _energy_cell(s: ModelSummary) -> str:
    cost = s.cost
    if cost.kwh is None:
        return "-"
    if cost.energy == "estimated-api" and cost.kwh_range is not None:
        # An API model's energy is an estimate with its range, and says so: never read as a
        # measured figure beside a local model's.
        low, high = cost.kwh_range
        return f"~{_fmt(cost.kwh)} [{_fmt(low)}-{_fmt(high)}] estimated-api"
    return _fmt(cost.kwh)


def _score_cell(s: ModelSummary) -> str:
    if s.score is None:
        return "-"
    if s.score_ci is None:
        return _fmt(s.score)
    low, high = s.score_ci
    return f"{s.score:.2f} [{low:.2f}, {high:.2f}]"


def _pass_at_k_cell(s: ModelSummary, scorer: str, k: int) -> str:
    found = next((p for p in s.pass_at_k if (p.scorer, p.k) == (scorer, k)), None)
    return "-" if found is None else f"{found.value:.2f} [{found.ci[0]:.2f}, {found.ci[1]:.2f}]"


def header_row(comparison: Comparison) -> SummaryRow:
    """The summary table's header: ``model``, then each model in run order."""
    return SummaryRow("model", tuple(s.model for s in comparison.summaries))


def summary_rows(comparison: Comparison) -> Iterator[SummaryRow]:
    """The summary table below its header: one row per metric, models as columns."""
    sums = comparison.summaries

    def row(label: str, cells: Iterable[str], *, sub: bool = False) -> SummaryRow:
        return SummaryRow(label, tuple(cells), sub)

    score_names: dict[str, None] = {}
    for s in sums:
        score_names.update(dict.fromkeys(s.mean_scores))
    common = max((s.n_scored for s in sums), default=0)
    level = f"{comparison.run.confidence:.0%}"
    yield row("kind", ("open weights" if s.open_weights else "API" for s in sums))
    if any(s.apis for s in sums):
        yield row("API used", (", ".join(s.apis) or "-" for s in sums))
    yield row(
        "answered", (f"{s.succeeded}/{s.requests}" + (" !" if s.failed else "") for s in sums)
    )
    yield row(f"score [{level} CI], {common} common items", (_score_cell(s) for s in sums))
    for n in score_names:
        yield row(n, (_fmt(s.mean_scores.get(n)) for s in sums), sub=True)
    # pass@k of code scorers, over the same common items, with its interval.
    for name, k in {(p.scorer, p.k): None for s in sums for p in s.pass_at_k}:
        yield row(
            f"{name} pass@{k} [{level} CI]", (_pass_at_k_cell(s, name, k) for s in sums), sub=True
        )
    yield row("score, failures as 0", (_fmt(s.score_failures_as_zero) for s in sums))
    yield row("latency p50 (s)", (_fmt(s.latency_p50_s) for s in sums))
    yield row("latency p95 (s)", (_fmt(s.latency_p95_s) for s in sums))
    yield row("first token p50 (s)", (_fmt(s.ttft_p50_s) for s in sums))
    if any(s.ttft_visible_p50_s is not None for s in sums):
        # After hidden reasoning: what a reader of a streamed answer waits for.
        yield row("first visible token p50 (s)", (_fmt(s.ttft_visible_p50_s) for s in sums))
    yield row("output tokens/s", (_fmt(s.output_tokens_per_s, 1) for s in sums))
    yield row("input tokens", (str(s.usage.input_tokens) for s in sums))
    yield row("output tokens", (str(s.usage.output_tokens) for s in sums))
    if any(s.usage.reasoning_tokens for s in sums):
        yield row("reasoning tokens", (str(s.usage.reasoning_tokens) for s in sums), sub=True)
    if any(s.usage.cache_read_tokens or s.usage.cache_write_tokens for s in sums):
        yield row("cache-hit share", (_share(s.cache_hit_share) for s in sums))
    yield row("cost ($)", (_cost_cell(s) for s in sums))
    tiers = {t: None for s in sums for t in s.cost_by_tier}
    if set(tiers) - {"standard"}:
        for tier in tiers:
            yield row(f"{tier} tier ($)", (_tier_cell(s, tier) for s in sums), sub=True)
    if any(s.cost.reasoning_usd for s in sums):
        yield row("reasoning share of cost", (_reasoning_share(s) for s in sums), sub=True)
    yield row(
        "$ per 1K tokens",
        ("-" if s.usd_per_1k_tokens is None else _fmt(s.usd_per_1k_tokens) for s in sums),
    )
    yield row("energy (kWh)", (_energy_cell(s) for s in sums))
    yield row("CO2 (g)", ("-" if s.cost.g_co2 is None else _fmt(s.cost.g_co2) for s in sums))
    yield row("retries", (str(s.retries) for s in sums))
    yield row("run time (s)", (_fmt(s.wall_s, 1) for s in sums))


def summary_table_rows(comparison: Comparison) -> list[list[str]]:
    """The aggregate table as strings: a header row of model ids, then one row per metric.

    Models are columns so two or three of them sit side by side in a narrow terminal.
    """
    return [r.strings() for r in (header_row(comparison), *summary_rows(comparison))]


# -- pairs and notes -------------------------------------------------------------------------------


def pair_rows(comparison: Comparison) -> tuple[PairRow, ...]:
    """Each pair of models' difference and verdict, in the record's order."""
    return tuple(
        PairRow(p.model_a, p.model_b, p.scorer, p.line(), p.verdict())
        for p in comparison.differences
    )


def _notes(comparison: Comparison, pairs: Iterable[PairRow]) -> Iterator[Note]:
    for pair in pairs:
        yield Note("pair", f"{pair.difference}: {pair.verdict}")
    sums = comparison.summaries
    common = max((s.n_scored for s in sums), default=0)
    for s in sums:
        if s.failed:
            yield Note(
                "warning",
                f"{s.model} failed {s.failed} of {s.requests} requests: scores are over the "
                f"{common} items every model answered; 'failures as 0' counts each as wrong",
            )
    for s in sums:
        for note in s.adjustments:
            yield Note("warning", f"{s.model}: {note}")
    for s in sums:
        if s.cached:
            yield Note(
                "info",
                f"{s.model}: {s.cached} of {s.succeeded} answers from the response cache: nothing "
                "was sent or spent for them; their timings and cost are those of the run that "
                "got them",
            )
    for s in sums:
        if s.cost.assumptions:
            yield Note("info", f"{s.model}: {s.cost.assumptions}")
    for label, life in comparison.run.shelf_life.items():
        # Counted from the run's end: a saved record says how long it stays re-runnable.
        left = life.days_left(comparison.run.finished_at.date())
        yield Note("warning" if left <= _SHELF_WARN_DAYS else "info", life.line(label))
    batched = {r.model for r in comparison.rows if r.completion and r.completion.batch_id}
    for model in sorted(batched):
        yield Note(
            "warning",
            f"{model}: answered through the Batch API: its latency is the batch's turnaround "
            "(submission to results), not comparable with interactive latency",
        )


def notes(comparison: Comparison) -> list[str]:
    """What a reader must know to trust the table: failures, pairs, settings not sent as asked.

    Returns:
        Lines for humans, in order: each pair of models' difference and verdict, then each
        model with failures (its headline score leaves out what it failed), then each model
        whose settings differ from the shared ones and why, then cost assumptions.
    """
    return [n.line for n in _notes(comparison, pair_rows(comparison))]


# -- break-even and stamp --------------------------------------------------------------------------


def break_evens(comparison: Comparison) -> tuple[BreakEven, ...]:
    """Each pair of models' break-even (see :func:`llmcompare.decision.break_even`), run order.

    Then each open model against each model priced without sending (``what_if``).
    """
    models = comparison.run.models
    open_models = [s.model for s in comparison.summaries if s.open_weights]
    return tuple(
        break_even(comparison, a, b) for i, a in enumerate(models) for b in models[i + 1 :]
    ) + tuple(break_even(comparison, a, w.model) for a in open_models for w in comparison.what_if)


def break_even_lines(comparison: Comparison) -> list[str]:
    """One line per pair of models: the monthly volume above which one costs less.

    See :meth:`Comparison.break_even` for the cost model; the HTML report charts it with
    every assumption.
    """
    return [f"break-even: {found.sentence()}" for found in break_evens(comparison)]


def stamp(comparison: Comparison) -> str:
    """One line saying what the run was: version, models, hardware, price date, time."""
    run = comparison.run
    revisions = {s.model: s.revisions for s in comparison.summaries}
    models = ", ".join(
        m + (f" ({', '.join(revisions[m])})" if revisions.get(m) else "") for m in run.models
    )
    hardware = run.cpu + (f", GPU {run.gpu}" if run.gpu else "")
    prices = run.price_table_date.isoformat() if run.price_table_date else "n/a"
    if run.genai_prices:
        prices += f" (genai-prices {run.genai_prices} for models the table lacks)"
    for w in comparison.what_if:
        # A model priced offline: whose price, from where, checked when.
        when = w.price_date.isoformat() if w.price_date else "n/a"
        prices += f" ({w.model}, estimated, not sent: {w.price_source or 'table price'}, {when})"
    return (
        f"llmcompare {run.llmcompare_version} | models: {models} | hardware: {hardware} | "
        f"prices as of {prices} | {run.finished_at:%Y-%m-%d %H:%M:%S} UTC"
    )


# -- chart data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One model's point: ``y`` with its interval ``[low, high]`` as a whisker.

    Attributes:
        label: The model.
        x: Its x (0 when it has none: ``note`` says why).
        y: Its score (0 when it has none).
        low: The interval's low end, when there is one.
        high: Its high end.
        note: Appended to the label when ``x`` is missing, saying why: ``" (no cost)"``.
    """

    label: str
    x: float
    y: float
    low: float | None = None
    high: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Scatter:
    """One point per model on a score axis from 0 to 1.

    Attributes:
        title: The chart's title.
        xlabel: What x is.
        ylabel: What y is (the score, with its interval's level).
        points: One per model, in run order.
    """

    title: str
    xlabel: str
    ylabel: str
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Bars:
    """One bar per model; a model without a value says so.

    Attributes:
        title: The chart's title.
        ylabel: What the bars measure.
        values: (model, value or None) in run order.
        missing: What a missing value is called.
    """

    title: str
    ylabel: str
    values: tuple[tuple[str, float | None], ...]
    missing: str = "n/a"


@dataclass(frozen=True)
class Boxes:
    """A distribution per model (one box each).

    Attributes:
        title: The chart's title.
        ylabel: What the values measure.
        groups: (model, values) in run order; a model may have no values.
    """

    title: str
    ylabel: str
    groups: tuple[tuple[str, tuple[float, ...]], ...]


@dataclass(frozen=True)
class Lines:
    """A line per model through its points, with marked points labelled.

    Attributes:
        title: The chart's title.
        xlabel: What x is.
        ylabel: What y is.
        series: (model, points) per line.
        marks: (x, y, label) of each marked point (a crossover).
        notes: Lines of text under the chart (the sentence and its assumptions).
    """

    title: str
    xlabel: str
    ylabel: str
    series: tuple[tuple[str, tuple[tuple[float, float], ...]], ...]
    marks: tuple[tuple[float, float, str], ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Charts:
    """Every per-model chart of a record, as data.

    Attributes:
        quality_vs_cost: Score against dollars per 1K tokens.
        quality_vs_latency: Score against median latency.
        throughput: Output tokens per second.
        energy: Watt-hours of the whole run.
        latency: Each request's latency.
    """

    quality_vs_cost: Scatter
    quality_vs_latency: Scatter
    throughput: Bars
    energy: Bars
    latency: Boxes


def _point(s: ModelSummary, x: float | None, missing: str) -> Point:
    low, high = s.score_ci if s.score_ci is not None else (None, None)
    note = "" if x is not None else f" ({missing})"
    return Point(s.model, x or 0.0, s.score or 0.0, low, high, note)


def chart_data(comparison: Comparison) -> Charts:
    """The series, points and intervals every chart of the record draws."""
    sums = comparison.summaries
    ylabel = f"score, {comparison.run.confidence:.0%} interval"
    latencies: dict[str, list[float]] = {s.model: [] for s in sums}
    for r in comparison.rows:
        if r.completion and r.model in latencies:
            latencies[r.model].append(r.completion.latency_s)
    return Charts(
        quality_vs_cost=Scatter(
            "Quality vs cost",
            "dollars per 1K tokens",
            ylabel,
            tuple(
                _point(
                    s,
                    None if s.usd_per_1k_tokens is None else float(s.usd_per_1k_tokens),
                    "no cost",
                )
                for s in sums
            ),
        ),
        quality_vs_latency=Scatter(
            "Quality vs latency",
            "latency p50 (s)",
            ylabel,
            tuple(_point(s, s.latency_p50_s, "no latency") for s in sums),
        ),
        throughput=Bars(
            "Throughput", "output tokens / s", tuple((s.model, s.output_tokens_per_s) for s in sums)
        ),
        energy=Bars(
            "Energy",
            "Wh, whole run",
            tuple(
                (
                    s.model + (" (estimated-api)" if s.cost.energy == "estimated-api" else ""),
                    None if s.cost.kwh is None else float(s.cost.kwh) * 1000,
                )
                for s in sums
            ),
            missing="not measured",
        ),
        latency=Boxes(
            "Latency per request",
            "latency (s)",
            tuple((model, tuple(values)) for model, values in latencies.items()),
        ),
    )


def break_even_chart(found: BreakEven) -> Lines | None:
    """Monthly dollars against monthly requests for a local and an API model, crossings marked.

    None when the pair is not one local and one API model (no line crosses another).
    """
    a, b = found.lines
    if a is None or b is None or a.local == b.local:
        return None
    local = a if a.local else b
    assert local.capacity is not None
    top = 2.0 * found.crossover if found.crossover is not None else local.capacity
    steps = 120
    xs = [top * i / steps for i in range(steps + 1)]
    marks = []
    if found.first_crossover is not None:
        x = found.first_crossover
        marks.append((x, local.monthly_usd(x), f"first ~{round_volume(x)} / month"))
    if found.crossover is not None:
        x = found.crossover
        marks.append((x, local.monthly_usd(x), f"~{round_volume(x)} / month"))
    return Lines(
        title=f"Monthly cost: {found.model_a} vs {found.model_b}",
        xlabel="requests a month",
        ylabel="dollars a month",
        series=tuple((line.model, tuple((x, line.monthly_usd(x)) for x in xs)) for line in (a, b)),
        marks=tuple(marks),
        notes=(found.sentence(), *found.assumptions),
    )
