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

Every renderer reads one view model (the private ``_tables`` module: the summary rows, the pair
rows, structured notes, the break-evens, the stamp and the charts' data), never another
renderer's output.
"""

from __future__ import annotations

from llmcompare.report._csv import answers_frame, write_csv, write_pairs_csv, write_summary_csv
from llmcompare.report._html import write_html
from llmcompare.report._notebook import summary_html
from llmcompare.report._plot import charts
from llmcompare.report._tables import break_even_lines, notes, stamp, summary_table_rows
from llmcompare.report._terminal import print_report
from llmcompare.report._write import FORMATS, Format, write_report

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
