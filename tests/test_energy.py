"""Measured energy: RAPL counters (a powercap tree written in a temporary folder) and NVML.

No machine here exposes RAPL to this process and none has an NVIDIA GPU, so both are shown on
stand-ins: a powercap folder tree laid out as Linux lays it out, and a stand-in for the
``pynvml`` module that records how it was asked (the one place no real part can show the case).
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from llmcompare.energy import EnergyMeter, energy_counter, read_energy_uj


def write_zone(root: Path, name: str, label: str, energy_uj: int, wrap: int) -> None:
    zone = root / name
    zone.mkdir(parents=True, exist_ok=True)
    (zone / "name").write_text(label + "\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{wrap}\n")


def test_rapl_counters_of_cpu_packages_are_read_with_wraparound(tmp_path: Path) -> None:
    write_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000, 10_000_000)
    write_zone(tmp_path, "intel-rapl:1", "package-1", 9_500_000, 10_000_000)
    write_zone(tmp_path, "intel-rapl:2", "psys", 5_000_000, 10_000_000)  # would double count
    write_zone(tmp_path, "intel-rapl:0:0", "core", 1, 10_000_000)  # a sub-zone
    assert read_energy_uj(tmp_path) == 10_500_000
    meter = EnergyMeter(tmp_path)
    assert meter.available
    meter.start()
    write_zone(tmp_path, "intel-rapl:0", "package-0", 3_000_000, 10_000_000)  # +2 J
    write_zone(tmp_path, "intel-rapl:1", "package-1", 499_999, 10_000_000)  # wrapped: +1 J
    assert meter.stop() == pytest.approx(3.0)


def test_rapl_absent_or_unreadable_means_no_measurement(tmp_path: Path) -> None:
    assert read_energy_uj(tmp_path / "nothing") is None
    with EnergyMeter(tmp_path / "nothing") as meter:
        pass
    assert meter.joules is None
    assert not meter.available


# -- the tracker ---------------------------------------------------------------------------------


def test_a_cpu_counter_reads_rapl_and_gives_joules_between_readings(tmp_path: Path) -> None:
    write_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000, 10_000_000)
    counter = energy_counter("cpu", tmp_path)
    assert counter is not None
    assert counter.method == "measured-rapl"
    start = counter.read()
    write_zone(tmp_path, "intel-rapl:0", "package-0", 3_500_000, 10_000_000)
    assert counter.joules(start, counter.read()) == pytest.approx(2.5)
    assert energy_counter("cpu", tmp_path / "absent") is None
    assert energy_counter("mps") is None


class FakeNvml(types.ModuleType):
    """Stands in for pynvml: GPUs by physical index and UUID, energy in millijoules."""

    def __init__(self) -> None:
        super().__init__("pynvml")
        self.energy_mj = {0: 1_000, 1: 50_000, 2: 900_000}
        self.uuids = {"GPU-aaaa": 0, "GPU-bbbb": 1, "GPU-cccc": 2}

    def nvmlInit(self) -> None:
        pass

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> int:
        return self.uuids[uuid]

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        return self.energy_mj[handle]


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    # torch is not asked: as on a machine whose torch has no CUDA (the variable decides).
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    return fake


def test_a_gpu_counter_reads_nvml_millijoules_as_joules(nvml: FakeNvml) -> None:
    counter = energy_counter("cuda:0")
    assert counter is not None
    assert counter.method == "measured-nvml"
    start = counter.read()
    nvml.energy_mj[0] += 2_500
    assert counter.joules(start, counter.read()) == pytest.approx(2.5)


def test_cuda_visible_devices_maps_torchs_index_to_the_physical_gpu(
    nvml: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    # torch's cuda:0 is the first VISIBLE GPU: physical 2 here, or the one with that UUID.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    counter = energy_counter("cuda:0")
    assert counter is not None
    assert counter.read() == 900_000
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-bbbb")
    counter = energy_counter("cuda")
    assert counter is not None
    assert counter.read() == 50_000


def test_no_nvml_or_a_gpu_without_a_counter_means_no_measurement(
    nvml: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(handle: int) -> int:
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")

    monkeypatch.setattr(nvml, "nvmlDeviceGetTotalEnergyConsumption", unsupported)
    assert energy_counter("cuda:0") is None
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    assert energy_counter("cuda:0") is None
