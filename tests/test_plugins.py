"""Plugin discovery through real entry points of throwaway distributions."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

import llmcompare
from llmcompare import PluginLoadError, UnknownModelError
from llmcompare.plugins import PluginWarning, Registry, registry, reset_registry
from llmcompare.testing import isolated_registry

GOOD = """
from llmcompare.backends.fake import ScriptedModel
from llmcompare.plugins import hookimpl

@hookimpl
def register_models(register):
    register("goodmodel", lambda variant, options: ScriptedModel(default=variant or "good"),
             aliases=["gm"], description="a good one")
"""
RAISES_IN_HOOK = """
from llmcompare.plugins import hookimpl

@hookimpl
def register_models(register):
    register("halfway", lambda variant, options: None)
    raise RuntimeError("hook exploded")
"""
BROKEN_IMPORT = "raise ImportError('this plugin cannot import')\n"
STEALS_A_NAME = """
from llmcompare.plugins import hookimpl

@hookimpl
def register_models(register):
    register("fake", lambda variant, options: None)
"""


def _make_dist(root: Path, dist: str, module: str, source: str) -> None:
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[llmcompare]\n{module} = {module}\n")


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _make_dist(tmp_path, "good-plugin", "good_plugin", GOOD)
    _make_dist(tmp_path, "hook-raises", "raising_plugin", RAISES_IN_HOOK)
    _make_dist(tmp_path, "broken-import", "broken_plugin", BROKEN_IMPORT)
    _make_dist(tmp_path, "name-thief", "thief_plugin", STEALS_A_NAME)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_broken_plugins_become_warnings_and_the_rest_loads(plugin_dir: Path) -> None:
    with pytest.warns(PluginWarning) as caught:
        reg = Registry.from_entry_points()
    plugins = {p.name: p for p in reg.list_plugins()}

    assert plugins["good_plugin"].error is None
    assert plugins["good_plugin"].models == ("goodmodel",)
    assert plugins["good_plugin"].distribution == "good-plugin"
    assert plugins["good_plugin"].version == "1.2.3"
    assert not plugins["good_plugin"].builtin
    assert "this plugin cannot import" in (plugins["broken_plugin"].error or "")
    assert "hook exploded" in (plugins["raising_plugin"].error or "")
    assert "already registered" in (plugins["thief_plugin"].error or "")
    assert len(caught) == 3

    # The failing hook registered "halfway" before raising: nothing of it is kept.
    names = [e.name for e in reg.list_models()]
    assert "halfway" not in names
    assert {"fake", "goodmodel"} <= set(names)
    assert reg.get_model("gm").generate("x").text == "good"
    assert reg.get_model("goodmodel:custom").generate("x").text == "custom"
    # The built-in keeps its name against the plugin that tried to take it.
    assert reg.get_model("fake", reply="mine").generate("x").text == "mine"


def test_builtins_are_registered_through_entry_points(plugin_dir: Path) -> None:
    reg = Registry.from_entry_points(allow=())
    (fake,) = [p for p in reg.list_plugins() if p.name == "fake"]
    assert fake.builtin
    assert fake.distribution == "llmcompare"
    assert fake.version == llmcompare.__version__
    assert fake.models == ("fake",)


def test_strict_mode_raises_with_the_cause(plugin_dir: Path) -> None:
    with pytest.raises(PluginLoadError) as info:
        Registry.from_entry_points(strict=True)
    assert info.value.__cause__ is not None
    assert info.value.plugin in {"broken_plugin", "raising_plugin", "thief_plugin"}


def test_allowlist_loads_only_named_distributions(plugin_dir: Path) -> None:
    reg = Registry.from_entry_points(allow=["Good_Plugin"])  # normalised like pip names
    assert {p.name for p in reg.list_plugins() if not p.builtin} == {"good_plugin"}
    reg = Registry.from_entry_points(allow=[])
    assert all(p.builtin for p in reg.list_plugins())


def _run(code: str, plugin_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LLMCOMPARE_")}
    path = os.pathsep.join(filter(None, [str(plugin_dir), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        check=False,
        text=True,
        env={**base, "PYTHONPATH": path, **env},
        timeout=120,
    )


def test_environment_switches_in_a_fresh_process(plugin_dir: Path) -> None:
    listing = (
        "import llmcompare\n"
        "print(sorted(p.name for p in llmcompare.list_plugins() if not p.builtin))\n"
        "print(llmcompare.get_model('goodmodel').generate('x').text)\n"
    )
    allowed = _run(listing, plugin_dir, LLMCOMPARE_LOAD_PLUGINS="good-plugin")
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.splitlines() == ["['good_plugin']", "good"]
    assert "PluginWarning" not in allowed.stderr

    everything = _run(listing, plugin_dir)
    assert everything.returncode == 0, everything.stderr
    assert "broken_plugin" in everything.stdout
    assert "PluginWarning" in everything.stderr

    strict = _run(listing, plugin_dir, LLMCOMPARE_STRICT_PLUGINS="1")
    assert strict.returncode != 0
    assert "PluginLoadError" in strict.stderr


def test_registry_is_computed_once_and_can_be_reset() -> None:
    first = registry()
    assert registry() is first
    previous = reset_registry()
    assert previous is first
    try:
        assert registry() is not first
    finally:
        reset_registry(first)


def test_unknown_model_suggests_close_names() -> None:
    with pytest.raises(UnknownModelError) as info:
        llmcompare.get_model("fak")
    assert isinstance(info.value, LookupError)
    assert info.value.suggestions == ("fake",)
    assert "did you mean 'fake'?" in str(info.value)


def test_misspelled_option_is_an_error_naming_it() -> None:
    with pytest.raises(ValidationError, match="replly"):
        llmcompare.get_model("fake", replly="x")


def test_isolated_registry_holds_only_what_a_test_registers() -> None:
    from llmcompare.backends.fake import ScriptedModel

    with isolated_registry() as reg:
        reg.register("mine", lambda variant, options: ScriptedModel(["hi"]))
        assert llmcompare.get_model("mine").generate("x").text == "hi"
        assert [e.name for e in llmcompare.list_models()] == ["mine"]
        with pytest.raises(UnknownModelError):
            llmcompare.get_model("fake")
    # Outside the block the process-wide registry is back.
    assert llmcompare.get_model("fake", reply="y").generate("x").text == "y"
    with isolated_registry(builtins=True):
        assert "fake" in [e.name for e in llmcompare.list_models()]


def test_bad_names_are_refused() -> None:
    reg = Registry()
    with pytest.raises(ValueError, match="invalid model name"):
        reg.register("Has:Colon", lambda v, o: None)  # type: ignore[arg-type,return-value]
