"""The page, driven end to end in headless Chromium through Playwright: upload a real photo and
see its face box and attribute bars, search the index and see the thumbnails, see a bad query's
error, and take a screenshot. The app (tiny real model, real index) runs in uvicorn on loopback.
A model with numeric and categorical attributes shows the age in years and the hair class."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from PIL import Image
from playwright.sync_api import Page, expect, sync_playwright

from faceattr.inference.predictor import Predictor
from faceattr.inference.values import CategoricalValue
from faceattr.server.background import serve_in_thread

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's Chromium (`apt install chromium`); the test is skipped without it."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no chromium executable (apt install chromium) for the browser test")
    return path


@pytest.fixture(scope="module")
def base_url(app: FastAPI) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port."""
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture
def page(chromium: str) -> Iterator[Page]:
    """A headless Chromium page; any uncaught script error fails the test."""
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield page
        finally:
            browser.close()
    assert not errors, errors


def inside(inner: dict[str, float] | None, outer: dict[str, float] | None) -> bool:
    """Whether the bounding box ``inner`` lies within ``outer`` (one pixel of slack)."""
    assert inner is not None and outer is not None
    return (
        inner["x"] >= outer["x"] - 1
        and inner["y"] >= outer["y"] - 1
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 1
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 1
    )


def test_upload_search_and_errors_in_the_page(
    page: Page, base_url: str, photos: list[Path], tmp_path: Path
) -> None:
    page.goto(base_url)
    expect(page.locator("#status")).to_contain_text("facenet-mtl")
    expect(page.locator("#status")).to_contain_text(f"index of {len(photos)} faces")

    page.set_input_files("#photo", photos[0])
    box = page.locator("#stage .face-box")
    expect(box).to_have_count(1)
    expect(page.locator("#stage .landmark")).to_have_count(5)
    bars = page.locator("#faces .face .bar")
    expect(bars).to_have_count(40)
    assert inside(box.bounding_box(), page.locator("#photo-view").bounding_box())
    widths = [
        float(w.rstrip("%"))
        for w in bars.locator(".fill").evaluate_all("fills => fills.map(f => f.style.width)")
    ]
    assert widths == sorted(widths, reverse=True)
    assert 0 < widths[0] <= 100

    page.fill("#query", "")
    page.click("#search-form button")
    thumbnails = page.locator("#gallery .hit img")
    expect(thumbnails).to_have_count(len(photos))
    page.wait_for_function(
        "() => [...document.querySelectorAll('#gallery img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    expect(page.locator("#search-summary")).to_have_text(f"{len(photos)} faces")
    page.locator("#gallery .similar").first.click()
    expect(page.locator("#search-summary")).to_contain_text("ranked by similarity to face")
    page.screenshot(path=tmp_path / "page.png", full_page=True)

    page.fill("#query", "Eyeglases and Male")
    page.click("#search-form button")
    expect(page.locator("#error")).to_be_visible()
    expect(page.locator("#error")).to_contain_text("Eyeglases")
    expect(page.locator("#gallery .hit")).to_have_count(0)

    screenshot = tmp_path / "page.png"
    assert screenshot.read_bytes().startswith(PNG_SIGNATURE)
    with Image.open(screenshot) as image:
        assert image.width == 1280 and image.height >= 600


def test_the_page_shows_a_number_with_its_unit_and_a_class_with_its_probability(
    page: Page, kinds_app: FastAPI, kinds_model: Path, photos: list[Path]
) -> None:
    [face] = Predictor.from_checkpoint(kinds_model, device="cpu").predict(photos[0])
    age, hair = face.values()["age"], face.values()["hair"]
    assert isinstance(hair, CategoricalValue)
    with serve_in_thread(kinds_app) as url:
        page.goto(url)
        page.set_input_files("#photo", photos[0])
        expect(page.locator("#faces .face .bar")).to_have_count(2)  # Male, Smiling
        numeric = page.locator("#faces .value-row.numeric")
        expect(numeric).to_have_text(f"age{age}")  # e.g. "age" "45.4 years"
        categorical = page.locator("#faces .value-row.categorical")
        expect(categorical).to_have_text(f"hair{hair.label}{hair.probability:.2f}")
        assert categorical.get_attribute("title") == ", ".join(
            f"{label} {p:.2f}" for label, p in hair.probabilities.items()
        )
