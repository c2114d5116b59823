"""A representative pass in a real browser: the run page's tabs for one run of each data kind
(points, 8 x 8 digits while evaluating, RGB) show content and no exception (every kind and
state: tests/dashboard/test_every_tab.py); Enter in a
New run field queues nothing. Runs are seeded through the store (tests/lab_seed.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from benchmarks.pages import (  # noqa: E402
    CHROMIUM,
    FLAGS,
    RENDERED_JS,
    VIEWPORT,
    seeded_dashboard,
)

pytestmark = [pytest.mark.browser]
RUNS = ("points-done", "digits8-evaluating", "rgb32-done")  # AppTest covers the rest
TABS = ("Bound", "Samples", "Files", "Notes, tags, sharing")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    with seeded_dashboard(tmp_path_factory.mktemp("lab"), RUNS) as lab:
        yield lab


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser.new_page(viewport=VIEWPORT)
        browser.close()


def _no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.inner_text("body")


@pytest.mark.parametrize("name", RUNS)
def test_every_tab_shows_something(seeded, page, name):
    from playwright.sync_api import expect

    base, ids = seeded
    page.goto(f"{base}/run?id={ids[name]}")
    expect(page.get_by_role("tab", name=TABS[0])).to_be_visible(timeout=60_000)
    page.wait_for_function(RENDERED_JS, timeout=60_000, polling=50)
    for tab in TABS:
        page.get_by_role("tab", name=tab).click()
        panel = page.locator('[role="tabpanel"]:visible')
        expect(panel).to_have_count(1)
        page.wait_for_timeout(300)
        page.wait_for_function(RENDERED_JS, timeout=60_000, polling=50)
        _no_exception(page)
        content = panel.inner_text().strip()
        drawn = panel.locator("img, canvas, .main-svg, textarea, button").count()
        assert content or drawn, f"{name}: the {tab} tab is empty"
    if name == "digits8-evaluating":
        assert "evaluating at step" in page.inner_text("body")


def test_enter_in_a_new_run_field_queues_nothing(seeded, page):
    from playwright.sync_api import expect

    base, _ = seeded
    page.goto(f"{base}/new_run")
    name = page.get_by_role("textbox", name="Run name")
    expect(name).to_be_visible(timeout=60_000)
    name.fill("pressed enter")
    name.press("Enter")
    page.wait_for_timeout(2000)
    _no_exception(page)
    body = page.inner_text("body")
    assert "Queued run" not in body and "could not be reached" not in body
