"""generate_many: order, one result per prompt, limits, native batching, cancellation, resume."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path

import pydantic
import pytest

from llmcompare import (
    BackendError,
    Completion,
    ConfigurationError,
    ModelBase,
    ModelInfo,
    ProviderHTTPError,
    Request,
    Usage,
)
from llmcompare.backends.fake import FunctionModel, ScriptedModel
from llmcompare.batch import agenerate_many, generate_many, read_results
from llmcompare.ratelimit import RateLimiter
from llmcompare.retry import RetryPolicy
from llmcompare.testing import no_wait


def echo(request: Request) -> str:
    return "echo " + request.messages[-1].content


class Flaky:
    """A reply function failing a given share of calls with a retryable error (thread-safe)."""

    def __init__(self, rate: float, seed: int = 7) -> None:
        self.rate = rate
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.calls = 0
        self.failures = 0
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, request: Request) -> str:
        with self.lock:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            fail = self.rng.random() < self.rate
            if fail:
                self.failures += 1
        try:
            await asyncio.sleep(0)  # let other requests start: real overlap
            if fail:
                raise BackendError("transient", model_id="fake:flaky", retryable=True)
            return echo(request)
        finally:
            with self.lock:
                self.in_flight -= 1


# -- order and completeness ----------------------------------------------------------------------


def test_one_result_per_prompt_in_order_with_failures_kept() -> None:
    bad = ProviderHTTPError("bad request", model_id="fake:scripted", status=400)

    def reply(request: Request) -> str:
        if request.messages[-1].content == "p3":
            raise bad
        return echo(request)

    model = ScriptedModel(default=reply)
    results = generate_many(model, [f"p{i}" for i in range(8)], concurrency=3, progress=False)
    assert [r.index for r in results] == list(range(8))
    assert [r.request.messages[-1].content for r in results] == [f"p{i}" for i in range(8)]
    assert results[3].error is bad
    assert [r.unwrap().text for r in results if r.ok] == [f"echo p{i}" for i in range(8) if i != 3]


def test_500_requests_at_concurrency_32_with_20_percent_transient_failures() -> None:
    prompts = [f"prompt {i}" for i in range(500)]

    flaky = Flaky(0.2)
    results = generate_many(FunctionModel(flaky), prompts, concurrency=32, progress=False)
    assert len(results) == 500
    assert [r.index for r in results] == list(range(500))
    failed = [r for r in results if not r.ok]
    assert len(failed) == flaky.failures > 50  # about 20%, each one kept
    assert all(isinstance(r.error, BackendError) for r in failed)
    assert 1 < flaky.max_in_flight <= 32

    flaky = Flaky(0.2, seed=11)
    with no_wait() as waits:
        results = generate_many(
            FunctionModel(flaky),
            prompts,
            concurrency=32,
            retry=RetryPolicy(attempts=10),
            progress=False,
        )
    assert len(results) == 500
    assert all(r.ok for r in results)
    assert [r.unwrap().text for r in results] == [f"echo prompt {i}" for i in range(500)]
    assert flaky.calls == 500 + flaky.failures
    assert len(waits.waits) == flaky.failures
    assert sum(r.unwrap().attempts - 1 for r in results) == flaky.failures
    assert flaky.max_in_flight <= 32


async def test_async_twin_has_the_same_behaviour() -> None:
    model = FunctionModel(Flaky(0.0))
    results = await agenerate_many(model, ["a", "b", "c"], concurrency=2, max_tokens=8)
    assert [r.unwrap().text for r in results] == ["echo a", "echo b", "echo c"]
    assert all(r.request.max_tokens == 8 for r in results)


class SyncOnly(ModelBase):
    """A backend with only a blocking _generate, like a simple third-party plugin."""

    def __init__(self, barrier: threading.Barrier) -> None:
        super().__init__(ModelInfo(provider="test", name="sync", open_weights=False))
        self.barrier = barrier

    def _generate(self, request: Request) -> Completion:
        self.barrier.wait()  # returns only once `parties` calls are in flight together
        return Completion(text=echo(request), finish_reason="stop", usage=Usage(), model=self.id)


def test_sync_only_models_run_concurrently_on_threads() -> None:
    model = SyncOnly(threading.Barrier(16, timeout=10))
    results = generate_many(model, [str(i) for i in range(32)], concurrency=16)
    assert [r.unwrap().text for r in results] == [f"echo {i}" for i in range(32)]


def test_bad_input_is_refused_before_anything_is_sent() -> None:
    model = ScriptedModel(default="never")
    with pytest.raises(pydantic.ValidationError):
        generate_many(model, ["fine", "also fine"], temperature=9.0)
    with pytest.raises(ValueError, match="concurrency"):
        generate_many(model, ["fine"], concurrency=0)
    assert model.history == []
    assert generate_many(model, []) == []


async def test_sync_call_from_inside_an_event_loop() -> None:
    # As in a notebook: the sync function must not deadlock the running loop.
    results = generate_many(ScriptedModel(default="ok"), ["a", "b"])
    assert [r.unwrap().text for r in results] == ["ok", "ok"]


# -- backends with their own batching ------------------------------------------------------------


class BatchingModel(ModelBase):
    """Answers through _generate_batch, recording the batch sizes (like the Llama backend)."""

    def __init__(self, fail_on: str | None = None) -> None:
        super().__init__(ModelInfo(provider="test", name="batcher", open_weights=True))
        self.batches: list[int] = []
        self.singles = 0
        self.threads: set[str] = set()
        self.fail_on = fail_on

    def _generate(self, request: Request) -> Completion:
        self.singles += 1
        return self._answer(request)

    def _answer(self, request: Request) -> Completion:
        text = request.messages[-1].content
        return Completion(
            text=text.upper(),
            finish_reason="stop",
            usage=Usage(input_tokens=1, output_tokens=1),
            model=self.id,
            compute_s=0.5,
        )

    def _generate_batch(self, requests: Sequence[Request]) -> list[Completion | Exception]:
        self.batches.append(len(requests))
        self.threads.add(threading.current_thread().name)
        return [
            BackendError("no", model_id=self.id)
            if r.messages[-1].content == self.fail_on
            else self._answer(r)
            for r in requests
        ]


def test_native_batching_gets_every_pending_request_whatever_the_concurrency() -> None:
    model = BatchingModel(fail_on="p5")
    results = generate_many(model, [f"p{i}" for i in range(10)], concurrency=4, progress=False)
    assert model.batches == [10]  # concurrency is for API models: the batcher has its own limits
    assert model.singles == 0
    assert threading.main_thread().name not in model.threads
    assert [r.index for r in results] == list(range(10))
    assert isinstance(results[5].error, BackendError)
    assert [r.unwrap().text for r in results if r.ok] == [f"P{i}" for i in range(10) if i != 5]


def test_native_batching_is_kept_under_retry_limits_and_tracker() -> None:
    from llmcompare.cost import CostTracker

    model = BatchingModel()
    tracker = CostTracker()
    results = generate_many(
        model,
        [f"p{i}" for i in range(6)],
        concurrency=3,
        retry=RetryPolicy(),
        rpm=600_000,
        tpm=10_000_000,
        tracker=tracker,
    )
    assert model.batches == [6]
    assert all(r.ok for r in results)
    assert tracker.total.requests == 6


def test_a_budget_probe_that_takes_the_only_request_runs_no_empty_batch() -> None:
    from decimal import Decimal

    from llmcompare.cost import Budget, CostTracker

    model = BatchingModel()
    results = generate_many(model, ["p0"], tracker=CostTracker(Budget(max_usd=Decimal(1000))))
    assert [r.unwrap().text for r in results] == ["P0"]
    assert model.batches == [1]  # the probe, and no batch of nothing after it


# -- rate limits through generate_many -------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def frozen_limiters(monkeypatch: pytest.MonkeyPatch) -> list[RateLimiter]:
    """The limiters generate_many builds from here on, on a clock that never moves.

    With time standing still nothing refills, so what is left in a bucket after a run is
    exactly what the run kept taken.
    """
    import llmcompare.ratelimit

    made: list[RateLimiter] = []

    def build(**limits: float | None) -> RateLimiter:
        limiter = RateLimiter(**limits, clock=FakeClock())  # type: ignore[arg-type]
        made.append(limiter)
        return limiter

    monkeypatch.setattr(llmcompare.ratelimit, "RateLimiter", build)
    return made


# tpm=61_000 holds 1000 tokens at once; each prompt below is estimated at ~210 (its max_tokens
# included), so four of them fit without any wait.
FULL_BUCKET = 1000


def test_failed_requests_give_their_tokens_back_to_the_limiter(
    frozen_limiters: list[RateLimiter],
) -> None:
    error = BackendError("bad request", model_id="fake:scripted", retryable=False)
    model = ScriptedModel([error] * 4)
    results = generate_many(model, ["a", "b", "c", "d"], tpm=61_000, max_tokens=200)
    assert not any(r.ok for r in results)
    (limiter,) = frozen_limiters
    # Nothing was generated, so the whole bucket is free again.
    assert limiter.reserve(FULL_BUCKET) == 0.0


def test_failed_retry_attempts_give_their_tokens_back_to_the_limiter(
    frozen_limiters: list[RateLimiter],
) -> None:
    busy = BackendError("busy", model_id="fake:scripted", retryable=True)
    usage = Usage(input_tokens=10, output_tokens=5)
    model = ScriptedModel([busy, busy, busy, "ok"], usage=usage)
    with no_wait():
        (result,) = generate_many(
            model, ["a"], tpm=61_000, max_tokens=200, retry=RetryPolicy(attempts=4)
        )
    assert result.unwrap().attempts == 4
    (limiter,) = frozen_limiters
    # Four attempts, ~840 tokens estimated; only the 15 really used stay taken.
    assert limiter.reserve(FULL_BUCKET - 15) == 0.0
    assert limiter.reserve(1) > 0.0


def test_a_failed_native_batch_gives_its_tokens_back_to_the_limiter(
    frozen_limiters: list[RateLimiter],
) -> None:
    class Broken(BatchingModel):
        def _generate_batch(self, requests: Sequence[Request]) -> list[Completion | Exception]:
            raise BackendError("out of memory", model_id=self.id)

    results = generate_many(Broken(), ["a", "b"], tpm=61_000, max_tokens=200, concurrency=2)
    assert not any(r.ok for r in results)
    (limiter,) = frozen_limiters
    assert limiter.reserve(FULL_BUCKET) == 0.0


def test_generate_many_with_limits_sends_everything() -> None:
    model = ScriptedModel(default=echo)
    results = generate_many(model, ["a", "b", "c"], rpm=60_000, tpm=1_000_000, max_tokens=4)
    assert [r.unwrap().text for r in results] == ["echo a", "echo b", "echo c"]


# -- cancellation and resume ---------------------------------------------------------------------


async def test_cancellation_stops_cleanly_and_keeps_finished_results(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    started: list[str] = []
    cancelled: list[str] = []

    async def slow(request: Request) -> str:
        text = request.messages[-1].content
        started.append(text)
        try:
            await asyncio.sleep(0.001 if int(text) < 6 else 30)
        except asyncio.CancelledError:
            cancelled.append(text)
            raise
        return text

    prompts = [str(i) for i in range(40)]
    task = asyncio.create_task(
        agenerate_many(FunctionModel(slow), prompts, concurrency=4, results_file=path)
    )
    while len(started) < 10:  # noqa: ASYNC110 - the quick ones done, four slow ones in flight
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(cancelled) == sorted(started[6:])  # in flight: cancelled
    count = len(started)
    await asyncio.sleep(0.05)
    assert len(started) == count  # nothing new starts after the cancellation
    finished = read_results(path)
    assert sorted(r["index"] for r in finished) == list(range(6))

    # A rerun picks up where it stopped.
    rerun: list[str] = []

    def quick(request: Request) -> str:
        rerun.append(request.messages[-1].content)
        return request.messages[-1].content

    results = await agenerate_many(FunctionModel(quick), prompts, concurrency=4, results_file=path)
    assert [r.unwrap().text for r in results] == prompts
    assert sorted(rerun, key=int) == prompts[6:]
    assert sorted(r["index"] for r in read_results(path)) == list(range(40))


KILLED_RUN = """
import os, signal, sys
from llmcompare.backends.fake import FunctionModel
from llmcompare.batch import generate_many

calls = 0
def reply(request):
    global calls
    calls += 1
    if calls == 31:
        os.kill(os.getpid(), signal.SIGKILL)  # as if the machine pulled the plug
    return "answer " + request.messages[-1].content

generate_many(FunctionModel(reply), [f"q{i}" for i in range(100)], concurrency=1,
              results_file=sys.argv[1], progress=False, max_tokens=16)
"""


def test_resume_after_a_kill_has_no_duplicates_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(KILLED_RUN))
    proc = subprocess.run(
        [sys.executable, str(script), str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    survived = read_results(path)
    assert [r["index"] for r in survived] == list(range(30))
    # A kill in mid-write leaves half a line: it must not break the rerun.
    with path.open("a") as f:
        f.write('{"index": 30, "hash": "abc')

    sent: list[str] = []

    def reply(request: Request) -> str:
        sent.append(request.messages[-1].content)
        return "answer " + request.messages[-1].content

    prompts = [f"q{i}" for i in range(100)]
    results = generate_many(
        FunctionModel(reply), prompts, concurrency=8, results_file=path, max_tokens=16
    )
    assert sorted(sent, key=lambda q: int(q[1:])) == prompts[30:]  # only the unfinished ones
    assert [r.unwrap().text for r in results] == [f"answer {p}" for p in prompts]
    lines = path.read_text().splitlines()
    indices = [json.loads(line)["index"] for line in lines]
    assert sorted(indices) == list(range(100))  # every line valid, no duplicates

    # A third run sends nothing at all.
    again = generate_many(FunctionModel(reply), prompts, results_file=path, max_tokens=16)
    assert len(sent) == 70
    assert [r.unwrap() for r in again] == [r.unwrap() for r in results]


def test_failed_requests_run_again_on_resume(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    prompts = ["a", "b", "c"]

    def failing_b(request: Request) -> str:
        if request.messages[-1].content == "b":
            raise BackendError("overloaded", model_id="fake:f", retryable=True)
        return echo(request)

    first = generate_many(FunctionModel(failing_b), prompts, results_file=path)
    assert [r.ok for r in first] == [True, False, True]
    error_line = next(r for r in read_results(path) if "error" in r)
    assert error_line["error"] == {
        "type": "llmcompare.errors.BackendError",
        "message": "fake:f: overloaded",
        "retryable": True,
    }

    sent: list[str] = []

    def fixed(request: Request) -> str:
        sent.append(request.messages[-1].content)
        return echo(request)

    second = generate_many(FunctionModel(fixed), prompts, results_file=path)
    assert sent == ["b"]
    assert [r.unwrap().text for r in second] == ["echo a", "echo b", "echo c"]
    assert sorted(r["index"] for r in read_results(path)) == [0, 1, 2]


def test_results_file_classifies_errors_as_the_retry_layer_does(tmp_path: Path) -> None:
    from llmcompare.retry import is_retryable

    errors: list[Exception] = [
        BackendError("busy", model_id="fake:f", retryable=True),
        BackendError("bad", model_id="fake:f"),
        ProviderHTTPError("down", model_id="fake:f", status=503),
        ProviderHTTPError("no", model_id="fake:f", status=400),
        TimeoutError("slow"),
        asyncio.TimeoutError(),
        ConnectionResetError("reset"),
        ValueError("a bug"),
    ]
    path = tmp_path / "r.jsonl"
    model = ScriptedModel(list(errors))
    generate_many(model, [str(i) for i in range(len(errors))], results_file=path, concurrency=1)
    records = sorted(read_results(path), key=lambda r: r["index"])
    assert [r["error"]["retryable"] for r in records] == [is_retryable(e) for e in errors]
    assert [r["error"]["retryable"] for r in records] == [
        True, False, True, False, True, True, True, False
    ]  # fmt: skip


def test_changed_prompts_or_settings_do_not_resume_from_another_run(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    model = ScriptedModel(default=echo)
    generate_many(model, ["a", "b"], results_file=path)
    with pytest.raises(ConfigurationError, match="other requests"):
        generate_many(model, ["a", "b"], results_file=path, temperature=0.5)
    with pytest.raises(ConfigurationError, match="other requests"):
        generate_many(model, ["x", "b"], results_file=path)


# -- progress ------------------------------------------------------------------------------------


def test_progress_bar_on_stderr_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    generate_many(ScriptedModel(default="ok"), ["a", "b", "c"], progress=True)
    err = capsys.readouterr().err
    assert "3/3" in err


def test_plain_progress_line_without_tqdm(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    model = ScriptedModel(default="ok")
    generate_many(model, ["a", "b"], progress=True)
    err = capsys.readouterr().err
    assert "2/2 done, 0 failed" in err


def test_no_progress_when_off_or_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    generate_many(ScriptedModel(default="ok"), ["a"], progress=False)
    generate_many(ScriptedModel(default="ok"), ["a"])  # stderr is captured: not a terminal
    assert capsys.readouterr().err == ""


def test_results_file_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "r.jsonl"
    generate_many(ScriptedModel(default="ok"), ["a"], results_file=os.fspath(path))
    assert read_results(path)[0]["completion"]["text"] == "ok"


@pytest.mark.slow
def test_the_llama_backend_is_driven_through_its_own_batching() -> None:
    pytest.importorskip("torch")
    from llmcompare import get_model
    from llmcompare.backends.llama import LlamaModel
    from llmcompare.cost import CostTracker

    model = get_model("llama")
    assert isinstance(model, LlamaModel)
    tracker = CostTracker()
    prompts = ["What is 2+2?", "Name a colour.", "Capital of France?", "Say hi.", "Count to 3."]
    with model:
        results = generate_many(
            model, prompts, concurrency=1, tracker=tracker, max_tokens=4, temperature=0
        )
        stats = model.stats
    # concurrency=1 is for API models: every request went to the engine's scheduler, and
    # several shared its steps (more rows than concurrency in one step).
    assert stats is not None
    assert stats.requests == 5
    assert stats.peak_rows > 1
    assert [r.index for r in results] == list(range(5))
    assert all(r.ok for r in results)
    assert all(r.unwrap().compute_s for r in results)  # local cost has what it needs
    total = tracker.total
    assert total.requests == 5
    assert total.cost.kwh is not None
    assert total.cost.kwh > 0


# -- damaged results files -----------------------------------------------------------------------

DAMAGE_PROMPTS = [f"q{i}" for i in range(6)]


def accented(request: Request) -> str:
    # Non-ASCII answers, so a line can be cut inside a multi-byte character.
    return "réponse 日本 " + request.messages[-1].content


def first_run(path: Path) -> list[bytes]:
    # concurrency=1: line k of the file holds request k.
    generate_many(FunctionModel(accented), DAMAGE_PROMPTS, results_file=path, concurrency=1)
    lines = path.read_bytes().splitlines()
    assert [json.loads(line)["index"] for line in lines] == list(range(len(DAMAGE_PROMPTS)))
    return lines


def resume(path: Path) -> list[str]:
    sent: list[str] = []

    def counting(request: Request) -> str:
        sent.append(request.messages[-1].content)
        return accented(request)

    results = generate_many(FunctionModel(counting), DAMAGE_PROMPTS, results_file=path)
    assert [r.index for r in results] == list(range(len(DAMAGE_PROMPTS)))
    assert [r.unwrap().text for r in results] == [f"réponse 日本 {p}" for p in DAMAGE_PROMPTS]
    # The file is whole again: one valid line per request, nothing dropped, nothing twice.
    assert sorted(r["index"] for r in read_results(path)) == list(range(len(DAMAGE_PROMPTS)))
    assert len(path.read_bytes().splitlines()) == len(DAMAGE_PROMPTS)
    return sent


def damage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "llmcompare.batch" and r.levelname == "WARNING"
    ]


def test_resume_skips_a_last_line_cut_inside_a_utf8_character(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "r.jsonl"
    lines = first_run(path)
    # Rewrite the lines as raw UTF-8 (json.dumps escapes non-ASCII), then cut the last one
    # after the first byte of "日", as a kill in mid-write would, without its newline.
    raw = [json.dumps(json.loads(line), ensure_ascii=False).encode() for line in lines]
    cut = raw[-1][: raw[-1].index("日".encode()) + 1]
    path.write_bytes(b"".join(line + b"\n" for line in raw[:-1]) + cut)
    with pytest.raises(UnicodeDecodeError):
        cut.decode("utf-8")
    with caplog.at_level("WARNING", logger="llmcompare.batch"):
        sent = resume(path)
    assert sent == ["q5"]  # only the damaged request ran again
    warnings = damage_warnings(caplog)
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{path}:6: damaged line skipped (not UTF-8)")


def test_resume_skips_a_line_of_invalid_json_in_the_middle(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "r.jsonl"
    lines = first_run(path)
    lines[2] = b'{"index": 2, "hash": "oops" "completion"'
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    with caplog.at_level("WARNING", logger="llmcompare.batch"):
        sent = resume(path)
    assert sent == ["q2"]
    warnings = damage_warnings(caplog)
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{path}:3: damaged line skipped (invalid JSON")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("negative latency", "invalid completion: latency_s"),
        ("completion without text", "invalid completion: text: Field required"),
        ("completion not an object", "invalid completion"),
        ("index as a string", "integer 'index'"),
        ("index as a bool", "integer 'index'"),
        ("hash as a number", "string 'hash'"),
        ("not an object", "integer 'index'"),
    ],
)
def test_resume_skips_a_line_that_is_json_but_not_a_valid_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str, reason: str
) -> None:
    path = tmp_path / "r.jsonl"
    lines = first_run(path)
    record = json.loads(lines[3])
    if damage == "negative latency":
        record["completion"]["latency_s"] = -1.0
    elif damage == "completion without text":
        del record["completion"]["text"]
    elif damage == "completion not an object":
        record["completion"] = "réponse 日本 q3"
    elif damage == "index as a string":
        record["index"] = "3"
    elif damage == "index as a bool":
        record["index"] = True
    elif damage == "hash as a number":
        record["hash"] = 3
    else:
        record = [record]
    lines[3] = json.dumps(record).encode()
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    with caplog.at_level("WARNING", logger="llmcompare.batch"):
        sent = resume(path)
    assert sent == ["q3"]
    warnings = damage_warnings(caplog)
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{path}:4: damaged line skipped (")
    assert reason in warnings[0]
    assert "its request runs again" in warnings[0]


def test_a_valid_line_of_other_requests_is_still_refused_next_to_damage(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    lines = first_run(path)
    other = json.loads(lines[1])
    other["hash"] = "0" * 32
    lines[0] = b"\xff\xfe not even text"
    lines[1] = json.dumps(other).encode()
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    with pytest.raises(ConfigurationError, match=r"other requests \(line 2, index 1\)"):
        generate_many(FunctionModel(accented), DAMAGE_PROMPTS, results_file=path)


def test_read_results_skips_lines_that_are_not_utf8_or_not_objects(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    lines = first_run(path)
    path.write_bytes(
        lines[0] + b"\n" + b'{"index": 1, "text": "\xe6\x97' + b"\n[1, 2]\n" + lines[2] + b"\n"
    )
    assert [r["index"] for r in read_results(path)] == [0, 2]


# issue 22, item 12
def test_a_bare_string_is_refused_by_generate_many_before_anything_is_sent() -> None:
    sent: list[str] = []
    model = FunctionModel(lambda r: sent.append(r.messages[-1].content) or "ok")
    with pytest.raises(TypeError, match=r"pass a list of prompts") as caught:
        generate_many(model, "hello")  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)
    with pytest.raises(TypeError, match=r"pass a list of prompts"):
        asyncio.run(agenerate_many(model, "hello"))  # type: ignore[arg-type]
    assert sent == []


def test_a_failure_charged_dollars_alone_keeps_them_on_its_results_line() -> None:
    from decimal import Decimal

    from llmcompare.batch._results import error_record
    from llmcompare.errors import BackendError

    # As a plugin, or a pickle from before tokens were kept, leaves it: dollars, no tokens.
    error = BackendError("timed out", model_id="chatgpt:gpt-4o-mini", maybe_billed=True)
    error.charged_usd = Decimal("0.5")
    line = error_record(error)
    assert (line["charged_usd"], line["charged_tokens"]) == ("0.5", 0)
