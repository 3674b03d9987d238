"""The GPU path of the llama backend, covered where CI has no GPU.

The device and dtype decisions run with CUDA's capability stubbed (what ``device="auto"`` picks
on a machine with a GPU), and ``benchmarks/gpu.py`` runs in its CPU smoke mode, so the script
that measures the engine on a GPU keeps working.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmcompare import ConfigurationError

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("llama_backend")]

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("bf16", "expected"), [(True, "bfloat16"), (False, "float16")])
def test_auto_picks_cuda_with_bf16_where_supported(
    monkeypatch: pytest.MonkeyPatch, bf16: bool, expected: str
) -> None:
    import torch

    from llmcompare.backends.llama._load import pick_device, pick_dtype

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    device = pick_device("auto")
    assert device == torch.device("cuda")
    assert pick_device("cuda:1") == torch.device("cuda:1")
    assert pick_dtype("auto", device) == getattr(torch, expected)
    assert pick_dtype("float32", device) == torch.float32  # an explicit dtype wins


def test_auto_is_cpu_in_float32_without_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from llmcompare.backends.llama._load import pick_device, pick_dtype

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    mps = getattr(torch.backends, "mps", None)
    if mps is not None:
        monkeypatch.setattr(mps, "is_available", lambda: False)
    device = pick_device("auto")
    assert device == torch.device("cpu")
    assert pick_dtype("auto", device) == torch.float32
    with pytest.raises(ConfigurationError, match="no CUDA device"):
        pick_device("cuda")


def test_the_gpu_benchmark_runs_in_its_cpu_smoke_mode() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--device", "cpu", "--tiny"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1", "LLMCOMPARE_LOAD_PLUGINS": ""},
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "PASS  tiny: greedy == model.generate 4/4" in out
    assert "FAIL" not in out
    lines = out.strip().splitlines()
    # The table is printed last: its header, the tiny shape's row, the legend.
    assert lines[-3].startswith("shape")
    row = lines[-2].split()
    assert row[0] == "tiny"
    assert row[-1] == "4/4"
