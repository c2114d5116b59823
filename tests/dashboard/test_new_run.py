"""New run page: presets fill the form, every field is validated before anything is queued."""

from __future__ import annotations

import dataclasses
import io
import zipfile

import numpy as np
from dashboard_helpers import app_test, png_bytes, texts

from db.access import SYSTEM
from diffusion.config import RunConfig
from diffusion.presets import PRESETS


def _submit(at):
    for button in at.button:
        if button.label == "Queue the run":
            button.click()
            return at.run()
    raise AssertionError("no submit button")


def test_preset_fills_the_form_and_queues_a_run(store, queue):
    at = app_test("new_run")
    assert not at.exception
    assert at.text_input(key="f:name").value == "swissroll-smoke"
    at.selectbox(key="preset").set_value("heartbeat-smoke").run()
    assert at.selectbox(key="f:diffusion.kind").value == "binomial"
    assert at.number_input(key="f:diffusion.T").value == 50
    at.selectbox(key="preset").set_value("swissroll-smoke").run()
    at.text_input(key="f:name").set_value("my roll")
    at.number_input(key="f:train.steps").set_value(40)
    _submit(at)
    assert not at.exception
    assert len(queue) == 1
    runs = store.list_runs(viewer=SYSTEM)
    assert [r.name for r in runs] == ["my roll"]
    assert runs[0].config["train"]["steps"] == 40 and runs[0].state == "QUEUED"
    assert "Queued run" in texts(at)


def test_field_level_messages_and_nothing_queued(store, queue):
    at = app_test("new_run")
    at.text_input(key="f:name").set_value("   ")
    at.text_input(key="f:network.hidden").set_value("64, lots")
    _submit(at)
    errors = [e.value for e in at.error]
    assert any(e.startswith("Run name:") for e in errors)
    assert any(e.startswith("Hidden layer widths:") and "whole numbers" in e for e in errors)
    assert any("Nothing was queued" in e for e in errors)
    assert queue == [] and store.list_runs(viewer=SYSTEM) == []


def test_engine_validation_names_the_field(store, queue):
    at = app_test("new_run")
    at.selectbox(key="f:diffusion.kind").set_value("binomial")  # swiss roll is not binary
    _submit(at)
    assert any(e.value.startswith("Diffusion kind:") and "binary" in e.value for e in at.error)
    at.selectbox(key="f:diffusion.kind").set_value("gaussian")
    at.number_input(key="f:diffusion.T").set_value(100_000)
    at.number_input(key="f:train.batch_size").set_value(100_000)
    _submit(at)
    assert any(e.value.startswith("T:") and "too large for memory" in e.value for e in at.error)
    assert queue == []


def test_queue_down_is_a_message_not_a_traceback(store):
    at = app_test("new_run")  # no `queue` fixture: Redis at 127.0.0.1:1 does not answer
    _submit(at)
    assert not at.exception
    assert any("could not be reached" in e.value for e in at.error)
    assert store.list_runs(viewer=SYSTEM) == []


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_uploaded_images_are_checked_and_stored_by_hash(store, queue, tmp_path):
    at = app_test("new_run")
    at.selectbox(key="f:data.name").set_value("images")
    _submit(at)
    assert any(e.value.startswith("Upload:") for e in at.error)
    at.file_uploader(key="f:upload").set_value(("notes.png", b"this is not a picture", "image/png"))
    _submit(at)
    assert any("not an image" in e.value for e in at.error)
    evil = _zip({"../../escape.png": png_bytes(np.zeros((8, 8), np.uint8))})
    at.file_uploader(key="f:upload").set_value(("evil.zip", evil, "application/zip"))
    _submit(at)
    assert any("escapes the folder" in e.value for e in at.error)
    assert queue == []
    good = _zip({f"img{i}.png": png_bytes(np.full((16, 16), 40 * i, np.uint8)) for i in range(3)})
    at.file_uploader(key="f:upload").set_value(("faces.zip", good, "application/zip"))
    at.selectbox(key="f:network.kind").set_value("conv")
    _submit(at)
    assert not at.exception, at.exception
    assert len(queue) == 1, [e.value for e in at.error]
    run = store.list_runs(viewer=SYSTEM)[0]
    folder = run.config["data"]["options"]["path"]
    assert folder.startswith(str(tmp_path)) and run.config["data"]["options"]["mode"] == "L"
    files = sorted(p.name for p in (tmp_path / "uploads").rglob("*.png"))
    assert len(files) == 3 and all(len(f) == 36 for f in files)  # named by hash
    assert not list((tmp_path / "uploads").rglob(".tmp-*"))


def test_presets_fill_beta1_schedule_start_and_covariance(store, queue, monkeypatch):
    base = PRESETS["swissroll-smoke"]
    diffusion = dataclasses.replace(
        base.diffusion, schedule="learned", learned_from="geometric", beta1=3e-4
    )
    monkeypatch.setitem(PRESETS, "roll-variant", dataclasses.replace(base, diffusion=diffusion))
    at = app_test("new_run")
    assert at.number_input(key="f:diffusion.beta1").value == 1e-3
    assert at.selectbox(key="f:diffusion.covariance").value == "diagonal"
    at.selectbox(key="preset").set_value("heartbeat-smoke").run()
    assert at.number_input(key="f:diffusion.beta1").value == 0.02
    at.selectbox(key="preset").set_value("roll-variant").run()
    assert at.selectbox(key="f:diffusion.schedule").value == "learned"
    assert at.selectbox(key="f:diffusion.learned_from").value == "geometric"
    assert at.number_input(key="f:diffusion.beta1").value == 3e-4
    _submit(at)
    assert not at.exception and len(queue) == 1, [e.value for e in at.error]
    config = store.list_runs(viewer=SYSTEM)[0].config["diffusion"]
    assert (config["schedule"], config["learned_from"], config["beta1"]) == (
        "learned",
        "geometric",
        3e-4,
    )


def test_learned_schedule_from_geometric_is_submitted(store, queue):
    at = app_test("new_run")
    learned_from = at.selectbox(key="f:diffusion.learned_from")
    assert learned_from.options == [
        "Fixed 1/(T-t+1) (paper)",
        "Fixed linear",
        "Fixed cosine",
        "Fixed geometric (noise variance grows by a constant factor)",
        "Fixed linear log SNR",
    ]
    assert "Fixed linear log SNR" in at.selectbox(key="f:diffusion.schedule").options
    at.selectbox(key="f:diffusion.schedule").set_value("learned")
    learned_from.set_value("geometric")
    at.number_input(key="f:diffusion.beta1").set_value(2e-5)
    _submit(at)
    assert not at.exception and len(queue) == 1, [e.value for e in at.error]
    run = store.list_runs(viewer=SYSTEM)[0]
    diffusion = RunConfig.from_dict(run.config).diffusion
    assert (diffusion.schedule, diffusion.learned_from, diffusion.beta1) == (
        "learned",
        "geometric",
        2e-5,
    )
    assert diffusion.covariance == "diagonal"


def test_full_covariance_on_digits_is_refused_on_the_form(store, queue):
    at = app_test("new_run")
    assert at.selectbox(key="f:diffusion.covariance").options == [
        "Diagonal (paper)",
        "Full (vector data up to 16 dims)",
    ]
    at.selectbox(key="preset").set_value("digits-smoke").run()
    at.text_input(key="f:network.hidden").set_value("8")
    at.selectbox(key="f:diffusion.covariance").set_value("full")
    _submit(at)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(
        e.startswith("Reverse covariance:") and "at most 16 dimensions" in e and "digits" in e
        for e in errors
    ), errors
    assert queue == [] and store.list_runs(viewer=SYSTEM) == []
    at.selectbox(key="f:diffusion.covariance").set_value("diagonal")
    _submit(at)
    assert len(queue) == 1, [e.value for e in at.error]


def test_full_covariance_on_the_swiss_roll_is_queued(store, queue):
    at = app_test("new_run")
    at.selectbox(key="f:diffusion.covariance").set_value("full")
    _submit(at)
    assert len(queue) == 1, [e.value for e in at.error]
    assert store.list_runs(viewer=SYSTEM)[0].config["diffusion"]["covariance"] == "full"


def test_beta1_out_of_range_is_refused_under_its_field(store, queue):
    at = app_test("new_run")
    for bad in (0.0, 0.7):
        at.number_input(key="f:diffusion.beta1").set_value(bad)
        _submit(at)
        assert not at.exception
        errors = [e.value for e in at.error]
        assert any(
            e.startswith("First step beta1:") and "(0.0, 0.5]" in e and str(bad) in e
            for e in errors
        ), errors
        assert any("Nothing was queued" in e for e in errors)
    assert queue == [] and store.list_runs(viewer=SYSTEM) == []
    at.number_input(key="f:diffusion.beta1").set_value(0.5)
    _submit(at)
    assert len(queue) == 1, [e.value for e in at.error]
    assert store.list_runs(viewer=SYSTEM)[0].config["diffusion"]["beta1"] == 0.5


def test_no_form_so_enter_cannot_submit_and_the_evaluation_size_is_shown(store, queue):
    at = app_test("new_run")
    assert not at.get("form")  # Enter in an st.form field submits it: there is none
    at.selectbox(key="preset").set_value("bark").run()
    assert at.number_input(key="f:train.eval_timesteps").value == 10
    assert "Each evaluation: 4,000 (example, t) network calls" in texts(at)
    at.number_input(key="f:train.eval_timesteps").set_value(0).run()
    assert "Each evaluation: 199,600 (example, t) network calls" in texts(at)  # 2 x 200 x 499
    assert not queue


def test_same_config_within_a_minute_asks_first(store, queue):
    at = app_test("new_run")
    _submit(at)
    assert len(queue) == 1
    _submit(at)
    assert len(queue) == 1 and "exactly this config" in texts(at)
    next(b for b in at.button if b.label == "Yes, queue it again").click()
    at.run()
    assert len(queue) == 2 and len(store.list_runs(viewer=SYSTEM)) == 2
    at.number_input(key="f:train.seed").set_value(7)
    _submit(at)  # a different config goes straight through
    assert len(queue) == 3


def test_new_run_from_a_run_keeps_its_config(store, queue):
    from dashboard_helpers import make_run

    cfg = PRESETS["swissroll-smoke"].with_overrides(
        ["diffusion.T=12", "train.eval_examples=77", "data.n_train=321"]
    )
    source, _ = store.create_run(cfg.to_dict(), owner_id=store.local_user().id, name="src")
    make_run(store, store.local_user())  # another run, not the source
    at = app_test("new_run", query={"from": source.id})
    assert not at.exception
    assert at.number_input(key="f:diffusion.T").value == 12
    assert at.number_input(key="f:train.eval_examples").value == 77
    assert at.text_input(key="f:name").value == "src (copy)"
    at.number_input(key="f:train.steps").set_value(99)
    _submit(at)
    new = next(r for r in store.list_runs(viewer=SYSTEM) if r.name == "src (copy)")
    expected = cfg.to_dict()
    expected["train"]["steps"], expected["name"] = 99, "src (copy)"
    assert new.config == expected  # data.n_train (not on the form) came from the source run


def test_new_run_from_a_continued_run_gets_its_own_lr_schedule(store, queue):
    """A continued run keeps its first schedule's length in train.lr_steps; a new run made
    from it trains from step 0, so its schedule spans its own steps (lr_steps 0). Broken
    version caught: copying lr_steps, which would decay the new run's lr over the old length."""
    cfg = PRESETS["swissroll-smoke"].with_overrides(["train.steps=60", "train.lr_steps=40"])
    source, _ = store.create_run(cfg.to_dict(), owner_id=store.local_user().id, name="long")
    at = app_test("new_run", query={"from": source.id})
    assert not at.exception
    assert at.number_input(key="f:train.steps").value == 60
    _submit(at)
    new = next(r for r in store.list_runs(viewer=SYSTEM) if r.name == "long (copy)")
    assert new.config["train"]["lr_steps"] == 0 and new.config["train"]["steps"] == 60


def test_the_preset_card_follows_the_chosen_preset(store, queue):
    """The card under the preset says what the chosen preset reaches, from the results files.
    The broken version this catches: the card of the preset first shown kept after a change."""
    import json
    from pathlib import Path

    results = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    k = {
        r["row"]: r["K_bits"]
        for f in ("table1_standard.json", "table1.json")
        for r in json.loads((results / f).read_text())["rows"]
    }
    at = app_test("new_run")
    at.selectbox(key="preset").set_value("cifar10-unet").run()
    text = texts(at)
    assert f"{k['cifar10']:.3f} bits/pixel" in text and "283,798 parameters" in text
    at.selectbox(key="preset").set_value("heartbeat").run()
    text = texts(at)
    assert f"{k['heartbeat']:.3f} bits/seq" in text and f"{k['cifar10']:.3f}" not in text
    at.selectbox(key="preset").set_value("swissroll-smoke").run()
    assert "no record" in texts(at)
    assert not at.exception
