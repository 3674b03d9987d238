"""Fixtures shared by the tests, and the rules every test run follows.

``llama``: ONE real Llama model object (the embedded SmolLM2-135M-Instruct) for the whole test
session, so its weights load once. Its GGUF is converted into a session-private cache directory
(``llama_cache``), which keeps the tests off the user's own cache and shows a real first load.
Under pytest-xdist each worker is a session: at most one load per worker. ``nox -s tests``
distributes whole modules (``--dist loadscope``), so a module's expensive fixture (the Ray
cluster of test_executors.py, the browser of test_report_browser.py, the ``transformers serve``
process of test_chatgpt_peer.py) starts once, on one worker.

The rules (hooks below):

- Every test that uses the real Llama model or one of those fixtures is marked ``slow``.
- In CI (``CI`` set) nothing may be skipped: a skip there means something CI must install is
  missing, so it is reported as a failure. Elsewhere a skip is listed with its reason (``-ra``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

# Hypothesis's per-example deadline is a wall-clock assertion: on a machine whose two cores are
# shared (two xdist workers, CI) it fails correct code. The properties are what the tests check.
settings.register_profile("llmcompare", deadline=None)
settings.load_profile("llmcompare")

if TYPE_CHECKING:
    from llmcompare.backends.llama import LlamaModel

# Tests that use any of these fixtures load a real model or start a real server or browser.
SLOW = {"llama", "llama_backend", "ray_cluster", "browser", "serve"}


def in_ci() -> bool:
    """Whether this run is CI's (``CI`` set to anything but an empty or false value)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        _fail_the_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    if report.skipped and in_ci():  # a module-level importorskip
        _fail_the_skip(report)
    return report


def _fail_the_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    report.outcome = "failed"
    report.longrepr = f"skipped in CI, where every test must run: {reason}"


def _llama_ready() -> str | None:
    """Why the real Llama model cannot run here, or ``None`` when it can."""
    for module in ("torch", "transformers", "gguf"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'llmcompare[llama]')"
    from llmcompare.backends.llama import EMBEDDED_INSTALL
    from llmcompare.backends.llama._locate import embedded_gguf
    from llmcompare.errors import ConfigurationError

    try:
        embedded_gguf()
    except ConfigurationError:
        return f"the embedded model is missing ({EMBEDDED_INSTALL})"
    return None


@pytest.fixture(autouse=True)
def _private_response_cache(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Each test gets its own response cache: answers never leak from one test to another, and
    the user's own cache is never touched. Subprocesses inherit it through the environment.

    A test of the real Llama backend also finds there the weights this session converted
    (hard links to ``llama_cache``), so a model it builds by name, in process or in a
    subprocess, loads them instead of converting the GGUF again (tens of seconds each).
    """
    from llmcompare.runs import CACHE_DIR_ENV

    folder = tmp_path_factory.mktemp("response-cache")
    if "llama_backend" in request.fixturenames:
        request.getfixturevalue("llama")  # the session's conversion, done once
        converted = request.getfixturevalue("llama_cache") / "llama"
        # Files there are only replaced or unlinked, never written through (see _load).
        shutil.copytree(converted, folder / "llama", copy_function=os.link)
    before = os.environ.get(CACHE_DIR_ENV)
    os.environ[CACHE_DIR_ENV] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(CACHE_DIR_ENV, None)
        else:
            os.environ[CACHE_DIR_ENV] = before


@pytest.fixture(scope="session")
def sandbox() -> None:
    """Skip a test that runs model code where the sandbox cannot start; fail instead in CI."""
    from llmcompare.sandbox import SandboxUnavailable, check_sandbox

    try:
        check_sandbox()
    except SandboxUnavailable as exc:
        if in_ci():
            pytest.fail(f"the sandbox cannot run in CI: {exc}")
        pytest.skip(f"the sandbox cannot run here: {exc}")


@pytest.fixture(scope="session")
def llama_backend() -> None:
    """Skip a test that needs the real Llama backend where it cannot run; fail instead in CI."""
    reason = _llama_ready()
    if reason is not None:
        if in_ci():
            pytest.fail(f"the llama backend cannot run in CI: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def llama_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory private to this session; the shared model converts its GGUF here."""
    return tmp_path_factory.mktemp("llama-cache")


@pytest.fixture(scope="session")
def llama(llama_backend: None, llama_cache: Path) -> Iterator[LlamaModel]:
    """The embedded Llama model, loaded once per session (its GGUF converted on this load)."""
    from llmcompare.backends.llama import LlamaModel, LlamaOptions

    model = LlamaModel(options=LlamaOptions(cache_dir=llama_cache))
    model.warm_up()
    yield model
    model.close()
