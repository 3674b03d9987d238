"""Shelf life: until when a compared model can be re-run, warned about before anything is sent.

The dated table is OpenAI's deprecations page (gpt-4o shuts down on 2027-01-14, gpt-5 on
2026-12-11); a server's own ``/v1/models/{id}`` ``shutdown_date`` wins over it. The clock is
fixed where the table decides (``shelf_lives(..., today=...)``); against the server the date is
set relative to today, so the run's own clock decides the same way on any day.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from helpers import cli
from helpers import openai_server as srv
from llmcompare import compare, get_model
from llmcompare.backends.chatgpt import ChatGPTModel
from llmcompare.backends.fake import FunctionModel
from llmcompare.comparison import ShelfLifeWarning
from llmcompare.comparison._shelf import shelf_lives
from llmcompare.report import notes


@pytest.fixture
def server() -> Iterator[srv.OpenAIServer]:
    with srv.OpenAIServer(models=("gpt-4o", "gpt-4o-mini", "gpt-5")) as s:
        yield s


def chatgpt(server: srv.OpenAIServer, name: str) -> ChatGPTModel:
    model = get_model(f"chatgpt:{name}", base_url=server.url, api_key="sk-test")
    assert isinstance(model, ChatGPTModel)
    return model


def test_the_dated_table_with_a_fixed_clock(server: srv.OpenAIServer) -> None:
    gpt4o = chatgpt(server, "gpt-4o")  # the server gives no shutdown_date: the table decides
    life = gpt4o.shelf_life()
    assert life is not None
    assert life.until == date(2027, 1, 14)
    assert "https://developers.openai.com/api/docs/deprecations, checked 2026-12-07" in life.source
    models = {"gpt-4o": gpt4o}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 74 days ahead: no warning
        assert shelf_lives(models, date(2026, 11, 1)) == {"gpt-4o": life}
    with pytest.warns(ShelfLifeWarning, match=r"gpt-4o shuts down on 2027-01-14, in 30 days"):
        shelf_lives(models, date(2026, 12, 15))
    with pytest.warns(ShelfLifeWarning, match=r"gpt-4o was shut down on 2027-01-14, 18 days ago"):
        shelf_lives(models, date(2027, 2, 1))
    # A dated snapshot follows its model; a model without an announced date has none.
    assert chatgpt(server, "gpt-4o-2024-08-06").shelf_life() == life
    assert chatgpt(server, "gpt-5.4-mini").shelf_life() is None
    assert FunctionModel(lambda r: "x", name="local").shelf_life() is None


def test_the_servers_shutdown_date_wins_over_the_table(server: srv.OpenAIServer) -> None:
    server.model_facts = {"gpt-4o": {"shutdown_date": "2026-12-20"}}  # type: ignore[attr-defined]
    life = chatgpt(server, "gpt-4o").shelf_life()
    assert life is not None
    assert life.until == date(2026, 12, 20)
    assert life.source == f"shutdown_date of {server.url}/models/gpt-4o"
    # Asked once per model object, and never from the model's own client.
    assert [r.path for r in server.requests] == ["/v1/models/gpt-4o"]


def _soon(server: srv.OpenAIServer, days: int = 10) -> date:
    until = date.today() + timedelta(days=days)
    server.model_facts = {"gpt-4o-mini": {"shutdown_date": until.isoformat()}}  # type: ignore[attr-defined]
    return until


def test_a_comparison_warns_before_sending_and_records_the_date(server: srv.OpenAIServer) -> None:
    until = _soon(server)
    seen: list[int] = []

    def note(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, ShelfLifeWarning):
            seen.append(len(server.chat_requests))  # what was sent when it warned

    with warnings.catch_warnings():  # restores showwarning on the way out
        warnings.simplefilter("always", ShelfLifeWarning)
        warnings.showwarning = note
        result = compare([chatgpt(server, "gpt-4o-mini")], ["a b", "c"], cache=False)
    assert seen == [0]  # warned once, before the first request
    assert len(server.chat_requests) == 2
    life = result.run.shelf_life["chatgpt:gpt-4o-mini"]
    assert life.until == until
    line = f"! chatgpt:gpt-4o-mini: re-runnable until {until.isoformat()} ({life.source})"
    assert line in notes(result)


def test_the_cli_warns_first_and_reports_the_shelf_life(server: srv.OpenAIServer) -> None:
    until = _soon(server, days=5)
    result = cli.run(
        "compare",
        "--suite",
        "builtin",
        "--limit",
        "1",
        "-m",
        "chatgpt:gpt-4o-mini",
        "-O",
        f"base_url={server.url}",
        "--no-cache",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    warning = f"warning: chatgpt:gpt-4o-mini shuts down on {until.isoformat()}, in 5 days"
    assert warning in " ".join(out.split())
    assert out.index("warning:") < out.index("Models")
    assert f"re-runnable until {until.isoformat()}" in " ".join(out.split())
