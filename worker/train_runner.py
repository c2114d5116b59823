"""The body of the train task: claim the job, restore the latest checkpoint, train, record.

When the run is done, failed or cancelled, the run folder is deleted (the artifact store
keeps its checkpoint and pictures); a run handed back to the queue keeps it, to resume.

Resuming: the run folder (`<data dir>/runs/<run id>`) is made to hold exactly the checkpoint
recorded in the store (fetched from the artifact store if this host lacks it, so a worker on
another host can resume); metric points and galleries after that step are deleted first, so
no step is written twice and no finished step is lost.
"""

from __future__ import annotations

import logging
import os
import shutil
import traceback
from pathlib import Path
from typing import Any

from db.access import SYSTEM
from db.artifacts import sha256_file
from db.entities import CANCELLED, DONE, FAILED
from db.errors import CorruptBlob, LeaseLost, NotFound
from db.store import Store
from db.store_jobs import Lease
from diffusion import settings
from worker import runtime, threads
from worker.lease import LeaseKeeper, claimed
from worker.sink import StoreSink

log = logging.getLogger("difflab.worker")
RESUMABLE_KINDS = ("gallery", "gallery_png", "trajectory")


run_dir = settings.run_dir


def prepare_run_dir(store: Store, run_id: str, lease: Lease) -> tuple[int, str]:
    """Put the store's newest intact checkpoint in the run folder; drop later points.

    Returns its step and a warning ("" if none): a checkpoint whose stored bytes do not match
    their sha256 (or are gone) is skipped for the one before it, and the warning says so.
    """
    folder = run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    local = folder / "checkpoint.pt"
    (folder / "checkpoint.prev.pt").unlink(missing_ok=True)  # the folder mirrors the store
    step, warnings = 0, []
    for art in reversed(store.list_artifacts(run_id, viewer=SYSTEM, kind="checkpoint")):
        try:
            if not local.exists() or sha256_file(local) != art.sha256:
                data = store.artifacts.get(art.sha256)  # checked against its sha256
                tmp = folder / ".tmp-checkpoint.pt.restore"
                tmp.write_bytes(data)
                os.replace(tmp, local)
        except (CorruptBlob, NotFound) as exc:
            warnings.append(f"the checkpoint of step {art.step} is unusable ({exc})")
            continue
        step = int(art.step or 0)
        break
    else:
        local.unlink(missing_ok=True)
    warning = ""
    if warnings:
        warning = "; ".join(warnings) + f"; resuming from step {step}"
        log.warning("run %s: %s", run_id, warning)
    store.truncate_metrics(run_id, step, lease=lease)
    kinds = (*RESUMABLE_KINDS, "checkpoint") if warnings else RESUMABLE_KINDS
    store.truncate_artifacts(run_id, step, kinds=kinds, lease=lease)  # the bad ones go too
    return step, warning


def run_train(job_id: str, celery_id: str, worker_name: str) -> str:
    store = runtime.get_store()
    device = runtime.device()
    with claimed(store, job_id, celery_id, worker_name, device) as held:
        if isinstance(held, str):
            return held
        threads.apply()  # torch's threads: this process's share of the cores
        try:
            outcome = _train(store, held.job.run_id, held.lease, held.keeper, device)
        except LeaseLost:
            log.warning("train job %s: lease lost, leaving the run to its new worker", job_id)
            return "lease lost"
        if outcome in (DONE, FAILED, CANCELLED):  # over: the artifact store keeps what matters
            clear_run_dir(held.job.run_id)
        return outcome


def stored_config(raw: Any) -> Any:
    """The run's stored config, checked by the schema that checked it on submit
    (diffusion.config); a ConfigError lists every problem."""
    from diffusion.config import RunConfig

    return RunConfig.from_dict(raw)


def _train(store: Store, run_id: str, lease: Lease, keeper: LeaseKeeper, device: str) -> str:
    from diffusion.config import ConfigError

    run = store.get_run(run_id, viewer=SYSTEM)
    try:
        config = stored_config(run.config)
    except ConfigError as exc:
        store.finish_job(lease, FAILED, error=f"invalid config: {exc}")
        return FAILED
    resume_step, warning = prepare_run_dir(store, run_id, lease)
    log.info("run %s: training on %s from step %d", run_id, device, resume_step)
    sink = StoreSink(store, run_id, lease)
    sink.step, sink.total, sink.warning = resume_step, config.train.steps, warning
    train_device = "cpu" if run.device_request == "cpu" else device
    if run.device_request.startswith("cuda") and not device.startswith("cuda"):
        message = (
            f"train.device={run.device_request} was asked for, but this worker "
            f"({runtime.host()}) has no CUDA device: refused rather than run on the {device}; "
            "start a GPU worker, or queue it again with train.device=auto or cpu"
        )
        log.error("run %s: %s", run_id, message)
        store.finish_job(lease, FAILED, error=message)
        return FAILED
    try:
        result = _call_engine(config, run_dir(run_id), sink, keeper.should_stop, train_device)
        sink.flush()
    except LeaseLost:
        raise
    except Exception as exc:
        if keeper.lost.is_set():
            raise LeaseLost(str(exc)) from exc
        log.error("run %s failed:\n%s", run_id, traceback.format_exc())
        _safe_flush(sink)
        store.finish_job(lease, FAILED, error=f"{type(exc).__name__}: {exc}")
        return FAILED
    if keeper.lost.is_set():
        raise LeaseLost("stopped after losing the lease")
    status = getattr(result, "status", "done")
    if status == "stopped" and keeper.released.is_set() and not keeper.cancelled.is_set():
        from worker.api import send
        from worker.broker import BrokerUnavailable

        job = store.release_job(lease)
        try:
            send(store, job)
        except BrokerUnavailable as exc:
            log.warning("run %s: %s; the reconciler will send it", run_id, exc)
        log.info("run %s: handed back to the queue at step %d", run_id, sink.step)
        return "released"
    if status == "stopped":
        info = getattr(result, "info", None) or {}
        where = "evaluation cancelled" if info.get("stopped_in") == "evaluation" else "cancelled"
        message = f"{where} at step {sink.step}; the checkpoint is kept"
        store.finish_job(lease, CANCELLED, message=message)
        return CANCELLED
    bound = _final_bound(result) or sink.final_bound or _stored_bound(store, run_id)
    store.finish_job(lease, DONE, final_bound=bound, message="done")
    return DONE


def _call_engine(config: Any, out_dir: Path, sink: StoreSink, should_stop: Any, device: str) -> Any:
    from diffusion.training.train import train

    out_dir.mkdir(parents=True, exist_ok=True)
    return train(config, out_dir, on_event=sink, should_stop=should_stop, device=device)


def _final_bound(result: Any) -> tuple[float, float] | None:
    est = getattr(result, "k_holdout", None)
    if est is None:
        return None
    return float(est.bits), float(est.stderr_bits)


def _stored_bound(store: Store, run_id: str) -> tuple[float, float] | None:
    """The last holdout bound in the store (a finished run resumed on another host)."""
    latest = store.latest_metrics(run_id, viewer=SYSTEM)
    bits, se = latest.get("k_holdout_bits"), latest.get("k_holdout_stderr_bits")
    if bits is None or bits.value is None or se is None or se.value is None:
        return None
    return bits.value, se.value


def _safe_flush(sink: StoreSink) -> None:
    try:
        sink.flush()
    except Exception:
        log.exception("could not write the last metric points")


def clear_run_dir(run_id: str) -> None:
    """Delete this host's copy of a finished run (checkpoints, samples): its checkpoint and
    pictures are in the artifact store, and a re-run or a posterior job fetches them there."""
    shutil.rmtree(run_dir(run_id), ignore_errors=True)
