"""The notebook view of a record (``Comparison._repr_html_``): the summary table in HTML."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from llmcompare.report._tables import SummaryRow, header_row, pair_rows, stamp, summary_rows

if TYPE_CHECKING:
    from collections.abc import Iterable

    from llmcompare.record import Comparison

__all__ = ["summary_html"]


def _table(header: SummaryRow, rows: Iterable[SummaryRow]) -> str:
    parts = ["<table><thead><tr>"]
    parts += [f"<th>{html.escape(h)}</th>" for h in header.strings()]
    parts.append("</tr></thead><tbody>")
    for row in rows:
        # A sub-row (a scorer under the score) is indented; HTML would collapse spaces.
        label = "&nbsp;" * 4 * row.sub + html.escape(row.label)
        cells = "".join(f"<td>{html.escape(c)}</td>" for c in row.cells)
        parts.append(f"<tr><td>{label}</td>{cells}</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def summary_html(comparison: Comparison) -> str:
    """A compact HTML summary (models as columns, then each pair's verdict), for notebooks."""
    # Not the whole view: a notebook shows any record, even one too partial for a break-even.
    verdicts = "".join(
        f"<li>{html.escape(pair.difference)}: {html.escape(pair.verdict)}</li>"
        for pair in pair_rows(comparison)
    )
    return (
        f"<div><p><b>llmcompare</b>: {len(comparison.items)} items, "
        f"{html.escape(', '.join(comparison.run.models))}</p>"
        f"{_table(header_row(comparison), summary_rows(comparison))}"
        + (f"<ul>{verdicts}</ul>" if verdicts else "")
        + f"<p><small>{html.escape(stamp(comparison))}</small></p></div>"
    )
