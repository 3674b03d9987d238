"""Batch generation: many prompts, concurrency, retries, a rate limit, costs, and resuming.

Runs as is, on the fake backend (no network, no key): a model that fails 20% of its calls with a
transient error stands in for a busy API.

Run: python examples/batch_generate.py
"""

import asyncio
import random
import tempfile
from pathlib import Path

from llmcompare import BackendError, Request
from llmcompare.backends.fake import FunctionModel
from llmcompare.batch import generate_many, read_results
from llmcompare.cost import CostTracker
from llmcompare.retry import RetryPolicy

rng = random.Random(0)
calls = 0


async def busy_api(request: Request) -> str:
    """Answers like an API under load: a little latency, and one call in five fails."""
    global calls
    calls += 1
    await asyncio.sleep(0.002)
    if rng.random() < 0.2:
        raise BackendError("503 overloaded", model_id="fake:gpt-4o-mini", retryable=True)
    return f"answer to {request.messages[-1].content}"


# Named like an OpenAI model so the built-in price table prices it.
model = FunctionModel(busy_api, name="gpt-4o-mini")
prompts = [f"question {i}" for i in range(200)]

# 1. Without retries: every prompt gets a result, failures included, in order.
results = generate_many(model, prompts, concurrency=16, max_tokens=32)
failed = [r for r in results if not r.ok]
print(f"without retry: {len(results)} results, {len(failed)} failed (kept, not lost)")
print(f"  first failure: index {failed[0].index}: {failed[0].error}")

# 2. With retries (short waits for the demo), a rate limit, and a cost tracker.
policy = RetryPolicy(attempts=8, initial_wait_s=0.005, max_wait_s=0.05)
tracker = CostTracker()
results = generate_many(
    model,
    prompts,
    concurrency=16,
    retry=policy,
    rpm=120_000,
    tracker=tracker,
    max_tokens=32,
)
retried = sum(r.unwrap().attempts > 1 for r in results)
print(f"with retry: {sum(r.ok for r in results)}/{len(results)} succeeded, {retried} after retries")
print(f"  results[7]: {results[7].unwrap().text!r}")
total = tracker.total
print(f"  cost: ${total.cost.usd} ({total.cost.status}) for {total.usage.total_tokens} tokens")

# 3. A results file makes the run resumable: finished requests are skipped on the next run.
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "results.jsonl"
    generate_many(model, prompts[:50], retry=policy, results_file=path)
    before = calls
    again = generate_many(model, prompts[:50], retry=policy, results_file=path)
    print(f"resumed run: {len(again)} results, {calls - before} requests sent again")
    print(f"  results file: {len(read_results(path))} lines")
