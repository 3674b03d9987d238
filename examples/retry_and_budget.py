"""Retries with server-given waits, and a budget that refuses requests before they are sent.

Runs as is, on the fake backend (no network, no key).

Run: python examples/retry_and_budget.py
"""

import logging
from decimal import Decimal

from llmcompare import BudgetExceeded, Completion, RateLimitError, Usage
from llmcompare.backends.fake import ScriptedModel
from llmcompare.cost import Budget, CostTracker, LocalHardware, cost_of
from llmcompare.retry import RetryPolicy, with_retry
from llmcompare.testing import no_wait

# Each retry is logged on "llmcompare.retry" (INFO): model, attempt, wait and cause.
logging.basicConfig(level=logging.INFO, format="  log: %(message)s")


def rate_limited(seconds: float) -> RateLimitError:
    """What the ChatGPT backend raises for a 429 with a Retry-After header."""
    return RateLimitError(
        "Rate limit reached", model_id="fake:gpt-4o-mini", status=429, retry_after=seconds
    )


# 1. Retry: two 429s, then an answer. The waits are the server's Retry-After values.
flaky = ScriptedModel(
    [rate_limited(0.2), rate_limited(0.1), "Paris is the capital of France."], name="gpt-4o-mini"
)
model = with_retry(flaky, RetryPolicy(attempts=4, deadline_s=30))
completion = model.generate("What is the capital of France?", max_tokens=20)
print(f"retry: {completion.text!r} after {completion.attempts} attempts")
print(f"  waited {completion.retry_wait_s:.1f}s in total")

# In tests, switch the waits off and assert the waits that were asked for.
with no_wait() as waits:
    flaky.add(rate_limited(3.0), "again")
    model.generate("hi")
print(f"no_wait: asked to wait {waits.waits} (slept 0s)")

# 2. A budget, enforced before each request is sent.
budget = Budget(max_usd=Decimal("0.0002"))
with CostTracker(budget) as tracker:
    tracked = tracker.wrap(ScriptedModel(default="a short answer of six words", name="gpt-4o-mini"))
    sent = refused = 0
    for i in range(100):
        try:
            tracked.generate(f"question {i}", max_tokens=200)
            sent += 1
        except BudgetExceeded as exc:
            refused += 1
            last_refusal = str(exc)
print(f"budget: {sent} sent, {refused} refused before sending (worst case did not fit)")
print(f"  spent ${tracker.spent_usd} of ${budget.max_usd}")
print(f"  refusal: {last_refusal[:70]}...")

# 3. A local model's cost: compute time on the hardware, plus energy and CO2.
local = Completion(
    text="...",
    finish_reason="stop",
    model="llama:smollm2-135m-instruct",
    usage=Usage(input_tokens=40, output_tokens=60),
    compute_s=4.0,
)
for hardware in (
    None,
    LocalHardware(name="my laptop", usd_per_hour=0, watts=30, usd_per_kwh="0.30"),
):
    cost = cost_of(local, hardware=hardware)
    print(f"local ({cost.status}): ${cost.usd}, {cost.kwh} kWh, {cost.g_co2} gCO2")
