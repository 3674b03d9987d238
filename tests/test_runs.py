"""Runs that survive: run folders, resume after a kill or Ctrl-C, the response cache, rescoring.

Over real HTTP: the real openai client in ``llmcompare compare`` subprocesses talks to the
project's own server on 127.0.0.1, which counts what it is asked.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import llmcompare
from helpers.cli import EXE, cli_env, run, start
from helpers.openai_server import OpenAIServer, ok, slow
from llmcompare import compare
from llmcompare.backends.chatgpt import ChatGPTModel, ChatGPTOptions
from llmcompare.backends.fake import FunctionModel
from llmcompare.record import Comparison
from llmcompare.scorers import MaxLength

N = 12


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "p.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "prompt": f"question {i}", "reference": f"question {i}"})
            + "\n"
            for i in range(N)
        )
    )
    return path


def asked(server: OpenAIServer) -> Counter[str]:
    """How often each prompt reached the server."""
    return Counter(r.body["messages"][-1]["content"] for r in server.chat_requests)


def wait_for_requests(server: OpenAIServer, n: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while len(server.chat_requests) < n:
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.02)


def answers(record: Comparison) -> dict[tuple[str, str, int], str | None]:
    return {
        (r.model, r.item_id, r.sample): None if r.completion is None else r.completion.text
        for r in record.rows
    }


def compare_args(prompts: Path, out: Path, *more: str) -> list[str]:
    return [
        "compare",
        str(prompts),
        "-m",
        "chatgpt:gpt-4o-mini",
        "--out",
        str(out),
        "--no-progress",
        "--concurrency",
        "2",
        "--format",
        "json",
        *more,
    ]


@pytest.mark.slow
def test_a_killed_run_resumes_without_asking_anything_twice(prompts: Path, tmp_path: Path) -> None:
    with OpenAIServer() as truth_server:
        truth = run(
            *compare_args(prompts, tmp_path / "truth", "--no-cache"),
            OPENAI_BASE_URL=truth_server.url,
        )
        assert truth.returncode == 0, truth.stderr
    expected = answers(Comparison.load(tmp_path / "truth" / "comparison.json"))

    out = tmp_path / "run"
    with OpenAIServer() as server:
        server.default = slow(0.25)  # slow enough to be killed halfway
        first = start(compare_args(prompts, out), server.url)
        wait_for_requests(server, 5)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        killed_at = len(server.chat_requests)
        assert killed_at < N
        server.default = slow(0.0)
        again = run(*compare_args(prompts, out), OPENAI_BASE_URL=server.url)
        assert again.returncode == 0, again.stderr
        counts = asked(server)
    # Each prompt reached the server once, except those in flight at the kill (at most the
    # concurrency): their answers never arrived, so they were asked again.
    assert set(counts) == {f"question {i}" for i in range(N)}
    twice = [p for p, n in counts.items() if n > 1]
    assert len(twice) <= 2
    assert max(counts.values()) <= 2
    assert answers(Comparison.load(out / "comparison.json")) == expected


@pytest.mark.slow
def test_ctrl_c_stops_at_once_keeps_what_is_done_and_says_how_to_resume(
    prompts: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    with OpenAIServer() as server:
        server.default = slow(0.3)
        process = start(compare_args(prompts, out), server.url)
        wait_for_requests(server, 4)
        process.send_signal(signal.SIGINT)
        # The timeout guards against a hang; that it stopped early is shown below by what it
        # kept (fewer answers than prompts), not by a wall-clock time.
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 130, stderr
        assert "Resume with:" in stderr
        assert "Traceback" not in stderr
        resume = stderr.split("Resume with:", 1)[1].strip()
        assert resume.startswith("llmcompare compare")
        assert str(out) in resume
        saved = (out / "answers.jsonl").read_text().splitlines()
        assert 1 <= len(saved) < N
        before = asked(server)
        server.default = slow(0.0)
        again = run(*compare_args(prompts, out), OPENAI_BASE_URL=server.url)
        assert again.returncode == 0, again.stderr
        after = asked(server) - before
    # The resumed run asked only what the first had not answered.
    done = {json.loads(line)["item"] for line in saved if "completion" in json.loads(line)}
    assert not {f"question {i[1:]}" for i in done} & set(after)
    record = Comparison.load(out / "comparison.json")
    assert len(record.rows) == N
    assert all(r.completion is not None for r in record.rows)


def chatgpt(server: OpenAIServer) -> ChatGPTModel:
    return ChatGPTModel("gpt-4o-mini", ChatGPTOptions(base_url=server.url, api_key="sk-test-0"))


def test_a_second_run_is_answered_from_the_cache_and_refresh_sends_again() -> None:
    items = [f"question {i}" for i in range(5)]
    with OpenAIServer() as server, chatgpt(server) as model:
        first = compare([model], items, progress=False)
        assert len(server.chat_requests) == 5
        second = compare([model], items, progress=False)
        assert len(server.chat_requests) == 5  # nothing sent
        assert all(r.cached for r in second.rows)
        assert not any(r.cached for r in first.rows)
        # The original timings and cost, shown as such.
        assert [r.completion for r in second.rows] == [r.completion for r in first.rows]
        assert second.summaries[0].cached == 5
        fresh = compare([model], items, refresh=True, progress=False)
        assert len(server.chat_requests) == 10
        assert not any(r.cached for r in fresh.rows)
        uncached = compare([model], items, cache=False, progress=False)
        assert len(server.chat_requests) == 15
        assert not any(r.cached for r in uncached.rows)
    from llmcompare.report import notes

    assert any("5 of 5 answers from the response cache" in n for n in notes(second))


def test_errors_are_never_cached() -> None:
    from helpers.openai_server import error

    with OpenAIServer() as server, chatgpt(server) as model:
        server.script(error(400, "bad request"))
        first = compare([model], ["q"], progress=False)
        assert first.rows[0].error is not None
        second = compare([model], ["q"], progress=False)
        assert second.rows[0].completion is not None
        assert not second.rows[0].cached
        assert len(server.chat_requests) == 2


def test_rescore_changes_the_scores_and_sends_nothing(tmp_path: Path) -> None:
    with OpenAIServer() as server, chatgpt(server) as model:
        record = compare([model], ["one two three four"], out=tmp_path / "run", progress=False)
        sent = len(server.chat_requests)
        rescored = record.rescore([MaxLength(max_words=2)], replace=True)
        assert len(server.chat_requests) == sent
    assert record.rows[0].scores == {}  # no reference: nothing to score against
    assert rescored.rows[0].scores == {"max_words:2": 0.0}
    assert rescored.summaries[0].score == 0.0
    assert [r.completion for r in rescored.rows] == [r.completion for r in record.rows]


def test_the_cli_rescores_and_rerenders_a_run_without_sending(
    prompts: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    with OpenAIServer() as server:
        done = run(*compare_args(prompts, out), OPENAI_BASE_URL=server.url)
        assert done.returncode == 0, done.stderr
        sent = len(server.chat_requests)
        before = Comparison.load(out / "comparison.json")
        rescored = run("rescore", str(out), "--scorer", "max_words:1", "--replace")
        assert rescored.returncode == 0, rescored.stderr
        rendered = run("report", str(out), "--format", "html", "--format", "csv", "--no-print")
        assert rendered.returncode == 0, rendered.stderr
        assert len(server.chat_requests) == sent
    after = Comparison.load(out / "comparison.json")
    assert {s for r in before.rows for s in r.scores} == {"contains"}
    assert {s for r in after.rows for s in r.scores} == {"max_words:1"}
    assert all(r.scores["max_words:1"] == 0.0 for r in after.rows)  # "question N": two words
    assert (out / "report.html").exists()
    assert (out / "summary.csv").exists()


def test_a_folder_of_another_comparison_is_refused_unless_force_new(tmp_path: Path) -> None:
    out = tmp_path / "run"
    model = llmcompare.get_model("fake", reply="yes")
    compare([model], ["a", "b"], out=out, progress=False)
    with pytest.raises(llmcompare.ConfigurationError, match=r"another comparison.*settings"):
        compare([model], ["a", "b"], out=out, max_tokens=7, progress=False)
    with pytest.raises(llmcompare.ConfigurationError, match="prompts or settings sent to fake"):
        compare([model], ["a", "c"], out=out, progress=False)
    # A setting written another way, or a scorer added, is the same comparison: it resumes.
    compare([model], ["a", "b"], out=out, temperature=0, scorers=[MaxLength(max_words=3)])
    again = compare([model], ["a", "c"], out=out, force_new=True, progress=False)
    assert {r.item_id for r in again.rows} == {"item-1", "item-2"}
    assert Comparison.load(out / "comparison.json") == again


def test_a_request_has_one_key_in_the_run_folder_and_the_cache(tmp_path: Path) -> None:
    from llmcompare import Request
    from llmcompare.runs import ResponseCache, model_identity, request_key

    out = tmp_path / "run"
    items = ["one", "two"]
    with (
        OpenAIServer() as server,
        chatgpt(server) as model,
        ResponseCache(tmp_path / "cache.sqlite3") as cache,
    ):
        compare([model], items, out=out, cache=cache, samples=2, temperature=0.7, progress=False)
        lines = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
        # The key as request_key documents it: the model's identity, the request, the sample.
        expected = {
            (f"item-{i + 1}", sample): request_key(
                model_identity(model),
                Request.of(prompt, temperature=0.7, max_tokens=256, seed=sample),
                sample,
            )
            for i, prompt in enumerate(items)
            for sample in range(2)
        }
        assert {(line["item"], line["sample"]): line["request"] for line in lines} == expected
        assert len(cache) == 4
        assert all(cache.get(key) is not None for key in expected.values())


def test_a_folder_of_another_run_folder_format_is_refused_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "run"
    model = llmcompare.get_model("fake", reply="yes")
    compare([model], ["a", "b"], out=out, progress=False)
    run_file = out / "run.json"
    older = {**json.loads(run_file.read_text()), "format": 1}
    run_file.write_text(json.dumps(older))
    with pytest.raises(llmcompare.ConfigurationError) as refused:
        compare([model], ["a", "b"], out=out, progress=False)
    message = str(refused.value)
    assert "\n" not in message
    assert "another version of llmcompare (run folder format 1, not 2" in message
    assert "--force-new" in message
    again = compare([model], ["a", "b"], out=out, force_new=True, progress=False)
    assert [r.completion.text for r in again.rows if r.completion] == ["yes", "yes"]
    assert json.loads(run_file.read_text())["format"] == 2


def test_a_damaged_answers_line_is_asked_again(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with OpenAIServer() as server, chatgpt(server) as model:
        compare([model], ["one", "two", "three"], out=out, cache=False, progress=False)
        lines = (out / "answers.jsonl").read_bytes().splitlines()
        # The last line cut inside a character, as a kill in mid-write would leave it.
        damaged = b"\n".join([*lines[:2], lines[2][:-3] + "é".encode()[:1]]) + b"\n"
        (out / "answers.jsonl").write_bytes(damaged)
        again = compare([model], ["one", "two", "three"], out=out, cache=False, progress=False)
        assert len(server.chat_requests) == 4  # only the damaged one was asked again
    assert [r.completion.text for r in again.rows if r.completion] == ["one", "two", "three"]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--out", "{file}/sub"], "not a folder|cannot write"),
        (["--budget-usd", "-1"], "negative"),
        (["--rpm", "0"], "--rpm"),
    ],
)
def test_bad_output_and_options_exit_2_before_any_request(
    prompts: Path, tmp_path: Path, args: list[str], match: str
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    args = [a.replace("{file}", str(a_file)) for a in args]
    with OpenAIServer() as server:
        out = run(
            "compare",
            str(prompts),
            "-m",
            "chatgpt:gpt-4o-mini",
            *args,
            OPENAI_BASE_URL=server.url,
        )
        assert len(server.chat_requests) == 0
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    import re

    assert re.search(match, out.stderr)


def test_a_report_that_cannot_be_written_still_leaves_the_record(
    prompts: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    (out / "report.html").mkdir(parents=True)  # a folder where the page should go
    with OpenAIServer() as server:
        done = run(
            *compare_args(prompts, out)[:-2],
            "--format",
            "json",
            "--format",
            "html",
            OPENAI_BASE_URL=server.url,
        )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("llmcompare: error")]
    assert len(errors) == 1
    assert "html" in errors[0]
    assert Comparison.load(out / "comparison.json").rows


def test_png_without_matplotlib_is_refused_before_anything_is_sent(
    prompts: Path, tmp_path: Path
) -> None:
    # matplotlib is installed here: a fresh interpreter is made to behave as if it were not.
    code = (
        "import sys, importlib.util as u\n"
        "real = u.find_spec\n"
        "u.find_spec = lambda name, *a: None if name == 'matplotlib' else real(name, *a)\n"
        "from llmcompare.cli import main\n"
        f"sys.argv = ['llmcompare', 'compare', {str(prompts)!r}, '-m', 'fake', '-f', 'png',"
        f" '--out', {str(tmp_path / 'run')!r}]\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "matplotlib" in done.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("llama_backend")
def test_ctrl_c_stops_a_local_batch_at_its_next_step(tmp_path: Path) -> None:
    env = cli_env()
    command = [EXE] if EXE else [sys.executable, "-m", "llmcompare"]
    process = subprocess.Popen(
        [
            *command,
            "compare",
            "-m",
            "llama",
            "--out",
            str(tmp_path / "run"),
            "--progress",
            "--max-tokens",
            "200",
            "--concurrency",
            "20",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**env, "OMP_NUM_THREADS": "1"},
    )
    assert process.stderr is not None
    seen = ""
    deadline = time.monotonic() + 300
    while "0/20" not in seen:  # the weights are loaded and the batch of 20 has started
        assert time.monotonic() < deadline, seen
        char = process.stderr.read(1)
        assert char, seen
        seen += char
    time.sleep(1.0)  # well inside the batch: 20 answers of up to 200 tokens take far longer
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read()
    process.wait(timeout=60)  # a hang guard, not a speed claim
    assert process.returncode == 130, seen + rest
    assert "Resume with:" in rest
    # The batch stopped at a step, not at its end: rows still decoding were not answered (20
    # answers of up to 200 tokens each are far from done a second in), so fewer than 20 are kept.
    answers_file = tmp_path / "run" / "answers.jsonl"
    kept = answers_file.read_text().splitlines() if answers_file.exists() else []
    done = [line for line in kept if "completion" in json.loads(line)]
    assert len(done) < 20


def test_refresh_stores_the_new_answer_in_place_of_the_old() -> None:
    with OpenAIServer() as server, chatgpt(server) as model:
        server.text = "old answer"
        compare([model], ["q"], progress=False)
        server.text = "new answer"
        refreshed = compare([model], ["q"], refresh=True, progress=False)
        again = compare([model], ["q"], progress=False)
        assert len(server.chat_requests) == 2
    assert refreshed.rows[0].completion.text == "new answer"  # type: ignore[union-attr]
    assert again.rows[0].cached
    assert again.rows[0].completion.text == "new answer"  # type: ignore[union-attr]


def test_a_finished_run_asked_again_keeps_its_record(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with OpenAIServer() as server, chatgpt(server) as model:
        first = compare([model], ["a", "b", "c"], out=out, cache=False, progress=False)
        again = compare([model], ["a", "b", "c"], out=out, cache=False, progress=False)
        assert len(server.chat_requests) == 3
    assert again.summaries == first.summaries  # throughput and wall time are the run's own
    assert again.rows == first.rows
    assert Comparison.load(out / "comparison.json") == first


def test_a_resumed_run_counts_its_throughput_on_what_it_sent(tmp_path: Path) -> None:
    out = tmp_path / "run"
    items = [f"q{i}" for i in range(6)]
    with OpenAIServer() as server, chatgpt(server) as model:
        compare([model], items, out=out, cache=False, progress=False)
        lines = (out / "answers.jsonl").read_text().splitlines(keepends=True)
        (out / "answers.jsonl").write_text("".join(lines[:5]))  # the last answer lost
        lost = json.loads(lines[5])["item"]  # lines are in order of arrival, not of items
        resumed = compare([model], items, out=out, cache=False, progress=False)
        assert len(server.chat_requests) == 7
    summary = resumed.summaries[0]
    sent = resumed.row(lost, "chatgpt:gpt-4o-mini").completion
    assert sent is not None
    assert summary.output_tokens_per_s == pytest.approx(sent.usage.output_tokens / summary.wall_s)


def test_a_line_cut_by_a_kill_does_not_swallow_the_next_answer(tmp_path: Path) -> None:
    out = tmp_path / "run"
    items = ["one", "two", "three"]
    with OpenAIServer() as server, chatgpt(server) as model:
        compare([model], items, out=out, cache=False, progress=False)
        data = (out / "answers.jsonl").read_bytes()
        (out / "answers.jsonl").write_bytes(data[:-20])  # the last line cut, no newline
        compare([model], items, out=out, cache=False, progress=False)
        lines = (out / "answers.jsonl").read_text().splitlines()
        # Answers are written as they arrive, so the order of lines is not the order of items.
        assert sorted(json.loads(line)["item"] for line in lines) == ["item-1", "item-2", "item-3"]
        compare([model], items, out=out, cache=False, progress=False)
        assert len(server.chat_requests) == 4  # the cut answer asked again once, then no more


def test_rescore_keeps_the_runs_own_scorers() -> None:
    from llmcompare.scorers import Exact

    record = compare(
        [llmcompare.get_model("fake", reply="Paris")],
        ["Capital of France?"],
        scorers=[Exact()],
        progress=False,
    )
    assert record.run.scorers == ("exact",)
    again = record.rescore([MaxLength(max_words=5)])
    assert set(again.rows[0].scores) == {"exact", "max_words:5"}
    only = record.rescore([MaxLength(max_words=5)], replace=True)
    assert set(only.rows[0].scores) == {"max_words:5"}


def test_a_budget_counts_the_answers_a_resumed_run_read_back(tmp_path: Path) -> None:
    from decimal import Decimal

    from llmcompare.cost import Budget

    out = tmp_path / "run"
    items = [f"q{i}" for i in range(4)]
    with OpenAIServer() as server, chatgpt(server) as model:
        compare([model], items[:2], out=out, cache=False, progress=False, force_new=True)
        paid = Comparison.load(out / "comparison.json")
        spent = sum((r.cost.usd for r in paid.rows if r.cost), Decimal(0))
        # A budget that the two answers already read back use up: nothing more is sent.
        more = compare(
            [model],
            items[:2],
            out=tmp_path / "other",
            cache=False,
            progress=False,
            budget=Budget(max_requests=2),
        )
        assert all(r.completion for r in more.rows)
        assert spent > 0
        sent = len(server.chat_requests)
        resumed = compare(
            [model], items[:2], out=out, cache=False, progress=False, budget=Budget(max_requests=2)
        )
        assert len(server.chat_requests) == sent
    assert all(r.completion for r in resumed.rows)


def test_a_resumed_budget_counts_the_charged_failures_of_this_runs_requests_only(
    tmp_path: Path,
) -> None:
    from decimal import Decimal

    from llmcompare.cost import Budget

    asked_for: list[str] = []

    def answer(request: llmcompare.Request) -> str:
        asked_for.append(request.messages[-1].content)
        return "ok"

    out = tmp_path / "run"
    model = FunctionModel(answer, name="gpt-4o-mini")
    compare([model], ["q0", "q1"], out=out, cache=False, progress=False)
    answers_file = out / "answers.jsonl"
    lines = [json.loads(line) for line in answers_file.read_text().splitlines()]
    # As an earlier process would have left them: a failure of q1's request that may have been
    # billed, and one of another request (a row of another plan) on the same row.
    error = {"type": "llmcompare.errors.BackendError", "message": "timed out", "retryable": True}
    mine = {**lines[1], "error": {**error, "charged_usd": "0.25", "charged_tokens": 700}}
    other = {**mine, "request": "0" * 64, "error": {**error, "charged_usd": "100"}}
    for line in (mine, other):
        del line["completion"], line["cached"]
    answers_file.write_text("\n".join(json.dumps(line) for line in (lines[0], mine, other)) + "\n")
    (out / "comparison.json").unlink()
    resumed = compare(
        [model], ["q0", "q1"], out=out, cache=False, progress=False, budget=Budget(max_usd="1")
    )
    # q1's charge counts (its row costs it) and the other request's does not: q1 fit the
    # budget and was asked again.
    assert asked_for == ["q0", "q1", "q1"]
    q1 = resumed.rows[1]
    assert q1.completion is not None
    assert q1.cost is not None
    assert q1.completion.unanswered_usd == Decimal("0.25")
    assert q1.completion.unanswered_tokens == 700
    assert Decimal("0.25") < q1.cost.usd < Decimal("0.26")
    assert "may be billed" in q1.cost.assumptions


# issue 22, item 1
def test_a_run_folder_line_never_fails_to_encode(tmp_path: Path) -> None:
    def fail(request: llmcompare.Request) -> str:
        # An error whose text holds half a character, as a provider's message can.
        raise ValueError("the gateway said \ud83d")

    out = tmp_path / "run"
    model = FunctionModel(fail, name="m")
    record = compare([model], ["a"], out=out, retry=None, progress=False)
    assert record.rows[0].error is not None
    assert record.rows[0].error.message == "the gateway said \ufffd"
    # The line was written (valid UTF-8, the half as its JSON escape) and reads back.
    line = json.loads((out / "answers.jsonl").read_bytes().decode("utf-8"))
    assert line["error"]["message"] == "the gateway said \ud83d"
    assert Comparison.load(out / "comparison.json").rows[0].error == record.rows[0].error


# issue 22, items 3 and 23
@pytest.mark.slow
def test_two_runs_on_one_folder_never_both_pay(prompts: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with OpenAIServer() as server:
        server.default = slow(0.05)
        # No response cache: only the run folder's lock can keep the second run from paying.
        both = [start(compare_args(prompts, out, "--no-cache"), server.url) for _ in range(2)]
        ended = [p.communicate(timeout=300) for p in both]
        counts = asked(server)
    codes = [p.returncode for p in both]
    assert set(counts) == {f"question {i}" for i in range(N)}
    assert set(counts.values()) == {1}, counts  # the server answered each request once
    # The second run waited for the first, then found everything answered; or, had the first
    # run outlasted its wait, it was refused in one line.
    assert 0 in codes, ended
    for code, (_, stderr) in zip(codes, ended, strict=True):
        if code != 0:
            assert code == 2, stderr
            assert "another llmcompare run" in stderr
            assert len(stderr.strip().splitlines()) == 1, stderr


# issue 22, item 3
def test_a_run_on_a_folder_another_run_holds_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from llmcompare.runs import RunFolder, _folder

    monkeypatch.setattr(_folder, "LOCK_WAIT_S", 0.3)
    out = tmp_path / "run"
    calls: list[str] = []
    model = FunctionModel(lambda r: calls.append("x") or "yes", name="m")
    held = RunFolder(out, {"another": "run"}, {})
    with pytest.raises(llmcompare.ConfigurationError) as refused:
        compare([model], ["a"], out=out, progress=False)
    message = str(refused.value)
    assert "\n" not in message
    assert f"another llmcompare run is using this folder (pid {os.getpid()})" in message
    assert calls == []  # nothing was sent
    held.close()
    # Once the other run has ended, the folder is free (its plan differs: start over in it).
    assert compare([model], ["a"], out=out, force_new=True, progress=False).rows[0].completion


# issue 22, item 20
def test_without_run_json_another_models_answers_are_never_reused(tmp_path: Path) -> None:
    items = ["one", "two"]
    # Two fake models under one label: only their identity tells their answers apart.
    first = FunctionModel(lambda r: "from a", name="a")
    out = tmp_path / "fake"
    compare({"m": first}, items, out=out, progress=False)
    (out / "run.json").unlink()
    again = compare({"m": FunctionModel(lambda r: "from b", name="b")}, items, out=out)
    assert [r.completion.text for r in again.rows if r.completion] == ["from b", "from b"]
    # Two models of one server under one label, with the response cache off.
    out = tmp_path / "server"
    with OpenAIServer() as server:
        server.default = ok("from the server")
        mini, big = (
            ChatGPTModel(name, ChatGPTOptions(base_url=server.url, api_key="sk-test-0"))
            for name in ("gpt-4o-mini", "gpt-4o")
        )
        compare({"m": mini}, items, out=out, cache=False, progress=False)
        (out / "run.json").unlink()
        record = compare({"m": big}, items, out=out, cache=False, progress=False)
        sent = [r.body["model"] for r in server.chat_requests]
    assert sent == ["gpt-4o-mini"] * 2 + ["gpt-4o"] * 2  # gpt-4o was asked: nothing reused
    assert {r.completion.model for r in record.rows if r.completion} == {"chatgpt:gpt-4o"}
