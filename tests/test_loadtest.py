"""``llmcompare loadtest``: a compare run that only sweeps, through the real command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.cli import run
from helpers.openai_server import OpenAIServer, SlottedServer
from llmcompare.record import Comparison

HOSTED = "chatgpt:meta-llama/Llama-3.1-8B-Instruct"
COLUMNS = (
    "requests/s",
    "output tokens/s",
    "latency p50 (s)",
    "latency p95 (s)",
    "TTFT p50 (s)",
    "TTFT p95 (s)",
    "TPOT (ms)",
    "errors",
)


def _prompts(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "p.jsonl"
    # A reference: compare would score it (contains); a load test scores nothing.
    path.write_text(
        "".join(f'{{"prompt": "q{i}", "reference": "two"}}\n' for i in range(n)), encoding="utf-8"
    )
    return path


def test_loadtest_prints_each_levels_figures_and_writes_a_run_folder_report_reads(
    tmp_path: Path,
) -> None:
    prompts = _prompts(tmp_path, 4)
    # A file that scores, judges and prices offline: a load test leaves all three out.
    config = tmp_path / "llmcompare.toml"
    config.write_text(
        'scorers = ["exact"]\nwhat_if = ["chatgpt:gpt-5.4-mini"]\njudge = "chatgpt:gpt-4o-mini"\n',
        encoding="utf-8",
    )
    with SlottedServer(2, 0.01, "one two three four five") as server:
        out = run(
            "loadtest",
            str(prompts),
            "-c",
            str(config),
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
        # The answers once (4), then each level at least twice over: 4 at 1, 4 at 2.
        assert len(server.chat_requests) == 4 + 4 + 4
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"Load sweep: {HOSTED}" in text
    for column in COLUMNS:
        assert column in " ".join(text.split()), column
    record = Comparison.load(tmp_path / "run" / "comparison.json")
    (sweep,) = record.sweeps
    assert [x.level for x in sweep.levels] == [1, 2]
    assert sweep.operating_level == 2  # both meet 30 s: the higher throughput
    point = sweep.operating_point
    assert point is not None
    said = " ".join(text.split())
    assert (
        f"{HOSTED}: operating point 2 in flight, {point.requests_per_s:,.2f} requests/s, "
        f"{point.output_tokens_per_s:,.1f} output tokens/s (the highest throughput meeting "
        "latency_p95<=30)"
    ) in said
    # Each level's row: its figures as the record has them, the operating point marked.
    for x in sweep.levels:
        row = f"│ {x.level} │ {x.requests_per_s:,.2f} │ {x.output_tokens_per_s:,.1f} │"
        assert row in said, row
    assert "<- operating point" in said
    # Only sweeps: the file's scorer, judge and what-if are left out (an item's own check
    # stays: it costs nothing and keeps the quality beside the figures).
    assert record.run.scorers == ()
    assert all(set(r.scores) <= {"contains"} for r in record.rows)
    assert record.what_if == ()
    assert record.judging is None
    # The run folder is compare's: report renders it again, with the same sweep table.
    again = run("report", str(tmp_path / "run"), "-f", "json")
    assert again.returncode == 0, again.stderr
    assert f"Load sweep: {HOSTED}" in again.stdout
    assert "<- operating point" in again.stdout


def test_loadtest_without_levels_is_refused_in_one_line_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    prompts = _prompts(tmp_path, 2)
    with OpenAIServer() as server:
        out = run(
            "loadtest",
            str(prompts),
            "-m",
            "chatgpt:gpt-4o-mini",
            "-O",
            f"base_url={server.url}",
            OPENAI_API_KEY="sk-test-0",
        )
        assert server.requests == []
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "llmcompare: error: loadtest needs --load LEVELS, the levels of requests in flight "
        "(e.g. --load 1,4,16)"
    ]


def test_loadtest_takes_compares_run_options_as_compare_takes_them() -> None:
    from llmcompare.cli import main

    def params(command: str) -> dict[str | None, dict[str, object]]:
        return {p.name: p.to_info_dict() for p in main.commands[command].params}

    loadtest, compare = params("loadtest"), params("compare")
    assert {"prompts", "load", "models", "options", "out_typed", "refresh"} <= set(loadtest)
    # Each of loadtest's options is compare's: the same flags, type, default and help.
    assert {name: compare.get(name) for name in loadtest} == loadtest


@pytest.mark.parametrize(
    ("flag", "said"),
    [
        (("--field", "bad"), "--field takes KEY=COLUMN (prompt=question), got 'bad'"),
        (("--load", "0"), "--load '0': give levels of requests in flight, such as 1,4,16,64"),
        (("-o", "max_tokens=5"), "--out 'max_tokens=5' looks like an option (KEY=VALUE)"),
    ],
)
def test_a_bad_run_flag_is_refused_alike_by_compare_and_loadtest(
    tmp_path: Path, flag: tuple[str, str], said: str
) -> None:
    prompts = str(_prompts(tmp_path, 1))
    compare = run("compare", prompts, "-m", "fake", *flag)
    loadtest = run("loadtest", prompts, "-m", "fake", "--load", "1", *flag)
    for out in (compare, loadtest):
        assert out.returncode == 2
        assert out.stderr.startswith(f"llmcompare: error: {said}"), out.stderr
    assert compare.stderr == loadtest.stderr
