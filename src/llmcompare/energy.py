"""Measured energy: the CPU packages' RAPL counters (Linux powercap) and NVIDIA GPUs' NVML counter.

:func:`energy_counter` measures the device a backend computes on (None when it cannot);
:func:`gpu_energy_counter` a GPU of this machine by its index, for a hosted model's server, and
says in one line why it cannot.

The cost math (:mod:`llmcompare.cost`) turns joules into kWh, dollars and CO2; this module only
reads them. RAPL is machine-wide (everything on the CPU is measured, not only the model), often
readable by root only, and absent in most VMs; NVML needs ``nvidia-ml-py`` and a Volta or later
GPU. The readers a backend uses say None rather than guess.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from typing_extensions import Self

from llmcompare.errors import ConfigurationError
from llmcompare.types import EnergyMethod

__all__ = [
    "POWERCAP_ROOT",
    "EnergyCounter",
    "EnergyMeter",
    "energy_counter",
    "gpu_energy_counter",
    "read_energy_uj",
]

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


class EnergyCounter:
    """A machine's cumulative energy counter for one device: read it, subtract two readings.

    Backends measure their own compute with it (the Llama backend reads it around every batch
    step and shares each step's joules out among its rows, as it does compute time). Get one
    with :func:`energy_counter`.

    Attributes:
        method: How it measures: ``"measured-rapl"`` (CPU packages) or ``"measured-nvml"`` (an
            NVIDIA GPU's own counter).
    """

    method: EnergyMethod

    def read(self) -> object | None:
        """Take a reading (opaque); None when the counter cannot be read right now."""
        raise NotImplementedError

    def joules(self, start: object, end: object) -> float | None:
        """Joules between two readings, or None when either is missing."""
        raise NotImplementedError


class _Rapl(EnergyCounter):
    method: EnergyMethod = "measured-rapl"

    def __init__(self, zones: list[Path]) -> None:
        self._zones = zones

    def read(self) -> object | None:
        return _read_zones(self._zones)

    def joules(self, start: object, end: object) -> float | None:
        if not isinstance(start, list) or not isinstance(end, list):
            return None
        return _joules(start, end)


class _Nvml(EnergyCounter):
    method: EnergyMethod = "measured-nvml"

    def __init__(self, nvml: Any, handle: Any) -> None:
        self._nvml = nvml
        self._handle = handle

    def read(self) -> object | None:
        try:
            # Millijoules since the driver loaded (Volta and later).
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except Exception:  # noqa: BLE001 - an unreadable counter is no measurement, never an error
            return None

    def joules(self, start: object, end: object) -> float | None:
        if not isinstance(start, int) or not isinstance(end, int) or end < start:
            return None
        return (end - start) / 1000.0


def energy_counter(device: str, root: Path = POWERCAP_ROOT) -> EnergyCounter | None:
    """The energy counter for a device, when this machine lets it be read.

    ``"cuda"`` / ``"cuda:N"``: the GPU's NVML counter (needs ``nvidia-ml-py``, part of the
    ``llama`` extra, and a Volta or later GPU). ``"cpu"``: the CPU packages' RAPL counters
    (machine-wide: other programs' work counts too). Anything else, or a counter that cannot be
    read (most VMs, non-root users), gives None, and costs estimate energy from watts instead.

    Args:
        device: A torch device string.
        root: The powercap directory, for RAPL.

    Returns:
        A counter, or None.
    """
    kind, _, index = device.partition(":")
    if kind == "cuda":
        return _nvml_counter(int(index) if index.isdigit() else 0)
    if kind == "cpu":
        zones = _zones(root)
        if zones and _read_zones(zones) is not None:
            return _Rapl(zones)
    return None


def _nvml_counter(index: int) -> EnergyCounter | None:
    try:
        return _open_nvml(lambda pynvml: _nvml_handle(pynvml, index))
    except ConfigurationError:  # no library, no driver or an older GPU: no measurement
        return None


def gpu_energy_counter(index: int) -> EnergyCounter:
    """The NVML energy counter of this machine's GPU ``index``, as ``nvidia-smi`` numbers it.

    For a server on this machine (a hosted model's ``gpu``): its GPU is named as the machine
    numbers it, not as this process's torch (``CUDA_VISIBLE_DEVICES``) would.

    Args:
        index: The GPU's index.

    Returns:
        A counter that has been read once.

    Raises:
        ConfigurationError: When it cannot be read, in one line saying why (nvidia-ml-py not
            installed, no NVIDIA driver, no such GPU, a GPU without the counter).
    """
    return _open_nvml(lambda pynvml: pynvml.nvmlDeviceGetHandleByIndex(index), f"GPU {index}")


def _open_nvml(handle_of: Callable[[Any], Any], gpu: str = "the GPU") -> EnergyCounter:
    """NVML started, the handle ``handle_of`` finds, and its energy counter read once."""
    try:
        import pynvml  # nvidia-ml-py: optional, and untyped
    except ImportError:
        raise ConfigurationError(
            f"NVML cannot measure {gpu}: nvidia-ml-py is not installed (pip install nvidia-ml-py)"
        ) from None
    try:
        pynvml.nvmlInit()
        handle = handle_of(pynvml)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except Exception as exc:  # noqa: BLE001 - NVMLError and its kin: said in one line
        raise ConfigurationError(
            f"NVML cannot read {gpu}'s energy counter ({type(exc).__name__}: {exc}): no NVIDIA "
            "driver, no such GPU, or one older than Volta"
        ) from None
    return _Nvml(pynvml, handle)


def _nvml_handle(pynvml: Any, index: int) -> Any:
    """The NVML handle of torch's ``cuda:index``.

    torch numbers the GPUs that ``CUDA_VISIBLE_DEVICES`` leaves visible; NVML numbers them all.
    The GPU's UUID names the same device in both; without torch's answer, the variable itself
    says which physical GPU ``cuda:index`` is.
    """
    import os
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            uuid = str(torch.cuda.get_device_properties(index).uuid)
        except Exception:  # noqa: BLE001 - an older torch without .uuid: use the variable below
            uuid = ""
        if uuid:
            return pynvml.nvmlDeviceGetHandleByUUID(
                uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"
            )
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v]
    if index < len(visible):
        chosen = visible[index]
        if chosen.isdigit():
            return pynvml.nvmlDeviceGetHandleByIndex(int(chosen))
        return pynvml.nvmlDeviceGetHandleByUUID(chosen)
    return pynvml.nvmlDeviceGetHandleByIndex(index)
