"""Measured energy: the CPU packages' RAPL counters, read from Linux's powercap interface.

The cost math (:mod:`llmcompare.cost`) turns joules into kWh, dollars and CO2; this module only
reads them. RAPL is machine-wide (everything on the CPU is measured, not only the model), often
readable by root only, and absent in most VMs: every reader says None rather than guess.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import TracebackType

from typing_extensions import Self

__all__ = ["POWERCAP_ROOT", "EnergyMeter", "read_energy_uj"]

POWERCAP_ROOT = Path("/sys/class/powercap")
"""Where Linux exposes the RAPL counters."""
_ZONE = re.compile(r"^[a-z]+-rapl:\d+$")


def _zones(root: Path) -> list[Path]:
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return []
    zones = []
    for zone in entries:
        if not _ZONE.match(zone.name):
            continue
        try:
            # Package zones only: "psys" (whole platform) would count the packages twice.
            if (zone / "name").read_text().strip().startswith("package"):
                zones.append(zone)
        except OSError:
            continue
    return zones


def _read_zones(zones: list[Path]) -> list[tuple[int, int]] | None:
    readings = []
    for zone in zones:
        try:
            value = int((zone / "energy_uj").read_text())
        except (OSError, ValueError):
            return None  # unreadable (often root-only since 2020 kernels): no measurement
        try:
            wrap = int((zone / "max_energy_range_uj").read_text())
        except (OSError, ValueError):
            wrap = 0
        readings.append((value, wrap))
    return readings or None


def _joules(start: list[tuple[int, int]], end: list[tuple[int, int]]) -> float | None:
    if len(start) != len(end):
        return None
    total = 0
    for (v0, _), (v1, wrap) in zip(start, end, strict=True):
        # The counter wraps around at max_energy_range_uj.
        total += v1 - v0 if v1 >= v0 else v1 + (wrap - v0) + 1
    return total / 1e6


def read_energy_uj(root: Path = POWERCAP_ROOT) -> int | None:
    """Read the CPU packages' cumulative energy counter (RAPL), in microjoules.

    Args:
        root: The powercap directory (``/sys/class/powercap``).

    Returns:
        The sum over CPU packages, or None when RAPL is absent or not readable.
    """
    readings = _read_zones(_zones(root))
    return None if readings is None else sum(v for v, _ in readings)


class EnergyMeter:
    """Measure the CPU packages' energy between ``start()`` and ``stop()`` with RAPL.

    The counter is machine-wide: everything running on the CPU is measured, not only the model.
    Where RAPL is not readable (most VMs, non-root users), :attr:`available` is False and
    :meth:`stop` returns None; costs then use the configured watts.

    Example:
        >>> from llmcompare.energy import EnergyMeter
        >>> with EnergyMeter() as meter:
        ...     pass  # run the model
        >>> meter.joules is None or meter.joules >= 0
        True

    Args:
        root: The powercap directory.
    """

    def __init__(self, root: Path = POWERCAP_ROOT) -> None:
        self._zones = _zones(root)
        self._start: list[tuple[int, int]] | None = None
        self.joules: float | None = None
        """The energy measured by the last start/stop, or None."""

    @property
    def available(self) -> bool:
        """Whether RAPL counters are present and readable."""
        return _read_zones(self._zones) is not None

    def start(self) -> None:
        """Take the starting reading."""
        self._start = _read_zones(self._zones)
        self.joules = None

    def stop(self) -> float | None:
        """Take the final reading.

        Returns:
            Joules since :meth:`start`, or None when not measurable.
        """
        end = _read_zones(self._zones)
        self.joules = None if self._start is None or end is None else _joules(self._start, end)
        return self.joules

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
