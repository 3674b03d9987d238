"""The report files of a record, written into a folder in the formats asked for."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from llmcompare.errors import ConfigurationError
from llmcompare.report._csv import write_csv, write_pairs_csv, write_summary_csv
from llmcompare.report._html import write_html
from llmcompare.report._plot import charts
from llmcompare.runs import write_whole

if TYPE_CHECKING:
    from llmcompare.record import Comparison

__all__ = ["FORMATS", "Format", "write_report"]

Format = Literal["json", "csv", "html", "png", "svg"]
"""A report format :func:`write_report` can write."""
FORMATS: tuple[Format, ...] = ("json", "csv", "html", "png", "svg")
"""Every format :func:`write_report` knows."""


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
                written.append(write_whole(out / f"{name}.{fmt}", data))
        else:
            raise ConfigurationError(f"unknown report format {fmt!r}; use {', '.join(FORMATS)}")
    return written
