"""The body of the sample, denoise, inpaint and evaluate tasks, against a trained run.

The run's latest checkpoint is fetched from the artifact store into a cache folder named by
its sha256 (so a job never touches a training run's own folder), loaded with
`diffusion.inference.load_trained`, and the results are stored as artifacts of the job:
sample grids, posterior samples / mean / std images, an evaluation JSON.
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from db.access import SYSTEM
from db.entities import CANCELLED, DONE, FAILED, Job
from db.errors import LeaseLost, NotFound
from db.rounding import fmt_se
from db.store import Store
from db.store_jobs import Lease
from diffusion import settings
from diffusion.chains.inpaint_methods import INPAINT_CONTEXT, INPAINT_START
from diffusion.images.imageio import grid, png_bytes
from worker import render, runtime, threads
from worker.lease import claimed
from worker.sink import npy

log = logging.getLogger("difflab.worker")


class JobInputError(ValueError):
    """A job's parameters or inputs were refused; the message is shown to the user."""


def checkpoint_dir(store: Store, run_id: str) -> Path:
    art = store.latest_artifact(run_id, "checkpoint", viewer=SYSTEM)
    if art is None:
        raise JobInputError(f"run {run_id} has no checkpoint yet")
    folder = settings.data_dir() / "cache" / "checkpoints" / art.sha256
    path = folder / "checkpoint.pt"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".checkpoint.{os.getpid()}.tmp"
        tmp.write_bytes(store.artifacts.get(art.sha256))
        os.replace(tmp, path)
    return folder


def run_job(job_id: str, celery_id: str, worker_name: str) -> str:
    store = runtime.get_store()
    with claimed(store, job_id, celery_id, worker_name, runtime.device()) as held:
        if isinstance(held, str):
            return held
        threads.apply()  # torch's threads: this process's share of the cores
        job, lease = held.job, held.lease
        try:
            store.update_progress(lease, progress=0.05, message=f"{job.kind}: loading the model")
            message = _dispatch(store, job, lease)
            if held.keeper.cancelled.is_set() or message == EVAL_CANCELLED:
                store.finish_job(
                    lease, CANCELLED, message=message if message == EVAL_CANCELLED else "cancelled"
                )
                return CANCELLED
            store.finish_job(lease, DONE, message=message)
            return DONE
        except LeaseLost:
            return "lease lost"
        except (JobInputError, ValueError, NotFound) as exc:
            store.finish_job(lease, FAILED, error=str(exc))
            return FAILED
        except Exception as exc:
            log.error("job %s failed:\n%s", job_id, traceback.format_exc())
            store.finish_job(lease, FAILED, error=f"{type(exc).__name__}: {exc}")
            return FAILED


def _dispatch(store: Store, job: Job, lease: Lease) -> str:
    import torch

    from diffusion.inference import load_trained

    device = "cpu" if job.queue == "cpu" else runtime.device()
    trained = load_trained(checkpoint_dir(store, job.run_id), device=device)
    params = job.params
    chosen = params.get("checkpoint_step")
    if chosen is not None and int(chosen) != trained.step:  # training went on meanwhile
        params = {
            **params,
            "note": f"the chosen checkpoint (step {int(chosen):,}) was replaced as training "
            f"went on; used step {trained.step:,}",
        }
    generator = torch.Generator().manual_seed(int(params.get("seed", 0)))
    store.update_progress(lease, progress=0.2, message=f"{job.kind}: running")
    handler = {"sample": _sample, "denoise": _denoise, "inpaint": _inpaint, "evaluate": _evaluate}[
        job.kind
    ]
    return handler(store, job, lease, trained, params, generator)


def _put(
    store: Store, job: Job, lease: Lease, kind: str, data: bytes, key: str, media_type: str
) -> None:
    store.put_artifact(
        job.run_id,
        kind,
        data,
        key=f"{job.id}-{key}",
        media_type=media_type,
        job_id=job.id,
        lease=lease,
    )


def _sample(
    store: Store, job: Job, lease: Lease, trained: Any, params: dict[str, Any], generator: Any
) -> str:
    n = int(params.get("n", 16))
    result = trained.sample(n, generator=generator, steps=params.get("steps"))
    _put(
        store,
        job,
        lease,
        "samples",
        npy(np.asarray(result.samples)),
        "samples.npy",
        "application/x-npy",
    )
    from diffusion.chains.posterior import image_levels

    png = render.gallery_png(np.asarray(result.samples), result.kind, image_levels(trained))
    if png is not None:
        _put(store, job, lease, "sample_grid", png, "samples.png", "image/png")
    return f"{n} samples"


def _submitter(store: Store, job: Job) -> Any:
    """The user who submitted the job: the worker reads uploads with their rights only."""
    return store.get_user(job.owner_id)


def _image_input(store: Store, job: Job, trained: Any, upload_id: Any) -> np.ndarray:
    from diffusion.chains.posterior import image_shape
    from diffusion.images.imageio import read_image_checked

    c = image_shape(trained)[0]
    data = store.upload_bytes(int(upload_id), viewer=_submitter(store, job))
    return read_image_checked(data, None, c)  # any size: the posterior plans or refuses it


def _posterior_artifacts(store: Store, job: Job, lease: Lease, trained: Any, result: Any) -> None:
    from diffusion.chains.posterior import image_levels

    levels = image_levels(trained)
    samples = np.asarray(result.samples)
    _put(store, job, lease, "posterior_samples", npy(samples), "samples.npy", "application/x-npy")
    _put(
        store,
        job,
        lease,
        "posterior_samples",
        png_bytes(grid(render.to_8bit(samples, levels), pad=2)),
        "samples.png",
        "image/png",
    )
    _put(
        store,
        job,
        lease,
        "posterior_mean",
        render.image_png(result.mean, levels),
        "mean.png",
        "image/png",
    )
    std = np.asarray(result.std, dtype=np.float64)
    scaled = std / std.max() * 255 if std.max() > 0 else std
    _put(store, job, lease, "posterior_std", render.image_png(scaled), "std.png", "image/png")
    _put(
        store,
        job,
        lease,
        "posterior_input",
        render.image_png(result.observed, levels),
        "input.png",
        "image/png",
    )


def _denoise(
    store: Store, job: Job, lease: Lease, trained: Any, params: dict[str, Any], generator: Any
) -> str:
    from diffusion.chains.posterior import denoise

    image = _image_input(store, job, trained, params["upload_id"])
    noisy = (
        image if params.get("already_noisy") else _noisy(image, float(params["sigma"]), generator)
    )
    result = denoise(
        trained,
        noisy,
        float(params["sigma"]),
        int(params.get("n", 8)),
        steps=params.get("steps"),
        start=params.get("start", "level"),
        generator=generator,
    )
    _posterior_artifacts(store, job, lease, trained, result)
    readout = _readout_mean(store, job, lease, trained, noisy, float(params["sigma"]))
    note = "; ".join(p for p in (readout, params.get("note")) if p)
    return _done_message(result, trained, {**params, "note": note})


def _readout_mean(
    store: Store, job: Job, lease: Lease, trained: Any, noisy: np.ndarray, sigma: float
) -> str:
    """E[x | y] under the model in one read-out (diffusion.chains.posterior.posterior_mean),
    stored beside the samples' mean; returns what it did, in words."""
    from diffusion.chains.posterior import image_levels, posterior_mean

    pm = posterior_mean(trained, noisy, sigma)
    kind = "posterior_mean_readout"
    _put(store, job, lease, kind, npy(pm.mean), "readout_mean.npy", "application/x-npy")
    png = render.image_png(pm.mean, image_levels(trained))
    _put(store, job, lease, kind, png, "readout_mean.png", "image/png")
    return pm.describe()


def _done_message(result: Any, trained: Any, params: dict[str, Any]) -> str:
    """What the job did, in words: samples, the size it ran at and how, the checkpoint."""
    parts = [
        f"{result.samples.shape[0]} posterior samples",
        result.plan.describe() if result.plan is not None else None,
        f"{result.steps} reverse steps",
        f"checkpoint at step {trained.step:,}",
        params.get("note"),
    ]
    return "; ".join(p for p in parts if p)


def _noisy(image: np.ndarray, sigma: float, generator: Any) -> np.ndarray:
    from diffusion.chains.posterior import add_noise

    return add_noise(image, sigma, generator)


def _inpaint(
    store: Store, job: Job, lease: Lease, trained: Any, params: dict[str, Any], generator: Any
) -> str:
    from diffusion.chains.posterior import inpaint, make_mask
    from diffusion.images.imageio import read_mask

    image = _image_input(store, job, trained, params["upload_id"])
    if "mask_upload_id" in params:
        data = store.upload_bytes(int(params["mask_upload_id"]), viewer=_submitter(store, job))
        mask = read_mask(data, image.shape[:2])
    else:
        seed = int(params.get("seed", 0))
        mask = make_mask(params.get("mask", "center"), image.shape[:2], seed=seed)
    result = inpaint(
        trained,
        image,
        mask,
        int(params.get("n", 8)),
        method=params.get("method", "paper"),
        **({"guidance": float(params["guidance"])} if "guidance" in params else {}),
        steps=params.get("steps"),
        context=params.get("context", INPAINT_CONTEXT),
        coarse=params.get("coarse", INPAINT_START),
        generator=generator,
    )
    _posterior_artifacts(store, job, lease, trained, result)
    return _done_message(result, trained, params)


EVAL_CANCELLED = "evaluation cancelled"


def evaluation_split(trained: Any) -> tuple[Any, str, str]:
    """The examples a test-set evaluation scores: (x, split, how). The data set's TEST split
    (diffusion.data.splits: data no training or tuning run reads) where it has one, else the
    run's validation holdout, named as such so the page never calls it a test set."""
    from diffusion.config import ConfigError
    from diffusion.data.splits import load_test_split

    holdout = trained.bundle.holdout
    try:
        test = load_test_split(trained.config.data, int(len(holdout)))
    except ConfigError:
        return (
            holdout,
            "validation",
            "the run's validation holdout (this data set has no test split)",
        )
    return test.x, "test", test.how


def _evaluate(
    store: Store, job: Job, lease: Lease, trained: Any, params: dict[str, Any], generator: Any
) -> str:
    """The bound on the data set's test split (its validation holdout where it has none),
    its progress reported and cancellable; the result is the job's `evaluation` artifact."""
    from diffusion.training.events import EvaluationCancelled

    k = int(params.get("k", 1))
    x, split, how = evaluation_split(trained)
    n = int(len(x))
    T = int(trained.model.T)
    last = [0.0]

    def progress(t_done: int, done: int) -> None:
        now = time.monotonic()
        if now - last[0] < 1.0:
            return
        last[0] = now
        store.update_progress(
            lease,
            progress=0.2 + 0.8 * done / max(n, 1),
            message=f"evaluating the {split} set: t {t_done} of {T}, examples {done} of {n}",
        )
        if store.cancel_requested(job.id):
            raise EvaluationCancelled("evaluation cancelled")

    try:
        report = trained.report(
            x, k=k, generator=generator, on_progress=progress if k == 1 else None
        )
    except EvaluationCancelled:
        return EVAL_CANCELLED
    est = report.k
    payload = _evaluation_payload(report, trained, k, split, how)
    _put(
        store,
        job,
        lease,
        "evaluation",
        json.dumps(payload).encode(),
        "evaluation.json",
        "application/json",
    )
    return (
        f"K = {fmt_se(est.bits, est.stderr_bits)} {est.unit} on {report.n_examples} "
        f"{split} examples (k={k})"
    )


def _evaluation_payload(report: Any, trained: Any, k: int, split: str, how: str) -> dict[str, Any]:
    """The `evaluation` artifact's JSON: the bound with its standard error, in the unit and per
    dimension, and which checkpoint and split it was computed on."""
    est = report.k
    return {
        "k": k,
        "bits": float(est.bits),
        "stderr_bits": float(est.stderr_bits),
        "unit": est.unit,
        "examples": int(report.n_examples),
        "k_minus_lnull_bits": float(report.k_minus_lnull_bits),
        "bits_per_dim": report.bits_per_dim,
        "bits_per_dim_stderr": (  # per-example bits / D: the unit's stderr times pixels / D
            float(est.stderr_bits) * trained.bundle.unit_divisor / trained.bundle.dims
            if report.bits_per_dim is not None
            else None
        ),
        "checkpoint_step": int(trained.step),
        "split": split,
        "split_how": how,
    }
