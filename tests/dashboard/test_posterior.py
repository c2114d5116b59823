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
    assert not at.error and len(at.image) == 2  # accepted: converted, resized to 8 x 8
    assert "CMYK colour was converted to RGB" in texts(at)


def test_mask_validation(store):
    make_run(store, store.local_user(), "digits-smoke")
    at = app_test("posterior")
    _upload(at, "x.png", png_bytes(np.full((8, 8), 200, np.uint8)))
    at.selectbox(key="pst_mask").set_value("upload").run()
    at.file_uploader(key="pst_mask_upload").set_value(
        ("mask.png", png_bytes(np.full((8, 8), 255, np.uint8)), "image/png")
    )
    at.run()
    assert any("hides no pixel" in e.value for e in at.error)
    at.file_uploader(key="pst_mask_upload").set_value(
        ("mask.png", png_bytes(np.zeros((8, 8), np.uint8)), "image/png")
    )
    at.run()
    assert any("hides every pixel" in e.value for e in at.error)
    at.selectbox(key="pst_mask").set_value("rectangle").run()
    at.slider(key="pst_rows").set_value((0.5, 0.5)).run()
    assert any("hides no pixel" in e.value for e in at.error)


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
    mask = store.upload_bytes(job.params["mask_upload_id"])
    known = np.asarray(Image.open(io.BytesIO(mask)))
    assert known.shape == (8, 8) and (known[:, :4] == 0).all() and (known[:, 4:] == 255).all()
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
    store.finish_job(lease, "DONE")
    at.run()
    assert not at.exception
    captions = "\n".join(texts(at).splitlines())
    assert "Results" in captions
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
    x = np.asarray(Image.open(io.BytesIO(store.upload_bytes(job.params["upload_id"]))))
    assert x.shape == (8, 8) and (x == 16).all()  # white is level 16 for the digits


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
    sent = np.asarray(Image.open(io.BytesIO(store.upload_bytes(job.params["upload_id"]))))
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
    known = np.asarray(Image.open(io.BytesIO(store.upload_bytes(job.params["mask_upload_id"]))))
    assert sorted(zip(*np.nonzero(known == 0), strict=True)) == [(0, 0), (3, 3)]
