"""The llama engine's KV layout on tiny random-weight models: every way a row enters and leaves.

The truth is transformers' own ``model.generate``, greedy, each prompt alone. The rows of a
batch must get exactly its tokens when they start together with different lengths, when a
newcomer joins a running batch (wider than it, so the slab is rebuilt; or narrower, so it fits
in place), and when rows leave from the middle of the batch (their slots refilled). A model with
sliding-window layers, whose cache cannot live in the slab, runs on its prefill's cache.
Random weights and a tokenizer that reads token ids ("5 17 9") keep this fast and offline.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from llmcompare import Request

torch = pytest.importorskip("torch")


class _Ids:
    """A tokenizer for random weights: a prompt is its token ids written out."""

    chat_template = None
    pad_token_id = 0
    eos_token_id = None

    def __call__(self, text: str) -> dict[str, list[int]]:
        return {"input_ids": [int(t) for t in text.split()]}

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return " ".join(str(i) for i in ids)


def _model(kind: str) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    shape = {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 512,
        "max_position_embeddings": 1024,
        "bos_token_id": None,
        "eos_token_id": None,
        "pad_token_id": 0,
    }
    torch.manual_seed(0)
    if kind == "sliding":
        model = MistralForCausalLM(MistralConfig(**shape, sliding_window=8))
    else:
        config = LlamaConfig(**shape)
        # Eager attention takes the engine's decoding mask as an additive float mask.
        config._attn_implementation = "eager" if kind == "eager" else "sdpa"
        model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = None
    return model.eval()


def _truth(model: Any, prompt: list[int], new: int) -> list[int]:
    with torch.inference_mode():
        out = model.generate(
            input_ids=torch.tensor([prompt]),
            max_new_tokens=new,
            min_new_tokens=new,
            do_sample=False,
            pad_token_id=0,
        )
    return [int(t) for t in out[0, len(prompt) :]]


def _prompt(seed: int, length: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed)
    return [int(t) for t in torch.randint(1, 512, (length,), generator=generator)]


class _Engine:
    """The real engine and scheduler over a tiny model."""

    def __init__(self, model: Any) -> None:
        from llmcompare.backends.llama._engine import Engine
        from llmcompare.backends.llama._scheduler import Scheduler

        self.engine = Engine(
            "test:tiny",
            model,
            _Ids(),
            max_batch_size=8,
            max_batch_tokens=1 << 14,
            response_model="random",
        )
        self.scheduler = Scheduler(self.engine)

    def job(self, index: int, prompt: list[int], new: int) -> Any:
        request = Request.of(" ".join(map(str, prompt)), max_tokens=new, temperature=0)
        return self.engine.job(index, request)

    def run(self, jobs: list[Any]) -> list[list[int]]:
        self.scheduler.run(jobs)
        for job in jobs:
            if job.error is not None:
                raise job.error
        return [list(job.out) for job in jobs]


@pytest.mark.parametrize("kind", ["full", "eager", "sliding"])
def test_rows_of_different_lengths_leaving_at_different_steps_get_the_tokens_alone(
    kind: str,
) -> None:
    model = _model(kind)
    tiny = _Engine(model)
    # Prompts of 3 to 20 tokens; answers of 2 to 14 tokens, so rows leave from the middle.
    cases = [(_prompt(i, 3 + 3 * i), 14 - 2 * (i % 4)) for i in range(7)]
    out = tiny.run([tiny.job(i, p, n) for i, (p, n) in enumerate(cases)])
    assert out == [_truth(model, p, n) for p, n in cases]
    assert tiny.scheduler.stats.peak_rows == len(cases)
    assert tiny.engine.mergeable is (kind != "sliding")
    assert model.config._attn_implementation == ("eager" if kind == "eager" else "sdpa")


def test_newcomers_joining_a_running_batch_get_the_tokens_alone() -> None:
    model = _model("full")
    tiny = _Engine(model)
    running = [(_prompt(100, 6), 120), (_prompt(101, 9), 40)]
    # Wider than the running batch (the slab is rebuilt around it), then narrower (in place).
    joiners = [(_prompt(102, 60), 10), (_prompt(103, 2), 30), (_prompt(104, 5), 3)]
    results: dict[str, list[list[int]]] = {}

    def first() -> None:
        results["running"] = tiny.run([tiny.job(i, p, n) for i, (p, n) in enumerate(running)])

    thread = threading.Thread(target=first)
    thread.start()
    deadline = time.monotonic() + 60  # only ends a hang: nothing here is timed
    while tiny.scheduler.stats.steps < 3:
        assert time.monotonic() < deadline, "the running batch never stepped"
        time.sleep(0.001)
    results["joiners"] = [tiny.run([tiny.job(0, p, n)])[0] for p, n in joiners]
    thread.join(60)
    assert results["running"] == [_truth(model, p, n) for p, n in running]
    assert results["joiners"] == [_truth(model, p, n) for p, n in joiners]
    # They joined the batch while its first row ran (120 steps).
    assert tiny.scheduler.stats.joined == len(joiners)


def test_a_slot_reused_after_its_row_left_never_shows_the_old_rows_tokens() -> None:
    """Rows leave, a narrow newcomer takes a freed slot, then a wide one widens the view: the
    columns the view takes back must count as padding for every row already there (the freed
    slot's earlier occupant left its own tokens in them)."""
    model = _model("full")
    tiny = _Engine(model)
    # X runs long; Y (the widest prompt) and Z leave after a few steps, freeing slots 1 and 2.
    first = [(_prompt(200, 4), 300), (_prompt(201, 30), 3), (_prompt(202, 5), 4)]
    narrow, wide = (_prompt(203, 3), 80), (_prompt(204, 20), 6)
    results: dict[str, list[list[int]]] = {}

    def run(name: str, cases: list[tuple[list[int], int]]) -> None:
        results[name] = tiny.run([tiny.job(i, p, n) for i, (p, n) in enumerate(cases)])

    def wait(what: str, condition: Any) -> None:
        deadline = time.monotonic() + 60  # only ends a hang: nothing here is timed
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(0.0005)

    threads = [threading.Thread(target=run, args=("first", first))]
    threads[0].start()
    wait("Y and Z to leave", lambda: tiny.scheduler.stats.steps >= 6)
    threads.append(threading.Thread(target=run, args=("narrow", [narrow])))
    threads[1].start()
    wait("the narrow newcomer to join", lambda: tiny.scheduler.stats.joined >= 1)
    run("wide", [wide])
    for thread in threads:
        thread.join(60)
    assert results["first"] == [_truth(model, p, n) for p, n in first]
    assert results["narrow"] == [_truth(model, *narrow)]
    assert results["wide"] == [_truth(model, *wide)]
    assert tiny.scheduler.stats.joined == 2


@pytest.mark.parametrize("kind", ["full", "eager"])
@pytest.mark.parametrize(
    ("shared", "lengths", "forwards"),
    [
        (0, [2, 7, 12, 17, 22], [60]),
        (32, [2, 7, 12, 17, 22], [60]),
        # One long prompt among short ones: alone in its forward, the short ones in another.
        (0, [400, 10, 10, 10, 10], [400, 40]),
        (32, [400, 10, 10, 10, 10], [400, 40]),
    ],
)
def test_a_fresh_batch_computes_each_prompt_token_once_and_gets_the_tokens_alone(
    kind: str,
    shared: int,
    lengths: list[int],
    forwards: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _poison_new_slabs(monkeypatch)
    model = _model(kind)
    tiny = _Engine(model)
    # The first prefill shows the engine its KV shape; later fresh batches go into a slab.
    tiny.run([tiny.job(0, _prompt(99, 5), 2)])
    head = _prompt(50, shared)
    # Prompts of unequal length after a head they share (32 tokens x 4 more rows: the engine
    # computes it once), or none.
    cases = [(head + _prompt(i, n), 10 - i) for i, n in enumerate(lengths)]
    fed: list[int] = []
    hook = model.model.embed_tokens.register_forward_hook(
        lambda _module, args, _out: fed.append(int(args[0].numel()))
    )
    try:
        out = tiny.run([tiny.job(i, p, n) for i, (p, n) in enumerate(cases)])
    finally:
        hook.remove()
    assert out == [_truth(model, p, n) for p, n in cases]
    # Counted by hand: each row's own tokens once, after the shared head once; none of
    # padding (a padded prefill computes 5 rows x the longest).
    prefills = ([shared] if shared else []) + forwards
    assert fed[: len(prefills)] == prefills


def test_prompts_of_one_length_are_never_packed_and_one_long_prompt_is_packed_alone() -> None:
    from llmcompare.backends.llama._kv import PACK_TOKENS, packing_pays, packs

    # Equal lengths: packing saves no token and adds attention across rows.
    for rows, length in [(2, 5), (16, 40), (64, 100), (4, 2000)]:
        assert not packing_pays([length] * rows, 0)
        assert not packing_pays([length] * rows, 600)
    # One long prompt among 15 short ones: padding would compute 16 x 1000 tokens.
    assert packing_pays([1000] + [40] * 15, 24)
    assert packs([1000] + [40] * 15) == [slice(0, 1), slice(1, 10), slice(10, 16)]
    assert PACK_TOKENS == 384  # 9 x 40 = 360 fits a pack, 10 x 40 does not


def _poison_new_slabs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every slab a prefill fills from here on holds NaN until written.

    A new slab's memory is not initialized: with NaN in it, a column that attention reads but
    nothing wrote (masked or not: 0 x NaN is NaN) changes the answer.
    """
    from llmcompare.backends.llama._kv import KVBatch

    made = KVBatch.start

    def poisoned(self: Any, *args: Any, **kwargs: Any) -> Any:
        cache = made(self, *args, **kwargs)
        for layer in [] if cache is None else cache.layers:
            layer.slab_keys.fill_(float("nan"))
            layer.slab_values.fill_(float("nan"))
        return cache

    monkeypatch.setattr(KVBatch, "start", poisoned)


def test_newcomers_arriving_together_join_packed_and_get_the_tokens_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _poison_new_slabs(monkeypatch)
    model = _model("full")
    tiny = _Engine(model)
    tiny.run([tiny.job(0, _prompt(99, 5), 2)])  # the first prefill: the KV shape
    running = (_prompt(300, 6), 200)
    # One long prompt and four short ones, submitted together while the batch runs.
    lengths = [400, 10, 10, 10, 10]
    joiners = [(_prompt(301 + i, n), 8) for i, n in enumerate(lengths)]
    fed: list[int] = []
    hook = model.model.embed_tokens.register_forward_hook(
        lambda _module, args, _out: fed.append(int(args[0].numel()))
    )
    results: dict[str, list[list[int]]] = {}

    def first() -> None:
        results["running"] = tiny.run([tiny.job(0, *running)])

    try:
        thread = threading.Thread(target=first)
        thread.start()
        steps = tiny.scheduler.stats.steps
        deadline = time.monotonic() + 60  # only ends a hang: nothing here is timed
        while tiny.scheduler.stats.steps < steps + 3:
            assert time.monotonic() < deadline, "the running batch never stepped"
            time.sleep(0.001)
        results["joiners"] = tiny.run([tiny.job(i, p, n) for i, (p, n) in enumerate(joiners)])
        thread.join(60)
    finally:
        hook.remove()
    assert results["running"] == [_truth(model, *running)]
    assert results["joiners"] == [_truth(model, p, n) for p, n in joiners]
    assert tiny.scheduler.stats.joined == len(joiners)
    # Their prefill, counted by hand: the long prompt alone, the four short ones in one pack
    # (a padded prefill would compute 5 x 400); a decoding step feeds at most 6 tokens.
    at = fed.index(400)
    assert fed[at : at + 2] == [400, 40]
