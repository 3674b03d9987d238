"""A local stand-in for ChatGPT: `transformers serve` on 127.0.0.1, for the examples' use.

Without an OpenAI key the examples still compare the embedded Llama with the chatgpt backend:
the backend talks to this OpenAI-compatible server (written by others: transformers' own),
serving the plain weights folder the llama backend converted from the embedded GGUF, exactly as
it talks to OpenAI. Starting it takes about 10 s. Needs: pip install fastapi uvicorn.

A helper module of the examples (its name starts with "_"), not an example itself.
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

__all__ = ["start_local_server", "stop"]


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
