"""Settings as an axis: ``-S KEY=V1,V2`` and ``sweep = {...}``, one labelled column per value.

Each value is sent as it is: the test server records every request, and the values are counted
there, per column.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import cli
from helpers import openai_server as srv
from llmcompare.config import CompareConfig, ConfigFileError, load_config
from llmcompare.cost import UnpricedModelWarning


@pytest.fixture(scope="module")
def server() -> Iterator[srv.OpenAIServer]:
    with srv.OpenAIServer() as s:
        yield s


def test_a_reasoning_effort_sweep_runs_each_value_as_its_own_column(
    server: srv.OpenAIServer, tmp_path: Path
) -> None:
    server.reset()
    out = tmp_path / "run"
    result = cli.run(
        "compare",
        "--suite",
        "builtin",
        "--limit",
        "3",
        "-m",
        "chatgpt:gpt-5.4-mini",
        "-O",
        "api=responses",
        "-O",
        f"base_url={server.url}",
        "-S",
        "reasoning_effort=low,high",
        "--no-cache",
        "-o",
        str(out),
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    efforts = Counter(
        r.body["reasoning"]["effort"] for r in server.requests if r.path == "/v1/responses"
    )
    assert efforts == {"low": 3, "high": 3}  # each value sent as is, once per item
    record = json.loads((out / "comparison.json").read_text())
    labels = [
        "chatgpt:gpt-5.4-mini[reasoning_effort=low]",
        "chatgpt:gpt-5.4-mini[reasoning_effort=high]",
    ]
    assert record["run"]["models"] == labels
    # The server reasons more at high effort: the columns differ in reasoning tokens and cost.
    usage = {s["model"]: s["usage"]["reasoning_tokens"] for s in record["summaries"]}
    assert usage == {labels[0]: 3 * 16, labels[1]: 3 * 128}
    shown = " ".join(result.stdout.split())
    assert "chatgpt:gpt-5.4-mini[reasoning_effort=low]" in shown.replace(" ", "")
    assert "reasoning share of cost" in shown


def test_a_config_sweeps_a_generation_setting_and_leaves_other_models_alone(
    server: srv.OpenAIServer, tmp_path: Path
) -> None:
    server.reset()
    config = tmp_path / "compare.toml"
    config.write_text(
        f"""
prompts = ["{tmp_path / "p.jsonl"}"]
sweep = {{ temperature = [0, 0.7] }}

[[models]]
name = "chatgpt:gpt-4o-mini"
options = {{ base_url = "{server.url}" }}

[[models]]
name = "fake"
""",
        encoding="utf-8",
    )
    (tmp_path / "p.jsonl").write_text('{"id": "a", "prompt": "hello there"}\n')
    with load_config(config).build() as plan:
        assert list(plan.models) == [
            "chatgpt:gpt-4o-mini[temperature=0]",
            "chatgpt:gpt-4o-mini[temperature=0.7]",
            "fake[temperature=0]",
            "fake[temperature=0.7]",
        ]
        with warnings.catch_warnings():
            # fake:echo has no price (warned once per process, so maybe not here).
            warnings.simplefilter("ignore", UnpricedModelWarning)
            result = plan.run(progress=False, cache=False)
    sent = sorted(r.body["temperature"] for r in server.chat_requests)
    assert sent == [0, 0.7]
    assert result.run.models == tuple(plan.models)


def test_an_option_some_backends_lack_sweeps_only_the_models_that_take_it(
    server: srv.OpenAIServer,
) -> None:
    config = CompareConfig.model_validate(
        {
            "models": [
                {"name": "chatgpt:gpt-5.4-mini", "options": {"base_url": server.url}},
                "fake",
            ],
            "sweep": {"reasoning_effort": ["low", "high"], "service_tier": ["flex"]},
        }
    )
    with config.build() as plan:
        assert list(plan.models) == [
            "chatgpt:gpt-5.4-mini[reasoning_effort=low,service_tier=flex]",
            "chatgpt:gpt-5.4-mini[reasoning_effort=high,service_tier=flex]",
            "fake:echo",
        ]


def test_a_key_no_model_takes_is_refused_before_anything_is_built() -> None:
    config = CompareConfig.model_validate({"models": ["fake"], "sweep": {"no_such": [1, 2]}})
    with pytest.raises(ConfigFileError, match="'no_such' is neither a generation setting"):
        config.build()


def test_a_malformed_sweep_flag_is_a_usage_error() -> None:
    result = cli.run("compare", "-m", "fake", "-S", "temperature")
    assert result.returncode == 2
    assert "a sweep is KEY=V1,V2" in result.stderr
