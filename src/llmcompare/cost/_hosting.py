"""Hosted models: the machine an open model is served from, and what its requests cost on it.

A hosted model (``-O hosted=h100``, or ``hosted = { usd_per_hour = 2.99, watts = 700, name =
"1x H100 80GB on demand" }`` in a config file) is open weights served on stated hardware: a
vLLM, SGLang, TGI, llama.cpp or ``transformers serve`` server reached through the chatgpt
backend, or the in-process engine. Its requests are costed from machine time, never a token
price: the time the server was busy with the run's requests (at least one in flight) at the
stated rate, shared among the requests by their latency; its energy is the stated watts over
that time, or, with ``gpu = N`` (the server's GPU is on this machine), what that GPU's NVML
energy counter measured over the run's window.

- :func:`hosted_hardware`: a preset name or the user's figures as a
  :class:`~llmcompare.cost.LocalHardware` (figures given win over a named preset's).
- :func:`hosting_presets`: the presets shipped as package data (``hosting.json``), each with
  its source and check date.
- :func:`busy_costs`: each answer's share of the busy time, as a :class:`~llmcompare.cost.Cost`;
  :func:`energy_basis` names where its energy comes from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from llmcompare.cost._cost import Assessed, Cost, LocalHardware
from llmcompare.errors import ConfigurationError
from llmcompare.types import Completion

__all__ = [
    "busy_costs",
    "busy_seconds",
    "energy_basis",
    "hosted_hardware",
    "hosting_presets",
    "machine_time_bound",
]

_FIGURES = ("usd_per_hour", "watts", "usd_per_kwh", "g_co2_per_kwh", "name", "notes", "gpu")


@cache
def hosting_presets() -> dict[str, LocalHardware]:
    """The named machines shipped with llmcompare (``h100``, ``a100``, ``l4``, ``cpu``).

    Each one's ``notes`` say where its price and power come from and when they were taken.
    """
    text = resources.files("llmcompare.cost").joinpath("hosting.json").read_text("utf-8")
    out = {}
    for key, entry in json.loads(text).items():
        if key.startswith("_"):
            continue
        out[key] = LocalHardware(
            name=entry["name"],
            usd_per_hour=Decimal(entry["usd_per_hour"]),
            watts=Decimal(entry["watts"]),
            usd_per_kwh=Decimal(0),  # a rented machine's electricity is in its hourly price
            notes=f"{entry['source']}; checked {entry['checked']}",
        )
    return out


def hosted_hardware(spec: str | Mapping[str, Any] | LocalHardware) -> LocalHardware:
    """The machine a hosted model is served from, from a preset name or the user's figures.

    Args:
        spec: A preset name (``"h100"``, see :func:`hosting_presets`), a mapping of
            :class:`~llmcompare.cost.LocalHardware` fields (``usd_per_hour``, ``watts``,
            ``name``, ...; with ``preset = NAME`` the figures it gives replace that preset's),
            or the hardware itself.

    Returns:
        The hardware, its ``notes`` saying where its figures come from.

    Raises:
        ConfigurationError: For an unknown preset, an unknown field, or no hourly rate.
    """
    if isinstance(spec, LocalHardware):
        return spec
    presets = hosting_presets()
    if isinstance(spec, str):
        if spec not in presets:
            raise ConfigurationError(
                f"hosted={spec!r} is not a known machine: give one of {sorted(presets)} or "
                "your own figures, hosted = { usd_per_hour = 2.99, watts = 700, name = ... }"
            )
        return presets[spec]
    given = dict(spec)
    preset = given.pop("preset", None)
    unknown = sorted(set(given) - set(_FIGURES))
    if unknown:
        raise ConfigurationError(
            f"hosted: unknown field(s) {unknown}; a machine has {list(_FIGURES)} and preset"
        )
    if preset is None and "usd_per_hour" not in given:
        raise ConfigurationError("hosted: give usd_per_hour (or preset = NAME) for the machine")
    base = hosted_hardware(str(preset)) if preset is not None else None
    if base is None:
        given.setdefault("name", "hosted machine")
        given.setdefault("usd_per_kwh", 0)
        given.setdefault("notes", "the user's figures")
        return LocalHardware.model_validate(given)
    # The GPU says where the server runs, not a figure of the machine's price or power.
    mine = [k for k in given if k not in ("name", "notes", "gpu")]
    notes = base.notes + (f"; the user's {', '.join(mine)}" if mine else "")
    return LocalHardware.model_validate({**base.model_dump(), "notes": notes, **given})


def busy_seconds(done: Sequence[Completion]) -> float:
    """Seconds during which at least one of these answers was in flight (their union).

    Each answer spans from its arrival (``measured_at``) less its latency to its arrival; one
    without a stamp counts its latency alone.
    """
    spans = []
    loose = 0.0
    for c in done:
        if c.measured_at is None:
            loose += c.latency_s
            continue
        end = c.measured_at
        spans.append((end - timedelta(seconds=c.latency_s), end))
    spans.sort()
    busy = loose
    start = stop = None
    for a, b in spans:
        if stop is None or a > stop:
            if start is not None and stop is not None:
                busy += (stop - start).total_seconds()
            start, stop = a, b
        else:
            stop = max(stop, b)
    if start is not None and stop is not None:
        busy += (stop - start).total_seconds()
    return busy


def energy_basis(hardware: LocalHardware, measured_on_gpu: int | None = None) -> str:
    """Where a hosted model's energy comes from, as the costs and the decision name it.

    ``"measured by NVML on GPU 0"`` (its counter over the run's window), else ``"stated 700 W
    x busy time"``.
    """
    if measured_on_gpu is not None:
        return f"measured by NVML on GPU {measured_on_gpu}"
    return f"stated {hardware.watts} W x busy time"


def busy_costs(
    done: Sequence[Completion],
    hardware: LocalHardware,
    joules: float | None = None,
    gpu: int | None = None,
) -> list[Cost]:
    """Each answer's cost on a hosted machine: its share of the busy time at the stated rate.

    The busy time (:func:`busy_seconds`) is shared by latency, so the costs sum to the busy
    time times ``usd_per_hour``. Energy is ``watts`` over each share, or, when ``joules`` were
    measured on GPU ``gpu`` (its NVML counter over the window these answers were served in),
    those joules shared the same way: the rows' energy then sums to the counter's delta.
    """
    busy = Decimal(repr(busy_seconds(done)))
    total = sum((Decimal(repr(c.latency_s)) for c in done), Decimal(0))
    measured = None if joules is None else Decimal(repr(joules)) / Decimal(3_600_000)
    basis = energy_basis(hardware, None if measured is None else gpu)
    out = []
    for c in done:
        part = Decimal(repr(c.latency_s)) / total if total > 0 else Decimal(0)
        share = busy * part
        kwh = share * hardware.watts / Decimal(3_600_000) if measured is None else measured * part
        out.append(
            Cost(
                usd=share * hardware.usd_per_hour / Decimal(3600) + kwh * hardware.usd_per_kwh,
                status="estimated",
                kwh=kwh,
                g_co2=kwh * hardware.g_co2_per_kwh,
                source=f"{hardware.name}: {hardware.notes}",
                assumptions=(
                    f"hosted on {hardware.name} at ${hardware.usd_per_hour}/h "
                    f"({hardware.notes}): its share of the time the server was busy with the "
                    f"run's requests, by latency; energy {basis}"
                ),
                energy="estimated" if measured is None else "measured-nvml",
            )
        )
    return out


def machine_time_bound(completion: Completion, hardware: LocalHardware) -> Assessed:
    """The most a hosted answer can cost: its whole latency of machine time at the rate.

    What a budget counts as the answer arrives; the record's cost is its share of the busy
    time (:func:`busy_costs`), never more.
    """
    seconds = Decimal(repr(completion.latency_s))
    kwh = seconds * hardware.watts / Decimal(3_600_000)
    return Assessed(
        usd=seconds * hardware.usd_per_hour / Decimal(3600) + kwh * hardware.usd_per_kwh,
        status="estimated",
        kwh=kwh,
        g_co2=kwh * hardware.g_co2_per_kwh,
        source=f"{hardware.name}: {hardware.notes}",
        assumptions=f"hosted on {hardware.name}: at most its latency of machine time",
        energy="estimated",
    )
