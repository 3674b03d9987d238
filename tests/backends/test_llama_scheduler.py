"""The llama backend's continuous batching, on the real embedded model (one shared load).

The scheduler's public counters (``LlamaModel.stats``) are shared by every test of the session,
so each test looks at what changed during it.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from llmcompare import BackendError, Request
from llmcompare.comparison import compare

if TYPE_CHECKING:
    from llmcompare.backends.llama import LlamaModel
    from llmcompare.backends.llama._scheduler import SchedulerStats

T = TypeVar("T")

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


def _multi_row_steps(stats: SchedulerStats) -> int:
    return sum(n for rows, n in stats.batch_sizes.items() if rows > 1)


def _in_thread(call: Callable[[], T], what: str, timeout: float = 120) -> T:
    """Run ``call`` on a thread and return its result: a hang fails the test instead."""
    out: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            out.append(call())
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{what} hung"
    if errors:
        raise errors[0]
    return out[0]


def test_16_threads_at_once_get_the_sequential_greedy_answers(llama: LlamaModel) -> None:
    alone = [llama.generate(q, max_tokens=10, temperature=0) for q in QUESTIONS]
    expected = [c.text for c in alone]
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
    # They shared forward passes: fewer steps than one decode per answer token (the number a
    # sequential run takes), and some of those steps computed several of these rows at once.
    sequential = sum(c.usage.output_tokens for c in alone)
    assert after.steps - before.steps < sequential
    assert _multi_row_steps(after) > _multi_row_steps(before)


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
    llama._scheduler().run(jobs)
    assert jobs[1].out == [token] * 3
    assert constraint.seen == [token] * 3
    assert jobs[1].finish == "stop"
    # Its batch mate without a constraint is untouched.
    assert engine.final_text(jobs[0]) == llama.generate(free).text


def _start_story(llama: LlamaModel, max_tokens: int = 60) -> tuple[threading.Thread, list[Any]]:
    """A two-row story batch on a thread, returned once it runs; its results land in the list."""
    before = _stats(llama).steps
    outcome: list[Any] = []
    batch = threading.Thread(
        target=lambda: outcome.append(
            llama.generate_batch(
                [STORY, STORY + " Make it sad."], max_tokens=max_tokens, temperature=0
            )
        ),
        daemon=True,
    )
    batch.start()
    _wait_for(lambda: _stats(llama).steps - before >= 3, "the batch to run")
    return batch, outcome


def test_a_failed_merge_fails_its_rows_and_the_next_call_works(
    llama: LlamaModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A merge that raises (out of memory, say) is injected into the private step that grows the
    slab (the running batch was sized exactly for its two rows: a third needs a bigger one)."""
    from llmcompare.backends.llama import _kv

    def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("injected merge fault")

    batch, outcome = _start_story(llama)
    monkeypatch.setattr(_kv.KVBatch, "_plan", boom)
    with pytest.raises(BackendError, match="injected merge fault"):
        _in_thread(lambda: llama.generate(FRANCE, max_tokens=4, temperature=0), "the joiner")
    batch.join(120)
    assert not batch.is_alive(), "the running batch hung"
    # A layer may have been half merged: the running rows failed too, with the cause.
    assert [type(r.error) for r in outcome[0]] == [BackendError, BackendError]
    monkeypatch.undo()
    answer = _in_thread(lambda: llama.generate(FRANCE, max_tokens=4), "a later call")
    assert answer.usage.output_tokens == 4


def test_a_failure_while_admitting_fails_the_jobs_taken_instead_of_losing_them(
    llama: LlamaModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug between taking jobs from the queue and putting them in the batch (injected into the
    private admit step) ends the worker: the jobs it held fail with the cause, none waits
    forever, and the next call starts a fresh worker."""
    from llmcompare.backends.llama import _scheduler

    def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("injected admission bug")

    monkeypatch.setattr(_scheduler.Scheduler, "_admit", boom)
    results = _in_thread(
        lambda: llama.generate_batch([FRANCE, STORY], max_tokens=4, temperature=0), "the batch"
    )
    assert all("injected admission bug" in str(r.error) for r in results), results
    monkeypatch.undo()
    answer = _in_thread(lambda: llama.generate(FRANCE, max_tokens=4), "a later call")
    assert answer.usage.output_tokens == 4


class _Failing:
    """A row constraint whose advance raises on its second token (one row's own error)."""

    def __init__(self) -> None:
        self.seen = 0

    def mask(self, logits: Any) -> Any:
        return logits

    def advance(self, token: int) -> None:
        self.seen += 1
        if self.seen == 2:
            raise BackendError("injected row fault", model_id="llama")

    @property
    def done(self) -> bool:
        return False


class _Nothing(_Failing):
    """A row constraint that forbids every token: a sampled row cannot draw one."""

    def mask(self, logits: Any) -> Any:
        return logits.fill_(float("-inf"))


@pytest.mark.parametrize(
    ("constraint", "temperature", "error"),
    [(_Failing, 0.0, "injected row fault"), (_Nothing, 1.0, "probability")],
)
def test_one_rows_error_fails_that_row_alone(
    llama: LlamaModel,
    monkeypatch: pytest.MonkeyPatch,
    constraint: type[_Failing],
    temperature: float,
    error: str,
) -> None:
    """The failing constraint is injected through the engine's private ``constraint_for``."""
    others = [Request.of(q, max_tokens=6, temperature=0) for q in QUESTIONS[:2]]
    expected = [llama.generate(r).text for r in others]
    bad = Request.of(QUESTIONS[2], max_tokens=6, temperature=temperature, seed=1)
    engine = llama._engine()
    monkeypatch.setattr(engine, "constraint_for", lambda r: constraint() if r is bad else None)
    results = _in_thread(lambda: llama.generate_batch([others[0], bad, others[1]]), "the batch")
    assert isinstance(results[1].error, BackendError)
    assert error in str(results[1].error)
    assert [results[0].unwrap().text, results[2].unwrap().text] == expected


def test_ctrl_c_on_a_plain_call_frees_its_row(llama: LlamaModel) -> None:
    assert threading.current_thread() is threading.main_thread()  # SIGINT reaches it only
    before = _stats(llama).steps

    def interrupt() -> None:
        _wait_for(lambda: _stats(llama).steps - before >= 3, "the call to run")
        os.kill(os.getpid(), signal.SIGINT)

    sender = threading.Thread(target=interrupt, daemon=True)
    sender.start()
    with pytest.raises(KeyboardInterrupt):
        llama.generate(STORY, max_tokens=300, temperature=0)
    sender.join(120)
    stopped_at = llama.tokens_generated
    answer = _in_thread(lambda: llama.generate(FRANCE, max_tokens=8, temperature=0), "a call")
    # A story row still running would have added about 8 tokens more meanwhile.
    assert llama.tokens_generated - stopped_at <= answer.usage.output_tokens + 2


def test_close_fails_queued_and_running_calls_and_frees_the_weights(llama_cache: Path) -> None:
    from llmcompare.backends.llama import LlamaModel, LlamaOptions

    # One row at a time: the second request of the batch waits in the queue.
    small = LlamaModel(options=LlamaOptions(cache_dir=llama_cache, max_batch_size=1))
    try:
        weights = weakref.ref(small.hf_model)
        outcome: list[Any] = []
        batch = threading.Thread(
            target=lambda: outcome.append(
                small.generate_batch([STORY, FRANCE], max_tokens=200, temperature=0)
            ),
            daemon=True,
        )
        batch.start()
        _wait_for(lambda: (small.stats or _stats(small)).steps >= 3, "the batch to run")
        small.close()
        batch.join(120)
        assert not batch.is_alive(), "the closed model's batch hung"
        for result in outcome[0]:
            assert isinstance(result.error, BackendError)
            assert "closed" in str(result.error)
        gc.collect()
        assert weights() is None, "the closed model's weights are still held"
        answer = _in_thread(lambda: small.generate(FRANCE, max_tokens=4), "a call after close")
        assert answer.usage.output_tokens == 4
    finally:
        small.close()


async def test_a_grammar_compiles_off_the_event_loop(
    llama: LlamaModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the compile runs is seen by wrapping the private compiler's entry point."""
    from llmcompare.backends.llama import _constrain

    loop_thread = threading.get_ident()
    threads: list[int] = []
    row = _constrain.Grammars.row

    def recording(self: Any, fmt: Any) -> Any:
        threads.append(threading.get_ident())
        return row(self, fmt)

    monkeypatch.setattr(_constrain.Grammars, "row", recording)
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    got = await llama.agenerate(FRANCE, response_format=schema, max_tokens=12)
    assert got.sent is not None
    assert got.sent.params["response_format"]["enforced_by"] == "llguidance token mask"
    assert threads
    assert loop_thread not in threads


def test_the_kv_budget_counts_the_cache_width_rows_with_holes_keep(
    llama: LlamaModel, llama_cache: Path
) -> None:
    from llmcompare.backends.llama import LlamaModel, LlamaOptions

    # Seven rows share the chat template's prefix with one long row: their padding sits after
    # the prefix, so the cache keeps the long row's width after it leaves at its first token.
    long = STORY + " It should be set in a library. " * 12
    width = llama.count_tokens(long) + 30
    rows = 8
    small = LlamaModel(
        options=LlamaOptions(cache_dir=llama_cache, max_batch_tokens=rows * width + 4)
    )
    try:
        small.warm_up()
        requests = [Request.of(STORY, max_tokens=30, temperature=0)] * (rows - 1)
        requests.append(Request.of(long, max_tokens=1, temperature=0))
        outcome: list[Any] = []
        batch = threading.Thread(
            target=lambda: outcome.append(small.generate_batch(requests)), daemon=True
        )
        batch.start()
        _wait_for(lambda: (small.stats or _stats(small)).steps >= 4, "the batch to run")
        before = _stats(small)
        late = _in_thread(lambda: small.generate(STORY, max_tokens=30, temperature=0), "late")
        batch.join(120)
        assert not batch.is_alive()
        assert all(r.ok for r in outcome[0])
        # Its 30 tokens on top of the cache's real width would pass max_batch_tokens: it waited
        # for the batch to end instead of joining it.
        assert _stats(small).joined == before.joined
        assert late.text == outcome[0][0].unwrap().text
    finally:
        small.close()
