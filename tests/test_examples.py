"""Every examples/*.py runs as a user runs it (`python examples/X.py`) and prints what it should.

The examples are found by glob, so a new example is run without touching this file; what it must
print is listed in EXPECTED, and an example missing from EXPECTED fails until someone says there
what proves it worked. Examples run with no network beyond this machine and no OpenAI key, as in
CI: ChatGPT examples must fall back to a local OpenAI-compatible server.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# Modules whose name starts with "_" are the examples' helpers (imported by them), not examples.
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))

# Text each example's output must contain. Pick lines that only a working run prints.
EXPECTED: dict[str, tuple[str, ...]] = {
    "quickstart.py": (
        "llama:smollm2-135m-instruct",
        "Paris",
        "streamed: first token",
        "batch[2] ok=True",
    ),
    "batch_generate.py": (
        "without retry: 200 results",
        "with retry: 200/200 succeeded",
        "resumed run: 50 results, 0 requests sent again",
    ),
    "retry_and_budget.py": (
        "after 3 attempts",
        "no_wait: asked to wait [3.0]",
        "refused before sending",
        "local (priced)",
    ),
    "streaming.py": (
        "sync: ttft=",
        "finish=stop usage=input_tokens=",
        "async: ttft=",
        "closed early after 5 chunks",
    ),
    "custom_scorer.py": (
        "poem     contains=- brevity=-",  # None: the scorer did not apply to that item
        "per-scorer means for llama:smollm2-135m-instruct",
        "  contains: ",
        "  brevity: ",
    ),
    "judge_pairwise.py": (
        "the embedded Llama judges",
        "llama vs chatgpt: ",
        "llama vs chatgpt: position bias",
        "judging: ~$",
        "shown first, the judge said",
    ),
    "compare_models.py": (
        "No OPENAI_API_KEY: ChatGPT's place is taken by transformers serve",
        "answered: 10/10",
        "comparison.csv, comparison.json, latency.png, pairs.csv, quality_vs_cost.png, "
        "report.html, summary.csv",
    ),
}

# Loading the embedded model and generating on two shared CPU cores is slow; a fake example
# that hangs still fails within the short bound.
MODEL_TIMEOUT_S = 1800
QUICK_TIMEOUT_S = 300


def _needs_embedded_model(script: Path) -> bool:
    source = script.read_text(encoding="utf-8")
    return any(marker in source for marker in ('"llama', "'llama", "compare("))


def _env(tmp_path: Path, model_cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    # Like CI: no key and no remote server, so nothing reaches beyond this machine.
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LLMCOMPARE_LOAD_PLUGINS"):
        env.pop(name, None)
    env.update(
        {
            "LLMCOMPARE_NO_NETWORK": "1",
            "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
            # As in the tests themselves (pyproject's filterwarnings): a deprecation fails.
            "PYTHONWARNINGS": "error::DeprecationWarning,error::FutureWarning",
            # Examples that cache or write reports keep them out of the checkout.
            "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME", str(tmp_path / "cache")),
            # One converted copy of the embedded model serves every example (and the session's
            # shared model): converting the GGUF again per example would cost ~15 s each.
            "LLMCOMPARE_CACHE_DIR": str(model_cache),
        }
    )
    return env


def _params() -> list[object]:
    return [
        pytest.param(
            script,
            marks=[pytest.mark.slow] if _needs_embedded_model(script) else [],
            id=script.name,
        )
        for script in SCRIPTS
    ]


def test_examples_exist() -> None:
    assert SCRIPTS, f"no examples found in {EXAMPLES}"


def test_every_example_says_what_it_prints() -> None:
    missing = [s.name for s in SCRIPTS if s.name not in EXPECTED]
    stale = sorted(set(EXPECTED) - {s.name for s in SCRIPTS})

    assert not missing, f"add the expected output of {missing} to EXPECTED in {__file__}"
    assert not stale, f"EXPECTED lists examples that no longer exist: {stale}"


@pytest.mark.parametrize("script", _params())
def test_example_runs(script: Path, tmp_path: Path, llama_cache: Path) -> None:
    timeout = MODEL_TIMEOUT_S if _needs_embedded_model(script) else QUICK_TIMEOUT_S

    # Run from a scratch directory: examples that write files (reports, results) write there.
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=_env(tmp_path, llama_cache),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{script.name} exited {proc.returncode}:\n{output[-4000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
    for text in EXPECTED.get(script.name, ()):
        assert text in proc.stdout, f"{script.name} did not print {text!r}:\n{proc.stdout[-4000:]}"
    assert proc.stdout.strip(), f"{script.name} printed nothing"
