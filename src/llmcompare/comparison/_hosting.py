"""Hosted models in a comparison: each one's machine, and its rows costed from machine time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmcompare.cost import CostTracker, LocalHardware
from llmcompare.cost._hosting import busy_costs, hosted_hardware
from llmcompare.energy import EnergyCounter, gpu_energy_counter
from llmcompare.errors import ConfigurationError

if TYPE_CHECKING:
    from llmcompare.comparison._plan import ModelRun
    from llmcompare.record import Row

__all__ = ["Hosted", "check_hosted", "host", "hosted_rows"]


@dataclass(frozen=True)
class Hosted:
    """A hosted model's machine, and the counter of its GPU on this machine, if it names one."""

    hardware: LocalHardware
    meter: EnergyCounter | None = None


def check_hosted(
    hosted: Mapping[str, str | Mapping[str, Any] | LocalHardware],
) -> dict[str, Hosted]:
    """Each hosted model's machine, by label, and its GPU's NVML counter when it names one.

    Called first thing, before any model is built or asked anything.

    Raises:
        ConfigurationError: For a machine that cannot be built, or a ``gpu`` NVML cannot read
            (one line saying why).
    """
    out = {}
    for label, spec in hosted.items():
        hardware = hosted_hardware(spec)
        meter = None
        if hardware.gpu is not None:
            try:
                meter = gpu_energy_counter(hardware.gpu)
            except ConfigurationError as exc:
                raise ConfigurationError(f"{label}: hosted.gpu={hardware.gpu}: {exc}") from None
        out[label] = Hosted(hardware, meter)
    return out


def host(runs: Sequence[ModelRun], hosted: Mapping[str, Hosted], tracker: CostTracker) -> None:
    """Give each hosted model's run its machine (and GPU counter), and the budget's tracker too.

    A label not in the run is refused (nothing is sent yet).
    """
    by_label = {r.label: r for r in runs}
    for label, machine in hosted.items():
        if label not in by_label:
            raise ConfigurationError(
                f"hosted names {label!r}, not a model of this run: {list(by_label)}"
            )
        run = by_label[label]
        run.hosted, run.meter = machine.hardware, machine.meter
        tracker.hosted[run.model.id] = run.hosted


def hosted_rows(run: ModelRun, rows: Sequence[Row]) -> list[Row]:
    """A hosted model's rows, each answered one costed by its share of the machine's busy time.

    Its energy is what the GPU's counter measured when every answer was sent in the window it
    measured (``run.joules``); otherwise (answers read back from the cache or a run folder) the
    stated watts over the busy time.
    """
    assert run.hosted is not None
    answered = [r for r in rows if r.completion is not None]
    done = [p for p in run.requests if p.result is not None and p.result.completion is not None]
    measured = run.joules if done and all(p.sent for p in done) else None
    gpu = None if measured is None else run.hosted.gpu
    costs = busy_costs(
        [r.completion for r in answered if r.completion is not None], run.hosted, measured, gpu
    )
    by_row = {id(r): c for r, c in zip(answered, costs, strict=True)}
    return [r.model_copy(update={"cost": by_row[id(r)]}) if id(r) in by_row else r for r in rows]
