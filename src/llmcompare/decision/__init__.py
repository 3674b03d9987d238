"""The decision behind a comparison: rent a closed model or host an open one.

- :func:`per_correct`: dollars and kWh per correct answer of each model.
- :func:`per_judged_good`: where items have no reference scorer, a judged run's quality
  instead: dollars per answer the judge found at least as good as every other model's.
- :func:`figures`: each model's dollars and Wh per 1,000 requests and correct answers, each
  with its cost basis named (the report shows them after the break-even sentence).
- :func:`break_even`: monthly dollars against monthly requests for two models, and the volume
  above which one costs less than the other (:class:`BreakEven`).
- :func:`rate_limit_note`: when a volume needs more than an API model's stated rate limits
  allow one key (each break-even checks its crossover, and any volume asked about).

The cost model, stated once (every :class:`BreakEven` repeats it in its ``assumptions``):

- An **API model** costs the same for every request: the run's mean dollars per request, i.e.
  its mean input and output tokens per request at the run's prices. Monthly dollars are linear
  in the volume.
- A **local model** runs on the run's stated hardware (``RunInfo.hardware``, by default a
  generic cloud VM), **kept on all month** (730 hours) so that requests are answered when they
  come: one machine costs ``usd_per_hour x 730`` a month whatever the volume, and serves at
  most its measured throughput (output tokens/s over the mean output tokens per request)
  times the month's seconds, with requests spread evenly over the month (peaks need spare
  machines); a larger volume needs another machine. Energy is added per request (the run's
  measured or estimated kWh per request times ``usd_per_kwh``); an idle machine's draw is not
  counted.
- A local model run by several executor workers (``Completion.worker``: ``"ray-0"``,
  ``"ray-1"``, ...) was measured as their total throughput: each worker counts as one machine
  at the stated ``usd_per_hour``, serving the total divided by the number of workers.
- An API model answered through the Batch API (``Completion.batch_id``) is costed at the
  Batch tier it was charged at; the assumptions say which tier.
- Because a machine is paid whole, the local line is a staircase: just after each added machine
  the API can be cheaper again. The crossover is the volume above which hosting stays cheaper
  **for good**; ``first_crossover`` is where it is first cheaper, when that is lower.
- An API model's stated rate limits (``limits=``, a config's ``rpm``/``tpm``) cap what one key
  serves: at a volume, it needs the volume over a month's minutes (730 hours, the machine's
  month) a minute on average (tokens from the run's mean tokens a request), more at peak; the
  break-even says when that is more.
- A machine rented per second of use instead (scaled to zero when idle) makes the local cost
  linear too: that figure, the **local cost per request at full use**, is given beside the
  crossover so a reader can judge either way.

Its parts: ``_quality`` (per correct answer, the figures) and ``_break_even`` (the cost lines,
the crossover, the rate limits).
"""

from llmcompare.decision._break_even import (
    HOURS_PER_MONTH,
    MINUTES_PER_MONTH,
    MONTH_BASIS,
    UNTIMED_CACHE,
    BreakEven,
    CostLine,
    break_even,
    rate_limit_note,
    round_volume,
)
from llmcompare.decision._quality import (
    Figure,
    PerCorrect,
    PerJudgedGood,
    correct_unit,
    figures,
    per_correct,
    per_judged_good,
)

__all__ = [
    "HOURS_PER_MONTH",
    "MINUTES_PER_MONTH",
    "MONTH_BASIS",
    "UNTIMED_CACHE",
    "BreakEven",
    "CostLine",
    "Figure",
    "PerCorrect",
    "PerJudgedGood",
    "break_even",
    "correct_unit",
    "figures",
    "per_correct",
    "per_judged_good",
    "rate_limit_note",
    "round_volume",
]
