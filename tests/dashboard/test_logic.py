"""The dashboard's pure parts: chart builders, form validation, tables, masks, report."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from dashboard import charts, forms, tables
from dashboard import posterior as pst
from dashboard.report import ReportImage, RunReport, build_report
from db.entities import Run


def test_bound_curves_skip_nan_and_draw_references():
    fig = charts.bound_curves(
        {"k_holdout_bits": [(10, 1.0), (20, math.nan), (30, 2.0)]},
        paper_k_bits=2.35,
        true_ll_bits=None,
    )
    assert list(fig.data[0].x) == [10, 30]
    assert [s.y0 for s in fig.layout.shapes] == [2.35]
    assert fig.layout.uirevision == "bound"
    empty = charts.bound_curves({})
    assert not empty.data and "No bound evaluated yet" in empty.layout.annotations[0].text


def test_schedule_and_variance_charts():
    fig = charts.beta_schedule([0.1, 0.2], [0.1, 0.15])
    assert [t.name for t in fig.data] == ["baseline", "schedule in use"]
    fig = charts.reverse_variance([], [0.01, 0.02], [0.1, 0.2])
    assert [t.name for t in fig.data] == ["upper bound", "lower bound"]
    anim = charts.trajectory_animation(np.zeros((4, 10, 2)))
    assert len(anim.frames) == 4


def test_form_maps_engine_errors_to_fields():
    values = forms.defaults_for("swissroll-smoke")
    assert forms.validate_form(values, "swissroll-smoke").ok
    bad = {**values, "train.lr": "fast", "train.steps": "many"}
    result = forms.validate_form(bad, "swissroll-smoke")
    assert set(result.errors) == {"train.lr", "train.steps"}
    bad = {
        **values,
        "diffusion.schedule": "learned",
        "diffusion.kind": "binomial",
        "data.name": "heartbeat",
    }
    result = forms.validate_form(bad, "swissroll-smoke")
    assert (
        "diffusion.schedule" in result.errors and "baseline" in result.errors["diffusion.schedule"]
    )


def test_changing_the_data_set_borrows_its_options():
    values = {
        **forms.defaults_for("swissroll-smoke"),
        "data.name": "texture",
        "network.kind": "conv",
    }
    result = forms.validate_form(values, "swissroll-smoke")
    assert result.ok, result.errors
    assert result.config.data.name == "texture"
    assert result.config.data == forms.PRESETS["bark"].data  # the bark preset's data section


def _run(i: int, state: str, device: str = "cpu", config: dict | None = None) -> Run:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=i)
    return Run(
        id=f"r{i}",
        name=f"run {i}",
        owner_id=1,
        owner="a",
        preset=None,
        config=config or {"train": {"steps": i}},
        state=state,
        visibility="private",
        tags=(),
        notes="",
        seed=0,
        device_request=device,
        host=None,
        device=None,
        lease_owner=None,
        lease_expires_at=None,
        step=0,
        total_steps=10,
        checkpoint_step=None,
        final_bound_bits=None,
        final_bound_stderr=None,
        error=None,
        cancel_requested=False,
        parent_id=None,
        created_at=now,
        started_at=None,
        finished_at=None,
        updated_at=now,
    )


def test_queue_positions_per_queue_and_differences():
    runs = [_run(3, "QUEUED"), _run(1, "QUEUED"), _run(2, "RUNNING"), _run(4, "QUEUED", "auto")]
    assert tables.queue_positions(runs) == {"r1": 1, "r3": 2, "r4": 1}
    diff = tables.differing_parameters([_run(1, "DONE"), _run(2, "DONE")])
    assert list(diff.index) == ["train.steps"]


def test_masks_and_views():
    shape = pst.ImageShape(8, 8, "L")
    centre = pst.make_mask("centre", shape)
    assert (~centre).sum() == 16 and not centre[3:5, 3:5].any()
    assert (~pst.make_mask("left", shape))[:, :4].all()
    with pytest.raises(pst.MaskError, match="hides no pixel"):
        pst.check_mask(np.ones((4, 4), bool))
    with pytest.raises(pst.MaskError, match="between 0 and 1"):
        pst.make_mask("random", shape, fraction=1.5)
    grid = pst.grid(np.zeros((5, 4, 4), np.uint8))
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1)  # 3 columns, 2 rows, 1-pixel gaps


def test_report_escapes_and_embeds():
    fig = charts.kl_profile([0.5, 0.2])
    html = build_report(
        RunReport(
            title="<b>x</b>",
            summary={"id": "r1"},
            config={"a": 1},
            figures=[("KL", fig)],
            images=[ReportImage("s", b"\x89PNG...")],
            notes="<i>n</i>",
        )
    )
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert html.count("<script") >= 2 and "data:image/png;base64," in html


def test_brighten_only_data_level_pictures():
    import io

    from PIL import Image

    from dashboard.widgets import brighten

    def png(arr):
        buf = io.BytesIO()
        Image.fromarray(arr.astype(np.uint8)).save(buf, format="PNG")
        return buf.getvalue()

    def load(data):
        return np.asarray(Image.open(io.BytesIO(data)))

    levels = np.array([[0, 8, 16, 255]])
    assert load(brighten(png(levels), 17)).tolist() == [[0, 128, 255, 255]]
    already = np.array([[0, 100, 200, 255]])
    assert load(brighten(png(already), 17)).tolist() == already.tolist()
