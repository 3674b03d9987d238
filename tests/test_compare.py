"""The comparison runner, scorers and reports, on fakes and on the real ChatGPT client over HTTP."""

from __future__ import annotations

import csv
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pydantic
import pytest
from pydantic import BaseModel

import llmcompare
from helpers.openai_server import OpenAIServer, ok, rate_limited
from llmcompare import BackendError, Completion, Request, Usage
from llmcompare.backends.fake import FunctionModel, ScriptedModel
from llmcompare.comparison import compare
from llmcompare.cost import LocalHardware
from llmcompare.prompts import PromptItem
from llmcompare.record import Comparison
from llmcompare.report import print_report, summary_table_rows, write_report
from llmcompare.retry import RetryPolicy
from llmcompare.scorers import JsonValid, Judge
from llmcompare.testing import no_wait

if TYPE_CHECKING:
    from llmcompare.backends.llama import LlamaModel

ITEMS = [
    PromptItem(id="capital", prompt="Capital of France?", reference="Paris", scorers=("contains",)),
    PromptItem(id="sum", prompt="17 + 25?", reference="42", scorers=("numeric",)),
    PromptItem(id="json", prompt="A JSON list", scorers=("json", "max_words:5")),
]
ANSWERS = {"Capital of France?": "Paris.", "17 + 25?": "It is 42", "A JSON list": "[1, 2, 3]"}


def oracle(request: Request) -> str:
    return ANSWERS[request.messages[-1].content]


def local_model() -> FunctionModel:
    """Stands in for a local model: open weights, reports compute seconds."""

    def fn(request: Request) -> Completion:
        text = oracle(request)
        return Completion(
            text=text,
            finish_reason="stop",
            usage=Usage(input_tokens=10, output_tokens=len(text.split())),
            model="fake:local",
            compute_s=0.5,
            device="cpu",
        )

    return FunctionModel(fn, name="local", open_weights=True)


def test_compare_gathers_answers_scores_and_aggregates() -> None:
    wrong = FunctionModel(lambda r: "I do not know", name="wrong")
    result = compare([local_model(), wrong], ITEMS, progress=False)

    assert result.run.models == ("fake:local", "fake:wrong")
    assert len(result.rows) == 6
    good = result.row("sum", "fake:local")
    assert good.scores == {"numeric": 1.0}
    assert result.row("json", "fake:local").scores == {"json": 1.0, "max_words:5": 1.0}
    assert result.row("capital", "fake:wrong").scores == {"contains": 0.0}

    local, bad = result.summaries
    assert (local.succeeded, local.success_rate, local.score) == (3, 1.0, 1.0)
    # Its only point: "I do not know" is within max_words:5 (half of the json item's score).
    assert bad.score == pytest.approx((0 + 0 + 0.5) / 3)
    assert local.open_weights
    assert local.usage.input_tokens == 30
    # Local cost: compute seconds on the generic default hardware, with energy and CO2;
    # assumed hardware makes it an estimate.
    assert local.cost.status == "estimated"
    # 3 x 0.5 s at $0.0816/h; each request's cost is rounded to 12 decimal places.
    assert abs(local.cost.usd - Decimal("0.0816") * Decimal("1.5") / 3600) < Decimal("1e-11")
    assert result.run.hardware is not None
    assert local.cost.kwh is not None
    assert local.cost.kwh > 0
    assert local.usd_per_1k_tokens == local.cost.usd * 1000 / local.usage.total_tokens
    # An unpriced API model is said to be unpriced, never $0.
    assert bad.cost.status == "unpriced"
    assert bad.usd_per_1k_tokens is None
    assert result.failed == 0
    # Shared settings default to greedy and reach every request.
    assert result.run.settings == {"temperature": 0.0, "max_tokens": 256}


def test_settings_merge_with_defaults_and_per_model_overrides() -> None:
    a = ScriptedModel(default="Paris", name="a")
    b = ScriptedModel(default="Paris", name="b")
    compare([a, b], ITEMS[:1], max_tokens=5, overrides={"fake:b": {"temperature": 0.7}})
    assert (a.history[0].max_tokens, a.history[0].temperature) == (5, 0.0)
    assert (b.history[0].max_tokens, b.history[0].temperature) == (5, 0.7)


def test_a_model_failing_every_request_does_not_stop_the_comparison() -> None:
    def broken(request: Request) -> str:
        raise BackendError("HTTP 400: bad request", model_id="fake:broken")

    result = compare([FunctionModel(broken, name="broken"), local_model()], ITEMS, progress=False)
    broken_summary, local = result.summaries
    assert broken_summary.succeeded == 0
    assert broken_summary.score is None
    assert local.succeeded == 3
    row = result.row("capital", "fake:broken")
    assert row.completion is None
    assert row.error is not None
    assert row.error.type == "BackendError"
    assert row.error.retryable is False
    assert result.failed == 3


def test_transient_failures_are_retried_and_counted() -> None:
    flaky = ScriptedModel(
        [BackendError("reset", model_id="fake:flaky", retryable=True), "Paris"], name="flaky"
    )
    with no_wait():
        result = compare([flaky], ITEMS[:1], retry=RetryPolicy(attempts=3), progress=False)
    assert result.summaries[0].retries == 1
    assert result.row("capital", "fake:flaky").completion is not None


def test_judge_and_schema_scorers_run_on_every_item() -> None:
    judge = Judge(ScriptedModel(default="7", name="judge"))
    result = compare([local_model()], ITEMS, scorers=[judge, JsonValid()], progress=False)
    assert result.row("capital", "fake:local").scores == {
        "contains": 1.0,
        "judge": pytest.approx(6 / 9),
        "json": 0.0,
    }


def test_unknown_scorer_fails_before_any_model_runs() -> None:
    model = ScriptedModel(default="x")
    bad = PromptItem(id="x", prompt="p", scorers=("fuzzy",))
    with pytest.raises(llmcompare.ConfigurationError, match="fuzzy"):
        compare([model], [bad])
    assert model.history == []


def test_builtin_suite_runs_with_no_prompts() -> None:
    result = compare([ScriptedModel(default="Paris 42", name="s")], progress=False)
    assert len(result.items) == 20
    assert result.summaries[0].requests == 20


def _scripted_server_answers(server: OpenAIServer) -> None:
    server.script(
        *(
            ok(ANSWERS[i.prompt or ""], prompt_tokens=12, completion_tokens=3, cached_tokens=4)
            for i in ITEMS
        )
    )


def test_full_comparison_with_the_chatgpt_backend_over_http(tmp_path: Path) -> None:
    """ChatGPT over real HTTP against a local local model stand-in; every report written."""
    with OpenAIServer() as server:
        _scripted_server_answers(server)
        gpt = llmcompare.get_model(
            "chatgpt:gpt-4o-mini", base_url=server.url, api_key="sk-test-secret-key-123456"
        )
        with gpt:
            # concurrency=1 keeps the scripted replies in item order.
            result = compare([gpt, local_model()], ITEMS, concurrency=1, progress=False)

    api = result.summaries[0]
    assert api.succeeded == 3
    assert api.score == 1.0
    assert api.usage == Usage(input_tokens=36, output_tokens=9, cache_read_tokens=12)
    assert api.cost.status == "priced"
    # gpt-4o-mini: 0.15 per million uncached input, 0.075 cached, 0.60 output.
    expected = (Decimal(24) * Decimal("0.15") + 12 * Decimal("0.075") + 9 * Decimal("0.60")) / 10**6
    assert api.cost.usd == expected
    assert api.revisions

    written = write_report(result, tmp_path, ["json", "csv", "html", "png", "svg"])
    names = {p.name for p in written}
    assert {
        "comparison.json",
        "comparison.csv",
        "report.html",
        "latency.png",
        "latency.svg",
    } <= names
    assert Comparison.load(tmp_path / "comparison.json") == result

    with (tmp_path / "comparison.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    assert {r["model"] for r in rows} == {"chatgpt:gpt-4o-mini", "fake:local"}
    assert rows[0]["score:contains"] == "1.0"
    with (tmp_path / "summary.csv").open() as f:
        summary = list(csv.DictReader(f))
    assert [s["model"] for s in summary] == list(result.run.models)
    assert all(s["score_ci_low"] and s["score_ci_high"] for s in summary)
    with (tmp_path / "pairs.csv").open() as f:
        (pair,) = list(csv.DictReader(f))
    assert (pair["model_a"], pair["model_b"]) == result.run.models
    assert pair["verdict"] == result.differences[0].verdict()

    page = (tmp_path / "report.html").read_text()
    # The answers are one JSON blob the page's script turns into the grid; charts are inline SVG.
    assert page.count('<script type="application/json" id="report-data">') == 1
    assert page.count("<svg") == 5  # four charts and the break-even of the local vs API pair
    assert "hosting fake:local on this hardware costs less than" in page
    assert "llmcompare " + llmcompare.__version__ in page
    assert "sk-test-secret-key-123456" not in page
    assert "sk-test-secret-key-123456" not in (tmp_path / "comparison.json").read_text()
    assert (tmp_path / "latency.svg").read_text().lstrip().startswith("<?xml")


def test_terminal_report_shows_models_side_by_side() -> None:
    from rich.console import Console

    result = compare([local_model(), FunctionModel(lambda r: "[x] nope", name="w")], ITEMS)
    header, *body = summary_table_rows(result)
    assert header == ["model", "fake:local", "fake:w"]
    labels = [r[0] for r in body]
    assert {"latency p50 (s)", "output tokens/s", "cost ($)", "energy (kWh)"} <= set(labels)
    console = Console(record=True, width=120)
    print_report(result, console)
    text = console.export_text()
    assert "[x] nope" in text  # answers are shown as text, not read as markup
    assert "llmcompare " + llmcompare.__version__ in text


def test_comparison_json_is_plain_json() -> None:
    result = compare([local_model()], ITEMS)
    data = json.loads(result.model_dump_json())
    assert data["summaries"][0]["model"] == "fake:local"
    assert isinstance(data["summaries"][0]["cost"]["usd"], str)  # Decimal kept exact


class Person(BaseModel):
    name: str
    age: int


@pytest.mark.slow
def test_real_llama_against_chatgpt_over_http(llama: LlamaModel, tmp_path: Path) -> None:
    """The main job end to end: the embedded Llama vs the ChatGPT backend on a local server."""
    judge = Judge(ScriptedModel(default="6", name="judge"))
    with OpenAIServer() as server:
        gpt = llmcompare.get_model(
            "chatgpt:gpt-4o-mini", base_url=server.url, api_key="sk-test-secret-key-123456"
        )
        with gpt:
            result = compare(
                [llama, gpt],
                scorers=[judge, JsonValid(Person)],
                max_tokens=48,
                progress=False,
            )

    local, api = result.summaries
    assert (local.model, api.model) == ("llama:smollm2-135m-instruct", "chatgpt:gpt-4o-mini")
    assert local.succeeded == api.succeeded == 20
    assert local.latency_p50_s is not None
    assert local.latency_p50_s > 0
    assert local.output_tokens_per_s is not None
    # Every built-in scorer ran, plus the judge and the schema scorer.
    assert set(local.mean_scores) == {
        "contains",
        "numeric",
        "exact",
        "regex",
        "schema",
        "json_fields",
        "max_words:25",
        "max_words:20",
        "judge",
        "json:Person",
    }
    assert result.row("fact-capital-france", local.model).scores["contains"] == 1.0
    # Local cost comes from measured compute time on the stated hardware.
    assert local.open_weights
    assert local.cost.status == "estimated"  # the generic hardware was assumed
    assert local.cost.kwh is not None
    assert local.cost.kwh > 0
    assert "CO2" in local.cost.assumptions
    assert all(
        r.completion is None or r.completion.compute_s
        for r in result.rows
        if r.model == local.model
    )
    assert api.cost.status == "priced"
    assert result.run.hardware is not None
    # Exact token counts from the tokenizer, summed.
    first = result.row("fact-capital-france", local.model).completion
    assert first is not None
    assert first.usage.input_tokens == llama.count_tokens(result.items[0].conversation())

    written = write_report(result, tmp_path, ["json", "csv", "html", "png"])
    # json, three CSVs (answers, summary, pairs), html, and three charts.
    assert len(written) == 8
    assert Comparison.load(tmp_path / "comparison.json") == result
    page = (tmp_path / "report.html").read_text()
    assert page.count("<svg") == 5  # four charts and the break-even chart
    assert "Paris" in page


def test_stated_hardware_makes_local_cost_priced() -> None:
    hardware = LocalHardware(usd_per_hour=Decimal("3.60"), watts=Decimal(100))
    result = compare([local_model()], ITEMS, hardware=hardware)
    local = result.summaries[0]
    assert local.cost.status == "priced"
    assert abs(local.cost.usd - Decimal("3.60") * Decimal("1.5") / 3600) < Decimal("1e-11")
    assert local.cost.kwh is not None
    assert abs(local.cost.kwh - Decimal(100) * Decimal("1.5") / 3600 / 1000) < Decimal("1e-11")
    assert result.run.hardware == hardware


def test_a_model_that_cannot_load_becomes_error_rows() -> None:
    class Unloadable(FunctionModel):
        def warm_up(self) -> None:
            raise llmcompare.ConfigurationError("weights missing: pip install the model")

    result = compare([Unloadable(oracle, name="unloadable"), local_model()], ITEMS)
    broken, local = result.summaries
    assert broken.succeeded == 0
    assert local.succeeded == 3
    error = result.row("sum", "fake:unloadable").error
    assert error is not None
    assert error.type == "ConfigurationError"


def test_duplicate_models_and_a_bare_string_are_refused() -> None:
    model = local_model()
    with pytest.raises(llmcompare.ConfigurationError, match="once"):
        compare([model, model], ITEMS)
    with pytest.raises(llmcompare.ConfigurationError, match="pass a list"):
        compare([model], "What is 2 + 2?")


def test_errors_from_any_backend_are_redacted_in_the_record() -> None:
    def leaky(request: Request) -> str:
        raise RuntimeError("auth failed for key sk-proj-abcdefghijklmnop1234")

    result = compare([FunctionModel(leaky, name="leaky")], ITEMS[:1])
    assert "sk-proj" not in result.model_dump_json()
    assert "[REDACTED]" in result.rows[0].error.message  # type: ignore[union-attr]


def test_top_level_exports_are_lazy_and_work() -> None:
    assert llmcompare.compare is compare
    assert callable(llmcompare.generate_many)
    assert llmcompare.CostTracker.__name__ == "CostTracker"


# -- numbers a team can decide on -------------------------------------------------------------


N_ITEMS = 200
# A right on 140, B on 110: both right on 100, A alone on 40, B alone on 10, neither on 50.
A_RIGHT = set(range(0, 140))
B_RIGHT = set(range(0, 100)) | set(range(140, 150))


def yes_on(right: set[int], name: str) -> FunctionModel:
    def answer(request: Request) -> str:
        index = int(request.messages[-1].content.split()[-1])
        return "yes" if index in right else "no"

    return FunctionModel(answer, name=name)


def yes_items(n: int = N_ITEMS) -> list[dict[str, object]]:
    return [{"id": f"q{i}", "prompt": f"question {i}", "reference": "yes"} for i in range(n)]


def exact_mcnemar(wins: int, losses: int) -> float:
    """The two-sided exact binomial p-value for p = 0.5, from the binomial coefficients."""
    n = wins + losses
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def test_a_paired_difference_against_the_exact_binomial() -> None:
    result = compare([yes_on(A_RIGHT, "a"), yes_on(B_RIGHT, "b")], yes_items(), progress=False)
    (pair,) = result.differences
    d = pair.difference
    assert (pair.model_a, pair.model_b) == ("fake:a", "fake:b")
    assert (d.n, d.wins, d.ties, d.losses) == (200, 40, 150, 10)
    assert d.delta == pytest.approx(0.15)
    assert d.p_value == pytest.approx(exact_mcnemar(40, 10), rel=1e-9)
    assert d.ci_low < 0.15 < d.ci_high
    assert d.ci_low > 0  # 40 against 10: a real difference, and the interval says so
    assert "fake:a \u2212 fake:b = +0.15" in pair.line()
    assert "40 wins / 10 losses / 150 ties" in pair.line()
    a, b = result.summaries
    assert (a.score, b.score) == (pytest.approx(0.70), pytest.approx(0.55))
    assert a.n_scored == b.n_scored == 200
    assert a.score_ci_method == "wilson"
    assert a.score_ci is not None
    # The Wilson interval, computed from its formula.
    z, p, n = 1.959963984540054, 0.70, 200
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert a.score_ci == (pytest.approx(centre - half), pytest.approx(centre + half))
    # The same pair, asked for by name and by scorer.
    again = result.difference("fake:a", "fake:b", scorer="contains")
    assert again.difference == d


def test_identical_models_differ_by_nothing_and_reruns_repeat_exactly() -> None:
    first = compare([yes_on(A_RIGHT, "a"), yes_on(A_RIGHT, "b")], yes_items(), progress=False)
    d = first.differences[0].difference
    assert (d.delta, d.p_value, d.ties) == (0.0, 1.0, 200)
    graded = [FunctionModel(lambda r: "yes no", name=n) for n in ("x", "y")]
    items = [{**i, "scorers": ["max_words:1", "contains"]} for i in yes_items(30)]
    one = compare(graded, items, progress=False)
    two = compare(graded, items, progress=False)
    assert one.differences == two.differences
    assert one.summaries[0].score_ci == two.summaries[0].score_ci


def test_a_model_that_fails_half_the_items_is_scored_on_the_common_items_and_flagged() -> None:
    def half(request: Request) -> str:
        index = int(request.messages[-1].content.split()[-1])
        if index % 2:
            raise BackendError("HTTP 400: refused", model_id="fake:half")
        return "yes" if index < 4 else "no"  # right on 0 and 2 only

    right = {0, 1, 2, 3, 5, 7}
    result = compare([yes_on(right, "a"), FunctionModel(half, name="half")], yes_items(10))
    a, b = result.summaries
    common = [0, 2, 4, 6, 8]  # the items both answered
    assert a.n_scored == b.n_scored == len(common)
    assert a.score == pytest.approx(sum(i in right for i in common) / len(common))
    assert b.score == pytest.approx(2 / 5)
    assert b.score_failures_as_zero == pytest.approx(2 / 10)
    assert b.failed == 5
    assert result.differences[0].difference.n == len(common)
    from llmcompare.report import notes

    assert any(line.startswith("! fake:half failed 5 of 10") for line in notes(result))


def test_samples_repeat_each_item_with_their_own_recorded_seed() -> None:
    model = ScriptedModel(default="yes", name="s")
    result = compare([model], yes_items(3), samples=3, seed=10, progress=False)
    assert len(result.rows) == 9
    assert sorted((r.item_id, r.sample, r.seed) for r in result.rows) == [
        (f"q{i}", s, 10 + s) for i in range(3) for s in range(3)
    ]
    assert sorted(r.seed for r in model.history) == [10, 10, 10, 11, 11, 11, 12, 12, 12]
    assert result.run.samples == 3
    assert result.summaries[0].n_scored == 3  # three items, not nine: samples are one cluster


@pytest.mark.parametrize(
    ("item", "scorers", "match"),
    [
        ({"reference": "(unclosed", "scorers": ["regex"]}, (), "does not compile"),
        ({"reference": "about ten", "scorers": ["numeric"]}, (), "has no number"),
        ({"reference": "  ", "scorers": ["contains"]}, (), "non-empty reference"),
        ({"reference": "x"}, ("not a scorer",), "callables"),
    ],
)
def test_a_reference_a_scorer_cannot_use_is_refused_before_anything_is_sent(
    item: dict[str, object], scorers: tuple[object, ...], match: str
) -> None:
    model = ScriptedModel(default="yes")
    with pytest.raises(llmcompare.ConfigurationError, match=match):
        compare([model], [{"id": "i", "prompt": "p", **item}], scorers=scorers)  # type: ignore[arg-type]
    assert model.history == []


def test_duplicate_ids_and_unknown_overrides_are_refused_before_anything_is_sent() -> None:
    model = ScriptedModel(default="yes", name="s")
    with pytest.raises(llmcompare.ConfigurationError, match=r"unique.*\['x'\]"):
        compare([model], [{"id": "x", "prompt": "a"}, {"id": "x", "prompt": "b"}])
    with pytest.raises(llmcompare.ConfigurationError, match="fake:typo"):
        compare([model], ["a"], overrides={"fake:typo": {"temperature": 1.0}})
    with pytest.raises(pydantic.ValidationError):
        compare([model], ["a"], overrides={"fake:s": {"temperature": -1.0}})
    assert model.history == []


def chatgpt(server: OpenAIServer, name: str = "gpt-4o-mini") -> llmcompare.Model:
    from llmcompare.backends.chatgpt import ChatGPTModel, ChatGPTOptions

    return ChatGPTModel(name, ChatGPTOptions(base_url=server.url, api_key="sk-test-0"))


def test_a_gpt5_row_records_that_temperature_was_not_sent() -> None:
    with OpenAIServer() as server, chatgpt(server, "gpt-5.4-mini") as model:
        with pytest.warns(UserWarning, match="temperature"):
            result = compare([model], ["Say hi"], progress=False)
        (body,) = [r.body for r in server.chat_requests]
    assert "temperature" not in body
    assert body["max_completion_tokens"] == 256
    sent = result.rows[0].completion.sent  # type: ignore[union-attr]
    assert sent is not None
    assert "temperature" not in sent.params
    assert sent.params["max_completion_tokens"] == 256
    assert any("temperature=0.0 not sent" in n for n in sent.notes)
    summary = result.summaries[0]
    assert any("temperature" in n for n in summary.adjustments)
    from llmcompare.report import notes

    assert any("temperature=0.0 not sent" in line for line in notes(result))


def test_compare_streams_api_models_so_every_row_has_a_first_token_time() -> None:
    with OpenAIServer() as server, chatgpt(server) as model:
        result = compare([model], ["one", "two", "three"], progress=False)
        assert all(r.body.get("stream") is True for r in server.chat_requests)
    for row in result.rows:
        c = row.completion
        assert c is not None
        assert c.ttft_s is not None
        assert 0 < c.ttft_s <= c.latency_s
        assert c.sent is not None
        assert c.sent.params["temperature"] == 0.0  # a classic model gets the shared setting
    assert result.summaries[0].ttft_p50_s is not None


def test_a_retried_request_in_a_comparison_reports_its_wait() -> None:
    with OpenAIServer() as server, chatgpt(server) as model:
        server.script(rate_limited(retry_after="1"), ok("hello"))
        result = compare([model], ["hi"], progress=False)
    c = result.rows[0].completion
    assert c is not None
    assert c.attempts == 2
    assert c.latency_s >= 1.0
    assert result.summaries[0].retries == 1


def test_a_score_outside_0_1_is_dropped_with_a_warning_not_a_lost_run() -> None:
    def length(completion: Completion, item: PromptItem) -> float:
        return float(len(completion.text))

    model = ScriptedModel(default="eleven char", name="s")
    with pytest.warns(RuntimeWarning, match=r"must be in \[0, 1\]"):
        result = compare([model], ["a", "b"], scorers=[length], progress=False)
    assert result.rows[0].completion is not None
    assert result.rows[0].scores == {"length": None}
    with pytest.raises(llmcompare.ConfigurationError, match="stats_seed"):
        compare([model], ["a"], stats_seed=-1)


def test_a_model_that_answered_nothing_does_not_blank_the_others() -> None:
    def broken(request: Request) -> str:
        raise BackendError("HTTP 400: bad request", model_id="fake:broken")

    result = compare(
        [yes_on(A_RIGHT, "a"), FunctionModel(broken, name="broken"), yes_on(B_RIGHT, "b")],
        yes_items(),
        progress=False,
    )
    a, dead, b = result.summaries
    assert (a.n_scored, b.n_scored) == (200, 200)
    assert (a.score, b.score) == (pytest.approx(0.70), pytest.approx(0.55))
    assert dead.score is None
    assert dead.n_scored == 0
    assert [(p.model_a, p.model_b) for p in result.differences] == [("fake:a", "fake:b")]


# issue 22, item 4
@pytest.mark.parametrize("damage", ["empty", "cut"])
def test_a_damaged_record_is_rebuilt_from_the_answers_without_sending(
    tmp_path: Path, damage: str
) -> None:
    calls: list[str] = []

    def answer(request: Request) -> str:
        calls.append(request.messages[-1].content)
        return oracle(request)

    model = FunctionModel(answer, name="m")
    out = tmp_path / "run"
    first = compare([model], ITEMS, out=out, progress=False)
    record = out / "comparison.json"
    # What a kill or a full disk in the middle of a non-atomic write leaves behind.
    record.write_bytes(b"" if damage == "empty" else record.read_bytes()[:200])
    with pytest.raises(llmcompare.ConfigurationError) as refused:
        Comparison.load(record)
    message = str(refused.value)
    assert "\n" not in message
    assert str(record) in message
    assert "answers.jsonl" in message  # the fix: run the same comparison on the folder
    assert "validation error" not in message.lower()  # not pydantic's raw text
    again = compare([model], ITEMS, out=out, progress=False)
    assert len(calls) == len(ITEMS)  # rebuilt from answers.jsonl: nothing sent again
    assert [r.completion for r in again.rows] == [r.completion for r in first.rows]
    assert [r.scores for r in again.rows] == [r.scores for r in first.rows]
    assert Comparison.load(record).rows == again.rows


# issue 22, item 4
def test_the_record_is_written_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    out = tmp_path / "run"
    compare([local_model()], ITEMS, out=out, progress=False)
    record = out / "comparison.json"
    before = record.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        Comparison.load(record).save(record)
    # The record in place is the whole earlier one, and no temporary file is left behind.
    assert record.read_bytes() == before
    assert sorted(p.name for p in out.iterdir() if "comparison" in p.name) == ["comparison.json"]
