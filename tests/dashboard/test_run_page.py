"""Run page: live charts with reference lines, samples, downloads, notes; bad ids refused."""

from __future__ import annotations

import json

import pytest
from dashboard_helpers import app_test, make_run, open_view, texts

from db.access import SYSTEM

NOT_FOUND = "not found or not shared with you"


def _figures(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def test_bound_curves_with_paper_reference_and_profiles(store):
    run = make_run(store, store.local_user())
    at = app_test("run", query={"id": run.id})
    assert not at.exception
    assert "swissroll-smoke" in [t.value for t in at.title]
    figures = _figures(at)
    titles = [f["layout"]["title"]["text"] for f in figures]
    assert "Bound on the log-likelihood" in titles
    assert "Per-step KL profile" in titles and "Forward diffusion schedule" in titles
    bound = figures[titles.index("Bound on the log-likelihood")]
    names = {trace["name"] for trace in bound["data"]}
    assert {"K (train)", "K (holdout)", "K - L_null (holdout)"} <= names
    refs = [s["y0"] for s in bound["layout"]["shapes"]]
    assert 2.35 in refs and 6.45 in refs  # Table 1: swiss roll K and K - L_null
    assert bound["layout"]["uirevision"] == "bound"  # zoom survives live refreshes
    open_view(at, "Samples")
    figures = _figures(at)
    titles = [f["layout"]["title"]["text"] for f in figures]
    cloud = "Samples at step 30, over the training data"
    assert cloud in titles and "Reverse trajectory: noise to data" in titles
    assert {t["name"] for t in figures[titles.index(cloud)]["data"]} == {"data", "samples"}
    open_view(at, "Bound")
    figures = _figures(at)
    titles = [f["layout"]["title"]["text"] for f in figures]
    loss = [t for t in titles if t.startswith("Training loss")]
    assert len(loss) == 1 and titles.count("Bound on the log-likelihood") == 1
    assert figures[titles.index(loss[0])]["layout"]["showlegend"] is True


def test_image_run_shows_its_gallery_and_downloads(store):
    run = make_run(store, store.local_user(), "digits-smoke")
    at = app_test("run", query={"id": run.id})
    assert not at.exception
    open_view(at, "Samples")
    assert len(at.image) == 2  # the gallery, and the reverse trajectory as a strip
    open_view(at, "Files")
    labels = [b.label for b in at.get("download_button")]
    assert {"Config (JSON)", "Samples (PNG)", "Checkpoint", "Report (HTML)"} <= set(labels)


def test_unknown_and_foreign_ids_are_not_found(store):
    other = store.create_user("alice", "correct horse battery")
    private = make_run(store, other, name="alice's secret")
    at = app_test("run", query={"id": "doesnotexist"})
    assert NOT_FOUND in texts(at).lower()
    at = app_test("run", query={"id": private.id})
    assert NOT_FOUND in texts(at).lower()
    assert "alice's secret" not in texts(at)


def test_notes_tags_and_visibility_are_saved(store, monkeypatch):
    run = make_run(store, store.local_user())
    at = app_test("run", query={"id": run.id, "view": "Notes, tags, sharing"})
    assert at.text_area(key="run_notes")  # the notes view is open
    assert not at.toggle  # single-user mode: no private/team switch
    monkeypatch.setenv("DIFFLAB_TEAM_MODE", "1")
    ada = store.create_user("ada", "ada password 1")
    run = make_run(store, ada)
    at = app_test()
    at.text_input(key="signin_user").set_value("ada")
    at.text_input(key="signin_password").set_value("ada password 1")
    at.button[0].click()
    at.run()
    at.switch_page("views/run.py")
    at.query_params["id"] = run.id
    at.run()
    open_view(at, "Notes, tags, sharing")
    at.text_area(key="run_notes").set_value("lr too high?")
    at.text_input(key="run_tags").set_value("smoke, cpu")
    at.toggle(key="run_team").set_value(True)
    next(b for b in at.button if b.label.startswith("Save notes")).click()
    at.run()
    saved = store.get_run(run.id, viewer=SYSTEM)
    assert (saved.notes, sorted(saved.tags), saved.visibility) == (
        "lr too high?",
        ["cpu", "smoke"],
        "team",
    )


def test_failed_run_shows_its_message(store):
    run = make_run(store, store.local_user(), state="FAILED")
    at = app_test("run", query={"id": run.id})
    assert any("CUDA out of memory" in e.value for e in at.error)


def test_picker_without_id(store):
    make_run(store, store.local_user())
    at = app_test("run")
    assert not at.exception
    assert at.selectbox[0].label == "Open a run"


def test_report_is_self_contained(store):
    from dashboard.runfiles import report_html

    user = store.local_user()
    run = make_run(store, user, "digits-smoke", name="<script>alert(1)</script>")
    html = report_html(store, user, store.get_run(run.id, viewer=user))
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html
    assert "plotly" in html.lower() and '<script src="http' not in html
    assert '"diffusion"' in html
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


def test_variance_limits_bracket_between_posterior_variance_and_beta():
    import numpy as np

    from dashboard.rundata import variance_limits

    beta = np.linspace(1e-3, 0.2, 10)
    lower, upper = variance_limits(beta)
    assert np.isnan(lower[0])
    assert all(lo <= up + 1e-15 for lo, up in zip(lower[1:], upper[1:], strict=True))
    abar = np.cumprod(1 - beta)
    t = 4  # index of t = 5
    assert lower[t] == pytest.approx((1 - abar[t - 1]) * beta[t] / (1 - abar[t]))


def test_gallery_step_slider(store):
    import numpy as np
    from dashboard_helpers import png_bytes

    run = make_run(store, store.local_user(), "digits-smoke", state="DONE")
    for step in (5, 15):  # galleries written earlier in training (no lease: SYSTEM writes)
        store.put_artifact(
            run.id,
            "gallery_png",
            png_bytes(np.full((10, 10), step, np.uint8)),
            key=f"gallery-{step:09d}.png",
            media_type="image/png",
            step=step,
        )
    at = app_test("run", query={"id": run.id, "view": "Samples"})
    slider = at.select_slider(key="run_gallery_step")
    assert list(slider.options) == ["5", "15", "30"] and slider.value == 30
    slider.set_value(5).run()
    assert [c for img in at.image for c in img.captions][0] == "Samples at step 5"
