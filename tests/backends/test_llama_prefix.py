"""The llama backend's prefix cache across requests, on the real embedded model.

The truth is the same model run with the cache off (``prefix_cache_tokens=0``): greedy answers
must not change with it, with a batch, with a request that joins a running batch, and with a
cache so small that it evicts. The session's shared model (cache on, default size) is reused;
the counters in ``stats`` are shared by the session, so each test looks at what changed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError

from llmcompare.backends.llama import LlamaModel, LlamaOptions
from llmcompare.backends.llama._prefix import BLOCK

if TYPE_CHECKING:
    from llmcompare.backends.llama._scheduler import SchedulerStats

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("llama_backend")]

# Worked examples before every question, as a few-shot evaluation sends them.
SHOTS = "".join(
    f"Q: Tom has {i} apples and buys {i + 3} more. How many apples does he have?\n"
    f"A: {i} + {i + 3} = {2 * i + 3}. The answer is {2 * i + 3}.\n\n"
    for i in range(1, 7)
)
OTHER_SHOTS = "".join(
    f"Q: A box holds {i} pens. How many pens are in {i + 1} boxes?\n"
    f"A: {i} x {i + 1} = {i * (i + 1)}. The answer is {i * (i + 1)}.\n\n"
    for i in range(2, 8)
)
QUESTIONS = [
    "Q: Ann has 5 apples and buys 4 more. How many apples does she have?\nA:",
    "Q: Sam has 9 pears and eats 2. How many pears are left?\nA:",
    "Q: A train carries 12 people and 7 get off. How many are left?\nA:",
    "Q: Lee reads 3 pages a day for 4 days. How many pages is that?\nA:",
    "Q: A cat has 4 legs. How many legs do 3 cats have?\nA:",
]


def _stats(model: LlamaModel) -> SchedulerStats:
    stats = model.stats
    assert stats is not None
    return stats


def _prompt_ids(model: LlamaModel, text: str) -> list[int]:
    encoded = model.tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True
    )
    ids = encoded["input_ids"] if not isinstance(encoded, list) else encoded
    return [int(i) for i in ids]


def _common(prompts: list[list[int]]) -> int:
    n = 0
    while all(len(p) > n and p[n] == prompts[0][n] for p in prompts):
        n += 1
    return n


@pytest.fixture(scope="module")
def plain(llama: LlamaModel, llama_cache: Path) -> Iterator[LlamaModel]:
    """The same weights with the prefix cache off: the answers' truth."""
    model = LlamaModel(options=LlamaOptions(cache_dir=llama_cache, prefix_cache_tokens=0))
    yield model
    model.close()


def _texts(model: LlamaModel, prompts: list[str], max_tokens: int = 12) -> list[str]:
    return [r.unwrap().text for r in model.generate_batch(prompts, max_tokens=max_tokens)]


def test_greedy_answers_are_the_same_with_and_without_the_prefix_cache(
    llama: LlamaModel, plain: LlamaModel
) -> None:
    first = [SHOTS + q for q in QUESTIONS[:3]]
    later = [SHOTS + q for q in QUESTIONS[3:]]
    before = _stats(llama)
    assert _texts(llama, first) == _texts(plain, first)
    between = _stats(llama)
    assert _texts(llama, later) == _texts(plain, later)
    after = _stats(llama)
    # The later call found the worked examples the first one computed: every row reused at
    # least the whole blocks all these prompts share.
    shared = _common([_prompt_ids(llama, p) for p in first + later])
    assert shared > 10 * BLOCK
    assert after.prefix_hits > between.prefix_hits
    assert after.prefix_tokens_reused - between.prefix_tokens_reused >= len(later) * (
        shared // BLOCK * BLOCK
    )
    assert after.prefix_lookups > before.prefix_lookups
    assert after.prompt_tokens - before.prompt_tokens == sum(
        len(_prompt_ids(llama, p)) for p in first + later
    )
    # The plain model looked nothing up.
    assert _stats(plain).prefix_lookups == 0
    assert _stats(plain).prefix_tokens_cached == 0


def test_each_answer_says_how_many_prompt_tokens_the_prefix_cache_supplied(
    llama: LlamaModel, plain: LlamaModel
) -> None:
    from llmcompare.comparison import compare

    prompts = [OTHER_SHOTS + SHOTS + q for q in QUESTIONS[:2]]
    llama.generate_batch(prompts[:1], max_tokens=1)  # the examples' blocks are in the cache
    result = compare([llama], prompts, max_tokens=1, progress=False, cache=False, retry=None)
    shared = _common([_prompt_ids(llama, p) for p in prompts])
    for row in result.rows:
        assert row.completion is not None
        usage = row.completion.usage
        # Whole blocks of the examples every prompt shares, never more than its prompt.
        assert usage.cache_read_tokens % BLOCK == 0
        assert shared // BLOCK * BLOCK - BLOCK <= usage.cache_read_tokens <= usage.input_tokens
    # The report's cache-hit share is those tokens over the prompt tokens.
    (summary,) = result.summaries
    reused = sum(r.completion.usage.cache_read_tokens for r in result.rows if r.completion)
    prompt = sum(len(_prompt_ids(llama, p)) for p in prompts)
    assert summary.cache_hit_share == pytest.approx(reused / prompt)
    assert summary.cache_hit_share > 0.5
    # Without the cache nothing is supplied.
    assert all(
        r.unwrap().usage.cache_read_tokens == 0 for r in plain.generate_batch(prompts, max_tokens=1)
    )


def test_a_request_joining_a_running_row_reuses_its_prefix(
    llama: LlamaModel, plain: LlamaModel
) -> None:
    long = OTHER_SHOTS + "Write a long story about a dragon who loves counting pens."
    late = OTHER_SHOTS + QUESTIONS[4]
    truth_long = plain.generate(long, max_tokens=60, temperature=0).text
    truth_late = plain.generate(late, max_tokens=8, temperature=0).text
    before = _stats(llama)
    out: list[str] = []
    running = threading.Thread(
        target=lambda: out.append(llama.generate(long, max_tokens=60, temperature=0).text)
    )
    running.start()
    deadline = time.monotonic() + 120  # only ends a hang: nothing here is timed
    while _stats(llama).steps - before.steps < 3:
        assert time.monotonic() < deadline, "the running row never stepped"
        time.sleep(0.005)
    mid = _stats(llama)
    answer = llama.generate(late, max_tokens=8, temperature=0).text
    assert running.is_alive()  # it joined the running batch, which had 50 steps to go
    running.join()
    after = _stats(llama)
    assert answer == truth_late
    assert out == [truth_long]
    assert after.joined > mid.joined
    shared = _common([_prompt_ids(llama, long), _prompt_ids(llama, late)])
    assert after.prefix_tokens_reused - mid.prefix_tokens_reused >= shared // BLOCK * BLOCK


def test_eviction_under_a_small_bound_keeps_the_answers(
    plain: LlamaModel, llama_cache: Path
) -> None:
    bound = 3 * BLOCK
    tiny = LlamaModel(options=LlamaOptions(cache_dir=llama_cache, prefix_cache_tokens=bound))
    try:
        prompts = [
            shots + q for q in QUESTIONS[:2] for shots in (SHOTS, OTHER_SHOTS)
        ]  # the two prefixes alternate: each pushes the other out
        for prompt in prompts + prompts[:2]:
            answer = tiny.generate(prompt, max_tokens=10, temperature=0).text
            assert answer == plain.generate(prompt, max_tokens=10, temperature=0).text
            assert _stats(tiny).prefix_tokens_cached <= bound
        stats = _stats(tiny)
        assert stats.prefix_evictions > 0
        # The chat template's system prompt opens every prompt: its first blocks stay in use.
        assert stats.prefix_hits > 0
    finally:
        tiny.close()


def test_the_prefix_cache_size_is_checked() -> None:
    with pytest.raises(ValidationError, match="prefix_cache_tokens"):
        LlamaOptions(prefix_cache_tokens=-1)
    assert LlamaOptions(prefix_cache_tokens=0).prefix_cache_tokens == 0
