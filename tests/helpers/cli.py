"""The ``llmcompare`` command, run through its real entry point in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

__all__ = ["EXE", "cli_env", "run", "start"]

EXE = shutil.which("llmcompare") or ""


def cli_env() -> dict[str, str]:
    """This process's environment without OpenAI or llmcompare settings, for a CLI subprocess.

    The test's private response cache stays: a CLI run must not read or fill the user's.
    """
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "LLMCOMPARE_")) or k == "LLMCOMPARE_CACHE_DIR"
    }


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``llmcompare *args`` (or ``python -m llmcompare`` where the command is missing).

    ``env`` adds to :func:`cli_env`; the output is captured as text, a failure does not raise.
    """
    base = cli_env()
    return subprocess.run(
        [EXE, *args] if EXE else [sys.executable, "-m", "llmcompare", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=1200,
        env={**base, "COLUMNS": "160", **env},
    )


def start(args: list[str], base_url: str) -> subprocess.Popen[str]:
    """Start ``llmcompare *args`` against the OpenAI-compatible server at ``base_url``.

    For a test that stops or kills the run part way; the output is captured as text.
    """
    command = [EXE, *args] if EXE else [sys.executable, "-m", "llmcompare", *args]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**cli_env(), "OPENAI_BASE_URL": base_url, "COLUMNS": "160"},
    )
