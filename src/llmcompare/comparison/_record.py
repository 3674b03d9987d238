"""The last steps of a comparison: its answers scored and aggregated into the typed record.

One :class:`~llmcompare.record.Row` per request (scored, costed), one summary per model, every
pair of models compared, and the stamp of the run (versions, machine, prices' date).
"""

from __future__ import annotations

import os
import platform
import sys
import warnings
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING

from llmcompare._version import __version__
from llmcompare.comparison._hosting import hosted_rows
from llmcompare.cost import (
    GENERIC_CLOUD_VM,
    LocalHardware,
    cost_of,
    genai_prices_version,
    oldest_price_date,
)
from llmcompare.cost._cost import unanswered_cost
from llmcompare.errors import BackendError, ConfigurationError
from llmcompare.record import Comparison, ErrorInfo, ModelSummary, Row, RunInfo, _aggregate
from llmcompare.runs import ANSWERS_FILE, add_charge, sum_charges
from llmcompare.scorers import scorer_name
from llmcompare.types import ShelfLife

if TYPE_CHECKING:
    from llmcompare.comparison._inputs import Inputs
    from llmcompare.comparison._plan import ModelRun, PlannedRequest
    from llmcompare.judges import Judging
    from llmcompare.prompts import PromptItem
    from llmcompare.ratelimit import RateLimits
    from llmcompare.record import Sweep, WhatIf
    from llmcompare.runs import RunFolder

__all__ = ["RECORD_FILE", "build_record", "cpu_name", "finished_record"]

RECORD_FILE = "comparison.json"
"""The record's file in a run folder."""


def finished_record(
    folder: RunFolder | None, runs: Sequence[ModelRun], inputs: Inputs
) -> Comparison | None:
    """The record of a finished run asked again, when this call sent nothing; else None.

    Its record stands, rescored (scorers may have changed); its timings are the run's, not this
    call's.
    """
    if folder is None or any(r.sent for r in runs):
        return None
    finished = folder.path / RECORD_FILE
    if not finished.exists():
        return None
    try:
        record = Comparison.load(finished)
    except ConfigurationError:
        # Cut by a kill or a full disk (written by an older llmcompare, not atomically): the
        # answers are all in answers.jsonl, so the record is built again from them.
        warnings.warn(
            f"{finished} was not a whole record: rebuilt from {folder.path / ANSWERS_FILE}",
            RuntimeWarning,
            stacklevel=4,  # compare()'s caller
        )
        return None
    return _aggregate.rescored(
        record,
        inputs.scorers,
        replace=False,
        allow_code_execution=inputs.allow_code_execution,
    )


def build_record(
    runs: Sequence[ModelRun],
    inputs: Inputs,
    hardware: LocalHardware | None,
    started: datetime,
    pass_at: tuple[int, ...],
    folder: RunFolder | None = None,
    judging: Judging | None = None,
    shelf: Mapping[str, ShelfLife] | None = None,
    sweeps: tuple[Sweep, ...] = (),
    what_if: tuple[WhatIf, ...] = (),
    limits: Mapping[str, RateLimits] | None = None,
) -> Comparison:
    """The typed record of the run: rows, summaries, pairwise differences and the run's stamp.

    With a run folder, a finished run asked again keeps its own record (see
    :func:`finished_record`); any other record is saved in the folder. A new ``judging``
    replaces the record's (a record judged again is saved again).
    """
    again = finished_record(folder, runs, inputs)
    if again is not None:
        if judging is None:
            return again
        again = again.model_copy(update={"judging": judging})
        if folder is not None:
            again.save(folder.path / RECORD_FILE)
        return again
    by_id = {item.id: item for item in inputs.items}
    made: list[Row] = []
    for run in runs:
        mine = [
            _row(by_id[p.item_id], run.label, p, inputs.scoring, hardware, run.hosted is None)
            for p in run.requests
        ]
        # A hosted model's answers cost machine time: their shares of its busy time.
        made.extend(mine if run.hosted is None else hosted_rows(run, mine))
    rows = tuple(made)
    labels = [r.label for r in runs]
    # Stamped before the statistics: the run ends with its last answer, not its bootstraps.
    stamp = _run_info(runs, inputs, hardware, started, pass_at, rows)
    # A model priced offline used its table price too: the stamp's date covers it.
    dates = [d for d in (stamp.price_table_date, *(w.price_date for w in what_if)) if d]
    if dates:
        stamp = stamp.model_copy(update={"price_table_date": min(dates)})
    if shelf:
        stamp = stamp.model_copy(update={"shelf_life": dict(shelf)})
    if limits:
        stamp = stamp.model_copy(update={"rate_limits": dict(limits)})
    summaries = _aggregate.summaries(
        labels,
        {r.label: r.model.info.open_weights or r.hosted is not None for r in runs},
        rows,
        {r.label: r.wall_s for r in runs},
        inputs.confidence,
        inputs.stats_seed,
        pass_at=pass_at,
        code_scorers=inputs.scoring.pass_at_k_names(inputs.items),
    )
    record = Comparison(
        run=stamp,
        items=tuple(inputs.items),
        rows=rows,
        summaries=tuple(
            _throughput(summary, run) for summary, run in zip(summaries, runs, strict=True)
        ),
        differences=_aggregate.differences(labels, rows, inputs.confidence, inputs.stats_seed),
        judging=judging,
        sweeps=sweeps,
        what_if=what_if,
    )
    if folder is not None:
        record.save(folder.path / RECORD_FILE)
    return record


def _run_info(
    runs: Sequence[ModelRun],
    inputs: Inputs,
    hardware: LocalHardware | None,
    started: datetime,
    pass_at: tuple[int, ...],
    rows: Sequence[Row],
) -> RunInfo:
    """The stamp of the run: what ran, where, with which settings."""
    return RunInfo(
        llmcompare_version=__version__,
        started_at=started,
        finished_at=datetime.now(timezone.utc),
        python=platform.python_version(),
        platform=f"{platform.system()} {platform.machine()}",
        cpu=cpu_name(),
        gpu=_gpu_name(),
        price_table_date=_oldest_price_date(rows),
        hardware=(hardware or GENERIC_CLOUD_VM)
        if any(r.model.info.open_weights for r in runs)
        else None,
        hosted={r.label: r.hosted for r in runs if r.hosted is not None},
        settings=inputs.settings,
        models=tuple(r.label for r in runs),
        model_ids={r.label: r.model.id for r in runs},
        samples=inputs.samples,
        confidence=inputs.confidence,
        stats_seed=inputs.stats_seed,
        scorers=tuple(scorer_name(s) for s in inputs.scorers),
        pass_at=pass_at,
        # Its version, when it priced anything: another version may price differently.
        genai_prices=genai_prices_version()
        if any(r.cost is not None and "genai-prices" in r.cost.source for r in rows)
        else None,
    )


def _row(
    item: PromptItem,
    label: str,
    planned: PlannedRequest,
    scoring: _aggregate.Scoring,
    hardware: LocalHardware | None,
    priced: bool = True,
) -> Row:
    result = planned.result
    assert result is not None  # every request has its answer or failure by now
    seed = result.request.seed
    # What earlier runs on the folder were charged for it (timeouts) is part of its cost.
    before, tokens_before = sum_charges(planned.charged_before)  # dollars None: unpriced
    if result.completion is None:
        error = result.error
        assert error is not None
        # A failure that may be billed (a timeout) was charged: the row says what, and why.
        charged = error.charged_usd if isinstance(error, BackendError) else None
        if before is not None:
            charged = before + (charged or 0)
        return Row(
            item_id=item.id,
            model=label,
            sample=planned.sample,
            seed=seed,
            error=ErrorInfo.of(error),
            cost=None if charged is None else unanswered_cost(charged),
        )
    completion = result.completion
    completion = add_charge(completion, before, tokens_before)
    return Row(
        item_id=item.id,
        model=label,
        sample=planned.sample,
        seed=seed,
        completion=completion,
        scores=scoring.score(item, completion),
        cost=cost_of(completion, hardware=hardware) if priced else None,
        cached=planned.cached,
    )


def _throughput(summary: ModelSummary, run: ModelRun) -> ModelSummary:
    """Throughput over what this call sent and timed: answers read back were timed elsewhere.

    A model this call sent nothing to keeps the figure of the run that timed its answers.
    """
    if not run.sent:
        return summary
    sent = [p.result.completion for p in run.requests if p.sent and p.result is not None]
    tokens = sum(c.usage.output_tokens for c in sent if c is not None)
    rate = tokens / run.wall_s if run.wall_s > 0 else None
    return summary.model_copy(update={"output_tokens_per_s": rate})


def cpu_name() -> str:
    """The CPU's model name, as the OS reports it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    return (platform.processor() or platform.machine()) + f" ({os.cpu_count()} cores)"


def _gpu_name() -> str | None:
    # Only ask torch when a backend already imported it: a comparison of API models stays light.
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if torch.cuda.is_available():
            return str(torch.cuda.get_device_name(0))
    except Exception:  # noqa: BLE001 - the stamp is informative, never fatal
        return None
    return None


def _oldest_price_date(rows: Sequence[Row]) -> date | None:
    """The oldest check date of the prices this run's API answers were costed with."""
    # The reported name counts: a dated snapshot may have a price entry of its own.
    used = {(r.completion.model, r.completion.response_model) for r in rows if r.completion}
    return oldest_price_date(used)
