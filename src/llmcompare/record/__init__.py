"""The record of a comparison: typed, saved as JSON, loaded back equal, re-scored or re-rendered.

These types know nothing of how a comparison runs: a saved record loads, renders and re-scores
without the runner, the backends or torch (``llmcompare report`` and ``llmcompare rescore`` use
only this package, the scorers and :mod:`llmcompare.report`).

- :class:`Comparison`: the whole record (its facade methods compare two models, re-score,
  find the break-even volume and render it for pandas and notebooks).
- :class:`Row`, :class:`ErrorInfo`: one answer, or why it failed.
- :class:`ModelSummary`, :class:`PassAtK`, :class:`Pairwise`: the aggregates, computed by the
  private ``_aggregate`` module from the rows (scores over the same items, intervals, paired
  differences).
- :class:`RunInfo`: what the run ran on, stamped on every report.
"""

from __future__ import annotations

from llmcompare.batch._slo import Slo, parse_slo
from llmcompare.record._comparison import Comparison
from llmcompare.record._load import LoadLevel, Sweep, WhatIf
from llmcompare.record._types import ErrorInfo, ModelSummary, Pairwise, PassAtK, Row, RunInfo

__all__ = [
    "Comparison",
    "ErrorInfo",
    "LoadLevel",
    "ModelSummary",
    "Pairwise",
    "PassAtK",
    "Row",
    "RunInfo",
    "Slo",
    "Sweep",
    "WhatIf",
    "parse_slo",
]
