"""report.html in headless Chromium (Debian's ``/usr/bin/chromium`` through Playwright): no
console error, no failed request, every figure decoded, every contents link resolved."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from faceattr.report import ReportFiles

CHROMIUM = Path("/usr/bin/chromium")
EXECUTABLE = str(CHROMIUM) if CHROMIUM.is_file() else shutil.which("chromium")

pytestmark = pytest.mark.skipif(
    EXECUTABLE is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)


def check_page(browser: Browser, html: Path, figures: int) -> None:
    """Open ``html``; assert no error and ``figures`` images decoded, anchors all present."""
    page = browser.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("requestfailed", lambda request: problems.append(request.url))
    page.goto(html.as_uri(), wait_until="load")
    widths = page.eval_on_selector_all(
        "img", "images => images.map(i => i.complete ? i.naturalWidth : 0)"
    )
    assert len(widths) == figures and min(widths) > 100, widths
    assert problems == []
    assert page.title() == page.inner_text("h1")
    for anchor in page.eval_on_selector_all("nav a", "links => links.map(a => a.hash)"):
        assert page.locator(anchor).count() == 1, anchor
    page.close()


def test_reports_load_in_chromium_with_every_figure_decoded(
    single_report: ReportFiles, comparison_report: ReportFiles
) -> None:
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=EXECUTABLE, args=["--no-sandbox"])
        try:
            check_page(browser, single_report.html, figures=len(single_report.figures))
            check_page(browser, comparison_report.html, figures=len(comparison_report.figures))
        finally:
            browser.close()
