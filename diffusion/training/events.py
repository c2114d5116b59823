"""What training reports through its `on_event` callback, and what it returns.

Frozen dataclasses, no torch (samples are numpy arrays). Bits are per `unit` (bits per example,
per sequence, or per pixel summed over channels), in model space unless named otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np


@dataclass(frozen=True)
class BoundEstimate:
    """A bound (or log-likelihood estimate) in bits per `unit`, with its standard error."""

    bits: float
    stderr_bits: float
    unit: str


@dataclass(frozen=True)
class StepEvent:
    """Every `log_every` steps: minibatch estimate of -K (bits per unit) and throughput."""

    step: int
    total_steps: int
    loss_bits: float
    lr: float
    examples_per_s: float
    elapsed_s: float


@dataclass(frozen=True)
class EvalEvent:
    """Every `eval_every` steps and at the end: the bound on train and holdout data.

    kl_profile_bits: per t = 1..T, the holdout mean KL term in bits per unit (t = 1 is 0, the
    fixed first step). beta / beta_baseline: the schedule in use and its fixed baseline.
    reverse_var_bounds: Gaussian only, per t: (mean learned Sigma, posterior-variance lower
    limit, beta_t upper limit) (paper section 2.6), else None.
    bits_per_dim: for 8-bit images, holdout -log2 p / D of the dequantized data in [0, 256)
    units (the number DDPM and successors report), else None.
    """

    step: int
    k_train: BoundEstimate
    k_holdout: BoundEstimate
    k_minus_lnull_bits: float
    l_null_bits: float
    true_ll_bits: float | None
    paper_k_bits: float | None
    kl_profile_bits: list[float]
    beta: list[float]
    beta_baseline: list[float]
    unit: str
    reverse_var_bounds: dict[str, list[float]] | None = None
    bits_per_dim: float | None = None
    paper_k_minus_lnull_bits: float | None = None


@dataclass(frozen=True)
class EvalProgressEvent:
    """During an evaluation, after each block of (example, t) pairs: how far it has got.

    phase: "train" or "holdout" (the two subsets, in that order); t_done of T: the steps of
    the sum over t done for the current block of examples; examples_done of examples_total:
    examples of this phase finished. elapsed_s: seconds since this evaluation began.
    """

    step: int
    phase: str
    t_done: int
    T: int
    examples_done: int
    examples_total: int
    elapsed_s: float


class EvaluationCancelled(Exception):
    """Raised by an evaluation's progress callback to stop it (the run's cancel)."""


@dataclass(frozen=True)
class GalleryEvent:
    """Samples in data space: points (N, 2...), sequences (N, L) 0/1, images uint8 N x H x W [x C].

    trajectory: optional (steps, N, *shape) snapshots from x^T to x^0 (data space, float).
    levels: grey levels of image data (17 for the digits, 256 for 8-bit sets), for display.
    reference: for 2-D points, up to 1,000 training examples to draw under the samples.
    """

    step: int
    samples: np.ndarray
    kind: Literal["points", "images", "sequences"]
    trajectory: np.ndarray | None = None
    levels: int = 256
    reference: np.ndarray | None = None  # points only: training examples, data space


@dataclass(frozen=True)
class CheckpointEvent:
    step: int
    path: Path


@dataclass(frozen=True)
class WarningEvent:
    """Something the run's log must say (a corrupt checkpoint skipped, say); training goes on."""

    step: int
    message: str


Event = StepEvent | EvalEvent | EvalProgressEvent | GalleryEvent | CheckpointEvent | WarningEvent


@dataclass(frozen=True)
class TrainResult:
    """status "done" (with the final holdout bound) or "stopped" (checkpoint written)."""

    status: Literal["done", "stopped"]
    step: int
    k_holdout: BoundEstimate | None = None
    final_eval: EvalEvent | None = None
    info: dict[str, Any] = field(default_factory=dict)
