"""The `llmcompare` command, through its real entry point in a subprocess."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import EXE, run
from helpers.openai_server import OpenAIServer


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"id": "a", "prompt": "say yes", "reference": "yes", "scorers": ["contains"]}\n'
        '{"id": "b", "prompt": "say 42", "reference": "42", "scorers": ["numeric"]}\n'
    )
    return path


def test_the_entry_point_is_installed() -> None:
    if not EXE and os.environ.get("CI"):
        pytest.fail("the llmcompare command is not on PATH in CI")
    out = run("--version")
    assert out.returncode == 0
    assert "version" in out.stdout


def test_python_dash_m_is_the_same_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "llmcompare", "models"], capture_output=True, text=True, check=True
    )
    assert "fake" in out.stdout
    assert "chatgpt" in out.stdout


def test_models_and_plugins() -> None:
    models = run("models")
    assert models.returncode == 0
    assert "chatgpt" in models.stdout
    plugins = run("plugins")
    assert plugins.returncode == 0
    assert "built-in" in plugins.stdout
    assert "llmcompare" in plugins.stdout


def test_compare_over_http_writes_reports(prompts: Path, tmp_path: Path) -> None:
    with OpenAIServer() as server:
        out = run(
            "compare",
            str(prompts),
            "-m",
            "chatgpt:gpt-4o-mini",
            "-m",
            "fake",
            "--out",
            str(tmp_path / "out"),
            "--format",
            "json",
            "--format",
            "csv",
            "--no-progress",
            OPENAI_BASE_URL=server.url,
        )
        assert out.returncode == 0, out.stderr
        sent = [r.body for r in server.chat_requests]
    assert "chatgpt:gpt-4o-mini" in out.stdout
    assert "fake:echo" in out.stdout
    assert (tmp_path / "out" / "comparison.json").exists()
    assert (tmp_path / "out" / "comparison.csv").exists()
    assert {b["messages"][-1]["content"] for b in sent} == {"say yes", "say 42"}
    assert all(b["temperature"] == 0.0 for b in sent)


def test_failed_requests_exit_1(prompts: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on: every request fails to connect
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = run(
        "compare",
        str(prompts),
        "-m",
        "chatgpt:gpt-4o-mini",
        "--no-progress",
        OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1",
        LLMCOMPARE_RETRY_NO_WAIT="1",
    )
    assert out.returncode == 1, out.stderr
    assert "0/2" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("compare", "{bad}", "-m", "fake"), "bad.jsonl:2"),
        (("compare", "{missing}", "-m", "fake"), "no such file"),
        (("compare", "-m", "lama"), "did you mean 'llama'"),
        (("compare", "-m", "fake", "--temperature", "3"), "temperature"),
        (("generate", "nope", "hi"), "unknown model 'nope'"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "x"}\n{"id": "b"}\n')
    paths = {"bad": str(bad), "missing": str(tmp_path / "missing.jsonl")}
    out = run(*(a.format(**paths) for a in args))
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_unconfigured_chatgpt_is_refused_with_its_hint() -> None:
    out = run("generate", "chatgpt", "hi")
    assert out.returncode == 2
    assert "OPENAI_API_KEY" in out.stderr
    assert "Traceback" not in out.stderr


def test_generate_streams_then_prints_usage_and_cost() -> None:
    out = run("generate", "fake", "hello there")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hello there"
    assert "2 in / 2 out tokens" in out.stderr
    assert "unpriced" in out.stderr


@pytest.mark.slow
def test_bare_compare_runs_the_embedded_llama_and_hints_at_chatgpt(
    llama_backend: None, tmp_path: Path
) -> None:
    out = run("compare", "--max-tokens", "16", "--no-progress", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "chatgpt: not configured; set OPENAI_API_KEY" in out.stdout
    assert "llama:smollm2-135m-instruct" in out.stdout
    assert "20/20" in out.stdout
    assert (tmp_path / "report.html").exists()


def test_budget_refuses_requests_before_sending(prompts: Path) -> None:
    with OpenAIServer() as server:
        out = run(
            "compare",
            str(prompts),
            "-m",
            "chatgpt:gpt-4o-mini",
            "--budget-usd",
            "0.0000001",
            "--no-progress",
            OPENAI_BASE_URL=server.url,
        )
        sent = len(server.chat_requests)
    assert out.returncode == 1, out.stderr
    assert "0/2" in out.stdout
    assert "BudgetExceeded" in out.stdout
    assert sent == 0  # refused before anything reached the server


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "'abc' is not a dollar amount."),
        ("-1", "'-1' is negative: a budget is 0 or more dollars."),
        ("NaN", "'NaN' is not a finite dollar amount."),
        ("inf", "'inf' is not a finite dollar amount."),
    ],
)
def test_a_bad_budget_is_a_usage_error_before_anything_runs(
    prompts: Path, value: str, message: str
) -> None:
    out = run("compare", str(prompts), "-m", "fake", "--budget-usd", value, "--no-progress")
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if "rror" in line]
    assert errors == [f"Error: Invalid value for '--budget-usd': {message}"]
    assert out.stdout == ""  # nothing ran: no hint, no report


def test_a_zero_budget_is_accepted_and_applied(prompts: Path) -> None:
    out = run("compare", str(prompts), "-m", "fake", "--budget-usd", "0", "--no-progress")
    # Not a usage error: the run happens and the (unpriced) fake model is refused by the budget.
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "BudgetExceeded" in out.stdout
