"""The llama backend's continuous batching, on the real embedded model (one shared load).

The scheduler's public counters (``LlamaModel.stats``) are shared by every test of the session,
so each test looks at what changed during it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from llmcompare import BackendError, Request
from llmcompare.comparison import compare

if TYPE_CHECKING:
    from llmcompare.backends.llama import LlamaModel
    from llmcompare.backends.llama._scheduler import SchedulerStats

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("llama_backend")]

FRANCE = "What is the capital of France?"
STORY = "Write a long story about a dragon who loves books."

# 16 different questions, of different lengths.
QUESTIONS = [
    FRANCE,
    "Name three primary colors.",
    "What is 12 times 7?",
    "Why is the sky blue?",
    "Tell me a fun fact about octopuses.",
    "Who wrote Romeo and Juliet?",
    "What does CPU stand for?",
    "Translate 'good morning' into Spanish.",
    "Suggest a name for a pet goldfish.",
    "What is the boiling point of water in Celsius?",
    "Give me a short tip for learning to code in Python as a complete beginner.",
    "Describe the color blue to someone who cannot see.",
    "List two benefits of regular exercise.",
    "Write a haiku about the sea.",
    "Hi",
    "Explain in one sentence what photosynthesis is.",
]


def _stats(llama: LlamaModel) -> SchedulerStats:
    stats = llama.stats
    assert stats is not None
    return stats


def _wait_for(condition: object, what: str) -> None:
    # Waiting for an event the worker reports, not timing it: the deadline only ends a hang.
    deadline = time.monotonic() + 120
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.005)


def test_16_threads_at_once_get_the_sequential_greedy_answers(llama: LlamaModel) -> None:
    expected = [llama.generate(q, max_tokens=10, temperature=0).text for q in QUESTIONS]
    before = _stats(llama)
    got: list[str | None] = [None] * len(QUESTIONS)
    start = threading.Barrier(len(QUESTIONS))

    def ask(i: int) -> None:
        start.wait()
        got[i] = llama.generate(QUESTIONS[i], max_tokens=10, temperature=0).text

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(QUESTIONS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected
    after = _stats(llama)
    assert after.requests - before.requests == len(QUESTIONS)
    # They shared forward passes: fewer steps than 16 one-row decodes would take.
    assert after.steps - before.steps < 10 * len(QUESTIONS)
    assert after.joined > before.joined or after.peak_rows > 1


def test_a_request_arriving_while_a_batch_runs_joins_it(llama: LlamaModel) -> None:
    alone = llama.generate(FRANCE, max_tokens=4, temperature=0)
    before = _stats(llama)
    outcome: list[list[str]] = []
    batch = threading.Thread(
        target=lambda: outcome.append(
            [
                r.unwrap().text
                for r in llama.generate_batch(
                    [STORY, STORY + " Make it sad."], max_tokens=60, temperature=0
                )
            ]
        )
    )
    batch.start()
    _wait_for(lambda: _stats(llama).steps - before.steps >= 3, "the batch to run")
    late = llama.generate(FRANCE, max_tokens=4, temperature=0)
    # The late request needed 4 steps; the batch still had more than 50 to go: it finished
    # first because it joined the running batch rather than waiting for it.
    assert batch.is_alive()
    batch.join()
    assert late.text == alone.text
    after = _stats(llama)
    assert after.joined - before.joined >= 1
    assert len(outcome[0]) == 2
    assert late.queue_s is not None


def test_a_stream_closed_halfway_frees_its_row(llama: LlamaModel) -> None:
    stream = llama.stream(STORY, max_tokens=300, temperature=0)
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()
    closed_at = llama.tokens_generated
    answer = llama.generate(FRANCE, max_tokens=8, temperature=0)
    # While the 8-token answer ran, a row still generating its story would have added about
    # 8 tokens more; a freed row adds at most the one step in flight when it was closed.
    assert llama.tokens_generated - closed_at <= answer.usage.output_tokens + 2


async def test_an_async_stream_closed_early_frees_its_row(llama: LlamaModel) -> None:
    stream = llama.astream(STORY, max_tokens=300, temperature=0)
    seen = 0
    async for _ in stream:
        seen += 1
        if seen == 3:
            break
    await stream.aclose()
    closed_at = llama.tokens_generated
    answer = await llama.agenerate(FRANCE, max_tokens=8, temperature=0)
    assert llama.tokens_generated - closed_at <= answer.usage.output_tokens + 2


def test_seeded_samples_are_the_same_alone_and_in_a_batch(llama: LlamaModel) -> None:
    poem = Request.of("Write a poem about the sea.", temperature=1.0, seed=11, max_tokens=16)
    other = Request.of("Write a poem about the moon.", temperature=0.8, seed=3, max_tokens=16)
    alone = [llama.generate(poem).text, llama.generate(other).text]
    mates = [Request.of(q, max_tokens=12, temperature=0) for q in QUESTIONS[:4]]
    results = [r.unwrap().text for r in llama.generate_batch([*mates, poem, other])]
    assert results[4:] == alone
    # And from threads, joining each other's batch at different steps.
    got: list[str | None] = [None, None]

    def ask(i: int, request: Request) -> None:
        got[i] = llama.generate(request).text

    threads = [threading.Thread(target=ask, args=(i, r)) for i, r in enumerate([poem, other])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == alone


def test_stop_strings_split_across_tokens_are_found_streaming_or_not(llama: LlamaModel) -> None:
    full = llama.generate(FRANCE, max_tokens=16, temperature=0).text
    tokenizer = llama.tokenizer
    for stop in ("is Par", "ital of Fr"):
        at = full.find(stop)
        assert at > 0, full
        pieces = [tokenizer.decode([t]) for t in tokenizer(full)["input_ids"]]
        assert stop not in pieces  # really split over several tokens
        cut = llama.generate(FRANCE, max_tokens=16, temperature=0, stop=[stop])
        assert cut.text == full[:at]
        assert cut.finish_reason == "stop"
        stream = llama.stream(FRANCE, max_tokens=16, temperature=0, stop=[stop])
        chunks = [c.text for c in stream]
        assert "".join(chunks) == full[:at]  # nothing past the stop string was emitted
        assert stream.completion.finish_reason == "stop"


def test_a_request_that_alone_cannot_fit_fails_before_running(
    llama: LlamaModel, llama_cache: Path
) -> None:
    from llmcompare.backends.llama import LlamaModel, LlamaOptions

    small = LlamaModel(options=LlamaOptions(cache_dir=llama_cache, max_batch_tokens=64))
    try:
        small.warm_up()
        with pytest.raises(BackendError, match="max_batch_tokens is 64"):
            small.generate(FRANCE, max_tokens=100)
        assert small.tokens_generated == 0
        assert small.generate(FRANCE, max_tokens=4).usage.output_tokens == 4
    finally:
        small.close()


def test_compare_on_the_real_model_sends_full_batches(llama: LlamaModel) -> None:
    before = _stats(llama)
    items = [f"{QUESTIONS[i % 16]} (question {i})" for i in range(40)]
    result = compare(
        [llama], items, max_tokens=12, temperature=0, concurrency=2, progress=False, cache=False
    )
    assert all(r.error is None for r in result.rows)
    after = _stats(llama)
    assert after.requests - before.requests == len(items)
    full = after.batch_sizes.get(16, 0) - before.batch_sizes.get(16, 0)
    # concurrency=2 is for API models: the engine's steps ran with its whole max_batch_size.
    assert full > 0


class _OnlyToken:
    """A per-row constraint that allows one token, three times, then ends the row."""

    def __init__(self, token: int) -> None:
        self.token = token
        self.seen: list[int] = []

    def mask(self, logits: Any) -> Any:
        import torch

        allowed = torch.full_like(logits, float("-inf"))
        allowed[self.token] = logits[self.token]
        return allowed

    def advance(self, token: int) -> None:
        self.seen.append(token)

    @property
    def done(self) -> bool:
        return len(self.seen) == 3


def test_a_row_constraint_masks_its_row_only(llama: LlamaModel) -> None:
    engine = llama._engine()
    token = llama.tokenizer(" maybe")["input_ids"][-1]
    constraint = _OnlyToken(token)
    free = Request.of(FRANCE, max_tokens=8, temperature=0)
    jobs = [
        engine.job(0, free),
        engine.job(1, Request.of(FRANCE, max_tokens=8, temperature=0), constraint=constraint),
    ]
    engine.run(jobs)
    assert jobs[1].out == [token] * 3
    assert constraint.seen == [token] * 3
    assert jobs[1].finish == "stop"
    # Its batch mate without a constraint is untouched.
    assert engine.final_text(jobs[0]) == llama.generate(free).text
