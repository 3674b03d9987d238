"""Matrix products of few rows on a CPU: the faster of two ways, measured once per machine.

A decoding step multiplies each weight matrix by one row per running sequence, so with few
rows it is a matter of streaming the weights through the core. How fast the CPU's BLAS does
that depends on how the product is asked for: on the 2-core AMD EPYC this was built on, MKL's
``x @ W.T`` for one row read the weights at about 12 GB/s, and for 2 or 3 rows took about twice
as long as for one, while the same product asked as ``(W @ x.T).T`` over two rows streamed them
at about 18 GB/s (a SmolLM2-135M step: 53 -> 42 ms for one row, 88 -> 42 ms for two, 109 -> 61
ms for three; from 6 or 7 rows on the plain product was as fast or faster).

Which way wins is a property of the CPU, its BLAS and the thread count, so it is measured, not
assumed: :func:`few_rows` times both ways on the model's own weights for 1 to 8 rows and keeps
the row counts where the transposed way took at most 90% of the plain one's time. The choice is
saved in the cache directory, keyed by the CPU, torch, the thread count, the dtype and the
weights' shapes, so it is measured once per machine (by one process at a time: others loading
meanwhile wait, then take its choice) and every later load makes the same choice: the answers
of a rerun are computed the same way. One row is computed as two (the row twice):
the transposed product's one-row kernel is the slow one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional

from llmcompare.runs import exclusive, write_whole

__all__ = ["CANDIDATE_ROWS", "FewRowsLinear", "choose", "few_rows", "install", "measure"]

log = logging.getLogger("llmcompare.llama")

CANDIDATE_ROWS = tuple(range(1, 9))
"""The row counts measured both ways; more rows always take the plain product."""

_FILE = "few-row-products.json"
# The transposed way is kept only where it is clearly faster: a tie is left to the plain way,
# which is what transformers computes.
_MARGIN = 0.9
# Enough weights per timed pass to stream from memory rather than a cache (a big model is
# measured on its first layers only, so that measuring stays a few seconds).
_PASS_BYTES = 512 * 2**20
_ROUNDS = 2
# Another process measuring the same machine is waited for, then its choice is taken.
_LOCK_WAIT_S = 120.0


class FewRowsLinear(nn.Linear):
    """An ``nn.Linear`` that computes its product as ``(W @ x.T).T`` for the chosen row counts.

    :func:`install` turns a model's ``nn.Linear`` modules into this class in place, so their
    weights, names and ties are untouched; any other row count is computed as ``nn.Linear``
    does.

    Attributes:
        transposed_rows: The row counts computed the transposed way.
    """

    transposed_rows: frozenset[int] = frozenset()

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """The product, the transposed way when ``input`` has one of the chosen row counts."""
        if input.numel() // self.in_features in self.transposed_rows:
            return transposed_product(input, self.weight, self.bias)
        return functional.linear(input, self.weight, self.bias)


def transposed_product(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``functional.linear(x, weight, bias)`` computed as ``(weight @ x.T).T`` (one row as two)."""
    flat = x.reshape(-1, x.shape[-1])
    rows = flat.shape[0]
    if rows == 1:
        flat = torch.cat((flat, flat))
    if bias is None:
        out = torch.mm(weight, flat.t())
    else:
        # The bias added inside the product, as functional.linear does: rounded once in bf16.
        out = torch.addmm(bias.unsqueeze(1), weight, flat.t())
    return out.t()[:rows].contiguous().reshape(*x.shape[:-1], weight.shape[0])


def choose(plain: Mapping[int, float], transposed: Mapping[int, float]) -> frozenset[int]:
    """The row counts whose transposed time is at most 90% of their plain time."""
    return frozenset(n for n, t in transposed.items() if n in plain and t <= _MARGIN * plain[n])


def measure(
    weights: Sequence[torch.Tensor], rows: Iterable[int] = CANDIDATE_ROWS
) -> tuple[dict[int, float], dict[int, float]]:
    """Seconds for one pass over ``weights``, by row count: the plain way, the transposed way.

    Each is the best of two rounds, the two ways alternated within each round.
    """
    plain: dict[int, float] = {}
    transposed: dict[int, float] = {}
    inputs = {w.shape[1] for w in weights}
    # Its own generator: measuring leaves the process's random state as it was.
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for n in rows:
            xs = {k: torch.randn(n, k, generator=generator).to(weights[0].dtype) for k in inputs}
            for _ in range(_ROUNDS):
                for way, best in ((functional.linear, plain), (transposed_product, transposed)):
                    start = time.perf_counter()
                    for w in weights:
                        way(xs[w.shape[1]], w)
                    seconds = time.perf_counter() - start
                    best[n] = min(best.get(n, seconds), seconds)
    return plain, transposed


def _linears(model: nn.Module) -> list[nn.Linear]:
    # Exactly nn.Linear: a subclass (a quantized layer) computes its product its own way.
    return [m for m in model.modules() if type(m) is nn.Linear or type(m) is FewRowsLinear]


def _measured_weights(linears: Sequence[nn.Linear]) -> list[torch.Tensor]:
    chosen: list[torch.Tensor] = []
    total = 0
    for m in linears:
        chosen.append(m.weight.detach())
        total += m.weight.numel() * m.weight.element_size()
        if total >= _PASS_BYTES:
            break
    return chosen


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _key(linears: Sequence[nn.Linear]) -> str:
    shapes = ",".join(f"{m.out_features}x{m.in_features}" for m in linears)
    digest = hashlib.sha256(shapes.encode()).hexdigest()[:16]
    dtype = str(linears[0].weight.dtype).removeprefix("torch.")
    threads = torch.get_num_threads()
    return f"{_cpu_name()} | torch {torch.__version__} | {threads} threads | {dtype} | {digest}"


def _read(file: Path) -> dict[str, Any]:
    try:
        found = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s is unreadable (%s); measuring again", file, type(exc).__name__)
        return {}
    return found if isinstance(found, dict) else {}


def few_rows(model: nn.Module, cache_root: Path) -> frozenset[int]:
    """The row counts a CPU model's products are faster computed transposed (see the module).

    Read from the record of earlier measurements in ``cache_root``
    (``llama/few-row-products.json``), or measured now (a few seconds) and added to it. An
    unwritable cache directory only means measuring again next time.
    """
    linears = _linears(model)
    if not linears:
        return frozenset()
    key = _key(linears)
    file = cache_root / "llama" / _FILE
    saved = _saved(file, key)
    if saved is not None:
        return saved
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        # One process at a time measures: processes starting together on a new machine (Ray
        # workers, xdist) then all take the first one's choice, and compute alike.
        with exclusive(file.with_suffix(".lock"), _LOCK_WAIT_S) as held:
            if not held:
                log.warning(
                    "%s: another process held the lock for %.0f s; measuring anyway",
                    file,
                    _LOCK_WAIT_S,
                )
            saved = _saved(file, key)
            return saved if saved is not None else _measure_and_save(linears, file, key)
    except OSError as exc:
        log.warning("could not lock %s (%s); measuring unlocked", file, exc)
        return _measure_and_save(linears, file, key)


def _saved(file: Path, key: str) -> frozenset[int] | None:
    saved = _read(file).get(key)
    if isinstance(saved, list) and all(isinstance(n, int) for n in saved):
        return frozenset(saved)
    return None


def _measure_and_save(linears: Sequence[nn.Linear], file: Path, key: str) -> frozenset[int]:
    start = time.perf_counter()
    plain, transposed = measure(_measured_weights(linears))
    rows = choose(plain, transposed)
    log.info(
        "few-row products measured in %.1f s: transposed for %s rows",
        time.perf_counter() - start,
        sorted(rows) or "no",
    )
    try:
        record = _read(file)
        record[key] = sorted(rows)
        write_whole(file, json.dumps(record, indent=1, sort_keys=True).encode())
    except OSError as exc:
        log.warning("could not save the few-row measurement to %s (%s)", file, exc)
    return rows


def install(model: nn.Module, rows: frozenset[int]) -> int:
    """Make ``model``'s ``nn.Linear`` modules compute ``rows`` rows transposed; how many."""
    linears = _linears(model)
    for m in linears:
        m.__class__ = FewRowsLinear
        cast(FewRowsLinear, m).transposed_rows = rows
    return len(linears)
