"""Denoise and inpaint page: uploads checked by content, masks validated, jobs and results."""

from __future__ import annotations

import io

import numpy as np
import pytest
from dashboard_helpers import app_test, make_run, npy, png_bytes, texts
from PIL import Image

from db.access import SYSTEM
from db.store_jobs import Lease


def _upload(at, name: str, data: bytes, mime: str = "image/png"):
    at.file_uploader(key="pst_upload").set_value((name, data, mime))
    return at.run()


def _go(at):
    next(b for b in at.button if b.key == "pst_go").click()
    return at.run()


def test_needs_a_trained_image_model(store):
    make_run(store, store.local_user())  # a swiss roll cannot inpaint images
    at = app_test("posterior")
    assert "No trained image model yet" in texts(at)


def test_bad_uploads_get_clear_messages(store):
    make_run(store, store.local_user(), "digits-smoke")
    at = app_test("posterior")
    _upload(at, "cat.png", b"GIF89a but not really")
    assert not at.exception
    assert any("not an image" in e.value for e in at.error)
    good = png_bytes(np.zeros((64, 64), np.uint8))
    _upload(at, "cut.png", good[: len(good) // 2])
    assert any("truncated" in e.value or "corrupt" in e.value for e in at.error)
    cmyk = io.BytesIO()
    Image.new("CMYK", (40, 30), (0, 200, 200, 0)).save(cmyk, format="JPEG")
    _upload(at, "print.jpg", cmyk.getvalue(), "image/jpeg")
    assert not at.error and len(at.image) == 2  # accepted: converted, run at its own size
    assert "CMYK colour was converted to RGB" in texts(at)
    assert "Colour converted to greyscale" in texts(at)
    assert "Run at full size, 40 x 30" in texts(at)


def test_mask_validation(store):
    make_run(store, store.local_user(), "digits-smoke")
    at = app_test("posterior")
    _upload(at, "x.png", png_bytes(np.full((8, 8), 200, np.uint8)))
    at.selectbox(key="pst_mask").set_value("upload").run()
    at.file_uploader(key="pst_mask_upload").set_value(
        ("mask.png", png_bytes(np.full((8, 8), 255, np.uint8)), "image/png")
    )
    at.run()
    assert any("hides nothing" in e.value for e in at.error)
    at.file_uploader(key="pst_mask_upload").set_value(
        ("mask.png", png_bytes(np.zeros((8, 8), np.uint8)), "image/png")
    )
    at.run()
    assert any("hides every pixel" in e.value for e in at.error)
    at.selectbox(key="pst_mask").set_value("rectangle").run()
    at.slider(key="pst_rows").set_value((0.5, 0.5)).run()
    assert any("hides nothing" in e.value for e in at.error)


def test_guided_inpaint_sends_its_weight(store, queue):
    user = store.local_user()
    make_run(store, user, "digits-smoke")
    at = app_test("posterior")
    _upload(at, "seven.png", png_bytes(np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1))))
    at.selectbox(key="pst_mask").set_value("left").run()
    at.radio(key="pst_method").set_value("guided").run()
    at.number_input(key="pst_guidance").set_value(3.5).run()
    _go(at)
    assert not at.exception and len(queue) == 1
    job = store.get_job(queue[0], viewer=SYSTEM)
    assert job.params["method"] == "guided" and job.params["guidance"] == 3.5


def test_inpaint_job_and_results(store, queue):
    user = store.local_user()
    run = make_run(store, user, "digits-smoke")
    at = app_test("posterior")
    _upload(at, "seven.png", png_bytes(np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1))))
    at.selectbox(key="pst_mask").set_value("left").run()
    at.radio(key="pst_method").set_value("repaint").run()
    _go(at)
    assert not at.exception and len(queue) == 1
    job = store.get_job(queue[0], viewer=SYSTEM)
    assert job.kind == "inpaint" and job.run_id == run.id
    assert job.params["method"] == "repaint" and job.params["n"] == 4
    mask = store.upload_bytes(job.params["mask_upload_id"], viewer=SYSTEM)
    known = np.asarray(Image.open(io.BytesIO(mask)))  # the conv net: the image's own size
    assert known.shape == (32, 32) and (known[:, :16] == 0).all() and (known[:, 16:] == 255).all()
    assert job.params["size_plan"] == "Run at full size, 32 x 32"
    # a worker takes it and stores results
    claim = store.claim_job(job.id, job.celery_id, worker="w", host="h", device="cpu", lease_s=60)
    lease = Lease(job.id, claim.job.lease_owner)
    rng = np.random.default_rng(0)
    samples = rng.uniform(0, 16, (4, 8, 8))
    for kind, arr in (
        ("posterior_samples", samples),
        ("posterior_mean", samples.mean(0)),
        ("posterior_std", samples.std(0)),
    ):
        store.put_artifact(
            run.id,
            kind,
            npy(arr),
            key=f"{kind}.npy",
            job_id=job.id,
            media_type="application/x-npy",
            lease=lease,
        )
    store.finish_job(lease, "DONE", message="4 posterior samples; 32 x 32: run at full size")
    at.run()
    assert not at.exception
    captions = "\n".join(texts(at).splitlines())
    assert "Results" in captions
    assert "Run at full size, 32 x 32 · 4 posterior samples; 32 x 32: run at full size" in captions
    assert len(at.image) == 2 + 5  # preview pair, then input, corrupted, samples, mean, spread
    assert {b.label for b in at.get("download_button")} == {
        "Download samples",
        "Download mean",
        "Download spread",
    }


def test_denoise_sends_the_clean_image_in_the_data_levels(store, queue):
    run = make_run(store, store.local_user(), "digits-smoke")  # digits: grey levels 0..16
    at = app_test("posterior")
    _upload(at, "x.png", png_bytes(np.full((8, 8), 255, np.uint8)))
    at.radio(key="pst_task").set_value("Denoise").run()
    at.slider(key="pst_sigma").set_value(51.0).run()
    _go(at)
    job = store.get_job(queue[0], viewer=SYSTEM)
    assert job.kind == "denoise" and job.run_id == run.id
    assert job.params["sigma"] == pytest.approx(51.0 * 16 / 255)  # in the data's grey levels
    x = np.asarray(
        Image.open(io.BytesIO(store.upload_bytes(job.params["upload_id"], viewer=SYSTEM)))
    )
    assert x.shape == (8, 8) and (x == 16).all()  # white is level 16 for the digits


def test_denoise_results_show_the_read_out_mean_beside_the_samples(store, queue):
    run = make_run(store, store.local_user(), "digits-smoke")
    at = app_test("posterior")
    _upload(at, "x.png", png_bytes(np.tile(np.arange(8, dtype=np.uint8) * 30, (8, 1))))
    at.radio(key="pst_task").set_value("Denoise").run()
    _go(at)
    job = store.get_job(queue[0], viewer=SYSTEM)
    claim = store.claim_job(job.id, job.celery_id, worker="w", host="h", device="cpu", lease_s=60)
    lease = Lease(job.id, claim.job.lease_owner)
    samples = np.random.default_rng(0).uniform(0, 16, (4, 8, 8))
    for kind, arr in (
        ("posterior_samples", samples),
        ("posterior_mean", samples.mean(0)),
        ("posterior_std", samples.std(0)),
        ("posterior_mean_readout", np.full((8, 8), 16 * 0.25)),
    ):
        store.put_artifact(
            run.id,
            kind,
            npy(arr),
            key=f"{kind}.npy",
            job_id=job.id,
            media_type="application/x-npy",
            lease=lease,
        )
    store.finish_job(lease, "DONE", message="4 posterior samples")
    at.run()
    assert not at.exception
    captions = [c for im in at.image[2:] for c in im.captions]  # after the preview pair
    assert captions == [
        "Input",
        "Corrupted input",
        "Samples",
        "Mean of the samples",
        "Posterior mean (one read-out)",
        "Spread (std)",
    ]
    assert "Download posterior mean" in {b.label for b in at.get("download_button")}


def test_failed_job_message(store, queue):
    run = make_run(store, store.local_user(), "digits-smoke")
    at = app_test("posterior")
    _upload(at, "x.png", png_bytes(np.full((8, 8), 128, np.uint8)))
    _go(at)
    job = store.get_job(queue[0], viewer=SYSTEM)
    claim = store.claim_job(job.id, job.celery_id, worker="w", host="h", device="cpu", lease_s=60)
    store.finish_job(
        Lease(job.id, claim.job.lease_owner), "FAILED", error="checkpoint is from an older version"
    )
    at.run()
    assert any("older version" in e.value for e in at.error)
    assert run.id


def test_queue_down_leaves_no_upload_behind(store):
    make_run(store, store.local_user(), "digits-smoke")
    at = app_test("posterior")  # no `queue` fixture: Redis does not answer
    _upload(at, "x.png", png_bytes(np.full((8, 8), 128, np.uint8)))
    _go(at)
    assert not at.exception
    assert any("could not be reached" in e.value for e in at.error)
    assert store.list_uploads(viewer=SYSTEM) == []


def test_held_out_digits_match_the_engine_split():
    from dashboard.posterior import holdout_examples
    from diffusion.data.base import build_dataset
    from diffusion.presets import PRESETS

    config = PRESETS["digits-smoke"]
    ours = holdout_examples(config.to_dict(), count=5)
    bundle = build_dataset(config.data, config.train.seed)
    engine = bundle.holdout[:5].reshape(5, 8, 8).numpy()
    np.testing.assert_array_equal(ours, engine.astype(np.uint8))


def test_pick_a_held_out_image(store, queue):
    run = make_run(store, store.local_user(), "digits-smoke")
    at = app_test("posterior")
    at.radio(key="pst_source").set_value("A held-out image").run()
    at.slider(key="pst_pick").set_value(3).run()
    assert not at.exception and len(at.image) == 2
    _go(at)
    job = store.get_job(queue[0], viewer=SYSTEM)
    sent = np.asarray(
        Image.open(io.BytesIO(store.upload_bytes(job.params["upload_id"], viewer=SYSTEM)))
    )
    from dashboard.posterior import holdout_examples

    np.testing.assert_array_equal(sent, holdout_examples(run.config)[2])


def test_drawn_mask(store, queue):
    make_run(store, store.local_user(), "digits-smoke")
    at = app_test("posterior")
    _upload(at, "x.png", png_bytes(np.full((8, 8), 200, np.uint8)))
    at.selectbox(key="pst_mask").set_value("draw").run()
    assert not at.exception and len(at.dataframe) == 1
    # untick the whole centre square except one pixel, tick one corner pixel
    edits = {r: {str(c): False for c in range(2, 6)} for r in range(2, 6)}
    edits[3]["3"] = True
    edits[0] = {"0": True}
    at.session_state["pst_draw"] = {"edited_rows": edits, "added_rows": [], "deleted_rows": []}
    at.run()
    _go(at)
    job = store.get_job(queue[0], viewer=SYSTEM)
    known = np.asarray(
        Image.open(io.BytesIO(store.upload_bytes(job.params["mask_upload_id"], viewer=SYSTEM)))
    )
    assert sorted(zip(*np.nonzero(known == 0), strict=True)) == [(0, 0), (3, 3)]


def test_a_photo_is_run_at_its_own_size_and_the_page_says_so_first(store, queue):
    make_run(store, store.local_user(), "photos")  # fully convolutional, trained on 32 x 32
    at = app_test("posterior")
    uploader = at.file_uploader(key="pst_upload")
    assert uploader.proto.max_upload_size_mb == 20  # the widget states the real cap
    rgb = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    _upload(at, "photo.png", png_bytes(rgb))
    said = texts(at)
    assert "What will happen: Run at full size, 512 x 512." in said
    assert "Colour converted to greyscale" in said and "fully convolutional" in said
    assert "draw" not in at.selectbox(key="pst_mask").options  # no 512-wide tick grid
    assert "the chain starts from a smooth fill of the hole" in said  # a 256 x 256 hole
    _go(at)
    job = store.get_job(queue[0], viewer=SYSTEM)
    x = np.asarray(
        Image.open(io.BytesIO(store.upload_bytes(job.params["upload_id"], viewer=SYSTEM)))
    )
    assert x.shape == (512, 512) and job.params["steps"] == 50
    known = np.asarray(
        Image.open(io.BytesIO(store.upload_bytes(job.params["mask_upload_id"], viewer=SYSTEM)))
    )
    assert known.shape == (512, 512)


def test_a_fixed_size_model_says_it_resizes():
    from dashboard.upload_plan import plan_upload
    from diffusion.presets import PRESETS

    digits = PRESETS["digits-smoke"].to_dict()
    config = {**digits, "network": {**digits["network"], "options": {"dense_hidden": 8}}}
    plan = plan_upload(png_bytes(np.full((64, 48), 9, np.uint8)), config, 4, "L")
    assert plan.action == "resized" and plan.run_size == (8, 8) and plan.pixels.shape == (8, 8)
    assert "only 8 x 8" in " ".join(plan.notes) and "48 x 64" in " ".join(plan.notes)
    assert plan_upload(png_bytes(np.zeros((8, 8), np.uint8)), config, 4, "L").action == "native"
    big = plan_upload(png_bytes(np.zeros((3000, 1500), np.uint8)), digits, 1, "L")
    assert big.action == "resized" and big.run_size == (1024, 512)


def test_only_finished_models_unless_a_checkpoint_is_chosen(store, queue):
    user = store.local_user()
    done = make_run(store, user, "digits-smoke", name="finished")
    running = make_run(store, user, "digits-smoke", state="RUNNING", name="training")
    at = app_test("posterior")
    offered = at.selectbox(key="pst_model").options
    assert len(offered) == 1 and done.id in offered[0]  # the running run is not offered
    at.toggle(key="pst_use_ckpt").set_value(True).run()
    options = at.selectbox(key="pst_ckpt_model").options
    assert len(options) == 1 and "checkpoint at step 30" in options[0]
    _upload(at, "x.png", png_bytes(np.full((8, 8), 100, np.uint8)))
    _go(at)
    job = store.get_job(queue[0], viewer=SYSTEM)
    assert job.run_id == running.id and job.params["checkpoint_step"] == 30


def test_the_page_says_the_biharmonic_start_exactly_when_the_worker_uses_it():
    """The sentence before the job says the chain starts from the biharmonic fill exactly when
    the engine's "auto" setting (the worker's) does, at the engine's noise level, and is absent
    when the engine runs one pass. Broken versions caught: a note that is never shown, one
    shown for a hole the engine runs in one pass, or one that names another level."""
    from dashboard.upload_plan import inpaint_note
    from diffusion.chains.posterior_coarse import coarse_setting
    from diffusion.presets import PRESETS

    config = PRESETS["photos-unet"].to_dict()  # fully convolutional, 32 x 32 patches
    for hole, side in ((64, 512), (256, 512), (31, 512), (40, 100), (32, 48)):
        known = np.ones((side, side), bool)
        a = (side - hole) // 2
        known[a : a + hole, a : a + hole] = False
        engine = coarse_setting(1000, 32, known, "auto", None, default_t0=500)
        note = inpaint_note(known, config)
        if engine is None:
            assert note is None, (hole, side)
        else:
            assert engine.first == "biharmonic" and note is not None, (hole, side, note)
            assert "biharmonic inpainting), noised to 0.125 times the data's spread" in note
