"""The dashboard's pure parts: chart builders, form validation, tables, masks, report."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import pytest

from dashboard import charts, forms, tables
from dashboard import posterior as pst
from dashboard.report import ReportImage, RunReport, build_report
from db.entities import Run
from diffusion.config import COVARIANCES, FIXED_SCHEDULES, SCHEDULES, RunConfig


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


def test_every_preset_submits_unchanged():
    """Presets of networks without hidden widths (rbf, conv) leave the field empty."""
    for name in forms.preset_names():
        result = forms.validate_form(forms.defaults_for(name), name)
        assert result.ok, (name, result.errors)
        assert result.config.network == forms.base_config(name).network
    mlp = {**forms.defaults_for("swissroll-smoke"), "network.hidden": ""}
    assert "network.hidden" in forms.validate_form(mlp, "swissroll-smoke").errors


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


def _variant(monkeypatch: pytest.MonkeyPatch) -> str:
    """A preset whose new diffusion fields all differ from the engine's defaults."""
    base = forms.PRESETS["swissroll-smoke"]
    diffusion = dataclasses.replace(
        base.diffusion, schedule="learned", learned_from="logsnr", beta1=2e-4, covariance="full"
    )
    monkeypatch.setitem(
        forms.PRESETS, "roll-variant", dataclasses.replace(base, diffusion=diffusion)
    )
    return "roll-variant"


def test_presets_fill_the_new_diffusion_fields(monkeypatch):
    name = _variant(monkeypatch)
    values = forms.defaults_for(name)
    assert values["diffusion.learned_from"] == "logsnr"
    assert values["diffusion.beta1"] == 2e-4
    assert values["diffusion.covariance"] == "full"
    assert forms.defaults_for("swissroll-thin")["diffusion.beta1"] == 1e-7
    assert forms.defaults_for("heartbeat-smoke")["diffusion.beta1"] == 0.02
    for preset in forms.preset_names():
        values, diffusion = forms.defaults_for(preset), forms.PRESETS[preset].diffusion
        cfg = forms.PRESETS[preset]
        assert set(values) == set(forms.form_fields(cfg.data.name, cfg.network.kind))
        assert values["diffusion.learned_from"] == diffusion.learned_from
        assert values["diffusion.beta1"] == diffusion.beta1
        assert values["diffusion.covariance"] == diffusion.covariance
    for preset in (name, "swissroll-smoke", "heartbeat-smoke"):
        result = forms.validate_form(forms.defaults_for(preset), preset)
        assert result.ok, (preset, result.errors)  # the untouched form submits the preset's
        assert result.config.diffusion == forms.PRESETS[preset].diffusion, preset


def test_schedule_and_covariance_choices_match_the_engine():
    assert set(forms.SCHEDULE_LABELS) == set(SCHEDULES)
    assert list(forms.LEARNED_FROM_LABELS) == list(FIXED_SCHEDULES)
    assert "learned" not in forms.LEARNED_FROM_LABELS
    assert {"geometric", "logsnr"} <= set(forms.LEARNED_FROM_LABELS)
    assert set(forms.COVARIANCE_LABELS) == set(COVARIANCES)
    assert forms.COVARIANCE_LABELS["diagonal"] == "Diagonal (paper)"
    assert forms.COVARIANCE_LABELS["full"] == "Full (vector data up to 16 dims)"


def test_learned_schedule_from_geometric_round_trips():
    values = {
        **forms.defaults_for("swissroll-smoke"),
        "diffusion.schedule": "learned",
        "diffusion.learned_from": "geometric",
        "diffusion.beta1": 1e-5,
    }
    result = forms.validate_form(values, "swissroll-smoke")
    assert result.ok, result.errors
    diffusion = result.config.diffusion
    assert (diffusion.schedule, diffusion.learned_from, diffusion.beta1) == (
        "learned",
        "geometric",
        1e-5,
    )
    assert RunConfig.from_json(result.config.to_json()) == result.config
    # a fixed schedule ignores the field: the preset's (unused) value is kept
    fixed = forms.validate_form({**values, "diffusion.schedule": "geometric"}, "swissroll-smoke")
    assert fixed.ok, fixed.errors
    assert fixed.config.diffusion.schedule == "geometric"
    assert fixed.config.diffusion.learned_from == "baseline"
    bad = forms.validate_form({**values, "diffusion.learned_from": "learned"}, "swissroll-smoke")
    assert set(bad.errors) == {"diffusion.learned_from"}
    assert "geometric" in bad.errors["diffusion.learned_from"]


def test_full_covariance_only_for_small_vector_data():
    values = {**forms.defaults_for("swissroll-smoke"), "diffusion.covariance": "full"}
    result = forms.validate_form(values, "swissroll-smoke")
    assert result.ok, result.errors
    assert result.config.diffusion.covariance == "full"
    for data, network in (("digits", "conv"), ("mnist", "conv"), ("heartbeat", "heartbeat")):
        bad = forms.validate_form(
            {**values, "data.name": data, "network.kind": network}, "swissroll-smoke"
        )
        assert set(bad.errors) == {"diffusion.covariance"}, (data, bad.errors)
        assert "at most 16 dimensions" in bad.errors["diffusion.covariance"]
        assert "use diagonal" in bad.errors["diffusion.covariance"]
    digits = {**forms.defaults_for("digits-smoke"), "network.hidden": "8"}
    full = forms.validate_form({**digits, "diffusion.covariance": "full"}, "digits-smoke")
    assert set(full.errors) == {"diffusion.covariance"}
    assert "image data (64 values per example)" in full.errors["diffusion.covariance"]
    assert forms.validate_form(digits, "digits-smoke").ok
    binomial = forms.validate_form(
        {**forms.defaults_for("heartbeat-smoke"), "diffusion.covariance": "full"},
        "heartbeat-smoke",
    )
    assert set(binomial.errors) == {"diffusion.covariance"}
    assert "binomial" in binomial.errors["diffusion.covariance"]


@pytest.mark.parametrize("beta1", [0, 0.0, 0.7, -1e-3, "soon", float("nan")])
def test_beta1_out_of_range_is_refused_under_its_field(beta1):
    values = {**forms.defaults_for("swissroll-smoke"), "diffusion.beta1": beta1}
    result = forms.validate_form(values, "swissroll-smoke")
    assert not result.ok
    assert set(result.errors) == {"diffusion.beta1"}, result.errors
    ok = forms.validate_form({**values, "diffusion.beta1": 0.5}, "swissroll-smoke")
    assert ok.ok and ok.config.diffusion.beta1 == 0.5


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
    with pytest.raises(pst.MaskError, match="hides nothing"):
        pst.check_mask(np.ones((4, 4), bool))
    with pytest.raises(pst.MaskError, match=r"fraction must be in \(0, 1\)"):
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
