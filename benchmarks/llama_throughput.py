"""Throughput of the llama backend against transformers called by hand, on the embedded model.

Run: python benchmarks/llama_throughput.py [--max-tokens 64] [--repeat 3] [--strict]

Every contender runs in its own subprocess, so each peak RSS is its own:

- ``sequential``: llmcompare ``generate``, one prompt at a time;
- ``generate_batch``: llmcompare ``generate_batch`` over all prompts (batch size 16);
- ``raw generate``: hand-written transformers at the same batch size: the same converted
  weights, the chat template with left padding, one ``model.generate`` call, greedy;
- ``first load`` (the GGUF converted into an empty cache) and ``cached load`` (a new process
  reading that cache).

Every contender uses the same torch thread count (llmcompare's default for this machine unless
``--threads`` is given). Batch timings are the best of ``--repeat`` runs after a warm-up, because
other processes on a shared machine only ever slow a run down. Greedy texts are compared across
contenders. Targets: generate_batch >= 1.0x raw generate and >= 3x sequential, cached load <= 1/5
of the first load, generate_batch peak RSS <= raw generate's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

PROMPTS = [
    "What is the capital of France?",
    "Name three primary colors.",
    "Write a haiku about the sea.",
    "Explain in one sentence what photosynthesis is.",
    "What is 12 times 7?",
    "Give me a short tip for learning to code in Python as a complete beginner who has never "
    "programmed before.",
    "Translate 'good morning' into Spanish.",
    "List two benefits of regular exercise for people who work at a desk all day and rarely "
    "move around.",
    "Who wrote Romeo and Juliet?",
    "Describe the color blue to someone who cannot see.",
    "What is the boiling point of water in Celsius?",
    "Summarise the plot of Cinderella in two sentences, mentioning the glass slipper, the prince "
    "and the stepmother.",
    "Why is the sky blue?",
    "Suggest a name for a pet goldfish.",
    "What does CPU stand for?",
    "Tell me a fun fact about octopuses and explain why scientists find their intelligence so "
    "surprising.",
]

TARGET_VS_RAW = 1.0
TARGET_VS_SEQUENTIAL = 3.0
TARGET_CACHED_LOAD = 1 / 5


def _peak_rss_mb() -> float:
    import resource

    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


# -- contenders (each runs in a subprocess) ----------------------------------------------------


def contender_load(args: argparse.Namespace) -> dict[str, Any]:
    start = time.perf_counter()
    import llmcompare
    from llmcompare.backends.llama import LlamaModel

    model = llmcompare.get_model("llama", cache_dir=args.cache_dir)
    assert isinstance(model, LlamaModel)
    model.warm_up()
    import torch

    return {
        "total_s": time.perf_counter() - start,
        "load_s": model.load_seconds,
        "converted": model.converted,
        "folder": model.weights_folder,
        "threads": torch.get_num_threads(),
    }


def contender_sequential(args: argparse.Namespace) -> dict[str, Any]:
    import llmcompare

    model = llmcompare.get_model("llama", cache_dir=args.cache_dir)
    model.generate(PROMPTS[0], max_tokens=4)  # warm-up
    start = time.perf_counter()
    completions = [model.generate(p, max_tokens=args.max_tokens) for p in PROMPTS]
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "tokens": sum(c.usage.output_tokens for c in completions),
        "texts": [c.text for c in completions],
    }


def contender_batch(args: argparse.Namespace) -> dict[str, Any]:
    import llmcompare

    model = llmcompare.get_model("llama", cache_dir=args.cache_dir, max_batch_size=len(PROMPTS))
    model.generate_batch(PROMPTS[:2], max_tokens=4)  # warm-up
    best = float("inf")
    results: list[Any] = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        results = model.generate_batch(PROMPTS, max_tokens=args.max_tokens)
        best = min(best, time.perf_counter() - start)
    completions = [r.unwrap() for r in results]
    return {
        "seconds": best,
        "tokens": sum(c.usage.output_tokens for c in completions),
        "texts": [c.text for c in completions],
    }


def contender_raw(args: argparse.Namespace) -> dict[str, Any]:
    # What a user calling transformers by hand would write for a batch.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.folder)
    tokenizer.padding_side = "left"
    model: Any = AutoModelForCausalLM.from_pretrained(args.folder, dtype=torch.float32)
    model.eval()
    conversations = [[{"role": "user", "content": p}] for p in PROMPTS]

    def run(convs: list[list[dict[str, str]]], max_new: int) -> tuple[Any, int]:
        enc: Any = tokenizer.apply_chat_template(
            convs,
            add_generation_prompt=True,
            tokenize=True,
            padding=True,
            return_tensors="pt",
            return_dict=True,
        )
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new, do_sample=False)
        return out, enc["input_ids"].shape[1]

    run(conversations[:2], 4)  # warm-up
    best = float("inf")
    out: Any = None
    width = 0
    for _ in range(args.repeat):
        start = time.perf_counter()
        out, width = run(conversations, args.max_tokens)
        best = min(best, time.perf_counter() - start)
    eos = tokenizer.eos_token_id
    tokens = 0
    texts = []
    for row in out[:, width:].tolist():
        # Tokens up to and including the first EOS; the rest is padding.
        n = row.index(eos) + 1 if eos in row else len(row)
        tokens += n
        texts.append(tokenizer.decode(row[:n], skip_special_tokens=True))
    return {"seconds": best, "tokens": tokens, "texts": texts}


CONTENDERS = {
    "load": contender_load,
    "sequential": contender_sequential,
    "batch": contender_batch,
    "raw": contender_raw,
}


def run_contender(name: str, args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--contender",
        name,
        "--max-tokens",
        str(args.max_tokens),
        "--repeat",
        str(args.repeat),
        "--threads",
        str(args.threads),
    ]
    for key, value in extra.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "LLMCOMPARE_LOAD_PLUGINS": ""}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        sys.exit(f"contender {name!r} failed:\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def default_threads() -> int:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    # The llama backend's default: 1 thread on machines with two usable cores or fewer.
    return 1 if usable <= 2 else usable


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each batch contender")
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--contender", choices=sorted(CONTENDERS), help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.contender:
        result = CONTENDERS[args.contender](args)
        result["peak_rss_mb"] = _peak_rss_mb()
        print(json.dumps(result))
        return

    print(
        f"llama throughput: {len(PROMPTS)} chat prompts, max {args.max_tokens} new tokens, "
        f"greedy, fp32, {args.threads} torch thread(s), best of {args.repeat} batch runs"
    )
    with tempfile.TemporaryDirectory(prefix="llmcompare-bench-") as cache:
        first = run_contender("load", args, cache_dir=cache)
        cached = run_contender("load", args, cache_dir=cache)
        seq = run_contender("sequential", args, cache_dir=cache)
        batch = run_contender("batch", args, cache_dir=cache)
        raw = run_contender("raw", args, folder=first["folder"])

    rate = {
        name: r["tokens"] / r["seconds"]
        for name, r in (("seq", seq), ("batch", batch), ("raw", raw))
    }
    print()
    print(f"{'contender':<34}{'tokens':>8}{'seconds':>10}{'tokens/s':>10}{'peak RSS MB':>13}")
    for label, r, key in (
        ("llmcompare sequential generate", seq, "seq"),
        ("llmcompare generate_batch", batch, "batch"),
        (f"raw transformers generate (bs {len(PROMPTS)})", raw, "raw"),
    ):
        print(
            f"{label:<34}{r['tokens']:>8}{r['seconds']:>10.2f}{rate[key]:>10.1f}"
            f"{r['peak_rss_mb']:>13.0f}"
        )
    print()
    print(
        f"first load (GGUF converted): {first['load_s']:.2f} s "
        f"({first['total_s']:.2f} s with torch/transformers imports), "
        f"peak RSS {first['peak_rss_mb']:.0f} MB"
    )
    print(
        f"cached load:                 {cached['load_s']:.2f} s "
        f"({cached['total_s']:.2f} s with torch/transformers imports), "
        f"peak RSS {cached['peak_rss_mb']:.0f} MB"
    )
    same_seq = sum(a == b for a, b in zip(batch["texts"], seq["texts"], strict=True))
    same_raw = sum(a == b for a, b in zip(batch["texts"], raw["texts"], strict=True))
    print(
        f"greedy texts: batch == sequential {same_seq}/{len(PROMPTS)}, "
        f"batch == raw generate {same_raw}/{len(PROMPTS)}"
    )

    vs_raw = rate["batch"] / rate["raw"]
    vs_seq = rate["batch"] / rate["seq"]
    load_ratio = cached["load_s"] / first["load_s"]
    rss_ratio = batch["peak_rss_mb"] / raw["peak_rss_mb"]
    checks = [
        (
            f"generate_batch / raw generate   {vs_raw:5.2f}x  (target >= {TARGET_VS_RAW:.1f}x)",
            vs_raw >= TARGET_VS_RAW,
        ),
        (
            f"generate_batch / sequential     {vs_seq:5.2f}x  "
            f"(target >= {TARGET_VS_SEQUENTIAL:.1f}x)",
            vs_seq >= TARGET_VS_SEQUENTIAL,
        ),
        (
            f"cached load / first load        {load_ratio:5.2f}   "
            f"(target <= {TARGET_CACHED_LOAD:.2f})",
            load_ratio <= TARGET_CACHED_LOAD,
        ),
        (
            f"peak RSS generate_batch / raw   {rss_ratio:5.2f}   (target <= 1.00)",
            rss_ratio <= 1.0,
        ),
        (f"greedy batch == sequential      {same_seq}/{len(PROMPTS)}", same_seq == len(PROMPTS)),
    ]
    print()
    for text, ok in checks:
        print(f"{verdict(ok)}  {text}")
    if args.strict and not all(ok for _, ok in checks):
        sys.exit(1)


if __name__ == "__main__":
    main()
