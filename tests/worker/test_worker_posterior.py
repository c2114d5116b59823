"""Denoise and inpaint jobs against a tiny trained image model, through a real worker."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from worker_lab import Lab

from db.access import SYSTEM
from db.entities import DONE, FAILED
from db.errors import InvalidInput, NotFound
from worker import api

pytestmark = pytest.mark.services


def test_denoise_and_inpaint_jobs_store_posterior_images(lab: Lab) -> None:
    lab.start_worker()
    run_id = lab.cli("submit", "digits-smoke", "--set", "train.steps=10").stdout.strip()
    lab.wait_state(run_id, DONE, timeout=150)
    owner = lab.store.local_user()
    digit = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    buf = io.BytesIO()
    Image.fromarray(digit, mode="L").save(buf, format="PNG")
    upload = lab.store.add_upload(
        buf.getvalue(),
        owner_id=owner.id,
        original_name="d.png",
        media_type="image/png",
        width=8,
        height=8,
    )
    jobs = [
        api.submit_job(
            lab.store,
            "denoise",
            run_id,
            {"upload_id": upload.id, "sigma": 20.0, "n": 4, "seed": 1},
            owner,
        ),
        api.submit_job(
            lab.store,
            "inpaint",
            run_id,
            {"upload_id": upload.id, "mask": "center", "n": 4, "seed": 1},
            owner,
        ),
    ]
    for job in jobs:
        done = lab.wait_for(
            f"{job.kind} job",
            lambda j=job: (
                (g := lab.store.get_job(j.id, viewer=SYSTEM)).state in (DONE, FAILED) and g
            ),
            timeout=90,
        )
        assert done.state == DONE, done.error
        arts = lab.store.list_artifacts(run_id, viewer=SYSTEM, job_id=job.id)
        kinds = sorted({a.kind for a in arts})
        want = ["posterior_input", "posterior_mean", "posterior_samples", "posterior_std"]
        if job.kind == "denoise":  # beside the samples: E[x | y] in one read-out
            want = sorted([*want, "posterior_mean_readout"])
            assert "posterior mean E[x | y] under the model" in done.message
            readout = next(a for a in arts if a.key.endswith("readout_mean.npy"))
            mean = np.load(io.BytesIO(lab.store.artifact_bytes(readout, viewer=SYSTEM)))
            assert mean.shape == (8, 8) and np.all((mean >= 0) & (mean < 17))
        assert kinds == want
        samples = next(a for a in arts if a.key.endswith("samples.npy"))
        array = np.load(io.BytesIO(lab.store.artifact_bytes(samples, viewer=SYSTEM)))
        assert array.shape == (4, 8, 8)
        assert all(a.thumb_sha256 for a in arts if a.media_type == "image/png")
    # another size: the conv net is fully convolutional, so it runs at the image's own size
    buf = io.BytesIO()
    Image.fromarray(np.zeros((10, 12), np.uint8), mode="L").save(buf, format="PNG")
    wide = lab.store.add_upload(
        buf.getvalue(), owner_id=owner.id, original_name="w.png", media_type="image/png"
    )
    params = {"upload_id": wide.id, "sigma": 9.0, "n": 2, "steps": 5, "checkpoint_step": 3}
    job = api.submit_job(lab.store, "denoise", run_id, params, owner)
    done = lab.wait_for(
        "a job at another size",
        lambda: (g := lab.store.get_job(job.id, viewer=SYSTEM)).state in (DONE, FAILED) and g,
    )
    assert done.state == DONE, done.error
    assert "12 x 10: run at full size" in done.message and "5 reverse steps" in done.message
    assert "chosen checkpoint (step 3) was replaced" in done.message
    assert "posterior mean E[x | y]" in done.message
    arts = lab.store.list_artifacts(run_id, viewer=SYSTEM, job_id=job.id)
    samples = next(a for a in arts if a.key.endswith("samples.npy"))
    assert np.load(io.BytesIO(lab.store.artifact_bytes(samples, viewer=SYSTEM))).shape == (
        2,
        10,
        12,
    )
    # a hole wider than the training size (8): the biharmonic start, and the message says so
    buf = io.BytesIO()
    Image.fromarray(np.full((40, 40), 60, np.uint8), mode="L").save(buf, format="PNG")
    big = lab.store.add_upload(
        buf.getvalue(), owner_id=owner.id, original_name="b.png", media_type="image/png"
    )
    params = {"upload_id": big.id, "mask": "center", "n": 2, "steps": 4}
    params |= {"method": "guided", "guidance": 2.0}  # the worker passes the weight through
    job = api.submit_job(lab.store, "inpaint", run_id, params, owner)
    done = lab.wait_for(
        "an inpainting job with a wide hole",
        lambda: (g := lab.store.get_job(job.id, viewer=SYSTEM)).state in (DONE, FAILED) and g,
    )
    assert done.state == DONE, done.error
    assert "started from the biharmonic fill of the hole" in done.message, done.message
    with pytest.raises(NotFound, match="no upload 999"):  # refused at the door, not later
        api.submit_job(lab.store, "denoise", run_id, {"upload_id": 999, "sigma": 5.0}, owner)
    for bad in ({"method": "magic"}, {"method": "guided", "guidance": -1}, {"guidance": "2"}):
        with pytest.raises(InvalidInput, match="method|guidance"):
            api.submit_job(lab.store, "inpaint", run_id, {**params, **bad}, owner)
