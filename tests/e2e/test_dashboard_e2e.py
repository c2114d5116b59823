"""The dashboard in a real browser, against `streamlit run`, a real worker and Redis.

One story, in order: ada signs in, creates a swiss-roll run from the form and watches it
reach DONE with its curve; opens the gallery; uploads a corrupt image and then a good one
and gets it inpainted by a trained digits model; shares runs with links that open for bob
(a team run, and a private run read only) until ada revokes the link. Every page is
photographed at 1280 x 800.
"""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pytest
from e2e_helpers import VIEWPORT, sign_in
from PIL import Image

pytestmark = [pytest.mark.browser, pytest.mark.services]

NOT_FOUND = "Not found or not shared with you"


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _signed_in(browser, lab, user: str, password: str, path: str = ""):
    from playwright.sync_api import expect

    _, page = sign_in(browser, f"{lab.url}/{path}", user, password, timeout_s=30)
    expect(page.get_by_role("button", name="Sign in")).to_have_count(0, timeout=20_000)
    return page


def _go(page, title: str) -> None:
    """Open a page from the sidebar (a reload would start a new, signed-out session)."""
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title).click()


def _settle(page, seconds: float = 1.0) -> None:
    """Let Streamlit finish drawing (no spinner, fonts loaded: the Material icons are a font
    whose names show as text until it is in) before a screenshot; no hover toolbars."""
    page.mouse.move(1275, 795)
    page.wait_for_timeout(300)
    deadline = time.time() + 15
    while time.time() < deadline and page.locator('[data-testid="stSpinner"]').count():
        page.wait_for_timeout(200)
    page.evaluate("document.fonts.ready.then(() => true)")  # icons are a font (ligatures)
    page.wait_for_timeout(int(seconds * 1000))


def _no_traceback(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.inner_text("body")


def _wait_done(lab, run_id: str, timeout: float = 120) -> None:
    from db.access import SYSTEM

    store = lab.store()
    deadline = time.time() + timeout
    state = "?"
    while time.time() < deadline:
        state = store.get_run(run_id, viewer=SYSTEM).state
        if state in ("DONE", "FAILED", "CANCELLED"):
            break
        time.sleep(1)
    run = store.get_run(run_id, viewer=SYSTEM)
    log = (lab.logs / "worker.log").read_text()[-3000:]
    assert run.state == "DONE", f"{run.state}: {run.error}\n{log}"


def test_story(lab, browser, shots):
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)  # the machine may be busy: wait, but not forever

    from db.access import SYSTEM
    from diffusion.presets import PRESETS
    from worker.api import submit_run

    # a trained image model for inpainting, queued first so it trains while we click
    store = lab.store()
    ada = store.user_by_name("ada")
    digits = submit_run(
        store, PRESETS["digits-smoke"], ada, preset="digits-smoke", visibility="team"
    )

    page = _signed_in(browser, lab, "ada", "ada password 1")
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()

    # -- New run (a reload keeps ada signed in): validation, then a swiss roll from the form
    page.goto(f"{lab.url}/new_run")
    expect(page.get_by_role("heading", name="New run")).to_be_visible()
    _settle(page)
    page.screenshot(path=shots / "new_run_form.png")
    page.get_by_role("textbox", name="Hidden layer widths").fill("32, lots")
    page.get_by_role("textbox", name="Run name").fill("e2e roll")
    page.get_by_role("button", name="Queue the run").click()
    expect(page.get_by_text("Hidden layer widths: must be whole numbers")).to_be_visible()
    _settle(page)
    page.screenshot(path=shots / "new_run_validation.png")
    page.get_by_role("textbox", name="Hidden layer widths").fill("32, 32")
    page.get_by_text("team", exact=True).click()
    page.get_by_role("button", name="Queue the run").click()
    expect(page.get_by_text("Queued run")).to_be_visible()
    run_id = re.search(r"Queued run ([0-9a-f]{12})", page.inner_text("body")).group(1)
    _settle(page)
    page.screenshot(path=shots / "new_run.png")

    # -- Run page: watch it reach DONE and its bound curve appear
    page.get_by_role("link", name="Open the run page").click()
    expect(page.get_by_role("heading", name="e2e roll")).to_be_visible()
    expect(page.get_by_text("done")).to_be_visible(timeout=150_000)
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    expect(page.locator("g.trace.scatter").first).to_be_attached(timeout=30_000)
    _no_traceback(page)
    _settle(page, 2)
    page.screenshot(path=shots / "run_bound.png")
    page.get_by_role("tab", name="Samples").click()
    _settle(page, 2)
    page.screenshot(path=shots / "run_samples.png")
    assert store.get_run(run_id, viewer=SYSTEM).state == "DONE"

    # -- Runs table and the gallery
    _wait_done(lab, digits.id)
    _go(page, "Runs")
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    _settle(page, 2)
    page.screenshot(path=shots / "runs.png")
    grid = page.locator('[data-testid="stDataFrame"]').first.bounding_box()
    for row in (1, 2):  # the selection boxes of the first two rows (the grid is a canvas)
        page.mouse.click(grid["x"] + 16, grid["y"] + 35 * row + 17)
        page.wait_for_timeout(700)
    expect(page.get_by_text("Comparing 2 runs")).to_be_visible()
    expect(page.get_by_text("Parameters that differ")).to_be_visible()
    _no_traceback(page)
    page.get_by_text("Comparing 2 runs").scroll_into_view_if_needed()
    _settle(page, 2)
    page.screenshot(path=shots / "runs_compare.png")
    _go(page, "Gallery")
    expect(page.get_by_role("heading", name="Gallery")).to_be_visible()
    expect(page.locator('[data-testid="stImage"]').first).to_be_visible()
    _settle(page, 1.5)
    page.screenshot(path=shots / "gallery.png")
    page.get_by_role("button", name="Full size").first.click()
    expect(page.get_by_role("dialog")).to_be_visible()
    _settle(page)
    page.screenshot(path=shots / "gallery_full_size.png")
    page.keyboard.press("Escape")

    # -- Denoise and inpaint: a corrupt upload, then a real one inpainted
    _go(page, "Denoise and inpaint")
    expect(page.get_by_role("heading", name="Denoise and inpaint")).to_be_visible()
    uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]').first
    uploader.set_input_files(
        files=[
            {
                "name": "photo.png",
                "mimeType": "image/png",
                "buffer": b"\x89PNG\r\n\x1a\n truncated nonsense",
            }
        ]
    )
    expect(page.get_by_text("cannot be", exact=False).first).to_be_visible()
    _no_traceback(page)
    _settle(page)
    page.screenshot(path=shots / "posterior_corrupt_upload.png")
    seven = np.zeros((64, 64), np.uint8)
    seven[10:16, 12:52] = 255
    seven[16:56, 40:46] = 255
    uploader.set_input_files(
        files=[{"name": "seven.png", "mimeType": "image/png", "buffer": _png(seven)}]
    )
    expect(page.get_by_text("Corrupted input").first).to_be_visible()
    page.get_by_role("button", name=re.compile(r"Inpaint with \d+ sample")).click()
    expect(page.get_by_role("heading", name="Results")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("Spread (std)")).to_be_visible()
    page.get_by_role("heading", name="Results").scroll_into_view_if_needed()
    _no_traceback(page)
    _settle(page, 1.5)
    page.screenshot(path=shots / "posterior_results.png")
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Mask").click()
    page.get_by_role("option", name="Draw it: tick the missing pixels").click()
    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible()
    page.locator('[data-testid="stDataFrame"]').first.scroll_into_view_if_needed()
    _no_traceback(page)
    _settle(page, 1.5)
    page.screenshot(path=shots / "posterior_draw_mask.png")

    # -- Share links: one for the team run, one for a private run
    private = submit_run(store, PRESETS["swissroll-smoke"], ada, visibility="private")
    team_link = store.create_share_link([run_id], viewer=ada)
    private_link = store.create_share_link([private.id], viewer=ada)
    _go(page, "Team")
    _settle(page)
    page.screenshot(path=shots / "team.png")
    _go(page, "Status")
    expect(page.get_by_text("Workers online")).to_be_visible()
    _settle(page, 1.5)
    page.screenshot(path=shots / "status.png")
    page.context.close()

    bob = _signed_in(browser, lab, "bob", "bobs password 1", f"shared?token={team_link.token}")
    expect(bob.get_by_role("heading", name="e2e roll")).to_be_visible()
    expect(bob.locator("g.trace.scatter").first).to_be_attached(timeout=30_000)
    _no_traceback(bob)
    _settle(bob, 1.5)
    bob.screenshot(path=shots / "shared_for_team_member.png")
    bob.get_by_text("Open another share link").click()
    bob.get_by_role("textbox", name="Paste a share link or its token").fill(
        f"{lab.url}/shared?token={private_link.token}"
    )
    bob.keyboard.press("Enter")
    # holding the link opens ada's private run for bob, read only
    expect(bob.get_by_role("heading", name="swissroll-smoke")).to_be_visible(timeout=30_000)
    expect(bob.get_by_text("Shared with you by a link, read only")).to_be_visible()
    _no_traceback(bob)
    store.delete_share_link(private_link.token, viewer=ada)  # revoked: refused from now on
    bob.get_by_role("textbox", name="Paste a share link or its token").fill(private_link.token)
    bob.keyboard.press("Enter")
    expect(bob.get_by_text(NOT_FOUND)).to_be_visible()
    _settle(bob)
    bob.screenshot(path=shots / "shared_refused.png")
    bob.context.close()

    anonymous = browser.new_context(viewport=VIEWPORT).new_page()
    anonymous.goto(f"{lab.url}/shared?token={team_link.token}")
    expect(anonymous.get_by_role("button", name="Sign in")).to_be_visible()
    assert "e2e roll" not in anonymous.inner_text("body")
    _settle(anonymous)
    anonymous.screenshot(path=shots / "sign_in.png")
    anonymous.context.close()
