"""Fixtures shared by the tests.

``llama``: ONE real Llama model object (the embedded SmolLM2-135M-Instruct) for the whole test
session, so its weights load once. Its GGUF is converted into a session-private cache directory
(``llama_cache``), which keeps the tests off the user's own cache and shows a real first load.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from llmcompare.backends.llama import LlamaModel


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
def _private_response_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each test gets its own response cache: answers never leak from one test to another, and
    the user's own cache is never touched. Subprocesses inherit it through the environment."""
    from llmcompare.runs import CACHE_DIR_ENV

    folder = tmp_path_factory.mktemp("response-cache")
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
        if os.environ.get("CI"):
            pytest.fail(f"the sandbox cannot run in CI: {exc}")
        pytest.skip(f"the sandbox cannot run here: {exc}")


@pytest.fixture(scope="session")
def llama_backend() -> None:
    """Skip a test that needs the real Llama backend where it cannot run; fail instead in CI."""
    reason = _llama_ready()
    if reason is not None:
        if os.environ.get("CI"):
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
