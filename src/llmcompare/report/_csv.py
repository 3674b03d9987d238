"""The record as tables of values: CSV files and a pandas DataFrame.

- :func:`write_csv` (and :func:`answers_frame`, the same columns as a DataFrame): one row per
  prompt, model and sample, with a column per scorer.
- :func:`write_summary_csv`: one row per model; :func:`write_pairs_csv`: one per pair of models.

Values, not formatted text: a missing value is an empty cell (missing in pandas), numbers stay
numbers and dollars :class:`~decimal.Decimal`. In the files, a text cell that a spreadsheet would
run as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) starts
with ``'`` instead, as OWASP recommends against CSV injection.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from llmcompare.errors import ConfigurationError
from llmcompare.runs import write_whole

if TYPE_CHECKING:
    import pandas as pd

    from llmcompare.record import Comparison, ModelSummary, Pairwise

__all__ = ["answers_frame", "write_csv", "write_pairs_csv", "write_summary_csv"]


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
    "api",
    "service_tier",
    "ttft_visible_s",
    "cache_write_tokens",
    "reasoning_usd",
    "energy",
    "kwh_low",
    "kwh_high",
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
            None if c is None else c.api,
            None if c is None else c.service_tier,
            None if c is None else c.ttft_visible_s,
            c.usage.cache_write_tokens if c else None,
            None if cost is None else cost.reasoning_usd,
            None if cost is None else cost.energy,
            None if cost is None or cost.kwh_range is None else cost.kwh_range[0],
            None if cost is None or cost.kwh_range is None else cost.kwh_range[1],
            *(row.scores.get(n) for n in score_names),
        ]


# What makes a spreadsheet read a cell as a formula (OWASP's CSV injection list).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _cell(value: object) -> object:
    """A value as a CSV cell: text that a spreadsheet would run as a formula gets a leading ``'``.

    An answer, an item id or a model label is written by whoever controls the model or the
    prompts (``=HYPERLINK(...)``, ``=cmd|...``); the ``'`` makes a spreadsheet show it as text.
    Numbers stay numbers, and so does text that is one (``-5``).
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def _write(path: str | Path, header: Sequence[str], records: Iterable[Iterable[object]]) -> Path:
    """Write a header and rows, whole or not at all; None is an empty cell, no cell a formula."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows([_cell(v) for v in record] for record in records)
    return write_whole(path, text.getvalue().encode("utf-8"))


def write_csv(comparison: Comparison, path: str | Path) -> Path:
    """Write one CSV row per prompt and model, with a column per scorer."""
    score_names = _score_names(comparison)
    header = [*_CSV_FIELDS, *(f"score:{n}" for n in score_names)]
    return _write(path, header, _answer_records(comparison, score_names))


def answers_frame(comparison: Comparison) -> pd.DataFrame:
    """The answers CSV as a pandas DataFrame: one row per item, model and sample.

    Missing values are missing (``pd.isna``; a failed request's ``text`` too), while a
    successful empty answer keeps its ``""``; numbers stay numbers and dollars stay
    :class:`~decimal.Decimal`. Text is the record's, as it is: an answer that starts with ``=``
    still does (:func:`write_csv` is the spreadsheet-safe file, where it is prefixed with ``'``).

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
    "ttft_visible_p50_s",
    "cache_hit_share",
    "reasoning_usd",
    "energy",
    "kwh_low",
    "kwh_high",
    "cost_by_tier",
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


def _summary_record(s: ModelSummary) -> list[object]:
    low, high = s.score_ci if s.score_ci is not None else (None, None)
    return [
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
        s.ttft_visible_p50_s,
        s.cache_hit_share,
        s.cost.reasoning_usd,
        s.cost.energy,
        None if s.cost.kwh_range is None else s.cost.kwh_range[0],
        None if s.cost.kwh_range is None else s.cost.kwh_range[1],
        json.dumps({tier: format(cost.usd, "f") for tier, cost in s.cost_by_tier.items()}) or None,
    ]


def _pair_record(pair: Pairwise) -> list[object]:
    d = pair.difference
    return [
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
    ]


def write_summary_csv(comparison: Comparison, path: str | Path) -> Path:
    """Write one CSV row per model: the aggregates, with the score's interval."""
    return _write(path, _SUMMARY_FIELDS, map(_summary_record, comparison.summaries))


def write_pairs_csv(comparison: Comparison, path: str | Path) -> Path:
    """Write one CSV row per pair of models: the paired difference and its verdict."""
    return _write(path, _PAIR_FIELDS, map(_pair_record, comparison.differences))
