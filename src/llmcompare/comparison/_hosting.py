"""Hosted models in a comparison: each one's machine, and its rows costed from machine time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llmcompare.cost import CostTracker, LocalHardware
from llmcompare.cost._hosting import busy_costs, hosted_hardware
from llmcompare.errors import ConfigurationError

if TYPE_CHECKING:
    from llmcompare.comparison._plan import ModelRun
    from llmcompare.record import Row

__all__ = ["host", "hosted_rows"]


def host(
    runs: Sequence[ModelRun],
    hosted: Mapping[str, str | Mapping[str, Any] | LocalHardware],
    tracker: CostTracker,
) -> None:
    """Give each hosted model's run its machine, and the budget's tracker too.

    A label not in the run is refused (nothing is sent yet).
    """
    by_label = {r.label: r for r in runs}
    for label, spec in hosted.items():
        if label not in by_label:
            raise ConfigurationError(
                f"hosted names {label!r}, not a model of this run: {list(by_label)}"
            )
        run = by_label[label]
        run.hosted = hosted_hardware(spec)
        tracker.hosted[run.model.id] = run.hosted


def hosted_rows(rows: Sequence[Row], hardware: LocalHardware) -> list[Row]:
    """A hosted model's rows, each answered one costed by its share of the machine's busy time."""
    answered = [r for r in rows if r.completion is not None]
    costs = busy_costs([r.completion for r in answered if r.completion is not None], hardware)
    by_row = {id(r): c for r, c in zip(answered, costs, strict=True)}
    return [r.model_copy(update={"cost": by_row[id(r)]}) if id(r) in by_row else r for r in rows]
