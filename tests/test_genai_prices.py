"""Prices from pydantic's genai-prices for models the table lacks, and ``llmcompare prices``.

genai-prices (the ``prices`` extra) is read from the snapshot bundled in its package: these tests
run with no network. Where it is not installed, the command says how to install it.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from helpers import cli
from helpers import openai_server as srv
from llmcompare import compare, get_model
from llmcompare.backends.chatgpt import ParameterDroppedWarning
from llmcompare.cost import genai_prices_version, get_price
from llmcompare.report import stamp


@pytest.fixture(scope="module")
def server() -> Iterator[srv.OpenAIServer]:
    # gpt-5.6 is an alias genai-prices knows (of gpt-5.6-sol); the built-in table does not.
    with srv.OpenAIServer(models=("gpt-5.6", "gpt-4o-mini")) as s:
        yield s


def installed() -> str:
    version = genai_prices_version()
    if version is None:
        pytest.skip('genai-prices is not installed (pip install "llmcompare[prices]")')
    return version


def test_a_model_the_table_lacks_is_priced_from_the_bundled_snapshot() -> None:
    version = installed()
    assert get_price("chatgpt:gpt-5.6-sol") is not None  # the table's own row...
    price = get_price("chatgpt:gpt-5.6")  # ...and an alias only genai-prices knows
    assert price is not None
    assert price.source.startswith(f"genai-prices {version} (pydantic), OpenAI: https://")
    # The same rates as OpenAI's row for gpt-5.6-sol in the built-in table.
    sol = get_price("chatgpt:gpt-5.6-sol")
    assert sol is not None
    assert (price.input, price.output, price.cache_write) == (
        sol.input,
        sol.output,
        sol.cache_write,
    )
    assert price.tiers["flex"].input == sol.tiers["flex"].input == Decimal("2.00")
    # The built-in table still wins where it has the model.
    assert get_price("chatgpt:gpt-5.4-mini").source == (  # type: ignore[union-attr]
        "https://developers.openai.com/api/docs/pricing"
    )


def test_the_record_and_report_name_the_genai_prices_version(server: srv.OpenAIServer) -> None:
    version = installed()
    server.reset()
    with pytest.warns(ParameterDroppedWarning, match="temperature"):  # a reasoning model
        result = compare([get_model("chatgpt:gpt-5.6", base_url=server.url)], ["a b"], cache=False)
    assert result.run.genai_prices == version
    assert result.summaries[0].cost.status == "priced"
    assert f"genai-prices {version}" in stamp(result)
    # A run the table prices alone does not name it.
    table_only = compare(
        [get_model("chatgpt:gpt-4o-mini", base_url=server.url)], ["a b"], cache=False
    )
    assert table_only.run.genai_prices is None


def test_llmcompare_prices_says_where_each_price_comes_from() -> None:
    result = cli.run("prices", "chatgpt:gpt-5.4-nano", "gpt-4o-2024-08-06")
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0] == (
        "chatgpt:gpt-5.4-nano: priced as 'gpt-5.4-nano' from the built-in table: "
        "https://developers.openai.com/api/docs/pricing (as of 2026-10-12)"
    )
    assert "  flex      input 0.10, cached input 0.01, output 0.625" in out
    assert "  priority  not listed: an answer served at this tier is unpriced" in out
    assert "  (priced as gpt-4o: no price entry for the snapshot gpt-4o-2024-08-06)" in out


def test_without_genai_prices_the_command_says_how_to_install_it(tmp_path: Path) -> None:
    # A package of that name that fails to import: as if it were not installed.
    blocked = tmp_path / "genai_prices"
    blocked.mkdir()
    (blocked / "__init__.py").write_text("raise ImportError('genai-prices is blocked here')\n")
    env = cli.cli_env()
    path = f"{tmp_path}:{env.get('PYTHONPATH', '')}"
    missing = cli.run("prices", "gpt-5.6", PYTHONPATH=path)
    assert missing.returncode == 1
    assert missing.stdout.strip() == (
        "gpt-5.6: no price in the built-in table; genai-prices is not installed "
        '(pip install "llmcompare[prices]", Python 3.11+), so only the built-in table was '
        "looked in"
    )
    builtin = cli.run("prices", "gpt-5.4-mini", PYTHONPATH=path)
    assert builtin.returncode == 0
    assert "from the built-in table" in builtin.stdout
