"""Judging as part of a run, through compare(), the record and the CLI: known verdicts give
known counts; judge requests are cached, resumed after SIGKILL, budgeted and costed apart, all
counted at the project's test server over real HTTP; real judges (the chatgpt backend, the
embedded llama) give valid verdicts."""

from __future__ import annotations

import json
import math
import re
import signal
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import llmcompare
from helpers.cli import run, start
from helpers.openai_server import OpenAIServer, ok, slow
from llmcompare import compare
from llmcompare.backends.fake import FunctionModel, ScriptedModel
from llmcompare.cost import Budget, CostTracker
from llmcompare.judges import JudgePanel, PairwiseJudge, judge_answers
from llmcompare.prompts import PromptItem
from llmcompare.record import Comparison
from llmcompare.report import print_report
from llmcompare.testing import no_wait
from llmcompare.types import Request

if TYPE_CHECKING:
    from llmcompare.backends.llama import LlamaModel

ANSWER = re.compile(r"\[The Start of Assistant (A|B)'s Answer\]\n(.*?)\n\[The End", re.DOTALL)


def verdict(said: str) -> str:
    return json.dumps({"reasoning": f"I prefer {said}.", "verdict": said})


def model(name: str, answers: dict[str, str]) -> FunctionModel:
    """A compared model that answers each prompt from a table (priced under an OpenAI name)."""
    return FunctionModel(lambda r: answers[r.messages[-1].content], name=name)


def fixed(name: str, text: str) -> FunctionModel:
    return FunctionModel(lambda _: text, name=name)


PROMPTS = [f"question {i}" for i in range(14)]


def test_a_judge_that_always_picks_the_first_answer_ties_everything_when_swapped() -> None:
    first = ScriptedModel(default=verdict("A"), name="gpt-4o")
    x, y = fixed("gpt-4o-mini", "an answer"), fixed("gpt-4.1-mini", "another answer")
    swapped = compare([x, y], PROMPTS, judge=PairwiseJudge(first), progress=False)
    assert swapped.judging is not None
    pair = swapped.judging.pairs[0]
    assert (pair.wins, pair.losses, pair.ties, pair.inconsistent) == (0, 0, 14, 14)
    assert pair.position_bias == 1.0
    assert pair.first_position == 1.0
    assert all(v.winner == "tie" and v.inconsistent for v in swapped.judging.verdicts)

    once = compare([x, y], PROMPTS, judge=PairwiseJudge(first, swap=False), progress=False)
    assert once.judging is not None
    pair = once.judging.pairs[0]
    # Without the swap the answer shown first, model a's, wins every item.
    assert (pair.wins, pair.losses, pair.ties, pair.position_bias) == (14, 0, 0, None)


def prefers_good(request: Request) -> str:
    shown = dict(ANSWER.findall(request.messages[-1].content))
    a, b = shown["A"].startswith("good"), shown["B"].startswith("good")
    return verdict("A" if a and not b else "B" if b and not a else "tie")


def test_known_preferences_give_the_counts_and_the_exact_sign_test() -> None:
    # x better on 9 items, y on 3, both good on 2.
    x = {p: ("good " if i < 9 or i >= 12 else "bad ") + p for i, p in enumerate(PROMPTS)}
    y = {p: ("good " if i >= 9 else "poor ") + p for i, p in enumerate(PROMPTS)}
    judge = PairwiseJudge(FunctionModel(prefers_good, name="gpt-4o"))
    result = compare(
        {"x": model("gpt-4o-mini", x), "y": model("gpt-4.1-mini", y)},
        PROMPTS,
        judge=judge,
        progress=False,
    )
    assert result.judging is not None
    pair = result.judging.pairs[0]
    assert (pair.wins, pair.losses, pair.ties, pair.inconsistent) == (9, 3, 2, 0)
    assert pair.win_rate == pytest.approx((9 + 2 / 2) / 14)
    tail = sum(math.comb(12, k) for k in range(3 + 1))
    assert pair.p_value == pytest.approx(2 * tail / 2**12, rel=1e-12)
    assert pair.line().startswith(
        "x vs y: 9 wins, 3 losses, 2 ties (0 inconsistent); win rate 0.71 ["
    )
    assert pair.line().endswith("], p = 0.15")
    # The verdicts carry the judge's reasoning; the record loads back equal.
    assert result.judging.verdicts[0].calls[0].reasoning == "I prefer A."
    assert Comparison.model_validate_json(result.model_dump_json()) == result


def test_rejudge_asks_the_judge_only_and_ranks_three_models() -> None:
    x = {p: "good " + p for p in PROMPTS}
    y = {p: ("good " if i % 2 else "poor ") + p for i, p in enumerate(PROMPTS)}
    z = {p: "poor " + p for p in PROMPTS}
    models = [model("gpt-4o-mini", x), model("gpt-4.1-mini", y), model("gpt-4o", z)]
    result = compare(models, PROMPTS, progress=False)
    assert result.judging is None
    asked = [len(m.history) for m in models]
    judged = result.rejudge(PairwiseJudge(FunctionModel(prefers_good, name="gpt-4.1")))
    assert [len(m.history) for m in models] == asked  # no compared model was asked
    ranked = judged.ranking(resamples=200)
    assert ranked.bradley_terry.models == ("fake:gpt-4o-mini", "fake:gpt-4.1-mini", "fake:gpt-4o")
    assert ranked.win_rate["fake:gpt-4o-mini"]["fake:gpt-4.1-mini"] == pytest.approx(0.75)
    with pytest.raises(llmcompare.LLMCompareError, match="not judged"):
        result.ranking()


def test_a_judge_that_costs_money_stops_at_the_budget_and_is_reported_apart(
    capsys: pytest.CaptureFixture[str],
) -> None:
    x, y = fixed("gpt-4o-mini", "yes"), fixed("gpt-4.1-mini", "no")
    judge = PairwiseJudge(ScriptedModel(default=verdict("A"), name="gpt-4o"), max_tokens=1000)
    budget = Budget(max_usd=Decimal("0.02"))
    result = compare([x, y], PROMPTS, judge=judge, budget=budget, concurrency=1, progress=False)
    judging = result.judging
    assert judging is not None
    # Every compared answer is there; the judge was refused once the budget was spent.
    assert all(r.completion is not None for r in result.rows)
    refused = [c for v in judging.verdicts for c in v.calls if c.error is not None]
    assert refused
    assert all("BudgetExceeded" in c.error for c in refused if c.error)
    assert judging.failed == len(refused) < judging.requests
    models_usd = sum(s.cost.usd for s in result.summaries)
    assert models_usd + judging.cost.usd <= budget.max_usd
    # The models' costs are their rows' alone: the judge's are not in them.
    for s in result.summaries:
        assert s.cost.usd == sum(r.cost.usd for r in result.rows if r.model == s.model and r.cost)
    print_report(result)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("judging: $")]
    assert len(lines) == 1
    assert f"({judging.requests} requests" in lines[0]


def judge_over(server: OpenAIServer, **options: object) -> PairwiseJudge:
    gpt = llmcompare.get_model(
        "chatgpt:gpt-4.1", base_url=server.url, api_key="sk-test-judge-key-123456", **options
    )
    return PairwiseJudge(gpt)


def test_a_resumed_run_counts_what_its_timed_out_judge_requests_were_charged(
    tmp_path: Path,
) -> None:
    x, y = fixed("gpt-4o-mini", "yes"), fixed("gpt-4.1-mini", "no")
    budget = Budget(max_usd=Decimal("0.1"))
    out = tmp_path / "run"
    with OpenAIServer() as server, no_wait():
        server.default = ok(verdict("A"), delay=5)  # every reply comes after the judge gave up
        judge = judge_over(server, timeout=0.1)

        def run(budget: Budget) -> Comparison:
            return compare(
                [x, y], PROMPTS, judge=judge, budget=budget, concurrency=1, out=out, cache=False
            )

        with judge.model:
            # The first process stops after the models' answers and two judge attempts, as a
            # Ctrl-C would leave it (a budget is not part of a run's plan: the next call
            # resumes the same run).
            run(Budget(max_usd=budget.max_usd, max_requests=2 * len(PROMPTS) + 2))
            assert len(server.chat_requests) == 2
            resumed = run(budget)
            bodies = [r.body for r in server.chat_requests]
            charges = [judge_charge(b) for b in bodies]
            answers_usd = sum(r.cost.usd for r in resumed.rows if r.cost is not None)
            # A third process reads both processes' charges back, each once: a budget with
            # room for exactly one more attempt sends exactly one.
            third_record = run(Budget(max_usd=answers_usd + sum(charges) + max(charges)))
            third = [r.body for r in server.chat_requests][len(bodies) :]
    assert len(bodies) > 2  # the resumed run asked the judge what still fit
    assert answers_usd + sum(charges) <= budget.max_usd  # type: ignore[operator]
    assert budget.max_usd - answers_usd - sum(charges) < max(charges)  # type: ignore[operator]
    # The record's judging cost is what the budget spent on the judge: every charge, the
    # first process's included, an estimate (no reply arrived to say what was billed).
    assert resumed.judging is not None
    assert resumed.judging.cost.usd == sum(charges)
    assert resumed.judging.cost.status == "estimated"
    assert resumed.judging.cost_line().startswith("judging: ~$")
    assert len(third) == 1
    assert third_record.judging is not None
    assert third_record.judging.cost.usd == sum(charges) + judge_charge(third[0])
    # Each failed line keeps the tokens it was charged (towards max_tokens), every attempt's.
    lines = [json.loads(line) for line in (out / "judgments.jsonl").read_text().splitlines()]
    assert sum(line.get("charged_tokens", 0) for line in lines) == sum(
        judge_bound(b) + b["max_tokens"] for b in [*bodies, *third]
    )


@pytest.mark.parametrize("answered", [False, True], ids=["timed-out", "answered"])
def test_a_panel_of_one_judge_model_counts_each_request_once(
    tmp_path: Path, answered: bool
) -> None:
    # Two members asking the same model the same request: one key in judgments.jsonl.
    items = [PromptItem(id="q", prompt=PROMPTS[0])]
    x, y = fixed("gpt-4o-mini", "yes"), fixed("gpt-4.1-mini", "no")
    answers = {("q", "x", 0): x.generate(PROMPTS[0]), ("q", "y", 0): y.generate(PROMPTS[0])}
    tracker = CostTracker(Budget(max_usd=Decimal(1)))
    with OpenAIServer() as server:
        server.default = ok(verdict("A"), delay=0 if answered else 5)
        gpt = llmcompare.get_model(
            "chatgpt:gpt-4.1", base_url=server.url, api_key="sk-test-judge-key-123456", timeout=1
        )
        panel = JudgePanel(
            [PairwiseJudge(gpt, swap=False, name=n) for n in ("one", "two")], vote="majority"
        )
        with gpt:
            judging = judge_answers(
                panel,
                items,
                answers,
                ["x", "y"],
                tracker=tracker,
                out=tmp_path,
                retry=None,
                progress=False,
            )
        bodies = [r.body for r in server.chat_requests]
    calls = judging.verdicts[0].calls
    if answered:
        # The second member takes the first's reply from the run folder, as from a cache:
        # asked once, paid once.
        assert len(bodies) == 1
        assert [(c.said, c.cached) for c in calls] == [("A", False), ("A", True)]
        assert calls[0].cost is not None
        assert tracker.spent_usd == calls[0].cost.usd > 0
    else:
        # Each member asked, and timed out: two charges, each counted once, each its call's.
        assert len(bodies) == 2
        assert all(c.error is not None for c in calls)
        assert tracker.spent_usd == sum(judge_charge(b) for b in bodies)
        assert judging.cost.usd == tracker.spent_usd


def test_an_identical_request_is_sent_once_and_its_cost_counted_once() -> None:
    # Two models with the same answer: shown in both orders, the judge's two prompts are one.
    items = [PromptItem(id="q", prompt=PROMPTS[0])]
    x, y = fixed("gpt-4o-mini", "Same."), fixed("gpt-4.1-mini", "Same.")
    answers = {("q", "x", 0): x.generate(PROMPTS[0]), ("q", "y", 0): y.generate(PROMPTS[0])}
    tracker = CostTracker()
    with OpenAIServer() as server:
        server.default = ok(verdict("A"))
        gpt = llmcompare.get_model(
            "chatgpt:gpt-4.1", base_url=server.url, api_key="sk-test-judge-key-123456"
        )
        with gpt:
            judging = judge_answers(
                PairwiseJudge(gpt, swap=True),
                items,
                answers,
                ["x", "y"],
                tracker=tracker,
                retry=None,
                progress=False,
            )
        sent = len(server.chat_requests)
    calls = judging.verdicts[0].calls
    assert sent == 1
    assert [c.repeat for c in calls] == [False, True]
    # "A" in both orders: the first answer shown, whichever it was: a tie, inconsistent.
    assert [c.said for c in calls] == ["A", "A"]
    assert judging.verdicts[0].inconsistent
    assert judging.requests == 1
    assert judging.usage == calls[0].usage
    assert calls[0].cost is not None
    assert judging.cost.usd == calls[0].cost.usd == tracker.spent_usd > 0


def judge_charge(body: dict[str, Any]) -> Decimal:
    """What a budget charges a judge attempt that timed out, by hand: its worst case.

    Its input bound (UTF-8 bytes of each message, plus 8 tokens a message and 32 a request)
    at gpt-4.1's $2 per million input tokens, and its max_tokens at $8 per million.
    """
    return (judge_bound(body) * Decimal(2) + body["max_tokens"] * Decimal(8)) / 10**6


def judge_bound(body: dict[str, Any]) -> int:
    """A judge request's input bound, by hand: UTF-8 bytes, 8 a message, 32 a request."""
    return 32 + sum(8 + len(m["content"].encode()) for m in body["messages"])


@pytest.mark.slow
def test_the_chatgpt_backend_judges_over_http_and_a_rerun_asks_it_nothing(
    tmp_path: Path,
) -> None:
    x = {p: "good " + p for p in PROMPTS[:5]}
    y = {p: "poor " + p for p in PROMPTS[:5]}
    with OpenAIServer() as server:
        server.default = ok(verdict("B"))
        judge = judge_over(server)
        with judge.model:
            first = compare(
                [model("gpt-4o-mini", x), model("gpt-4.1-mini", y)],
                PROMPTS[:5],
                judge=judge,
                progress=False,
            )
            asked = len(server.chat_requests)
            again = compare(
                [model("gpt-4o-mini", x), model("gpt-4.1-mini", y)],
                PROMPTS[:5],
                judge=judge,
                progress=False,
            )
        assert asked == 10  # 5 items, both orders
        assert len(server.chat_requests) == asked  # the rerun asked the judge nothing
        body = server.chat_requests[0].body
    # Structured output: the verdict's JSON schema, strict, with the reasoning first.
    schema = body["response_format"]["json_schema"]
    assert schema["strict"] is True
    assert list(schema["schema"]["properties"]) == ["reasoning", "verdict"]
    assert body["temperature"] == 0
    assert first.judging is not None
    assert again.judging is not None
    assert first.judging.pairs[0].position_bias == 1.0  # "B" whatever the order
    assert again.judging.cached == again.judging.requests == 10
    assert first.judging.cost.status == "priced"
    assert first.judging.cost.usd > 0


def write_config(path: Path, models_url: str, judge_url: str) -> None:
    path.write_text(
        f"""
prompts = "p.jsonl"
concurrency = 2

[[models]]
name = "chatgpt:gpt-4o-mini"
options = {{ base_url = "{models_url}" }}

[[models]]
label = "other"
name = "chatgpt:gpt-4o"
options = {{ base_url = "{models_url}" }}
settings = {{ max_tokens = 2 }}

[judge]
name = "chatgpt:gpt-4.1"
options = {{ base_url = "{judge_url}" }}
"""
    )


def judge_asked(server: OpenAIServer) -> Counter[str]:
    return Counter(r.body["messages"][-1]["content"] for r in server.chat_requests)


@pytest.mark.slow
def test_a_run_killed_while_judging_resumes_without_asking_the_judge_twice(
    tmp_path: Path,
) -> None:
    n = 8
    (tmp_path / "p.jsonl").write_text(
        "".join(
            json.dumps({"id": f"q{i}", "prompt": f"question number {i} please"}) + "\n"
            for i in range(n)
        )
    )
    config = tmp_path / "compare.toml"
    out = tmp_path / "run"
    with OpenAIServer() as models, OpenAIServer() as judges:
        write_config(config, models.url, judges.url)
        judges.default = slow(0.25, ok(verdict("A")))  # slow enough to be killed halfway
        args = ["compare", "-c", str(config), "--out", str(out), "--no-progress"]
        first = start(args, judges.url)
        deadline = time.monotonic() + 120
        while len(judges.chat_requests) < 5:
            assert time.monotonic() < deadline, "judging never got going"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        killed_at = len(judges.chat_requests)
        assert killed_at < 2 * n
        judges.default = ok(verdict("A"))
        models_before = len(models.chat_requests)
        again = run("compare", "-c", str(config), "--out", str(out), "--no-progress")
        assert again.returncode == 0, again.stderr
        counts = judge_asked(judges)
        assert len(models.chat_requests) == models_before  # answers read back, not asked
    # Every judge request reached the judge once, except those in flight at the kill (at most
    # the concurrency): their replies never arrived, so they were asked again.
    assert len(counts) == 2 * n
    assert sum(c - 1 for c in counts.values()) <= 2
    assert (out / "judgments.jsonl").exists()
    record = Comparison.load(out / "comparison.json")
    assert record.judging is not None
    assert record.judging.pairs[0].judged == n
    assert "judging: $" in again.stdout


@pytest.mark.slow
def test_the_cli_rejudges_a_run_and_audits_a_judge(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text(
        "".join(json.dumps({"id": f"q{i}", "prompt": f"question {i}"}) + "\n" for i in range(3))
    )
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text(
        "".join(
            json.dumps({"question": "q", "answer_a": a, "answer_b": b, "human": h}) + "\n"
            for a, b, h in [("x", "y", "a"), ("x", "y", "a"), ("u", "v", "b")]
        )
    )
    out = tmp_path / "run"
    with OpenAIServer() as server:
        env = {"OPENAI_BASE_URL": server.url}
        done = run(
            "compare",
            str(tmp_path / "p.jsonl"),
            *("-m", "chatgpt:gpt-4o-mini", "-m", "b=chatgpt:gpt-4o", "-O", "settings.max_tokens=1"),
            *("--out", str(out), "--no-progress"),
            **env,
        )
        assert done.returncode == 0, done.stderr
        answered = len(server.chat_requests)
        server.default = ok(verdict("A"))
        judged = run("rejudge", str(out), "--judge", "chatgpt:gpt-4.1", "--no-progress", **env)
        assert judged.returncode == 0, judged.stderr
        rejudged = server.chat_requests[answered:]
        audited = run("judge-audit", str(labelled), "--judge", "chatgpt:gpt-4.1", **env)
        assert audited.returncode == 0, audited.stderr
    assert {r.body["model"] for r in rejudged} == {"gpt-4.1"}  # only the judge was asked
    assert len(rejudged) == 6
    assert "chatgpt:gpt-4o-mini vs b: 0 wins, 0 losses, 3 ties (3 inconsistent)" in judged.stdout
    assert Comparison.load(out / "comparison.json").judging is not None
    lines = audited.stdout.splitlines()
    assert "judge chatgpt:gpt-4.1: 3 human votes on 2 pairs" in lines[0]
    assert "agreement (ties a class): 0.0%" in audited.stdout  # always "A": a tie once swapped
    assert "position consistency: 0.0%" in audited.stdout


@pytest.mark.slow
def test_the_embedded_llama_judges_with_structured_output(llama: LlamaModel) -> None:
    x = {"Capital of France?": "Paris.", "What is 2 + 2?": "4"}
    y = {"Capital of France?": "Lyon, I think.", "What is 2 + 2?": "22"}
    judge = PairwiseJudge(llama, max_tokens=96)
    result = compare(
        [model("gpt-4o-mini", x), model("gpt-4.1-mini", y)], list(x), judge=judge, progress=False
    )
    assert result.judging is not None
    assert judge.info().structured
    calls = [c for v in result.judging.verdicts for c in v.calls]
    assert len(calls) == 4
    for call in calls:
        assert call.error is None, call.error
        assert call.said in ("A", "B", "tie")
    assert result.judging.cost.status == "estimated"  # a local judge: its compute time
