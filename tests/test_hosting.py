"""Hosting costs: the decision survives a cached rerun, and its figures read as plain numbers."""

from __future__ import annotations

import platform
import re
import sys
import time
import types
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from helpers import report_data
from llmcompare import Completion, Request
from llmcompare.backends.fake import FunctionModel
from llmcompare.comparison import compare
from llmcompare.cost import Cost, register_price, reset_prices
from llmcompare.record import Comparison
from llmcompare.report import print_report, write_html
from llmcompare.runs import ResponseCache

# A number in exponent notation as Python or Decimal writes it: 1.98e-05, 6.74602E-7, 1e+06.
EXPONENT = re.compile(r"\d[eE][-+]?\d")


class _Cached(FunctionModel):
    """A deterministic function model the response cache may keep (a fake never is)."""

    def cache_identity(self) -> dict[str, Any] | None:
        return {"function": self.id}


def _models() -> list[FunctionModel]:
    local, api = report_data.local_model(), report_data.api_model()

    def slow_local(request: Request) -> Completion:
        time.sleep(0.01)  # something to time: the throughput is output tokens over it
        return local._fn(request)  # the helper's answers, cacheable

    return [
        _Cached(slow_local, name="local", open_weights=True),
        _Cached(api._fn, name="api"),
    ]


@pytest.fixture
def priced() -> Any:
    register_price("fake:api", input="0.50", output="1.50", source="test price")
    yield
    reset_prices()


def _run(cache: Path) -> Comparison:
    return compare(
        _models(),
        report_data.ITEMS,
        cache=ResponseCache(cache),
        hardware=report_data.HARDWARE,
        progress=False,
        concurrency=1,
    )


def test_a_fully_cached_rerun_decides_like_the_first_run(tmp_path: Path, priced: Any) -> None:
    first = _run(tmp_path / "cache.db")
    again = _run(tmp_path / "cache.db")
    local = again.summaries[0]
    assert local.cached == local.succeeded == 6  # nothing sent: every answer from the cache
    found, before = (
        again.break_even("fake:local", "fake:api"),
        first.break_even("fake:local", "fake:api"),
    )
    assert found.crossover is not None
    assert found.sentence() == before.sentence()
    assert "cannot be costed" not in found.sentence()
    # The throughput is the first run's, from the answers' own stamps: output tokens over the
    # span from the first request's start to the last answer (at most their summed latency).
    done = [r.completion for r in first.rows if r.model == "fake:local" and r.completion]
    ends = [c.measured_at.timestamp() for c in done if c.measured_at is not None]
    span = max(ends) - min(e - c.latency_s for e, c in zip(ends, done, strict=True))
    span = min(span, sum(c.latency_s for c in done))
    tokens = sum(c.usage.output_tokens for c in done)
    assert local.output_tokens_per_s == pytest.approx(tokens / span)
    assert local.timed_on == platform.node()
    assert local.timed_at == min(c.measured_at for c in done if c.measured_at is not None)
    assert first.summaries[0].timed_at is None  # the first run's figures are its own
    # The decision says where and when the figure was measured.
    assert any(f"by an earlier run on {platform.node()} at " in a for a in found.assumptions)


def test_a_rerun_over_a_cache_without_timings_says_why_and_refresh_measures(
    tmp_path: Path,
) -> None:
    import json
    import sqlite3

    from rich.console import Console

    from helpers.openai_server import SlottedServer
    from llmcompare.backends.chatgpt import ChatGPTModel, ChatGPTOptions
    from llmcompare.decision import UNTIMED_CACHE

    path = tmp_path / "cache" / "responses.sqlite3"

    def said(server: Any, refresh: bool = False) -> str:
        """The run's terminal report, as ``compare [--refresh]`` prints it, on one line."""
        options = ChatGPTOptions(base_url=server.url, api_key="sk-test-0")
        # Through the library, not three CLI processes: the same run, seconds faster.
        with ChatGPTModel("meta-llama/Llama-3.1-8B-Instruct", options) as served:
            record = compare(
                [served],
                [f"q{i}" for i in range(3)],
                hosted={HOSTED: "h100"},
                what_if=["chatgpt:gpt-5.4-mini"],
                cache=ResponseCache(path),
                refresh=refresh,
                progress=False,
            )
        console = Console(record=True, width=400)
        print_report(record, console)
        return " ".join(console.export_text().split())

    with SlottedServer(2, 0.01, "one two three four") as server:
        said(server)
        # The cache as an older llmcompare wrote it: answers without their measurement.
        with sqlite3.connect(path) as db:
            for key, stored in db.execute("SELECT key, completion FROM responses").fetchall():
                old = json.loads(stored)
                assert old.pop("measured_at")
                assert old.pop("measured_on")
                db.execute(
                    "UPDATE responses SET completion = ? WHERE key = ?", (json.dumps(old), key)
                )
        sent = len(server.chat_requests)
        again = said(server)
        assert len(server.chat_requests) == sent  # every answer from the cache
        measured = said(server, refresh=True)
        assert len(server.chat_requests) == 2 * sent  # refresh sent them again
    assert (
        f"break-even: {HOSTED} vs chatgpt:gpt-5.4-mini: {HOSTED} cannot be costed ({UNTIMED_CACHE})"
    ) in again
    assert UNTIMED_CACHE == (
        "answers from a cache written before timings were kept; rerun with --refresh "
        "(refresh=True) to measure"
    )
    assert "cannot be costed" not in measured
    # Measured again: a verdict, whichever way the fresh timings make it go.
    assert re.search(
        r"break-even: (above ~[\d,]+ requests a month|\S+ vs \S+: \S+ costs less at every volume)",
        measured,
    )


def _exponent_record() -> Comparison:
    """The report record with figures that Python and Decimal write with an exponent."""
    record = report_data.comparison()
    local, api = record.summaries
    local = local.model_copy(
        update={
            "cost": Cost(usd=Decimal("1.98e-05"), kwh=Decimal("6.74602e-07"), g_co2=Decimal(0)),
            "output_tokens_per_s": 1234567.8,
        }
    )
    api = api.model_copy(update={"cost": Cost(usd=Decimal("1234567.8"))})
    rows = tuple(
        r.model_copy(update={"cost": Cost(usd=Decimal("1.98e-05"), kwh=Decimal("6.74602e-07"))})
        if r.model == "fake:local" and r.cost is not None
        else r
        for r in record.rows
    )
    return record.model_copy(update={"summaries": (local, api), "rows": rows})


def test_no_figure_is_written_with_an_exponent(tmp_path: Path) -> None:
    from rich.console import Console

    record = _exponent_record()
    console = Console(record=True, width=240)
    print_report(record, console)
    text = console.export_text()
    assert not EXPONENT.search(text), EXPONENT.findall(text)
    assert "0.0000198" in text  # the local model's dollars, three significant figures
    assert "1,234,567.80" in text  # the API's, thousands separated
    page = write_html(record, tmp_path / "report.html").read_text(encoding="utf-8")
    assert not EXPONENT.search(page), EXPONENT.findall(page)
    assert "0.000000674602" in page  # a row's kWh in the page's data, in full


def test_the_decision_names_each_cost_basis_and_says_the_break_even_first() -> None:
    from rich.console import Console

    record = report_data.comparison()
    console = Console(record=True, width=240)
    print_report(record, console)
    lines = console.export_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("break-even:"))
    assert lines[first].endswith("(a machine kept on all month)")
    figures = lines[first + 1 : first + 3]
    # The API: $0.00125 a request is $1.25 per 1,000; its 3 correct answers of 5 cost $6.25
    # over 3, per 1,000 correct answers $2.08.
    assert figures[1] == (
        "fake:api: $1.25 per 1,000 requests, $2.08 per 1,000 correct answers (paid per token)"
    )
    assert figures[0].startswith("fake:local: $")
    assert "(paid per second of use); " in figures[0]
    assert "Wh per 1,000 requests" in figures[0]


def test_a_volume_beyond_an_api_models_stated_limits_is_said_in_the_decision(
    tmp_path: Path,
) -> None:
    from rich.console import Console

    from llmcompare.decision import rate_limit_note
    from llmcompare.ratelimit import RateLimits

    record = report_data.comparison()
    # fake:api answers 5 requests of 1,000 input + 500 output tokens: 1,500 tokens a request.
    limits = {"fake:api": RateLimits(rpm=10, tpm=21_000)}
    record = record.model_copy(
        update={"run": record.run.model_copy(update={"rate_limits": limits})}
    )
    found = record.break_even("fake:local", "fake:api", volume=640_000)
    assert found.crossover == pytest.approx(584_000)
    # Hand-computed, a month of 730 hours (the break-even's) = 43,800 minutes: 584,000 /
    # 43,800 = 13.3 requests a minute, x 1,500 = 20,000 tokens (under 21,000 tpm); 640,000 /
    # 43,800 = 14.6 a minute, 21,918 tokens (over it).
    assert found.limits == (
        "at 584,000 requests a month fake:api needs 13.3 requests (20,000 tokens) a minute on "
        "average (more at peak); its stated limit is 10 rpm: one key cannot serve it",
        "at 640,000 requests a month fake:api needs 14.6 requests (21,918 tokens) a minute on "
        "average (more at peak); its stated limits are 10 rpm and 21,000 tpm: one key cannot "
        "serve it",
    )
    # The month is the break-even's 730 hours: 438,000 requests a month are exactly 10 a
    # minute, within 10 rpm (a 30-day month would make them 10.1, over it).
    assert rate_limit_note(record, "fake:api", 438_000) is None
    assert rate_limit_note(record, "fake:api", 438_001) is not None
    # Limits the volume keeps within say nothing.
    roomy = {"fake:api": RateLimits(rpm=15)}
    quiet = record.model_copy(update={"run": record.run.model_copy(update={"rate_limits": roomy})})
    assert quiet.break_even("fake:local", "fake:api").limits == ()
    # The terminal and the page say it under the break-even sentence.
    console = Console(record=True, width=240)
    print_report(record, console)
    lines = console.export_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("break-even:"))
    assert lines[first + 1] == f"rate limits: {found.limits[0]}"
    page = write_html(record, tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"rate limits: {found.limits[0]}" in page


def test_each_models_stated_limits_reach_the_record(priced: Any) -> None:
    from llmcompare.ratelimit import RateLimits

    local, api = _models()
    record = compare(
        [local, api],
        report_data.ITEMS[:2],
        rpm=100_000,
        limits={"fake:api": RateLimits(tpm=1_000_000)},
        cache=False,
        progress=False,
    )
    assert record.run.rate_limits == {
        "fake:local": RateLimits(rpm=100_000),
        "fake:api": RateLimits(tpm=1_000_000),
    }
    again = Comparison.model_validate_json(record.model_dump_json())
    assert again.run.rate_limits == record.run.rate_limits


# -- hosted models ---------------------------------------------------------------------------------

HOSTED = "chatgpt:meta-llama/Llama-3.1-8B-Instruct"
H100 = {"usd_per_hour": 2.99, "watts": 700, "name": "1x H100 80GB on demand"}


def _union_seconds(done: list[Completion]) -> float:
    """The seconds at least one request was in flight, computed here from the stamps."""
    spans = sorted(
        (c.measured_at.timestamp() - c.latency_s, c.measured_at.timestamp())
        for c in done
        if c.measured_at is not None
    )
    total, (start, stop) = 0.0, spans[0]
    for a, b in spans[1:]:
        if a > stop:
            total, start, stop = total + stop - start, a, b
        else:
            stop = max(stop, b)
    return total + stop - start


@pytest.mark.filterwarnings("error::llmcompare.cost.UnpricedModelWarning")
def test_a_hosted_model_behind_a_server_costs_its_machine_time() -> None:
    from helpers.openai_server import OpenAIServer, ok
    from llmcompare.backends.chatgpt import ChatGPTModel, ChatGPTOptions

    items = [f"question {i}" for i in range(6)]
    with OpenAIServer() as server:
        options = ChatGPTOptions(base_url=server.url, api_key="sk-test-0")
        # Each reply takes 0.05 s at the server: two in flight overlap, so busy < summed latency.
        server.script(*(ok("Paris is the capital", delay=0.05) for _ in range(12)))
        with (
            ChatGPTModel("meta-llama/Llama-3.1-8B-Instruct", options) as served,
            ChatGPTModel("gpt-4o-mini", options) as api,
        ):
            record = compare(
                [served, api],
                items,
                hosted={HOSTED: H100},
                cache=False,
                progress=False,
                concurrency=2,
            )
    hardware = record.run.hosted[HOSTED]
    assert hardware.name == "1x H100 80GB on demand"
    assert hardware.usd_per_hour == Decimal("2.99")
    summary = next(s for s in record.summaries if s.model == HOSTED)
    assert summary.open_weights  # open weights in the record, though reached over HTTP
    rows = [r for r in record.rows if r.model == HOSTED]
    done = [r.completion for r in rows if r.completion is not None]
    assert len(done) == 6, [r.error for r in rows]
    # The rows' costs sum to the busy time times the rate: machine time, not a token price.
    busy = _union_seconds(done)
    total = sum(float(r.cost.usd) for r in rows if r.cost is not None)
    # To rounding: each answer's times are kept to the microsecond, so the busy time the test
    # rebuilds from them may differ from the one measured by up to a microsecond an answer.
    tick = len(done) * 1e-6
    assert total == pytest.approx(busy * 2.99 / 3600, abs=tick * 2.99 / 3600)
    assert busy < sum(c.latency_s for c in done)  # overlapping requests are not paid twice
    kwh = sum(float(r.cost.kwh) for r in rows if r.cost is not None and r.cost.kwh is not None)
    assert kwh == pytest.approx(busy * 700 / 3_600_000, abs=tick * 700 / 3_600_000)
    # The break-even against the API model follows, on the hosted machine's rate.
    found = record.break_even(HOSTED, "chatgpt:gpt-4o-mini")
    local, _ = found.lines
    assert local is not None
    assert local.local
    assert local.fixed_usd == pytest.approx(2.99 * 730)
    assert any("hosted on 1x H100 80GB on demand at $2.99/h" in a for a in found.assumptions)


def test_a_preset_machine_names_its_source_and_the_users_figures_win() -> None:
    from llmcompare.cost import hosted_hardware, hosting_presets
    from llmcompare.errors import ConfigurationError

    h100 = hosting_presets()["h100"]
    assert h100.watts == Decimal(700)
    assert "https://" in h100.notes
    assert "checked 20" in h100.notes
    mine = hosted_hardware({"preset": "h100", "usd_per_hour": 2.10})
    assert mine.usd_per_hour == Decimal("2.1")
    assert mine.watts == Decimal(700)
    assert "the user's usd_per_hour" in mine.notes
    with pytest.raises(ConfigurationError, match="not a known machine"):
        hosted_hardware("h900")


def test_hosted_from_a_config_file_and_from_a_flag(tmp_path: Path) -> None:
    from llmcompare.config import load_config, models_from_flags

    path = tmp_path / "llmcompare.toml"
    path.write_text(
        '[[models]]\nname = "chatgpt:meta-llama/Llama-3.1-8B-Instruct"\n'
        'options = { base_url = "http://127.0.0.1:8000/v1" }\n'
        'hosted = { usd_per_hour = 2.99, watts = 700, name = "1x H100 80GB on demand" }\n',
        encoding="utf-8",
    )
    (model,) = load_config(path).models
    assert model.hosted is not None
    assert model.hosted.usd_per_hour == Decimal("2.99")
    (flagged,) = models_from_flags([("-m", HOSTED), ("-O", "hosted=l4")])
    assert flagged.hosted is not None
    assert flagged.hosted.name.startswith("1x L4")


class _FakeNvml(types.ModuleType):
    """A stand-in for nvidia-ml-py's ``pynvml`` whose GPU energy counter is scripted.

    The one place a fake is right: no GPU (and no NVIDIA driver) exists on the machines the
    tests run on, and what is checked is llmcompare's arithmetic over the counter's readings,
    not NVML. ``readings`` are the millijoules the counter gives, one per read (the last
    repeats).
    """

    def __init__(self, readings: list[int]) -> None:
        super().__init__("pynvml")
        self.readings = readings
        self.reads = 0
        self.handles: list[int] = []

    def nvmlInit(self) -> None:
        pass

    def nvmlDeviceGetHandleByIndex(self, index: int) -> tuple[str, int]:
        self.handles.append(index)
        return ("gpu", index)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: tuple[str, int]) -> int:
        value = self.readings[min(self.reads, len(self.readings) - 1)]
        self.reads += 1
        return value


def _served_and_api(server: Any, cache: bool | ResponseCache = False, **kwargs: Any) -> Comparison:
    from helpers.openai_server import ok
    from llmcompare.backends.chatgpt import ChatGPTModel, ChatGPTOptions

    options = ChatGPTOptions(base_url=server.url, api_key="sk-test-0")
    server.script(*(ok("Paris is the capital", delay=0.02) for _ in range(12)))
    with (
        ChatGPTModel("meta-llama/Llama-3.1-8B-Instruct", options) as served,
        ChatGPTModel("gpt-4o-mini", options) as api,
    ):
        return compare(
            [served, api],
            [f"question {i}" for i in range(6)],
            cache=cache,
            progress=False,
            concurrency=2,
            **kwargs,
        )


def test_a_hosted_gpu_on_this_machine_is_measured_by_its_nvml_counter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from helpers.openai_server import OpenAIServer
    from llmcompare.decision import figures

    # Read once when asked for (is it there?), then before and after the model's turn.
    nvml = _FakeNvml([9_000_000, 9_000_000, 9_000_000 + 7_200_000])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    with OpenAIServer() as server:
        record = _served_and_api(server, hosted={HOSTED: {"preset": "h100", "gpu": 0}})
    assert nvml.handles == [0]
    assert nvml.reads == 3
    assert record.run.hosted[HOSTED].gpu == 0
    rows = [r for r in record.rows if r.model == HOSTED and r.cost is not None]
    assert len(rows) == 6
    # The rows' energy is the counter's delta: 7,200,000 mJ = 7,200 J = 2 Wh = 0.002 kWh.
    kwh = sum(r.cost.kwh for r in rows if r.cost.kwh is not None)
    assert float(kwh) == pytest.approx(0.002, abs=1e-12)
    assert all(r.cost.energy == "measured-nvml" for r in rows)
    (figure,) = [f for f in figures(record) if f.model == HOSTED]
    assert figure.wh_per_1k_requests == pytest.approx(2 / 6 * 1000)
    assert figure.energy_basis == "measured by NVML on GPU 0"
    assert "Wh per 1,000 requests (measured by NVML on GPU 0)" in figure.line()
    found = record.break_even(HOSTED, "chatgpt:gpt-4o-mini")
    assert any("(measured by NVML on GPU 0)" in a for a in found.assumptions)


def test_a_cached_rerun_of_a_measured_gpu_names_the_stated_watts_everywhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from helpers.openai_server import OpenAIServer
    from llmcompare.decision import figures

    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml([9_000_000, 9_000_000, 16_200_000]))
    hosted = {HOSTED: {"preset": "h100", "gpu": 0}}
    with OpenAIServer() as server:
        first = _served_and_api(server, ResponseCache(tmp_path / "c.db"), hosted=hosted)
        sent = len(server.chat_requests)
        again = _served_and_api(server, ResponseCache(tmp_path / "c.db"), hosted=hosted)
        assert len(server.chat_requests) == sent  # every answer from the cache
    # The first run measured the GPU; the rerun sent nothing, so nothing was measured: its
    # energy is the stated 700 W over the busy time, and every place says so.
    assert {r.cost.energy for r in first.rows if r.model == HOSTED and r.cost} == {"measured-nvml"}
    assert {r.cost.energy for r in again.rows if r.model == HOSTED and r.cost} == {"estimated"}
    (figure,) = [f for f in figures(again) if f.model == HOSTED]
    assert figure.energy_basis == "stated 700 W x busy time"
    page = write_html(again, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "NVML" not in page
    assert f"<dt>hosted cost basis: {HOSTED}</dt>" in page
    assert "energy stated 700 W x busy time" in page
    page = write_html(first, tmp_path / "first.html").read_text(encoding="utf-8")
    assert "energy measured by NVML on GPU 0" in page


def test_a_hosted_model_without_a_gpu_names_its_stated_watts() -> None:
    from helpers.openai_server import OpenAIServer
    from llmcompare.decision import figures

    with OpenAIServer() as server:
        record = _served_and_api(server, hosted={HOSTED: "h100"})
    (figure,) = [f for f in figures(record) if f.model == HOSTED]
    assert figure.energy_basis == "stated 700 W x busy time"
    found = record.break_even(HOSTED, "chatgpt:gpt-4o-mini")
    assert any("(stated 700 W x busy time)" in a for a in found.assumptions)


def test_a_presets_source_and_check_date_reach_the_record_and_every_cost_basis(
    tmp_path: Path,
) -> None:
    import json

    from rich.console import Console

    from helpers.openai_server import OpenAIServer

    root = Path(__file__).resolve().parents[1]
    preset = json.loads((root / "src/llmcompare/cost/hosting.json").read_text("utf-8"))["h100"]
    said = f"{preset['source']}; checked {preset['checked']}"
    with OpenAIServer() as server:
        record = _served_and_api(server, hosted={HOSTED: "h100"})
    assert said in record.run.hosted[HOSTED].notes  # the record
    rows = [r for r in record.rows if r.model == HOSTED and r.cost is not None]
    assert all(said in r.cost.assumptions for r in rows)  # each row's cost
    found = record.break_even(HOSTED, "chatgpt:gpt-4o-mini")
    assert f"{HOSTED}: machine rates of {preset['name']} ({said})" in found.assumptions
    console = Console(record=True, width=400)
    print_report(record, console)
    assert said in console.export_text()  # the terminal's cost basis note
    page = write_html(record, tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"<dt>hosted cost basis: {HOSTED}</dt>" in page
    assert said in page


def test_the_guides_preset_table_says_each_presets_price_source_and_check_date() -> None:
    from llmcompare.cost import hosting_presets

    root = Path(__file__).resolve().parents[1]
    guide = (root / "docs" / "guides" / "hosting.md").read_text(encoding="utf-8")
    for key, machine in hosting_presets().items():
        source, checked = machine.notes.rsplit("; checked ", 1)
        row = (
            f"| `{key}` | {machine.name} | {machine.usd_per_hour} | {machine.watts} | {source} "
            f"| {checked} |"
        )
        assert row in guide, row


@pytest.mark.parametrize("gpu", [True, False, 0.5, "0"])
def test_a_hosted_gpu_that_is_not_a_whole_number_is_refused_in_one_line(gpu: Any) -> None:
    from llmcompare.cost import hosted_hardware
    from llmcompare.errors import ConfigurationError

    # -O hosted.gpu=true would otherwise measure GPU 1 (True is 1 to Python).
    with pytest.raises((ConfigurationError, ValueError), match=r"gpu\s+Input should be"):
        hosted_hardware({"preset": "h100", "gpu": gpu})


def test_a_hosted_gpu_nvml_cannot_read_is_refused_before_anything_is_sent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from helpers.cli import run
    from helpers.openai_server import OpenAIServer
    from llmcompare.errors import ConfigurationError

    monkeypatch.setitem(sys.modules, "pynvml", None)  # nvidia-ml-py not installed
    with OpenAIServer() as server:
        with pytest.raises(ConfigurationError, match=r"GPU 0: nvidia-ml-py is not installed"):
            _served_and_api(server, hosted={HOSTED: {"preset": "h100", "gpu": 0}})
        # The command line, where nvidia-ml-py is installed but no NVIDIA driver is: one line.
        prompts = tmp_path / "p.jsonl"
        prompts.write_text('{"prompt": "q"}\n', encoding="utf-8")
        out = run(
            "compare",
            str(prompts),
            "-m",
            HOSTED,
            "-O",
            f"base_url={server.url}",
            "-O",
            "hosted=h100",
            "-O",
            "hosted.gpu=0",
            "--no-cache",
            OPENAI_API_KEY="sk-test-0",
        )
        assert server.requests == []
    assert out.returncode == 2
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"llmcompare: error: {HOSTED}: hosted.gpu=0: NVML cannot ")


# -- load sweeps -----------------------------------------------------------------------------------


def test_a_sweep_matches_a_server_of_n_slots_and_the_target_picks_its_level(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import math

    from helpers.openai_server import SlottedServer
    from llmcompare.backends.chatgpt import ChatGPTModel, ChatGPTOptions

    # Half a second a reply: the client's own overhead (tens of ms on a busy machine) stays
    # well inside the tolerance.
    slots, per_token, words = 4, 0.05, 10
    reply_s = per_token * words
    # Four items: level 1 sends four replies one after another (2 s), not eight (4 s).
    items = [f"question {i}" for i in range(4)]
    levels = [1, 4, 8]
    with SlottedServer(slots, per_token, " ".join(["word"] * words)) as server:
        options = ChatGPTOptions(base_url=server.url, api_key="sk-test-0")
        with ChatGPTModel("meta-llama/Llama-3.1-8B-Instruct", options) as model:
            record = compare(
                [model],
                items,
                hosted={HOSTED: "h100"},
                load=levels,
                slo="latency_p95<=0.75",
                cache=False,
                concurrency=4,
            )
        # The answers once, then at each level the items, at least twice the level over:
        # 4 at level 1, 8 at 4, 16 at 8.
        assert len(server.chat_requests) == 4 + 4 + 8 + 16
    said = capsys.readouterr().err
    assert "load sweep: 28 timed requests (1 models x levels 1, 4, 8" in said
    (sweep,) = record.sweeps
    assert [x.level for x in sweep.levels] == levels
    for x in sweep.levels:
        # The server's model: min(L, slots) replies every reply_s; a request waits its turn.
        rounds = math.ceil(x.level / slots)
        assert x.errors == 0
        assert x.requests_per_s == pytest.approx(min(x.level, slots) / reply_s, rel=0.35)
        assert x.output_tokens_per_s == pytest.approx(x.requests_per_s * words, rel=1e-6)
        assert x.latency_p50_s == pytest.approx(rounds * reply_s, rel=0.35)
    # The target's level, computed here: the highest throughput whose p95 latency meets 0.75 s
    # in the server's model is 4 in flight (at 8, half wait a second round: 1 s).
    assert sweep.operating_level == 4
    assert "<- operating point" in said
    # The decision costs the hosted machine at that level's throughput, and says so.
    found = record.break_even(HOSTED, HOSTED)
    line = found.lines[0]
    point = sweep.operating_point
    assert line is not None
    assert point is not None
    assert line.capacity == pytest.approx(point.output_tokens_per_s / words * 3600 * 730)
    assert any("at its operating point, 4 requests in flight" in a for a in found.assumptions)
    # The page draws throughput against p95 latency, the operating point and target marked.
    page = write_html(record, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Throughput against p95 latency, by requests in flight" in page
    assert ">4 in flight<" in page
    assert "the highest throughput meeting latency_p95&lt;=0.75" in page


def test_a_paid_sweep_above_the_budget_is_refused_before_anything_is_sent() -> None:
    from helpers.openai_server import OpenAIServer
    from llmcompare.backends.chatgpt import ChatGPTModel, ChatGPTOptions
    from llmcompare.cost import Budget
    from llmcompare.errors import ConfigurationError

    with OpenAIServer() as server:
        options = ChatGPTOptions(base_url=server.url, api_key="sk-test-0")
        # 2 items at levels 1, 4, 16, 32: each level at least twice over: 2 + 8 + 32 + 64.
        refused = pytest.raises(ConfigurationError, match=r"load sweep: 106 timed requests.*budget")
        with ChatGPTModel("gpt-4o-mini", options) as model, refused:
            compare(
                [model],
                ["hi", "there"],
                load=[1, 4, 16, 32],
                budget=Budget(max_usd=Decimal("0.001")),
                cache=False,
                progress=False,
            )
        assert server.chat_requests == []


def test_the_in_process_engine_serves_more_at_a_higher_level(llama: Any) -> None:
    items = ["Name a colour.", "Name a fruit.", "Name a city.", "Name an animal."]
    record = compare([llama], items, load=[1, 4], cache=False, progress=False, max_tokens=8)
    (sweep,) = record.sweeps
    one, four = sweep.levels
    assert (one.requests, four.requests) == (4, 8)
    assert one.errors == four.errors == 0
    # Four rows a batch share each forward pass: more tokens a second than one at a time.
    assert four.output_tokens_per_s > one.output_tokens_per_s


def test_the_command_line_sweeps_a_hosted_model_to_a_target(tmp_path: Path) -> None:
    from helpers.cli import run
    from helpers.openai_server import SlottedServer

    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(f'{{"prompt": "q{i}"}}\n' for i in range(4)), encoding="utf-8")
    with SlottedServer(2, 0.01, "one two three four five") as server:
        out = run(
            "compare",
            str(prompts),
            "-m",
            HOSTED,
            "-O",
            f"base_url={server.url}",
            "-O",
            "api_key_env=VLLM_KEY",
            "-O",
            "hosted=h100",
            "--load",
            "1,2",
            "--slo",
            "latency_p95<=30",
            "--no-cache",
            "--out",
            str(tmp_path / "run"),
            VLLM_KEY="sk-test-0",
        )
    assert out.returncode == 0, out.stderr
    assert "load sweep: 8 timed requests (1 models x levels 1, 2" in out.stderr
    record = Comparison.load(tmp_path / "run" / "comparison.json")
    (sweep,) = record.sweeps
    assert sweep.operating_level == 2  # both meet 30 s: the higher throughput
    assert record.run.hosted[HOSTED].name.startswith("1x H100")
    assert "<- operating point" in " ".join(out.stdout.split())  # wrapped at 160 columns


def test_a_bad_target_or_level_is_refused_at_the_boundary(tmp_path: Path) -> None:
    from llmcompare.config import load_config
    from llmcompare.config._problems import ConfigFileError

    path = tmp_path / "llmcompare.toml"
    path.write_text('load = [1, 4]\nslo = "ttft_p95<=1,latency_p95<=10"\n', encoding="utf-8")
    config = load_config(path)
    assert (config.load, config.slo) == ([1, 4], "ttft_p95<=1,latency_p95<=10")
    path.write_text('slo = "speed>=3"\n', encoding="utf-8")
    with pytest.raises(ConfigFileError, match=r"llmcompare.toml:1: slo: .*NAME<=SECONDS"):
        load_config(path)


# -- what if -------------------------------------------------------------------------------------


def test_what_if_prices_the_items_offline_and_sends_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tiktoken

    from helpers.cli import run
    from helpers.openai_server import OpenAIServer
    from helpers.tiktoken_cache import seed_tiktoken_cache

    if not seed_tiktoken_cache(tmp_path):
        pytest.skip("quicktok-v1 (offline tiktoken tables) is not installed")
    prompts = ["What is the capital of France?", "Name three primes.", "Say hello."]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(f'{{"prompt": "{p}"}}\n' for p in prompts), encoding="utf-8")
    with OpenAIServer() as server:
        out = run(
            "compare",
            str(path),
            "-m",
            "fake",
            "-O",
            "open_weights=true",
            "--what-if",
            "chatgpt:gpt-5.4-mini",
            "--no-cache",
            "--out",
            str(tmp_path / "run"),
            TIKTOKEN_CACHE_DIR=str(tmp_path),
            LLMCOMPARE_NO_NETWORK="1",
            OPENAI_BASE_URL=server.url,
        )
        assert server.requests == []  # priced, never sent
    assert out.returncode == 0, out.stderr
    assert "TokenEstimateWarning" not in out.stderr
    record = Comparison.load(tmp_path / "run" / "comparison.json")
    (priced,) = record.what_if
    # The count, computed here with tiktoken's o200k_base: OpenAI's chat framing of one user
    # message (3 + 1 for the role) and 3 to prime the reply.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # the same seeded tables, offline
    enc = tiktoken.get_encoding("o200k_base")
    assert priced.input_tokens == sum(3 + 1 + len(enc.encode_ordinary(p)) + 3 for p in prompts)
    answers = [r.completion.text for r in record.rows if r.completion is not None]
    assert priced.output_tokens == sum(len(enc.encode_ordinary(a)) for a in answers)
    # gpt-5.4-mini's table prices, per million tokens.
    from llmcompare.cost import get_price

    price = get_price("chatgpt:gpt-5.4-mini")
    assert price is not None
    expected = (priced.input_tokens * price.input + priced.output_tokens * price.output) / 10**6
    assert priced.usd == expected
    text = " ".join(out.stdout.split())
    assert "chatgpt:gpt-5.4-mini: estimated, not sent" in text  # the break-even sentence
    assert "(paid per token, estimated, not sent)" in text  # its figures
    page = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "estimated, not sent" in page


@pytest.mark.filterwarnings("ignore::llmcompare.cost.UnpricedModelWarning")
@pytest.mark.filterwarnings("error::llmcompare.backends.chatgpt.TokenEstimateWarning")
def test_what_if_counts_input_tokens_exactly_without_tiktokens_table_or_a_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tiktoken

    from helpers.tiktoken_cache import seed_tiktoken_cache
    from llmcompare.backends.chatgpt import _tokens
    from llmcompare.testing import no_network

    prompts = ["What is the capital of France?", "Name three primes.", "Déjà vu — 日本語 😀"]
    # No tiktoken table anywhere (an empty cache, no encoder loaded yet) and no network.
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(_tokens, "_encoders", {})
    with no_network():
        record = compare(
            [FunctionModel(lambda r: "Paris is the capital.", name="echo", open_weights=True)],
            prompts,
            what_if=["chatgpt:gpt-5.4-mini"],
            cache=False,
            progress=False,
        )
    (priced,) = record.what_if
    # The truth, computed here with tiktoken's own o200k_base table (seeded offline).
    (tmp_path / "seeded").mkdir()
    assert seed_tiktoken_cache(tmp_path / "seeded")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "seeded"))
    enc = tiktoken.get_encoding("o200k_base")
    assert priced.input_tokens == sum(3 + 1 + len(enc.encode_ordinary(p)) + 3 for p in prompts)
    assert priced.output_tokens == 3 * len(enc.encode_ordinary("Paris is the capital."))


# A function has no compute time to cost: the open model is unpriced, as the test wants.
@pytest.mark.filterwarnings("ignore::llmcompare.cost.UnpricedModelWarning")
def test_the_stamp_names_the_price_date_and_source_of_a_model_priced_offline() -> None:
    from llmcompare.cost import get_price
    from llmcompare.report import stamp

    # The only priced model is the what-if one.
    record = compare(
        [FunctionModel(lambda r: "Paris.", name="echo", open_weights=True)],
        ["What is the capital of France?"],
        what_if=["chatgpt:gpt-5.4-mini"],
        hardware=report_data.HARDWARE,
        cache=False,
        progress=False,
    )
    price = get_price("chatgpt:gpt-5.4-mini")
    assert price is not None
    assert record.run.price_table_date == price.as_of
    said = stamp(record)
    assert "prices as of n/a" not in said
    assert (
        f"prices as of {price.as_of.isoformat()} (chatgpt:gpt-5.4-mini, estimated, not sent: "
        f"{price.source}, {price.as_of.isoformat()})"
    ) in said
    found = record.break_even("fake:echo", "chatgpt:gpt-5.4-mini")
    assert found.assumptions[-1].endswith(f"prices as of {price.as_of.isoformat()}")


def test_the_hosting_guides_config_loads_and_is_the_example() -> None:
    from llmcompare.config import load_config

    root = Path(__file__).resolve().parents[1]
    example = root / "examples" / "hosting.toml"
    config = load_config(example)
    llama, gpt = config.models
    assert llama.hosted is not None
    assert llama.hosted.usd_per_hour == Decimal("2.99")
    assert (config.load, config.slo) == ([1, 4, 16, 64], "ttft_p95<=1,latency_p95<=10")
    assert config.what_if == ["chatgpt:gpt-5.4"]
    assert gpt.api_key_env == "OPENAI_API_KEY"
    # The guide shows the file as it is (its comments aside).
    body = "".join(
        line for line in example.read_text(encoding="utf-8").splitlines(True) if line[:1] != "#"
    )
    guide = (root / "docs" / "guides" / "hosting.md").read_text(encoding="utf-8")
    assert body in guide


def test_a_sweep_level_whose_requests_all_failed_shows_no_latency_not_zero() -> None:
    from llmcompare.record import LoadLevel, Sweep

    failed = LoadLevel(
        level=4,
        requests=4,
        errors=4,
        wall_s=1.0,
        requests_per_s=0.0,
        output_tokens_per_s=0.0,
        latency_p50_s=None,
        latency_p95_s=None,
    )
    served = failed.model_copy(
        update={"level": 1, "errors": 0, "latency_p50_s": 0.25, "latency_p95_s": 0.5}
    )
    (one, four) = Sweep(model="m", levels=(served, failed)).lines()
    assert "latency p50 0.250 s p95 0.500 s, TTFT p95 -," in one
    # Nothing was answered at 4 in flight: no latency, not a latency of 0.000 s.
    assert "0.000" not in four
    assert "latency p50 - p95 -, TTFT p95 -, errors 4" in four


def test_a_level_given_twice_is_refused_before_anything_is_sent() -> None:
    from llmcompare.errors import ConfigurationError

    asked: list[str] = []

    def answer(request: Request) -> str:
        asked.append(request.messages[-1].content)
        return "Paris."

    model = FunctionModel(answer, name="echo", open_weights=True)
    with pytest.raises(ConfigurationError, match=r"load=\[1, 4, 4\]: each level once \(\[4\]"):
        compare([model], ["q"], load=[1, 4, 4], cache=False, progress=False)
    assert asked == []
