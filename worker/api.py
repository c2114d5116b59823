"""The enqueue API, used by the dashboard and the CLI. Imports no torch.

Every call writes the row and commits first, then sends the message (with the task id the
row already holds). If the send fails after the commit, nothing is lost: the row stays
QUEUED and the reconciler sends it when the broker is back.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from typing import Any

from kombu import pools

from db.access import SYSTEM, Viewer
from db.entities import JOB_KINDS, Job, Run, User
from db.errors import InvalidInput
from db.store import Store
from diffusion import settings
from diffusion.chains.inpaint_methods import METHODS, guidance_error
from diffusion.config import RunConfig
from worker import broker
from worker.app import JOB_TASK, TRAIN_TASK, app, redis_url

POSTERIOR_KINDS = ("sample", "denoise", "inpaint", "evaluate")


# One failed publish is retried once at once on a fresh connection (a pooled connection that
# Redis closed since); then the broker counts as unreachable.
_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def send(store: Store, job: Job, *, url: str | None = None) -> None:
    """Send a job's message (task id = the job's celery_id, queue = the job's queue).

    Messages go through a pool of broker connections kept per URL (kombu's producer pool),
    so a submission costs no connection set-up once the first one is made."""
    url = url or redis_url()
    task = TRAIN_TASK if job.kind == "train" else JOB_TASK
    try:
        with pools.producers[app.connection_for_write(url)].acquire(
            block=True, timeout=5
        ) as producer:
            app.send_task(
                task,
                args=[job.id],
                task_id=job.celery_id,
                queue=job.queue,
                routing_key=job.queue,
                producer=producer,
                retry=True,
                retry_policy=_RETRY,
            )
    except broker.BrokerUnavailable:
        raise
    except Exception as exc:  # kombu wraps connection errors in several types
        raise broker.BrokerUnavailable(url, str(exc) or type(exc).__name__) from exc
    assert job.celery_id is not None
    store.mark_enqueued(job.id, job.celery_id)


def submit_run(
    store: Store,
    config: RunConfig | dict[str, Any],
    owner: User,
    *,
    preset: str | None = None,
    visibility: str = "private",
    tags: Sequence[str] = (),
    notes: str = "",
    name: str | None = None,
    parent_id: str | None = None,
) -> Run:
    """Validate the config, write a QUEUED run, commit, enqueue its training. Returns the run.

    Raises diffusion.config.ConfigError (bad config, nothing written) or
    worker.broker.BrokerUnavailable (checked before anything is written)."""
    if not isinstance(config, RunConfig):
        config = RunConfig.from_dict(config)
    url = redis_url()
    broker.check(url)
    run, job = store.create_run(
        config.to_dict(),
        owner_id=owner.id,
        name=name or config.name,
        preset=preset,
        visibility=visibility,
        tags=tags,
        notes=notes,
        seed=config.train.seed,
        device_request=config.train.device,
        total_steps=config.train.steps,
        parent_id=parent_id,
    )
    send(store, job, url=url)
    return run


def rerun(store: Store, run_id: str, *, owner: User) -> Run:
    """A new run with the same config, tags and visibility, linked to its parent."""
    old = store.get_run(run_id, viewer=owner)
    return submit_run(
        store,
        old.config,
        owner,
        preset=old.preset,
        visibility=old.visibility,
        tags=old.tags,
        name=old.name,
        parent_id=old.id,
    )


def continue_run(store: Store, run_id: str, extra_steps: int, *, viewer: User) -> Run:
    """Train a done or cancelled run `extra_steps` more steps from its checkpoint (the same
    run, queued again; the worker resumes from the stored checkpoint)."""
    url = redis_url()
    broker.check(url)
    run, job = store.extend_run(run_id, extra_steps, viewer=viewer)
    send(store, job, url=url)
    return run


def submit_job(store: Store, kind: str, run_id: str, params: dict[str, Any], owner: User) -> Job:
    """A sample, denoise, inpaint or evaluate job against a trained run."""
    if kind not in POSTERIOR_KINDS:
        raise InvalidInput(f"job kind must be one of {POSTERIOR_KINDS}, not {kind!r}")
    _check_params(kind, params)
    run = store.get_run(run_id, viewer=owner)
    url = redis_url()
    broker.check(url)
    queue = "cpu" if run.device_request == "cpu" else "gpu"
    job = store.create_job(kind, run_id, dict(params), owner_id=owner.id, viewer=owner, queue=queue)
    send(store, job, url=url)
    return job


def _check_params(kind: str, params: dict[str, Any]) -> None:
    def integer(key: str, lo: int, hi: int, default: int) -> None:
        value = params.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise InvalidInput(f"{kind}: {key} must be an integer in [{lo}, {hi}], not {value!r}")

    integer("n", 1, 1024, 16)
    integer("seed", 0, 2**63 - 1, 0)
    if kind in ("denoise", "inpaint") and "upload_id" not in params:
        raise InvalidInput(f"{kind}: upload_id (the image to work on) is required")
    if kind == "denoise":
        sigma = params.get("sigma")
        if not isinstance(sigma, int | float) or not 0 < float(sigma) <= 255:
            raise InvalidInput(f"denoise: sigma must be a number in (0, 255], not {sigma!r}")
    if kind == "inpaint":
        if "mask_upload_id" not in params and "mask" not in params:
            raise InvalidInput(
                "inpaint: give mask_upload_id (a mask image) or mask "
                "(a named region: left, right, top, bottom, center)"
            )
        method = params.get("method", "paper")
        if method not in METHODS:
            raise InvalidInput(
                f"inpaint: method must be one of {', '.join(METHODS)}, not {method!r}"
            )
        if "guidance" in params and (error := guidance_error(params["guidance"])) is not None:
            raise InvalidInput(f"inpaint: {error}")


def cancel(store: Store, run_id: str, *, viewer: Viewer = SYSTEM) -> Run:
    """Ask a run to stop: a queued one is CANCELLED now, a running one at its next step
    (its checkpoint is kept)."""
    return store.request_cancel(run_id, viewer=viewer)


def cancel_job(store: Store, job_id: str, *, viewer: Viewer = SYSTEM) -> Job:
    return store.request_job_cancel(job_id, viewer=viewer)


def delete_run(store: Store, run_id: str, *, viewer: Viewer) -> None:
    """Delete a finished run (rows and unreferenced bytes) and its local run folder."""
    store.delete_run(run_id, viewer=viewer)
    shutil.rmtree(settings.run_dir(run_id), ignore_errors=True)


def queue_lengths(url: str | None = None) -> dict[str, int]:
    """Messages waiting in each queue (`gpu`, `cpu`). Raises BrokerUnavailable."""
    return broker.queue_lengths(url or redis_url())


def check_queue(url: str | None = None) -> None:
    """Raise BrokerUnavailable unless the queue answers."""
    broker.check(url or redis_url())


BrokerUnavailable = broker.BrokerUnavailable


__all__ = [
    "JOB_KINDS",
    "BrokerUnavailable",
    "cancel",
    "cancel_job",
    "check_queue",
    "delete_run",
    "queue_lengths",
    "rerun",
    "send",
    "submit_job",
    "submit_run",
]
