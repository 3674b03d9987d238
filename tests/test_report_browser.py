"""The HTML report in a real browser: Playwright driving the system Chromium, offline.

One browser for the module; each test opens the page of known content (tests/helpers/report_data.py)
from a file. Where Chromium or Playwright is missing the tests skip loudly, and fail in CI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from helpers import report_data
from llmcompare.report import write_html

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the browser tests cannot run in CI: {reason}")
    pytest.skip(f"BROWSER TESTS SKIPPED: {reason}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (it is in the 'test' dependency group)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        _missing("no system Chromium (Debian: apt-get install chromium)")
    with sync_playwright() as p:
        found = p.chromium.launch(executable_path=chromium)
        yield found
        found.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_html(report_data.comparison(), tmp_path_factory.mktemp("report") / "report.html")


@pytest.fixture
def page(browser: Browser, report: Path) -> Iterator[tuple[Page, list[str]]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    errors: list[str] = []

    # Every request the page makes is recorded; anything but the report file is refused.
    def route(r: object) -> None:
        from playwright.sync_api import Route

        assert isinstance(r, Route)
        requests.append(r.request.url)
        if r.request.url == report.as_uri():
            r.continue_()
        else:
            r.abort()

    context.route("**/*", route)
    opened = context.new_page()
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.goto(report.as_uri())
    yield opened, requests
    context.close()
    assert errors == []


def _rows(page: Page) -> list[str]:
    return page.locator("#grid-body tr.item").evaluate_all("rows => rows.map(r => r.dataset.id)")


def test_filter_sort_and_expand_offline(
    page: tuple[Page, list[str]], report: Path, tmp_path: Path
) -> None:
    p, requests = page
    assert _rows(p) == [i.id for i in report_data.ITEMS]
    assert p.locator("#count").inner_text() == "showing 6 of 6 items (6 in all)"

    p.check("#f-disagree")
    assert len(_rows(p)) == report_data.DISAGREE
    assert set(_rows(p)) == {"product", "river", "broken"}

    # Sort by the API model's score: its failure counts 0, ties go by id; again reverses.
    header = p.locator("#grid-head th", has_text="fake:api")
    header.click()
    assert _rows(p) == ["broken", "product", "river"]
    header.click()
    assert _rows(p)[0] == "river"

    # A row expands to the prompt, every answer, usage, latency and cost.
    p.locator("#grid-body tr.item[data-id='product']").click()
    detail = p.locator("#grid-body tr.detail")
    assert detail.count() == 1
    text = detail.inner_text()
    assert "6 x 7?" in text
    assert "41" in text
    assert "1000 in (0 cached), 500 out" in text
    assert "$0.00125" in text
    assert "latency" in text
    p.screenshot(path=tmp_path / "report.png", full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000

    # The page itself was the one request: no script, font, style or image came from elsewhere.
    assert requests == [report.as_uri()]


def test_other_filters_and_hostile_text(page: tuple[Page, list[str]]) -> None:
    p, requests = page
    p.check("#f-failure")
    assert _rows(p) == ["broken"]
    p.uncheck("#f-failure")
    p.select_option("#f-tag", "math")
    assert _rows(p) == ["sum", "product"]
    p.select_option("#f-tag", "")
    p.select_option("#f-scorer", "contains")
    p.fill("#f-threshold", "0.5")
    assert _rows(p) == ["product", "river", "hostile"]
    p.select_option("#f-scorer", "")
    p.fill("#f-search", "seine")
    assert _rows(p) == ["river"]
    p.fill("#f-search", "")

    # The hostile answer is shown as text and ran nothing.
    cell = p.locator("#grid-body tr.item[data-id='hostile'] td").nth(1)
    assert report_data.HOSTILE in cell.inner_text()
    assert p.evaluate("typeof window.pwned") == "undefined"
    assert p.locator("#grid img").count() == 0
    assert len(requests) == 1
