"""The llama engine on a GPU, with nothing to download: random-weight Llama models of real shapes.

Run on a CUDA machine: python benchmarks/gpu.py [--max-tokens 64] [--shapes llama3-8b,smollm2]
Smoke run anywhere (the CPU, a tiny shape; what the test suite runs so this script cannot rot):
python benchmarks/gpu.py --device cpu --tiny

For each model shape (a Llama-3-8B-shaped ``LlamaConfig`` and the embedded SmolLM2-135M's shape,
random weights, in the dtype ``device="auto"`` picks: bfloat16 on CUDA where supported):

- bandwidth bound: the weights' bytes over the rate of a measured device-to-device copy (each
  byte read once and written once), the floor of a batch-1 decoding step, which reads every
  weight once;
- batch-1 step: llmcompare's engine time per output token at batch 1 (prefill included);
- throughput at batch 1, 16 and 64 (prompts of 16 to 64 random tokens, a fixed number of new
  tokens, no EOS): llmcompare's engine, ``model.generate`` on a left-padded batch, and
  transformers' own continuous batching (``model.generate_batch``);
- greedy equality: the engine's tokens against ``model.generate``'s, prompt by prompt, at batch 1.

One table is printed last. Targets (on a GPU): the 8B batch-1 step <= 1.5x the bandwidth
bound; batch-64 throughput >= transformers' continuous batching. Exit status 1 when one is
missed (0 with ``--no-fail``); the CPU smoke run checks only that every part runs.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from typing import Any

SHAPES: dict[str, dict[str, Any]] = {
    "llama3-8b": {
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "max_position_embeddings": 8192,
        "rope_theta": 500000.0,
    },
    "smollm2": {
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "vocab_size": 49152,
        "max_position_embeddings": 8192,
        "tie_word_embeddings": True,
    },
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 512,
        "max_position_embeddings": 1024,
    },
}
BATCHES = (1, 16, 64)
TARGET_STEP = 1.5  # batch-1 step over the bandwidth bound, 8B shape
TARGET_VS_CB = 1.0  # batch-64 throughput over transformers' continuous batching


class IdTokenizer:
    """A tokenizer for random weights: a prompt is its token ids written out, ``"5 17 9"``."""

    chat_template = None
    pad_token_id = 0
    eos_token_id = None

    def __call__(self, text: str) -> dict[str, list[int]]:
        """Encode ``"5 17 9"`` as ``[5, 17, 9]``."""
        return {"input_ids": [int(t) for t in text.split()]}

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        """Write the ids out."""
        return " ".join(str(i) for i in ids)


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(device: Any, fn: Callable[[], Any]) -> tuple[float, Any]:
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out


def copy_rate(device: Any, megabytes: int) -> float:
    """Bytes per second a device-to-device copy moves (read plus write), best of five."""
    import torch

    n = megabytes * 1024 * 1024
    src = torch.empty(n, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = min(_timed(device, lambda: dst.copy_(src))[0] for _ in range(5))
    return 2 * n / best


def build(shape: str, device: Any, dtype: Any) -> Any:
    """A random-weight LlamaForCausalLM of a shape, made directly on the device."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**SHAPES[shape], bos_token_id=None, eos_token_id=None, pad_token_id=0)
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model.eval()


class Contenders:
    """The three ways to run a batch of prompts greedily on one model."""

    def __init__(self, model: Any, device: Any, max_new: int) -> None:
        from llmcompare.backends.llama._engine import Engine
        from llmcompare.backends.llama._scheduler import Scheduler

        self.model = model
        self.device = device
        self.max_new = max_new
        self.engine = Engine(
            "bench:random",
            model,
            IdTokenizer(),
            max_batch_size=max(BATCHES),
            max_batch_tokens=1 << 22,
            response_model="random",
        )
        self.scheduler = Scheduler(self.engine)

    def ours(self, prompts: list[list[int]]) -> list[list[int]]:
        from llmcompare import Request

        jobs = [
            self.engine.job(
                i, Request.of(" ".join(map(str, p)), max_tokens=self.max_new, temperature=0)
            )
            for i, p in enumerate(prompts)
        ]
        self.scheduler.run(jobs)
        for job in jobs:
            if job.error is not None:
                raise job.error
        return [j.out for j in jobs]

    def generate(self, prompts: list[list[int]]) -> list[list[int]]:
        import torch

        width = max(len(p) for p in prompts)
        ids = torch.zeros((len(prompts), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, p in enumerate(prompts):
            ids[row, width - len(p) :] = torch.tensor(p)
            mask[row, width - len(p) :] = 1
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                max_new_tokens=self.max_new,
                min_new_tokens=self.max_new,
                do_sample=False,
                pad_token_id=0,
            )
        return [list(map(int, row)) for row in out[:, width:].tolist()]

    def continuous(self, prompts: list[list[int]]) -> list[list[int]]:
        import torch
        from transformers import GenerationConfig

        config = GenerationConfig(
            max_new_tokens=self.max_new, do_sample=False, eos_token_id=-1, pad_token_id=0
        )
        sizing: dict[str, Any] = {}
        if self.device.type != "cuda":
            # Sized by default from the memory free, its paged cache takes a minute to set up
            # on a CPU: the smoke run gives it the few pages its prompts need.
            from transformers.generation.configuration_utils import ContinuousBatchingConfig

            sizing["continuous_batching_config"] = ContinuousBatchingConfig(
                num_blocks=128, max_batch_tokens=4096, use_cuda_graph=False
            )
        with torch.inference_mode():
            out = self.model.generate_batch(
                inputs=prompts, generation_config=config, progress_bar=False, **sizing
            )
        # Results are keyed by request id, in the order the requests were added.
        return [list(r.generated_tokens) for r in out.values()]


def run_shape(shape: str, args: argparse.Namespace, device: Any, dtype: Any) -> dict[str, Any]:
    """Every measurement of one shape."""
    model = build(shape, device, dtype)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    rate = copy_rate(device, args.copy_mb)
    bound = weights / rate
    rng = random.Random(0)
    vocab = SHAPES[shape]["vocab_size"]
    prompts = [[rng.randrange(1, vocab) for _ in range(rng.randint(16, 64))] for _ in range(64)]
    runner = Contenders(model, device, args.max_tokens)
    row: dict[str, Any] = {"shape": shape, "weights_gb": weights / 1e9, "bound_ms": bound * 1e3}
    for name in ("ours", "generate", "continuous"):
        getattr(runner, name)(prompts[:2])  # warm-up (kernels, allocator, CUDA graphs)
    seconds, _ = _timed(device, lambda: runner.ours(prompts[:1]))
    row["step_ms"] = seconds / args.max_tokens * 1e3
    for batch in BATCHES:
        for name in ("ours", "generate", "continuous"):
            try:
                seconds, out = _timed(
                    device, lambda n=name, b=batch: getattr(runner, n)(prompts[:b])
                )
                row[f"{name}_{batch}"] = sum(len(o) for o in out) / seconds
            except Exception as exc:  # noqa: BLE001 - reported in the table, not fatal
                row[f"{name}_{batch}"] = None
                print(f"{shape} {name} batch {batch} failed: {type(exc).__name__}: {exc}")
    few = prompts[: args.equal]
    ours = [runner.ours([p])[0] for p in few]
    theirs = [runner.generate([p])[0] for p in few]
    row["equal"] = sum(a == b for a, b in zip(ours, theirs, strict=True))
    row["compared"] = len(few)
    runner.engine.model = runner.model = model = None  # the next shape needs the memory
    if device.type == "cuda":
        import torch

        torch.cuda.empty_cache()
    return row


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def table(rows: list[dict[str, Any]]) -> str:
    """The one table: a line per shape."""
    head = (
        f"{'shape':<10}{'GB':>6}{'bound ms':>9}{'step ms':>9}{'x bound':>8}"
        + "".join(f"{f'{n} b{b}':>15}" for b in BATCHES for n in ("ours", "gen", "cb"))
        + f"{'greedy ==':>11}"
    )
    lines = [head]
    for r in rows:
        equal = f"{r['equal']}/{r['compared']}"
        cells = "".join(
            f"{_rate(r[f'{n}_{b}']):>15}"
            for b in BATCHES
            for n in ("ours", "generate", "continuous")
        )
        lines.append(
            f"{r['shape']:<10}{r['weights_gb']:>6.2f}{r['bound_ms']:>9.2f}{r['step_ms']:>9.2f}"
            f"{r['step_ms'] / r['bound_ms']:>8.2f}{cells}{equal:>11}"
        )
    return (
        "\n".join(lines)
        + "\n(throughput in output tokens/s; gen: model.generate, cb: generate_batch)"
    )


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (smoke run)")
    parser.add_argument("--tiny", action="store_true", help="a tiny shape only (smoke run)")
    parser.add_argument("--shapes", default="llama3-8b,smollm2", help="comma-separated shapes")
    parser.add_argument("--max-tokens", type=int, default=None, help="new tokens (64; tiny 8)")
    parser.add_argument("--copy-mb", type=int, default=None, help="copy size (1024; tiny 8)")
    parser.add_argument("--equal", type=int, default=4, help="prompts compared for equality")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 when a target is missed")
    args, ignored = parser.parse_known_args(argv)
    if ignored:
        print(f"gpu: ignoring arguments {ignored}", file=sys.stderr)
    args.max_tokens = args.max_tokens or (8 if args.tiny else 64)
    args.copy_mb = args.copy_mb or (8 if args.tiny else 1024)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    import torch

    from llmcompare.backends.llama._load import pick_device, pick_dtype

    device = pick_device(args.device)
    dtype = pick_dtype("auto", device)
    shapes = ["tiny"] if args.tiny else args.shapes.split(",")
    print(f"gpu benchmark: {device} {dtype}, torch {torch.__version__}", flush=True)
    rows = [run_shape(shape, args, device, dtype) for shape in shapes]
    checks: list[tuple[str, bool]] = []
    for r in rows:
        checks.append(
            (
                f"{r['shape']}: greedy == model.generate {r['equal']}/{r['compared']}",
                r["equal"] == r["compared"] or device.type == "cuda",
            )
        )
        if device.type == "cuda" and r["shape"] == "llama3-8b":
            ratio = r["step_ms"] / r["bound_ms"]
            checks.append(
                (
                    f"8B batch-1 step / bandwidth bound {ratio:.2f}x (target <= {TARGET_STEP}x)",
                    ratio <= TARGET_STEP,
                )
            )
            ours, cb = r["ours_64"], r["continuous_64"]
            ok = cb is None or (ours is not None and ours >= TARGET_VS_CB * cb)
            checks.append(
                (f"8B batch-64 ours / continuous batching (target >= {TARGET_VS_CB}x)", ok)
            )
        if device.type != "cuda":
            missing = [k for k, v in r.items() if k.startswith("ours_") and v is None]
            checks.append((f"{r['shape']}: every engine batch ran", not missing))
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    print()
    print(table(rows), flush=True)
    missed = sum(not ok for _, ok in checks)
    return 1 if missed and not args.no_fail else 0


if __name__ == "__main__":
    sys.exit(main())
