"""What structured output costs on the llama backend: constrained vs unconstrained tokens/s.

Run: python benchmarks/structured.py [--quick] [--max-tokens 64] [--repeat 3] [--threads N]
[--no-fail]

One process, one model object, the same 16 extraction requests at batch 16 (one tensor batch),
greedy, on the CPU in float32 with a pinned thread count. The two contenders differ only in
``response_format``: ``constrained`` asks for a JSON schema (nested object, array, enum,
integers), so every step masks each row's logits with its llguidance grammar; ``unconstrained``
asks for nothing. They take turns, round by round (constrained, unconstrained, constrained,
...), so drift of a shared machine hits both alike; each one's figure is its best round, as
other processes only ever slow a run down. Throughput is output tokens per second of the whole
batch, counted from the completions' usage.

Target: constrained >= 0.8x the tokens/s of unconstrained, and every constrained answer that
was not cut off by ``max_tokens`` validates against the schema.

Exit status: 1 when a target is missed (0 with ``--no-fail``, which only reports).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from enum import Enum
from typing import Annotated, Any

TARGET = 0.8
FULL = (64, 3)  # (max new tokens, rounds)
QUICK = (48, 2)

ITEMS = [
    ("Rex", "dog", 4, "Ann", 30, "a ball"),
    ("Tweety", "bird", 2, "Bob", 41, "a bell"),
    ("Tom", "cat", 4, "Jerry", 12, "yarn"),
    ("Tripod", "dog", 3, "Sam", 25, "a stick"),
    ("Polly", "bird", 2, "Greta", 50, "a mirror"),
    ("Whiskers", "cat", 4, "Mia", 8, "a mouse"),
    ("Buddy", "dog", 4, "Carl", 44, "a rope"),
    ("Kiwi", "bird", 2, "Lee", 19, "a swing"),
    ("Luna", "cat", 4, "Ivan", 67, "a laser"),
    ("Max", "dog", 4, "Olga", 33, "a frisbee"),
    ("Sunny", "bird", 2, "Paul", 71, "seeds"),
    ("Shadow", "cat", 4, "Rita", 27, "a box"),
    ("Rocky", "dog", 4, "Tina", 15, "a bone"),
    ("Pip", "bird", 2, "Uma", 38, "a ladder"),
    ("Misty", "cat", 4, "Vic", 52, "a feather"),
    ("Bolt", "dog", 4, "Wes", 9, "a tire"),
]
PROMPTS = [
    f"Reply with JSON describing the pet. {name} is a {kind} with {legs} legs, owned by "
    f"{owner} ({age}), and plays with {toy}."
    for name, kind, legs, owner, age, toy in ITEMS
]


def _schema() -> type[Any]:
    import pydantic

    class Kind(str, Enum):
        cat = "cat"
        dog = "dog"
        bird = "bird"

    word = Annotated[str, pydantic.Field(pattern=r"^[A-Za-z][A-Za-z ]{0,19}$")]

    class Owner(pydantic.BaseModel):
        name: word  # type: ignore[valid-type]
        age: int

    class Pet(pydantic.BaseModel):
        name: word  # type: ignore[valid-type]
        kind: Kind
        legs: int
        owner: Owner
        toys: list[word] = pydantic.Field(max_length=3)  # type: ignore[valid-type]

    return Pet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tokens and rounds")
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None, help="rounds per contender")
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--no-fail", action="store_true", help="report only, exit 0")
    args, _ = parser.parse_known_args()  # the bench session passes other scripts' flags too
    max_tokens, rounds = QUICK if args.quick else FULL
    max_tokens = args.max_tokens or max_tokens
    rounds = args.repeat or rounds
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["CUDA_VISIBLE_DEVICES"] = ""

    import torch

    import llmcompare

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    pet = _schema()
    model = llmcompare.get_model(
        "llama", device="cpu", dtype="float32", num_threads=args.threads, max_batch_size=16
    )
    # Warm-up: weights, and the grammar compiled once (as any first constrained call does).
    model.generate_batch(PROMPTS[:2], max_tokens=4)
    model.generate_batch(PROMPTS[:2], max_tokens=4, response_format=pet)

    best: dict[str, float] = {}
    invalid = 0
    for _ in range(rounds):
        for name, fmt in (("constrained", pet), ("unconstrained", None)):
            start = time.perf_counter()
            results = model.generate_batch(PROMPTS, max_tokens=max_tokens, response_format=fmt)
            seconds = time.perf_counter() - start
            done = [r.unwrap() for r in results]
            tokens = sum(c.usage.output_tokens for c in done)
            best[name] = max(best.get(name, 0.0), tokens / seconds)
            if fmt is not None:
                # An answer cut by max_tokens is "length" with a parse error; any other must be
                # a valid object.
                invalid += sum(
                    1 for c in done if c.finish_reason != "length" and not isinstance(c.parsed, pet)
                )
            rate = tokens / seconds
            print(f"  {name:13s} {tokens:5d} tokens in {seconds:6.2f} s = {rate:7.1f}/s")
    model.close()

    ratio = best["constrained"] / best["unconstrained"]
    ok_speed = ratio >= TARGET
    ok_valid = invalid == 0
    print(
        f"{'PASS' if ok_speed else 'FAIL'} constrained vs unconstrained at batch 16: {ratio:.2f}x "
        f"tokens/s ({best['constrained']:.1f} vs {best['unconstrained']:.1f}; target >= {TARGET}x)"
    )
    print(
        f"{'PASS' if ok_valid else 'FAIL'} constrained answers that validate or end by length: "
        f"{rounds * len(PROMPTS) - invalid}/{rounds * len(PROMPTS)}"
    )
    if args.no_fail:
        return 0
    return 0 if ok_speed and ok_valid else 1


if __name__ == "__main__":
    sys.exit(main())
