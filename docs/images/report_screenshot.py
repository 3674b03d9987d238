"""Make docs/images/report.png and report-answers.png from a real run.

The embedded Llama (SmolLM2-135M on transformers, on this machine's CPU) against the ChatGPT backend
pointed at the project's OpenAI-compatible test server (tests/helpers/openai_server.py, which echoes
the question, with deterministic usage): no API key is needed, and the API side's numbers are the
test server's. The report is opened in the system Chromium with Playwright.

Run from the repository root: ``python docs/images/report_screenshot.py``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from llmcompare import get_model
from llmcompare.comparison import compare
from llmcompare.prompts import builtin_suite
from llmcompare.report import write_html

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    """Run the comparison, render the report, take the two screenshots."""
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers.openai_server import OpenAIServer  # the project's test server

    items = builtin_suite()[:8]
    with OpenAIServer() as server:
        api = get_model("chatgpt:gpt-4o-mini", base_url=server.url, api_key="sk-local-test")
        with api:
            result = compare(["llama", api], items, max_tokens=48, progress=False)
    out = Path(tempfile.mkdtemp())
    page_path = write_html(result, out / "report.html")
    chromium = shutil.which("chromium")
    images = ROOT / "docs" / "images"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        page = browser.new_page(viewport={"width": 1280, "height": 1500})
        page.goto(page_path.as_uri())
        page.screenshot(path=images / "report.png")
        page.locator("#answers").scroll_into_view_if_needed()
        page.check("#f-disagree")
        page.locator("#grid-body tr.item").first.click()
        page.locator("#answers").screenshot(path=images / "report-answers.png")
        browser.close()
    print(f"report: {page_path}")


if __name__ == "__main__":
    main()
