"""Every ```python block of README.md and docs/ runs, page by page, as a reader would run it.

One test per page (README.md, then docs/**/*.md in sorted order): the page's python blocks run in
the order they appear, in one shared namespace, so a block may use what an earlier block on the
same page defined, never what another page did. Each block is compiled under the page's path with
the page's own line numbers, so a failure reads ``docs/guides/cost.md:118`` and the traceback
shows the doc's line.

What a page runs with:

- A fresh temporary working directory, holding copies of the input files shipped in examples/
  (``prompts.jsonl``, ``prompts.yaml``, ``model_prices.json``): the docs tell readers to take them
  from there and use them by their relative names.
- An OpenAI-compatible test server (tests/helpers/openai_server.py, unscripted: it echoes the last
  message, with deterministic usage) as ``OPENAI_BASE_URL``, and a dummy ``OPENAI_API_KEY``, so
  ``get_model("chatgpt...")`` blocks run over real HTTP. A block that names a local server of its
  own (``http://127.0.0.1:8000/v1``) is pointed at the test server: the port a reader's server
  would use is not served here. Pages in ``WITHOUT_SERVER`` run with no OpenAI variable set.
- ``LLMCOMPARE_NO_NETWORK=1`` and ``HF_HUB_OFFLINE=1``: nothing leaves this machine.
- A fresh plugin registry and price table, restored afterwards.

Blocks at the top level may ``await``: such a block runs on the page's event loop. A block that
defines pytest-style ``test_*`` functions (the testing guides) has them called right after it,
with ``monkeypatch`` and ``tmp_path`` when they ask for them, so the tests a page shows pass.

Pages whose blocks use the real Llama backend (the embedded SmolLM2 model) are marked ``slow``.

An excerpt (a part of a file, code that cannot run on its own) is marked in the page by an HTML
comment on the line(s) just above its fence, which renders as nothing::

    <!-- excerpt -->
    ```python
    ...

and is skipped, by name: ``EXCERPTS`` lists every excerpt block (page, first line), and a page
fails when its marked blocks differ from that list, so no block can stop running unnoticed.
Blocks in other languages (bash, text, json, toml, ...) are not run.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import linecache
import logging
import re
import shutil
import sys
import textwrap
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

# Input files the docs tell readers to take from examples/; copied into each page's directory.
EXAMPLE_INPUTS = ("prompts.jsonl", "prompts.yaml", "model_prices.json")

PYTHON = {"python", "py", "python3"}

# Every excerpt block: page -> the first line of each, in page order. Update it when you mark or
# unmark one.
EXCERPTS: dict[str, tuple[str, ...]] = {
    "docs/guides/plugins.md": (
        '--8<-- "examples/plugin-template/src/llmcompare_echo/__init__.py:options"',
        '--8<-- "examples/plugin-template/src/llmcompare_echo/__init__.py:model"',
        '--8<-- "examples/plugin-template/src/llmcompare_echo/__init__.py:hook"',
        '--8<-- "examples/plugin-template/tests/test_echo.py"',
    ),
    # Starts a Ray cluster and an actor per worker: tests/test_executors.py runs that path.
    "docs/guides/scaling-out.md": ("from llmcompare import compare",),
}

# Pages that must run without the test server (no OPENAI_* variable set), and why.
WITHOUT_SERVER: dict[str, str] = {
    "docs/guides/testing.md": (
        "its no_network() test expects the default, remote OpenAI address to be refused; "
        "a loopback OPENAI_BASE_URL is allowed by design and would defeat it"
    ),
}

# A block that builds the embedded Llama model: get_model("llama"...) or "llama" in a model list.
_USES_LLAMA = re.compile(r"""get_model\(\s*["']llama\b|\[\s*["']llama["']""")
# A local OpenAI-compatible server a block names for itself.
_LOCAL_SERVER = re.compile(r"http://(?:127\.0\.0\.1|localhost):\d+/v1")

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*?)[ \t]*$")
_COMMENT = re.compile(r"^[ \t]*<!--.*-->[ \t]*$")
_EXCERPT = re.compile(r"<!--\s*excerpt\b")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str  # path relative to the repository root
    line: int  # 1-based line of the block's first code line
    lang: str
    code: str  # dedented
    excerpt: bool

    @property
    def first_line(self) -> str:
        return next((line.strip() for line in self.code.splitlines() if line.strip()), "")

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks_of(path: Path) -> list[Block]:
    """The fenced code blocks of a markdown file, in order."""
    page = path.relative_to(ROOT).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        start = _FENCE.match(lines[i])
        if start is None:
            i += 1
            continue
        indent, fence = start["indent"], start["fence"]
        info = start["info"].strip().lstrip("{").lstrip(".")
        lang = (info.split() or [""])[0].rstrip("}").lower()
        # The HTML comments just above the fence hold its markers.
        above, j = [], i - 1
        while j >= 0 and _COMMENT.match(lines[j]):
            above.append(lines[j])
            j -= 1
        end = i + 1
        while end < len(lines):
            close = lines[end].strip()
            if close.startswith(fence[0] * len(fence)) and not close.strip(fence[0]):
                break
            end += 1
        else:
            raise AssertionError(f"{page}:{i + 1}: the fence opened here is never closed")
        body = [
            line[len(indent) :] if line.startswith(indent) else line for line in lines[i + 1 : end]
        ]
        out.append(
            Block(
                page=page,
                line=i + 2,
                lang=lang,
                code=textwrap.dedent("\n".join(body)) + "\n",
                excerpt=any(_EXCERPT.search(line) for line in above),
            )
        )
        i = end + 1
    return out


def _python_blocks(path: Path) -> list[Block]:
    return [b for b in blocks_of(path) if b.lang in PYTHON]


def _params() -> list[Any]:
    params = []
    for path in PAGES:
        blocks = _python_blocks(path)
        if not blocks:
            continue
        page = path.relative_to(ROOT).as_posix()
        slow = any(_USES_LLAMA.search(b.code) for b in blocks if not b.excerpt)
        params.append(pytest.param(page, marks=[pytest.mark.slow] if slow else [], id=page))
    return params


# --------------------------------------------------------------------------------------------------
# Running a page


def _compile(block: Block, code: str) -> types.CodeType:
    tree = ast.parse(code, filename=block.page, mode="exec")
    ast.increment_lineno(tree, block.line - 1)  # the page's line numbers
    return compile(
        tree, block.page, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )


def _call_tests(
    namespace: dict[str, Any],
    before: dict[str, Any],
    loop: asyncio.AbstractEventLoop,
    fixtures: dict[str, Any],
) -> None:
    """Call the pytest-style tests a block defined (or redefined), as pytest would."""
    for name, value in list(namespace.items()):
        if not name.startswith("test_") or not inspect.isfunction(value):
            continue
        if before.get(name) is value:
            continue
        params = inspect.signature(value).parameters
        missing = [p for p in params if p not in fixtures]
        assert not missing, f"{name} asks for fixtures this test cannot give: {missing}"
        result = value(**{p: fixtures[p] for p in params})
        if inspect.iscoroutine(result):
            loop.run_until_complete(result)


def _close_models(namespace: dict[str, Any]) -> None:
    import llmcompare

    for value in list(namespace.values()):
        if isinstance(value, llmcompare.Model):
            with contextlib.suppress(Exception):
                value.close()


@contextlib.contextmanager
def _restored_state() -> Iterator[None]:
    """Put back the process-wide state a page may change: plugins, prices, loggers."""
    from llmcompare.cost import reset_prices
    from llmcompare.plugins import reset_registry

    loggers = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    root_handlers, root_level = list(logging.root.handlers), logging.root.level
    previous = reset_registry(None)
    reset_prices()
    try:
        yield
    finally:
        reset_prices()
        reset_registry(previous)
        logging.root.handlers[:] = root_handlers
        logging.root.setLevel(root_level)
        for name, level in loggers.items():
            logging.getLogger(name).setLevel(level)


def run_page(
    page: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    server_url: str | None,
) -> None:
    blocks = [b for b in _python_blocks(ROOT / page) if not b.excerpt]
    text = (ROOT / page).read_text(encoding="utf-8")
    # Tracebacks (and pytest's report) show the page's lines.
    linecache.cache[page] = (len(text), None, text.splitlines(keepends=True), page)

    module = types.ModuleType("docs_page_" + re.sub(r"\W", "_", page))
    module.__file__ = str(ROOT / page)
    namespace = module.__dict__
    loop = asyncio.new_event_loop()
    fixtures = {"monkeypatch": monkeypatch, "tmp_path": tmp_path / "test_tmp"}
    fixtures["tmp_path"].mkdir()
    monkeypatch.setitem(sys.modules, module.__name__, module)
    try:
        for block in blocks:
            code = block.code
            if server_url is not None:
                code = _LOCAL_SERVER.sub(server_url, code)
            before = dict(namespace)
            try:
                compiled = _compile(block, code)
                if compiled.co_flags & inspect.CO_COROUTINE:
                    loop.run_until_complete(eval(compiled, namespace))
                else:
                    exec(compiled, namespace)
                _call_tests(namespace, before, loop, fixtures)
            except BaseException as exc:
                if hasattr(exc, "add_note"):
                    exc.add_note(f"in the python block at {block.where}")
                raise
    finally:
        _close_models(namespace)
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        linecache.cache.pop(page, None)


# --------------------------------------------------------------------------------------------------
# Tests


def test_the_docs_have_python_blocks() -> None:
    blocks = [b for path in PAGES for b in _python_blocks(path)]
    assert len({b.page for b in blocks}) >= 15
    assert len(blocks) >= 50


def test_every_listed_excerpt_page_exists() -> None:
    pages = {path.relative_to(ROOT).as_posix() for path in PAGES}
    assert set(EXCERPTS) <= pages
    assert set(WITHOUT_SERVER) <= pages


def test_the_example_inputs_exist() -> None:
    missing = [name for name in EXAMPLE_INPUTS if not (EXAMPLES / name).is_file()]
    assert not missing, f"examples/ lacks {missing}"


def test_the_cost_guide_lists_the_shipped_prices() -> None:
    """The price table in guides/cost.md has one row per entry of prices.json, with its numbers."""
    from decimal import Decimal

    from llmcompare.cost import prices, reset_prices

    def number(cell: str) -> Decimal | None:
        return None if cell in ("\u2013", "-") else Decimal(cell)  # an en dash: no price

    text = (ROOT / "docs/guides/cost.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| ([\w.-]+) \| ([\d.]+) \| ([\d.\u2013-]+) \| ([\d.]+) \|", text, re.M)
    documented = {m: (Decimal(i), number(c), Decimal(o)) for m, i, c, o in rows}
    reset_prices()  # the built-in table only
    shipped = {p.model: (p.input, p.cached_input, p.output) for p in prices()}
    assert documented == shipped


@pytest.mark.parametrize("page", _params())
def test_page_runs(
    page: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    llama_cache: Path,
    request: pytest.FixtureRequest,
) -> None:
    blocks = _python_blocks(ROOT / page)
    excerpts = tuple(b.first_line for b in blocks if b.excerpt)
    assert excerpts == EXCERPTS.get(page, ()), (
        f"{page}: the blocks marked <!-- excerpt --> are not the ones EXCERPTS lists: "
        f"{[b.where for b in blocks if b.excerpt]}"
    )
    uses_llama = any(_USES_LLAMA.search(b.code) for b in blocks if not b.excerpt)
    if uses_llama:
        request.getfixturevalue("llama_backend")  # skips where the model cannot run (fails in CI)

    work = tmp_path / "work"
    work.mkdir()
    for name in EXAMPLE_INPUTS:
        if (EXAMPLES / name).is_file():
            shutil.copy(EXAMPLES / name, work / name)
    monkeypatch.chdir(work)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("LLMCOMPARE_LOAD_PLUGINS", raising=False)
    monkeypatch.setenv("LLMCOMPARE_NO_NETWORK", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # One converted copy of the embedded model for the whole session (and the `llama` fixture).
    monkeypatch.setenv("LLMCOMPARE_CACHE_DIR", str(llama_cache))

    with _restored_state():
        if page in WITHOUT_SERVER:
            run_page(page, monkeypatch, tmp_path, None)
            return
        # The Files and Batches APIs too: the Batch API examples run against it.
        from helpers.openai_batch_server import BatchServer

        with BatchServer() as server:
            monkeypatch.setenv("OPENAI_BASE_URL", server.url)
            monkeypatch.setenv("OPENAI_API_KEY", "sk-test-docs-not-a-real-key")
            run_page(page, monkeypatch, tmp_path, server.url)
