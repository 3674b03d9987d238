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
from typing import Any

import pytest

from llmcompare import ConfigurationError
from llmcompare.backends.llama import LlamaModel

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


# What makes the host wait for the device: reading a tensor's values into Python.
_READS = frozenset({"item", "tolist", "__bool__", "__int__", "__float__", "__index__", "cpu"})


def test_a_decoding_step_reads_the_device_once(
    llama: LlamaModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One read per step, the chosen tokens, is what keeps a GPU busy between steps (every
    other read would stall the host until the GPU caught up). Counted on the CPU by watching
    every torch call a step makes: with rows of different lengths (a padding mask), and with
    rows leaving the batch (their slots refilled)."""
    from torch.overrides import TorchFunctionMode

    from llmcompare.backends.llama import _scheduler

    reads: list[list[str]] = []

    class Reads(TorchFunctionMode):
        def __torch_function__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            name = getattr(func, "__name__", "")
            if name in _READS:
                reads[-1].append(name)
            return func(*args, **(kwargs or {}))

    decode = _scheduler.Scheduler._decode

    def counted(self: Any, rows: Any) -> None:
        reads.append([])
        with Reads():  # the mode is the worker thread's own
            decode(self, rows)

    # transformers' default attention: torch's scaled_dot_product_attention (FlashAttention
    # kernels on a GPU in bfloat16), which takes the engine's ready-made 4-D decoding masks.
    assert llama.hf_model.config._attn_implementation == "sdpa"
    monkeypatch.setattr(_scheduler.Scheduler, "_decode", counted)
    prompts = ["Hi", "Write a long poem about the sea and the sky.", "Count to three."]
    results = llama.generate_batch(prompts, max_tokens=12, temperature=0)
    lengths = sorted(r.unwrap().usage.output_tokens for r in results)
    assert len(reads) == max(lengths)  # one step per token of the longest answer
    assert lengths[0] < lengths[-1], "no row left the batch early: the retire path went unseen"
    assert all(step == ["tolist"] for step in reads), reads
