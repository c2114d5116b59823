"""Runs of every data kind and state, written through the real store and the worker's sink.

No training: the engine's events (steps, evaluations, galleries, checkpoints) are made with
the shapes the engine gives them (`diffusion.training.train.gallery_event`: images N x H x W [x C]
uint8, trajectories k x N x C x H x W) and fed to `worker.sink.StoreSink`, so the store holds
what a worker leaves. Used by the dashboard tests, the browser test and the page benchmark.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from db.access import SYSTEM
from db.entities import Run, User
from db.store import Store
from db.store_jobs import Lease
from diffusion.presets import PRESETS
from diffusion.training.events import (
    BoundEstimate,
    CheckpointEvent,
    EvalEvent,
    EvalProgressEvent,
    GalleryEvent,
    StepEvent,
)
from worker.sink import StoreSink


@dataclass(frozen=True)
class Kind:
    """A data kind: the preset it starts from, data options, sample shape (data space)."""

    name: str
    preset: str
    data: dict
    shape: tuple[int, ...]  # one example, data space (images H x W [x C])
    gallery: str  # "points", "sequences" or "images"
    levels: int = 256


KINDS = (
    Kind("points", "swissroll-smoke", {}, (2,), "points"),
    Kind("sequences", "heartbeat-smoke", {}, (20,), "sequences"),
    Kind("digits8", "digits-smoke", {}, (8, 8), "images", 17),
    Kind("grey16", "deadleaves", {"options": {"size": 16}}, (16, 16), "images"),
    Kind("grey32", "bark", {}, (32, 32), "images"),
    Kind("rgb32", "cifar10", {}, (32, 32, 3), "images"),
)
STATES = ("QUEUED", "RUNNING", "EVALUATING", "DONE", "FAILED", "CANCELLED")


def _config(kind: Kind) -> dict:
    config = PRESETS[kind.preset].to_dict()
    config["data"].update(kind.data)
    config["train"]["steps"] = 60
    return config


def _samples(kind: Kind, rng: np.random.Generator, n: int) -> np.ndarray:
    if kind.gallery == "points":
        t = rng.uniform(1.5 * np.pi, 4.5 * np.pi, n)
        return np.stack([t * np.cos(t), t * np.sin(t)], 1) / 10 + rng.normal(0, 0.05, (n, 2))
    if kind.gallery == "sequences":
        return (rng.random((n, *kind.shape)) < 0.2).astype(np.uint8)
    return rng.integers(0, kind.levels, (n, *kind.shape)).astype(np.uint8)


def _trajectory(kind: Kind, rng: np.random.Generator, n: int) -> np.ndarray:
    """11 snapshots x^T .. x^0 as the engine stores them (images channel-first)."""
    if kind.gallery == "images":
        c = kind.shape[2] if len(kind.shape) == 3 else 1
        h, w = kind.shape[:2]
        return rng.uniform(0, kind.levels - 1, (11, n, c, h, w))
    return rng.normal(size=(11, n, *kind.shape))


def _eval(step: int, T: int, unit: str, i: int) -> EvalEvent:
    k = -2.0 + 0.3 * i
    return EvalEvent(
        step=step,
        k_train=BoundEstimate(k + 0.05, 0.0213, unit),
        k_holdout=BoundEstimate(k, 0.0241, unit),
        k_minus_lnull_bits=k + 3.0,
        l_null_bits=-3.0,
        true_ll_bits=None,
        paper_k_bits=None,
        kl_profile_bits=list(np.linspace(0.5, 0.01, T)),
        beta=list(np.linspace(1e-3, 0.3, T)),
        beta_baseline=[1.0 / (T - t + 1) for t in range(1, T + 1)],
        unit=unit,
    )


def claimed_run(
    store: Store, owner: User, config: dict, preset: str, state: str, *, host: str, **create
) -> tuple[Run, Lease | None]:
    """A private CPU run of `config` and, unless `state` is QUEUED, its training job claimed as
    worker "w1" on `host` would: (run, lease), the lease None while queued."""
    create.setdefault("visibility", "private")
    run, job = store.create_run(
        config,
        owner_id=owner.id,
        preset=preset,
        total_steps=config["train"]["steps"],
        device_request="cpu",
        **create,
    )
    if state == "QUEUED":
        return run, None
    claim = store.claim_job(
        job.id, job.celery_id, worker="w1", host=host, device="cpu", lease_s=600
    )
    return run, Lease(job.id, claim.job.lease_owner)


def seed_run(store: Store, owner: User, kind: Kind, state: str, tmp: Path, **create) -> Run:
    """One run of `kind` left in `state` (EVALUATING: running, in its final evaluation)."""
    config = _config(kind)
    create.setdefault("name", f"{kind.name} {state.lower()}")
    run, lease = claimed_run(store, owner, config, kind.preset, state, host="lab", **create)
    if lease is None:
        return run
    sink = StoreSink(store, run.id, lease)
    rng = np.random.default_rng(len(kind.name))
    T, steps = config["diffusion"]["T"], config["train"]["steps"]
    unit = "bits"
    last = steps if state in ("DONE", "EVALUATING") else steps // 2
    for i, step in enumerate(range(10, last + 1, 10), start=1):
        sink(StepEvent(step, steps, 2.5 - 0.3 * i, 1e-3, 500.0, step * 0.1))
        if step % 30 == 0 or (state == "DONE" and step == last):
            sink(_eval(step, T, unit, i))
            samples = _samples(kind, rng, 16)
            traj = _trajectory(kind, rng, 4)
            ref = _samples(kind, rng, 200) if kind.gallery == "points" else None
            sink(GalleryEvent(step, samples, kind.gallery, traj, kind.levels, ref))
    ckpt = tmp / f"{run.id}.pt"
    ckpt.write_bytes(b"checkpoint bytes of " + run.id.encode())
    sink(CheckpointEvent(last, ckpt))
    sink.flush()
    if state == "EVALUATING":
        sink(EvalProgressEvent(last, "holdout", T // 2, T, 8, 16, 12.0))
        sink._progress()
    if state in ("RUNNING", "EVALUATING"):
        return store.get_run(run.id, viewer=SYSTEM)
    store.finish_job(
        lease,
        state,
        error="CUDA out of memory (a seeded failure)" if state == "FAILED" else None,
        message=f"cancelled at step {last}" if state == "CANCELLED" else None,
        final_bound=sink.final_bound if state == "DONE" else None,
    )
    return store.get_run(run.id, viewer=SYSTEM)


def seed_lab(store: Store, owner: User, tmp: Path, states=STATES) -> dict[tuple[str, str], Run]:
    """Every kind in every state: {(kind name, state): run}."""
    out = {}
    for kind in KINDS:
        for state in states:
            out[(kind.name, state)] = seed_run(store, owner, kind, state, tmp)
            time.sleep(0.001)  # distinct creation times
    return out
