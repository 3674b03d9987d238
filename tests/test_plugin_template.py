"""llmcompare discovers the plugin template of examples/plugin-template once it is installed.

CI installs the template into the test environment (`pip install -e examples/plugin-template`) and
runs its own tests too, so the template that people copy can never drift from the API. Where CI is
set and the template is missing, this test fails: a skip there would hide exactly that drift.
"""

import importlib.metadata
import os
from collections.abc import Iterator

import pytest

import llmcompare
from llmcompare.plugins import reset_registry

DISTRIBUTION = "llmcompare-echo-plugin"
INSTALL = "pip install -e examples/plugin-template"


def _template_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        message = f"the plugin template {DISTRIBUTION} is not installed; run `{INSTALL}`"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{message} (CI must install it)")
        pytest.skip(message)


@pytest.fixture
def template_version(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    version = _template_version()
    # Load from the installed entry points, whatever allowlist the environment sets.
    monkeypatch.delenv("LLMCOMPARE_LOAD_PLUGINS", raising=False)
    previous = reset_registry(None)
    try:
        yield version
    finally:
        reset_registry(previous)


def test_list_plugins_shows_the_template_with_its_distribution(template_version: str) -> None:
    plugins = [p for p in llmcompare.list_plugins() if p.distribution == DISTRIBUTION]

    assert len(plugins) == 1, llmcompare.list_plugins()
    plugin = plugins[0]
    assert plugin.name == "echo"
    assert plugin.version == template_version
    assert plugin.error is None
    assert plugin.models == ("echo",)
    assert not plugin.builtin
    entry = next(e for e in llmcompare.list_models() if e.name == "echo")
    assert entry.distribution == DISTRIBUTION
    assert entry.aliases == ("parrot",)


def test_get_model_builds_the_template_model(template_version: str) -> None:
    model = llmcompare.get_model("echo:reverse", prefix="Reversed:")

    completion = model.generate("one two three", max_tokens=3)

    assert isinstance(model, llmcompare.Model)
    assert model.id == "echo:reverse"
    assert completion.text == "Reversed: three two"
    assert completion.finish_reason == "length"
    assert completion.usage == llmcompare.Usage(input_tokens=3, output_tokens=3)
    with model.stream("one two three") as stream:
        assert "".join(chunk.text for chunk in stream) == "Reversed: three two one"
    assert stream.completion.usage.output_tokens == 4
