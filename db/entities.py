"""Plain, frozen entities that the store hands out (ORM rows never leave `db/`).

Stored names (states, job kinds, artifact kinds, visibility) are a contract: add, never rename.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Final, Literal

# Run and job states.
QUEUED: Final = "QUEUED"
RUNNING: Final = "RUNNING"
DONE: Final = "DONE"
FAILED: Final = "FAILED"
CANCELLED: Final = "CANCELLED"
STATES: Final = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
ACTIVE_STATES: Final = (QUEUED, RUNNING)
FINAL_STATES: Final = (DONE, FAILED, CANCELLED)

JOB_KINDS: Final = ("train", "sample", "denoise", "inpaint", "evaluate")
JobKind = Literal["train", "sample", "denoise", "inpaint", "evaluate"]
VISIBILITIES: Final = ("private", "team")
Visibility = Literal["private", "team"]

# Metric series written by the worker (add, never rename).
METRIC_NAMES: Final = (
    "loss_bits",  # minibatch estimate of -K per unit, bits
    "lr",
    "examples_per_s",
    "k_train_bits",
    "k_train_stderr_bits",
    "k_holdout_bits",
    "k_holdout_stderr_bits",
    "k_minus_lnull_bits",
    "l_null_bits",
    "kl_profile_bits",  # vector, per t = 1..T
    "beta",  # vector, learned schedule
    "beta_baseline",  # vector
)

# Artifact kinds (add, never rename).
ARTIFACT_KINDS: Final = (
    "gallery",  # samples at a step: .npy (points/sequences) or .npy + PNG grid (images)
    "gallery_png",
    "trajectory",  # reverse trajectory, .npy
    "checkpoint",  # the latest checkpoint.pt of a run
    "config",
    "sample_grid",
    "samples",
    "posterior_samples",
    "posterior_mean",
    "posterior_std",
    "posterior_input",  # the noisy or masked input a posterior was computed from
    "evaluation",
    "report",
    "data_sample",  # training examples to draw under 2-D samples (.npy, one per run)
    "posterior_mean_readout",  # denoise jobs: E[x | y] under the model in one read-out
)


@dataclass(frozen=True)
class User:
    id: int
    username: str
    is_admin: bool
    is_local: bool
    created_at: dt.datetime


@dataclass(frozen=True)
class Invite:
    token: str
    created_by: int
    created_at: dt.datetime
    expires_at: dt.datetime
    is_admin: bool
    used_by: int | None
    used_at: dt.datetime | None


@dataclass(frozen=True)
class Run:
    id: str
    name: str
    owner_id: int
    owner: str
    preset: str | None
    config: dict[str, Any]
    state: str
    visibility: str
    tags: tuple[str, ...]
    notes: str
    seed: int | None
    device_request: str
    host: str | None
    device: str | None
    lease_owner: str | None
    lease_expires_at: dt.datetime | None
    step: int
    total_steps: int
    checkpoint_step: int | None
    final_bound_bits: float | None
    final_bound_stderr: float | None
    error: str | None
    cancel_requested: bool
    parent_id: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime

    @property
    def progress(self) -> float:
        """Fraction of training steps done, in [0, 1]."""
        if self.state == DONE:
            return 1.0
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    run_id: str
    owner_id: int
    state: str
    params: dict[str, Any]
    queue: str
    progress: float
    message: str
    error: str | None
    celery_id: str | None
    attempts: int
    host: str | None
    device: str | None
    lease_owner: str | None
    lease_expires_at: dt.datetime | None
    cancel_requested: bool
    created_at: dt.datetime
    enqueued_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime


@dataclass(frozen=True)
class MetricPoint:
    """One point of a series. `value` is NaN or +-inf when that is what was written."""

    name: str
    step: int
    value: float | None
    wall_time: float
    vector: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Artifact:
    id: int
    run_id: str
    job_id: str | None
    kind: str
    step: int | None
    key: str
    media_type: str
    size: int
    sha256: str
    location: str
    thumb_sha256: str | None
    width: int | None
    height: int | None
    created_at: dt.datetime


@dataclass(frozen=True)
class Upload:
    id: int
    owner_id: int
    sha256: str
    original_name: str
    media_type: str
    size: int
    width: int | None
    height: int | None
    thumb_sha256: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class ShareLink:
    token: str
    created_by: int
    run_ids: tuple[str, ...]
    title: str
    created_at: dt.datetime
    expires_at: dt.datetime | None

    @property
    def is_comparison(self) -> bool:
        return len(self.run_ids) > 1


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    host: str
    device: str
    queues: tuple[str, ...]
    pid: int
    started_at: dt.datetime
    last_seen: dt.datetime
    current_job_id: str | None
    device_info: dict[str, Any] | None = None  # name, memory_used_mib, memory_total_mib


@dataclass(frozen=True)
class Claim:
    """The outcome of trying to take a job: `ok` when this worker now holds its lease."""

    ok: bool
    job: Job | None
    reason: str = ""
    resume_step: int | None = field(default=None)
