"""The chatgpt backend's Batch API path, over real HTTP to tests/helpers/openai_batch_server.py.

Every test drives the real openai SDK (files.create, batches.create/retrieve, files.content) at a
loopback server that keeps the Batch API's state machine; polls skip their waits (no_wait).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from helpers import openai_batch_server as bsrv
from helpers import openai_server as srv
from llmcompare import Request, compare, get_model
from llmcompare.backends.chatgpt import BatchRequestError
from llmcompare.cost import cost_of, get_price
from llmcompare.errors import ProviderHTTPError
from llmcompare.runs import request_key
from llmcompare.testing import batch_file_limits, no_wait

KEY = "sk-test-Batch-S3cr3t-0123456789"


@pytest.fixture
def server() -> Iterator[bsrv.BatchServer]:
    with bsrv.BatchServer() as server:
        yield server


def _model(server: bsrv.BatchServer, *, batch: bool = True) -> object:
    return get_model("chatgpt:gpt-4o-mini", base_url=server.url, api_key=KEY, batch=batch)


def _lines(data: bytes) -> list[dict[str, object]]:
    return [json.loads(x) for x in data.splitlines()]


def test_batch_lines_are_the_interactive_bodies_deduplicated_and_answers_fanned_out(
    server: bsrv.BatchServer,
) -> None:
    prompts = ["red green", "blue", "red green"]
    model = get_model("chatgpt:gpt-4o-mini", base_url=server.url, api_key=KEY, batch=True)
    with no_wait() as waits:
        results = model.generate_batch(prompts, max_tokens=8, temperature=0.0)
    # What the interactive path sends for the same requests, seen by the same server.
    interactive = get_model("chatgpt:gpt-4o-mini", base_url=server.url, api_key=KEY)
    for prompt in ("red green", "blue"):
        interactive.generate(prompt, max_tokens=8, temperature=0.0)
    sent = [r.body for r in server.chat_requests]

    assert server.batch_creates == 1
    assert len(server.uploads) == 1
    lines = _lines(server.uploads[0])
    assert len(lines) == 2  # the repeated request went once
    assert [line["body"] for line in lines] == sent
    assert {line["method"] for line in lines} == {"POST"}
    assert {line["url"] for line in lines} == {"/v1/chat/completions"}
    identity = model.cache_identity()  # type: ignore[attr-defined]
    assert [line["custom_id"] for line in lines] == [
        request_key(identity, Request.of(p, max_tokens=8, temperature=0.0))
        for p in ("red green", "blue")
    ]
    # The server echoes each prompt: each answer went back to its own request.
    assert [r.completion.text for r in results if r.completion] == prompts
    batch_ids = {r.completion.batch_id for r in results if r.completion}
    assert batch_ids == set(server.batches)
    assert len(waits) >= 2  # validating -> in_progress -> finalizing -> completed, polled
    # The batch stays journaled: the same request again is read from it, free...
    with no_wait():
        (again,) = model.generate_batch(prompts[:1], max_tokens=8, temperature=0.0)
    assert server.batch_creates == 1
    assert again.completion is not None
    assert again.completion.text == "red green"
    # ...and compare(refresh=True) submits it anew.
    with no_wait():
        compare(
            {"gpt": model},  # type: ignore[dict-item]
            prompts[:1],
            max_tokens=8,
            temperature=0.0,
            refresh=True,
            progress=False,
        )
    assert server.batch_creates == 2


def test_every_line_failed_reports_each_lines_error(server: bsrv.BatchServer) -> None:
    server.script(
        srv.error(400, "first line is bad", error_code="invalid_value"),
        srv.error(422, "second line is bad"),
    )
    model = _model(server)
    with no_wait():
        results = model.generate_batch(["a", "b"], max_tokens=4)  # type: ignore[attr-defined]
    batch = next(iter(server.batches.values()))
    assert batch.status == "completed"
    assert not batch.output
    errors = [r.error for r in results]
    assert all(isinstance(e, ProviderHTTPError) for e in errors)
    assert [e.status for e in errors] == [400, 422]  # type: ignore[union-attr]
    assert "first line is bad" in str(errors[0])
    assert "second line is bad" in str(errors[1])
    assert KEY not in " ".join(str(e) for e in errors)


def test_expired_batch_keeps_its_answers_and_resubmits_only_the_missing(
    server: bsrv.BatchServer,
) -> None:
    server.plan_batches("expire", answered=1)
    model = _model(server)
    with no_wait():
        results = model.generate_batch(["one", "two", "three"], max_tokens=4)  # type: ignore[attr-defined]
    first, second = server.batches.values()
    assert first.status == "expired"
    assert second.status == "completed"
    answered_first = {line["custom_id"] for line in first.output}
    resubmitted = {line["custom_id"] for line in _lines(server.uploads[1])}
    all_ids = {line["custom_id"] for line in _lines(server.uploads[0])}
    assert len(answered_first) == 1
    assert resubmitted == all_ids - answered_first
    assert [r.completion.text for r in results if r.completion] == ["one", "two", "three"]
    by_batch = [r.completion.batch_id for r in results if r.completion]
    assert by_batch == [first.id, second.id, second.id]


def test_a_request_that_expires_every_round_fails_instead_of_looping(
    server: bsrv.BatchServer,
) -> None:
    from llmcompare.backends.chatgpt._batch import EXPIRED_ROUNDS

    server.plan_batches(*["expire"] * (EXPIRED_ROUNDS + 1), answered=0)
    model = _model(server)
    with no_wait():
        (result,) = model.generate_batch(["never"], max_tokens=4)  # type: ignore[attr-defined]
    assert server.batch_creates == EXPIRED_ROUNDS + 1
    assert isinstance(result.error, BatchRequestError)
    assert result.error.code == "batch_expired"


def test_split_at_the_file_limit(server: bsrv.BatchServer) -> None:
    model = _model(server)
    prompts = [f"prompt {i}" for i in range(5)]
    with no_wait(), batch_file_limits(max_requests=2):
        results = model.generate_batch(prompts, max_tokens=4)  # type: ignore[attr-defined]
    assert [len(_lines(u)) for u in server.uploads] == [2, 2, 1]
    assert server.batch_creates == 3
    assert [r.completion.text for r in results if r.completion] == prompts
    print("request_counts seen:", server.counts_seen[-3:])


def test_batch_answers_cost_the_batch_tier_and_say_so(server: bsrv.BatchServer) -> None:
    batch_model = _model(server)
    interactive = _model(server, batch=False)
    with no_wait():
        batched = batch_model.generate_batch(["one two three"], max_tokens=4)[0].completion  # type: ignore[attr-defined]
    direct = interactive.generate("one two three", max_tokens=4)  # type: ignore[attr-defined]
    assert batched is not None
    assert batched.usage == direct.usage
    price = get_price("gpt-4o-mini")
    assert price is not None
    # OpenAI lists gpt-4o-mini's Batch API prices: half the standard ones.
    assert (price.batch_input, price.batch_output) == (price.input / 2, price.output / 2)
    expected = (
        Decimal(batched.usage.input_tokens) * price.input
        + Decimal(batched.usage.output_tokens) * price.output
    ) / 2_000_000
    cost = cost_of(batched)
    assert cost.usd == expected.quantize(cost.usd)
    assert cost_of(direct).usd == (2 * expected).quantize(cost.usd)
    assert "Batch API tier: gpt-4o-mini's batch prices" in cost.assumptions


def test_interactive_rate_limits_do_not_hold_back_a_batch(server: bsrv.BatchServer) -> None:
    import threading

    from llmcompare import generate_many

    model = _model(server)
    out: list[object] = []
    # rpm=0.1 lets one interactive request through every 10 minutes; a batch is one upload.
    worker = threading.Thread(
        target=lambda: out.append(
            generate_many(model, ["a", "b", "c"], rpm=0.1, tpm=10, max_tokens=4, progress=False)  # type: ignore[arg-type]
        ),
        daemon=True,
    )
    with no_wait():
        worker.start()
        worker.join(60)  # a hang detector, not a speed target
    assert not worker.is_alive(), "the batch waited for the interactive rate limit"
    (results,) = out
    assert [r.completion.text for r in results if r.completion] == ["a", "b", "c"]  # type: ignore[attr-defined]
    assert server.batch_creates == 1


def test_a_budget_reserves_a_batch_at_the_batch_tier(server: bsrv.BatchServer) -> None:
    from llmcompare.cost import Budget, CostTracker, input_token_bound

    request = Request.of("one two three", max_tokens=50)
    price = get_price("gpt-4o-mini")
    assert price is not None
    full = (
        input_token_bound(request) * price.input + request.max_tokens * price.output  # type: ignore[operator]
    ) / 1_000_000
    # Three quarters of the full-price worst case: refused interactively, fits at half price.
    budget = Budget(max_usd=full * Decimal("0.75"))
    interactive = CostTracker(budget=budget).wrap(_model(server, batch=False))  # type: ignore[arg-type]
    (refused,) = interactive.generate_batch([request])
    assert refused.error is not None
    batch = CostTracker(budget=budget).wrap(_model(server))  # type: ignore[arg-type]
    with no_wait():
        (sent,) = batch.generate_batch([request])
    assert sent.completion is not None
    assert server.batch_creates == 1


def test_a_cancelled_batch_keeps_what_it_answered_and_the_rest_fails(
    server: bsrv.BatchServer,
) -> None:
    import openai

    server.plan_batches("hold")
    model = _model(server)
    client = openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0)
    import threading

    out: list[object] = []
    worker = threading.Thread(
        target=lambda: out.append(model.generate_batch(["x", "y"], max_tokens=4))  # type: ignore[attr-defined]
    )
    with no_wait():
        worker.start()
        while not server.batches:
            time.sleep(0.01)
        client.batches.cancel(next(iter(server.batches)))
        worker.join(30)
    (results,) = out
    assert all(isinstance(r.error, BatchRequestError) for r in results)  # type: ignore[attr-defined]
    assert "cancelled" in str(results[0].error)  # type: ignore[index]
    client.close()


_KILLED_RUN = textwrap.dedent(
    """
    import sys
    from llmcompare import compare, get_model
    url, out = sys.argv[1], sys.argv[2]
    model = get_model("chatgpt:gpt-4o-mini", base_url=url, api_key="sk-x", batch=True)
    compare({"gpt": model}, ["alpha", "beta"], out=out, max_tokens=4, progress=False)
    """
)


def _child(code: str, server: bsrv.BatchServer, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path("src").resolve()), *sys.path])}
    return subprocess.Popen([sys.executable, "-c", code, server.url, str(out)], env=env)


def _until(proc: subprocess.Popen[bytes], done: object, what: str) -> None:
    deadline = time.monotonic() + 60
    while not done():  # type: ignore[operator]
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.05)


_SPLIT_RUN = textwrap.dedent(
    """
    import sys
    from llmcompare import compare, get_model
    from llmcompare.testing import batch_file_limits, no_wait
    url, out = sys.argv[1], sys.argv[2]
    model = get_model("chatgpt:gpt-4o-mini", base_url=url, api_key="sk-x", batch=True)
    with no_wait(), batch_file_limits(max_requests=1):
        compare({"gpt": model}, ["alpha", "beta"], out=out, max_tokens=4, progress=False)
    """
)


def test_answers_read_but_not_yet_recorded_are_not_paid_for_twice(
    server: bsrv.BatchServer, tmp_path: Path
) -> None:
    # One request per file: "alpha"'s batch completes and is read, "beta"'s is held; the run
    # is killed while its answers are only in memory.
    server.plan_batches("complete", "hold")
    out = tmp_path / "run"
    proc = _child(_SPLIT_RUN, server, out)
    try:
        _until(
            proc,
            lambda: any(r.path.endswith("/content") for r in server.requests),
            "read the first batch",
        )
        time.sleep(0.3)  # past the read, where the old code released the batch
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    server.release()
    model = get_model("chatgpt:gpt-4o-mini", base_url=server.url, api_key="sk-x", batch=True)
    with no_wait():
        result = compare({"gpt": model}, ["alpha", "beta"], out=out, max_tokens=4, progress=False)
    assert server.batch_creates == 2  # nothing submitted again
    assert [r.completion.text for r in result.rows if r.completion] == ["alpha", "beta"]


_HELD_RUN = textwrap.dedent(
    """
    import sys
    from llmcompare import compare, get_model
    url, out = sys.argv[1], sys.argv[2]
    model = get_model("chatgpt:gpt-4o-mini", base_url=url, api_key="sk-x", batch=True)
    compare({"gpt": model}, ["alpha"], out=out, max_tokens=4, progress=False)
    """
)


def test_ctrl_c_while_polling_stops_and_leaves_the_batch_to_resume(
    server: bsrv.BatchServer, tmp_path: Path
) -> None:
    server.plan_batches("hold")  # never ends by itself: only Ctrl-C ends this run
    out = tmp_path / "run"
    proc = _child(_HELD_RUN, server, out)
    journal = out / "batches.jsonl"
    try:
        _until(proc, lambda: journal.exists() and '"batch"' in journal.read_text(), "journaled")
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        # A hang detector, not a speed target: the old code polled the held batch forever.
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    server.release()
    model = get_model("chatgpt:gpt-4o-mini", base_url=server.url, api_key="sk-x", batch=True)
    with no_wait():
        result = compare({"gpt": model}, ["alpha"], out=out, max_tokens=4, progress=False)
    assert server.batch_creates == 1  # resumed, not paid again
    assert [r.completion.text for r in result.rows if r.completion] == ["alpha"]


def test_transient_poll_errors_are_retried(server: bsrv.BatchServer) -> None:
    model = _model(server)
    server.fail_next(3)  # the first status checks answer 503
    with no_wait():
        results = model.generate_batch(["a", "b"], max_tokens=4)  # type: ignore[attr-defined]
    assert [r.completion.text for r in results if r.completion] == ["a", "b"]
    assert server.batch_creates == 1


def _as_if_killed_before_reading() -> None:
    """Leave in the journal only the submissions, as a process killed while polling does."""
    from llmcompare.runs._journal import journal_path

    path = journal_path()
    kept = [x for x in path.read_text().splitlines() if '"release"' not in x]
    path.write_text("".join(x + "\n" for x in kept))


def test_a_lost_or_broken_output_file_is_submitted_again(server: bsrv.BatchServer) -> None:
    model = _model(server)
    with no_wait():
        model.generate_batch(["a"], max_tokens=4)  # type: ignore[attr-defined]
    (first,) = server.batches.values()
    assert first.output_file_id is not None
    del server.files[first.output_file_id]  # expired on the provider's side: 404
    _as_if_killed_before_reading()
    with no_wait():
        (result,) = model.generate_batch(["a"], max_tokens=4)  # type: ignore[attr-defined]
    assert result.completion is not None
    assert result.completion.text == "a"
    assert server.batch_creates == 2
    second = list(server.batches.values())[1]
    assert second.output_file_id is not None
    server.files[second.output_file_id] = ("batch_output", b"{not json\n")
    _as_if_killed_before_reading()
    with no_wait():
        (result,) = model.generate_batch(["a"], max_tokens=4)  # type: ignore[attr-defined]
    assert result.completion is not None
    assert result.completion.text == "a"
    assert server.batch_creates == 3


def test_a_kill_between_creating_a_batch_and_journaling_it_does_not_pay_twice(
    server: bsrv.BatchServer,
) -> None:
    from llmcompare.runs._journal import journal_path

    model = _model(server)
    with no_wait():
        model.generate_batch(["a", "b"], max_tokens=4)  # type: ignore[attr-defined]
    # As if killed right after batches.create answered: only the upload's line is on disk.
    path = journal_path()
    kept = [x for x in path.read_text().splitlines() if '"batch"' not in x]
    assert len(kept) == 1
    path.write_text(kept[0] + "\n")
    with no_wait():
        results = model.generate_batch(["a", "b"], max_tokens=4)  # type: ignore[attr-defined]
    assert server.batch_creates == 1  # found by its input file, not created again
    assert [r.completion.text for r in results if r.completion] == ["a", "b"]


def test_a_killed_run_resumes_polling_its_batch_from_the_run_folder(
    server: bsrv.BatchServer, tmp_path: Path
) -> None:
    server.plan_batches("hold")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path("src").resolve()), *sys.path])}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, server.url, str(out)], env=env)
    try:
        deadline = time.monotonic() + 60
        journal = out / "batches.jsonl"
        while not (journal.exists() and '"batch"' in journal.read_text()):
            assert proc.poll() is None, "the run ended before it was killed"
            assert time.monotonic() < deadline, "no batch journaled"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (line,) = [x for x in _lines(journal.read_bytes()) if "batch" in x]
    assert line["batch"] in server.batches
    assert len(line["keys"]) == 2
    # As if the batch had been submitted an hour ago: its turnaround counts from then.
    journal.write_text(json.dumps({**line, "at": float(str(line["at"])) - 3600}) + "\n")
    server.release()
    model = get_model("chatgpt:gpt-4o-mini", base_url=server.url, api_key="sk-x", batch=True)
    with no_wait():
        result = compare({"gpt": model}, ["alpha", "beta"], out=out, max_tokens=4)
    assert server.batch_creates == 1
    assert len(server.uploads) == 1
    assert [r.completion.text for r in result.rows if r.completion] == ["alpha", "beta"]
    assert {r.completion.batch_id for r in result.rows if r.completion} == {line["batch"]}
    assert all(r.completion.latency_s >= 3600 for r in result.rows if r.completion)


def test_inside_a_running_event_loop_the_journal_goes_to_the_run_folder(
    server: bsrv.BatchServer, tmp_path: Path
) -> None:
    import asyncio

    async def notebook_cell() -> None:  # a notebook runs cells inside an event loop
        compare({"gpt": _model(server)}, ["one"], max_tokens=4, out=tmp_path / "run")  # type: ignore[dict-item]

    with no_wait():
        asyncio.run(notebook_cell())
    (line,) = [x for x in _lines((tmp_path / "run" / "batches.jsonl").read_bytes()) if "batch" in x]
    assert line["batch"] in server.batches


def test_the_report_says_batch_latency_is_turnaround(server: bsrv.BatchServer) -> None:
    from llmcompare.report import notes

    model = _model(server)
    with no_wait():
        result = compare({"gpt": model}, ["one"], max_tokens=4, cache=False)  # type: ignore[dict-item]
    (row,) = result.rows
    assert row.completion is not None
    assert row.completion.batch_id in server.batches
    assert any("Batch API" in n and "turnaround" in n for n in notes(result))
    assert "Batch API tier" in row.cost.assumptions  # type: ignore[union-attr]
