"""Reports from one Comparison: terminal table, JSON, CSV, HTML and charts.

- :func:`print_report`: aggregates per model and the answers side by side, in the terminal (rich).
- :func:`write_csv`: one row per prompt, model and sample; :func:`write_summary_csv` one per
  model; :func:`write_pairs_csv` one per pair of models.
- :func:`notes`: the paired differences, failures and settings a model did not get as asked.
- :func:`write_html`: one self-contained interactive page (Jinja2 templates; the answers as
  data in a filterable, sortable grid; SVG charts with intervals; the decision view; opens
  with no network).
- :func:`break_even_lines`: one line per pair of models: the volume where hosting pays.
- :func:`answers_frame` (``Comparison.to_pandas()``) and :func:`summary_html`
  (``Comparison._repr_html_``, for notebooks).
- :func:`charts`: quality vs cost, latency distribution, tokens/s (matplotlib, PNG or SVG).
- :func:`write_report`: any of the above into a folder, plus the JSON record.

Every report carries the stamp of the run: llmcompare version, model ids and revisions, hardware,
price-table date and time.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from llmcompare.errors import ConfigurationError
from llmcompare.record import Comparison, ModelSummary

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

__all__ = [
    "FORMATS",
    "Format",
    "answers_frame",
    "break_even_lines",
    "charts",
    "notes",
    "print_report",
    "stamp",
    "summary_html",
    "summary_table_rows",
    "write_csv",
    "write_html",
    "write_pairs_csv",
    "write_report",
    "write_summary_csv",
]

Format = Literal["json", "csv", "html", "png", "svg"]
"""A report format :func:`write_report` can write."""
FORMATS: tuple[Format, ...] = ("json", "csv", "html", "png", "svg")
"""Every format :func:`write_report` knows."""


def _fmt(value: float | Decimal | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return f"{value:.6f}" if value < 1 else f"{value:.2f}"
    return f"{value:.{digits}f}"


def _cost_cell(s: ModelSummary) -> str:
    if s.cost.status == "unpriced":
        return "unpriced"
    mark = "~" if s.cost.status == "estimated" else ""
    return mark + _fmt(s.cost.usd)


def _score_cell(s: ModelSummary) -> str:
    if s.score is None:
        return "-"
    if s.score_ci is None:
        return _fmt(s.score)
    low, high = s.score_ci
    return f"{s.score:.2f} [{low:.2f}, {high:.2f}]"


def notes(comparison: Comparison) -> list[str]:
    """What a reader must know to trust the table: failures, pairs, settings not sent as asked.

    Returns:
        Lines for humans, in order: each pair of models' difference and verdict, then each
        model with failures (its headline score leaves out what it failed), then each model
        whose settings differ from the shared ones and why, then cost assumptions.
    """
    lines: list[str] = []
    for pair in comparison.differences:
        lines.append(f"{pair.line()}: {pair.verdict()}")
    common = max((s.n_scored for s in comparison.summaries), default=0)
    for s in comparison.summaries:
        if s.failed:
            lines.append(
                f"! {s.model} failed {s.failed} of {s.requests} requests: scores are over the "
                f"{common} items every model answered; 'failures as 0' counts each as wrong"
            )
    for s in comparison.summaries:
        for note in s.adjustments:
            lines.append(f"! {s.model}: {note}")
    for s in comparison.summaries:
        if s.cached:
            lines.append(
                f"{s.model}: {s.cached} of {s.succeeded} answers from the response cache: nothing "
                "was sent or spent for them; their timings and cost are those of the run that "
                "got them"
            )
    for s in comparison.summaries:
        if s.cost.assumptions:
            lines.append(f"{s.model}: {s.cost.assumptions}")
    batched = {r.model for r in comparison.rows if r.completion and r.completion.batch_id}
    for model in sorted(batched):
        lines.append(
            f"! {model}: answered through the Batch API: its latency is the batch's turnaround "
            "(submission to results), not comparable with interactive latency"
        )
    return lines


def summary_table_rows(comparison: Comparison) -> list[list[str]]:
    """The aggregate table as strings: a header row of model ids, then one row per metric.

    Models are columns so two or three of them sit side by side in a narrow terminal.
    """
    sums = comparison.summaries

    def row(label: str, cells: Iterable[str]) -> list[str]:
        return [label, *cells]

    score_names: dict[str, None] = {}
    for s in sums:
        score_names.update(dict.fromkeys(s.mean_scores))
    common = max((s.n_scored for s in sums), default=0)
    level = f"{comparison.run.confidence:.0%}"
    rows = [
        row("model", (s.model for s in sums)),
        row("kind", ("open weights" if s.open_weights else "API" for s in sums)),
        row("answered", (f"{s.succeeded}/{s.requests}" + (" !" if s.failed else "") for s in sums)),
        row(f"score [{level} CI], {common} common items", (_score_cell(s) for s in sums)),
    ]
    rows += [row(f"  {n}", (_fmt(s.mean_scores.get(n)) for s in sums)) for n in score_names]
    # pass@k of code scorers, over the same common items, with its interval.
    passes = {(p.scorer, p.k): None for s in sums for p in s.pass_at_k}
    rows += [
        row(
            f"  {name} pass@{k} [{level} CI]",
            (
                next(
                    (
                        f"{p.value:.2f} [{p.ci[0]:.2f}, {p.ci[1]:.2f}]"
                        for p in s.pass_at_k
                        if (p.scorer, p.k) == (name, k)
                    ),
                    "-",
                )
                for s in sums
            ),
        )
        for name, k in passes
    ]
    rows.append(
        row("score, failures as 0", (_fmt(s.score_failures_as_zero) for s in sums)),
    )
    rows += [
        row("latency p50 (s)", (_fmt(s.latency_p50_s) for s in sums)),
        row("latency p95 (s)", (_fmt(s.latency_p95_s) for s in sums)),
        row("first token p50 (s)", (_fmt(s.ttft_p50_s) for s in sums)),
        row("output tokens/s", (_fmt(s.output_tokens_per_s, 1) for s in sums)),
        row("input tokens", (str(s.usage.input_tokens) for s in sums)),
        row("output tokens", (str(s.usage.output_tokens) for s in sums)),
        row("cost ($)", (_cost_cell(s) for s in sums)),
        row(
            "$ per 1K tokens",
            ("-" if s.usd_per_1k_tokens is None else _fmt(s.usd_per_1k_tokens) for s in sums),
        ),
        row("energy (kWh)", ("-" if s.cost.kwh is None else _fmt(s.cost.kwh) for s in sums)),
        row("CO2 (g)", ("-" if s.cost.g_co2 is None else _fmt(s.cost.g_co2) for s in sums)),
        row("retries", (str(s.retries) for s in sums)),
        row("run time (s)", (_fmt(s.wall_s, 1) for s in sums)),
    ]
    return rows


def stamp(comparison: Comparison) -> str:
    """One line saying what the run was: version, models, hardware, price date, time."""
    run = comparison.run
    revisions = {s.model: s.revisions for s in comparison.summaries}
    models = ", ".join(
        m + (f" ({', '.join(revisions[m])})" if revisions.get(m) else "") for m in run.models
    )
    hardware = run.cpu + (f", GPU {run.gpu}" if run.gpu else "")
    prices = run.price_table_date.isoformat() if run.price_table_date else "n/a"
    return (
        f"llmcompare {run.llmcompare_version} | models: {models} | hardware: {hardware} | "
        f"prices as of {prices} | {run.finished_at:%Y-%m-%d %H:%M:%S} UTC"
    )


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def print_report(
    comparison: Comparison, console: Console | None = None, *, answer_width: int = 60
) -> None:
    """Print the aggregate table and the answers side by side.

    Args:
        comparison: The record to show.
        console: A rich console; by default one on stdout.
        answer_width: Characters of each answer to show.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    header, *body = summary_table_rows(comparison)
    table = Table(title="Models", title_justify="left")
    for i, col in enumerate(header):
        table.add_column(col, justify="left" if i == 0 else "right", overflow="fold")
    for line in body:
        table.add_row(*(escape(cell) for cell in line))
    console.print(table)

    answers = Table(title="Answers", title_justify="left", show_lines=True)
    answers.add_column("item")
    for model in comparison.run.models:
        answers.add_column(model)
    for item in comparison.items:
        cells = [escape(item.id)]
        for model in comparison.run.models:
            row = comparison.row(item.id, model)
            if row.completion is None:
                assert row.error is not None
                message = escape(_clip(row.error.message, 40))
                cells.append(f"[red]{row.error.type}[/red]: {message}")
            else:
                scores = " ".join(
                    f"{k}={'-' if v is None else f'{v:.2f}'}" for k, v in row.scores.items()
                )
                cells.append(
                    escape(_clip(row.completion.text, answer_width))
                    + (f"\n[dim]{escape(scores)}[/dim]" if scores else "")
                )
        answers.add_row(*cells)
    console.print(answers)
    for note in notes(comparison):
        style = "yellow" if note.startswith("!") else "dim"
        console.print(f"[{style}]{escape(note)}[/{style}]")
    for even in break_even_lines(comparison):
        console.print(f"[bold]{escape(even)}[/bold]")
    console.print(f"[dim]{escape(stamp(comparison))}[/dim]")


def break_even_lines(comparison: Comparison) -> list[str]:
    """One line per pair of models: the monthly volume above which one costs less.

    See :meth:`Comparison.break_even` for the cost model; the HTML report charts it with
    every assumption.
    """
    models = comparison.run.models
    return [
        "break-even: " + comparison.break_even(a, b).sentence()
        for i, a in enumerate(models)
        for b in models[i + 1 :]
    ]


_CSV_FIELDS = (
    "item_id",
    "model",
    "sample",
    "seed",
    "ok",
    "text",
    "finish_reason",
    "error_type",
    "error",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
    "usage_estimated",
    "latency_s",
    "ttft_s",
    "queue_s",
    "compute_s",
    "energy_j",
    "energy_method",
    "attempts",
    "cost_usd",
    "cost_status",
    "kwh",
    "g_co2",
    "sent",
    "sent_notes",
)


def _score_names(comparison: Comparison) -> list[str]:
    names: dict[str, None] = {}
    for row in comparison.rows:
        names.update(dict.fromkeys(row.scores))
    return list(names)


def _answer_records(comparison: Comparison, score_names: Sequence[str]) -> Iterator[list[object]]:
    """The answers CSV's rows, as values: None where a value is missing.

    The CSV writes None as an empty cell; pandas keeps it missing, so a successful empty
    answer (``""``) stays apart from an error.
    """
    for row in comparison.rows:
        c = row.completion
        cost = row.cost
        yield [
            row.item_id,
            row.model,
            row.sample,
            row.seed,
            c is not None,
            c.text if c else None,
            c.finish_reason if c else "error",
            row.error.type if row.error else None,
            row.error.message if row.error else None,
            c.usage.input_tokens if c else None,
            c.usage.output_tokens if c else None,
            c.usage.cache_read_tokens if c else None,
            c.usage.reasoning_tokens if c else None,
            c.usage.estimated if c else None,
            c.latency_s if c else None,
            None if c is None else c.ttft_s,
            None if c is None else c.queue_s,
            None if c is None else c.compute_s,
            None if c is None else c.energy_j,
            None if c is None else c.energy_method,
            c.attempts if c else None,
            cost.usd if cost else None,
            cost.status if cost else None,
            None if cost is None else cost.kwh,
            None if cost is None else cost.g_co2,
            None if c is None or c.sent is None else json.dumps(c.sent.params),
            None if c is None or c.sent is None else " | ".join(c.sent.notes),
            *(row.scores.get(n) for n in score_names),
        ]


def write_csv(comparison: Comparison, path: str | Path) -> Path:
    """Write one CSV row per prompt and model, with a column per scorer."""
    score_names = _score_names(comparison)
    p = Path(path)
    with p.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*_CSV_FIELDS, *(f"score:{n}" for n in score_names)])
        writer.writerows(_answer_records(comparison, score_names))
    return p


def answers_frame(comparison: Comparison) -> pd.DataFrame:
    """The answers CSV as a pandas DataFrame: one row per item, model and sample.

    Missing values are missing (``pd.isna``; a failed request's ``text`` too), while a
    successful empty answer keeps its ``""``; numbers stay numbers and dollars stay
    :class:`~decimal.Decimal`.

    Raises:
        ConfigurationError: When pandas is not installed.
    """
    try:
        import pandas as pd
    except ImportError:
        raise ConfigurationError("to_pandas() needs pandas: pip install pandas") from None
    score_names = _score_names(comparison)
    columns = [*_CSV_FIELDS, *(f"score:{n}" for n in score_names)]
    records = list(_answer_records(comparison, score_names))
    frame: pd.DataFrame = pd.DataFrame.from_records(records, columns=columns)
    return frame


def summary_html(comparison: Comparison) -> str:
    """A compact HTML summary (models as columns, then each pair's verdict), for notebooks."""
    rows = summary_table_rows(comparison)
    verdicts = "".join(
        f"<li>{html.escape(pair.line())}: {html.escape(pair.verdict())}</li>"
        for pair in comparison.differences
    )
    return (
        f"<div><p><b>llmcompare</b>: {len(comparison.items)} items, "
        f"{html.escape(', '.join(comparison.run.models))}</p>{_html_table(rows)}"
        + (f"<ul>{verdicts}</ul>" if verdicts else "")
        + f"<p><small>{html.escape(stamp(comparison))}</small></p></div>"
    )


def _opt(value: object) -> object:
    return "" if value is None else value


_SUMMARY_FIELDS = (
    "model",
    "open_weights",
    "requests",
    "succeeded",
    "score",
    "score_ci_low",
    "score_ci_high",
    "score_ci_method",
    "n_scored",
    "score_failures_as_zero",
    "latency_p50_s",
    "latency_p95_s",
    "ttft_p50_s",
    "output_tokens_per_s",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cost_status",
    "usd_per_1k_tokens",
    "kwh",
    "g_co2",
    "retries",
    "wall_s",
    "adjustments",
)

_PAIR_FIELDS = (
    "model_a",
    "model_b",
    "scorer",
    "n",
    "mean_a",
    "mean_b",
    "delta",
    "ci_low",
    "ci_high",
    "p_value",
    "wins",
    "ties",
    "losses",
    "method",
    "verdict",
)


def write_summary_csv(comparison: Comparison, path: str | Path) -> Path:
    """Write one CSV row per model: the aggregates, with the score's interval."""
    p = Path(path)
    with p.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(_SUMMARY_FIELDS)
        for s in comparison.summaries:
            low, high = s.score_ci if s.score_ci is not None else (None, None)
            writer.writerow(
                _opt(v)
                for v in (
                    s.model,
                    s.open_weights,
                    s.requests,
                    s.succeeded,
                    s.score,
                    low,
                    high,
                    s.score_ci_method,
                    s.n_scored,
                    s.score_failures_as_zero,
                    s.latency_p50_s,
                    s.latency_p95_s,
                    s.ttft_p50_s,
                    s.output_tokens_per_s,
                    s.usage.input_tokens,
                    s.usage.output_tokens,
                    s.cost.usd,
                    s.cost.status,
                    s.usd_per_1k_tokens,
                    s.cost.kwh,
                    s.cost.g_co2,
                    s.retries,
                    s.wall_s,
                    " | ".join(s.adjustments),
                )
            )
    return p


def write_pairs_csv(comparison: Comparison, path: str | Path) -> Path:
    """Write one CSV row per pair of models: the paired difference and its verdict."""
    p = Path(path)
    with p.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(_PAIR_FIELDS)
        for pair in comparison.differences:
            d = pair.difference
            writer.writerow(
                _opt(v)
                for v in (
                    pair.model_a,
                    pair.model_b,
                    pair.scorer,
                    d.n,
                    d.mean_a,
                    d.mean_b,
                    d.delta,
                    d.ci_low,
                    d.ci_high,
                    d.p_value,
                    d.wins,
                    d.ties,
                    d.losses,
                    d.method,
                    pair.verdict(),
                )
            )
    return p


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

    def render(fig: object) -> bytes:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, bbox_inches="tight", dpi=110)  # type: ignore[attr-defined]
        plt.close(fig)  # type: ignore[arg-type]
        return buf.getvalue()

    sums = comparison.summaries
    names = [s.model for s in sums]
    out: dict[str, bytes] = {}

    fig, ax = plt.subplots(figsize=(6, 4))
    for s in sums:
        x = float(s.usd_per_1k_tokens) if s.usd_per_1k_tokens is not None else 0.0
        label = s.model + ("" if s.usd_per_1k_tokens is not None else " (unpriced)")
        y = s.score or 0.0
        # The whisker is the score's interval: two points whose whiskers overlap may not differ.
        err = None if s.score_ci is None else [[y - s.score_ci[0]], [s.score_ci[1] - y]]
        # A legend rather than labels beside the points: long model ids would overlap.
        ax.errorbar([x], [y], yerr=err, fmt="o", markersize=8, capsize=4, label=label)
    ax.legend(loc="best", fontsize="small")
    ax.set_xlabel("dollars per 1K tokens")
    ax.set_ylabel(f"score, {comparison.run.confidence:.0%} interval")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("Quality vs cost")
    out["quality_vs_cost"] = render(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    data = [
        [r.completion.latency_s for r in comparison.rows if r.model == n and r.completion]
        for n in names
    ]
    ax.boxplot([d or [0.0] for d in data], tick_labels=names)
    ax.set_ylabel("latency (s)")
    ax.set_title("Latency per request")
    out["latency"] = render(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(names, [s.output_tokens_per_s or 0.0 for s in sums])
    ax.set_ylabel("output tokens / s")
    ax.set_title("Throughput")
    out["throughput"] = render(fig)
    return out


def _html_table(rows: Sequence[Sequence[str]]) -> str:
    head, *body = rows
    parts = ["<table><thead><tr>"]
    parts += [f"<th>{html.escape(h)}</th>" for h in head]
    parts.append("</tr></thead><tbody>")
    for row in body:
        cells = "".join(f"<td>{_html_cell(c)}</td>" for c in row)
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def _html_cell(text: str) -> str:
    # Leading spaces mark sub-rows (scores under "score (mean)"); HTML would collapse them.
    stripped = text.lstrip(" ")
    return "&nbsp;" * (2 * (len(text) - len(stripped))) + html.escape(stripped)


def write_html(comparison: Comparison, path: str | Path) -> Path:
    """Write one self-contained, interactive HTML page (it opens offline and can be mailed).

    The page has the summary with intervals and each pair's verdict, the decision view
    (dollars and kWh per correct answer, the break-even volume), SVG charts with interval
    whiskers, the answers as a grid with filters and sorting (a row expands to the prompt,
    every answer, the request as sent, usage, timings and cost), and the run's stamp.

    Raises:
        ConfigurationError: When Jinja2 is not installed (``pip install 'llmcompare[report]'``).
    """
    from llmcompare._html import render

    p = Path(path)
    p.write_text(render(comparison), encoding="utf-8")
    return p


def write_report(
    comparison: Comparison, out_dir: str | Path, formats: Iterable[Format] = ("json", "csv", "html")
) -> list[Path]:
    """Write the chosen formats into ``out_dir`` (created if needed).

    Files: ``comparison.json``, ``comparison.csv`` (one row per answer) with ``summary.csv``
    (one per model) and ``pairs.csv`` (one per pair of models), ``report.html``, and one image
    per chart for ``png``/``svg``.

    Returns:
        The files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fmt in dict.fromkeys(formats):
        if fmt == "json":
            written.append(comparison.save(out / "comparison.json"))
        elif fmt == "csv":
            written.append(write_csv(comparison, out / "comparison.csv"))
            written.append(write_summary_csv(comparison, out / "summary.csv"))
            written.append(write_pairs_csv(comparison, out / "pairs.csv"))
        elif fmt == "html":
            written.append(write_html(comparison, out / "report.html"))
        elif fmt in ("png", "svg"):
            for name, data in charts(comparison, fmt=fmt).items():
                p = out / f"{name}.{fmt}"
                p.write_bytes(data)
                written.append(p)
        else:
            raise ConfigurationError(f"unknown report format {fmt!r}; use {', '.join(FORMATS)}")
    return written
