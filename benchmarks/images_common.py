"""Shared pieces of benchmarks/images.py: training a lab preset on a wall-clock budget with
snapshots, and bits/dim of a snapshot on test images (exact in t, or an unbiased estimate over
every `stride`-th step from a random offset per image).

bits/dim here is the lab's: -log2 p(x) / D of the uniformly dequantized 8-bit data in
[0, 256) units (diffusion.evaluation.evaluate.bound_report), an upper bound on the discrete data's
negative log-likelihood like improved-diffusion's discretized-decoder bound.
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import torch

from diffusion.config import RunConfig
from diffusion.data import DataBundle, Scaler
from diffusion.evaluation.bound import LN2
from diffusion.model import DiffusionModel
from diffusion.training.checkpoint import load_checkpoint
from diffusion.training.events import CheckpointEvent, Event
from diffusion.training.train import train


def budget_overrides(n_test: int, seed: int = 0) -> list[str]:
    """Train-section overrides for a budgeted benchmark run: no evaluations during training,
    the smallest final evaluation and gallery (the benchmark evaluates its snapshots itself),
    a checkpoint every 30 s (the snapshots of the curve)."""
    return [
        "train.steps=100000000",
        "train.eval_every=0",
        "train.eval_examples=1",
        "train.gallery_every=0",
        "train.gallery_size=1",
        "train.log_every=25",
        "train.checkpoint_every_s=30",
        f"train.seed={seed}",
        f"data.n_holdout={max(1, n_test)}",
    ]


def train_budget(
    config: RunConfig, out: Path, budget_s: float, snapshot_s: list[float], device: str = "cpu"
) -> dict:
    """Train `config` in `out` for `budget_s` seconds (LR schedule fitted to the budget); copy
    the first checkpoint at or after each of `snapshot_s` (wall seconds) to snapshot_<s>.pt."""
    out.mkdir(parents=True, exist_ok=True)
    pending = sorted(snapshot_s)
    snaps: list[Path] = []

    def on_event(event: Event) -> None:
        if not isinstance(event, CheckpointEvent) or not pending:
            return
        elapsed = float(torch.load(event.path, map_location="cpu", weights_only=False)["elapsed_s"])
        while pending and elapsed >= pending[0] - 15:  # the nearest 30-s checkpoint
            dest = out / f"snapshot_{int(pending.pop(0))}.pt"
            shutil.copyfile(event.path, dest)
            snaps.append(dest)

    t0 = time.monotonic()
    result = train(
        config, out / "run", on_event=on_event, device=device, budget_s=budget_s, final_eval=False
    )
    final = out / "snapshot_final.pt"
    shutil.copyfile(out / "run" / "checkpoint.pt", final)
    return {
        "steps": result.step,
        "train_seconds": result.info.get("train_seconds"),
        "wall_seconds": time.monotonic() - t0,
        "snapshots": [str(p) for p in [*snaps, final]],
    }


def load_snapshot(path: Path, device: str = "cpu") -> tuple[DiffusionModel, dict]:
    """The EMA model of a checkpoint file and the checkpoint's metadata."""
    ckpt = load_checkpoint(Path(path), torch.device(device))
    config = RunConfig.from_json(ckpt["config"])
    with torch.random.fork_rng(devices=[]):
        model = DiffusionModel(config, tuple(ckpt["shape"]), ckpt["data_kind"])
    model.load_state_dict(ckpt["ema"] if ckpt["ema"] is not None else ckpt["model"])
    model.to(device).eval()
    meta = {"step": int(ckpt["step"]), "wall_s": float(ckpt["elapsed_s"])}
    return model, {**meta, "scaler": Scaler.from_dict(ckpt["scaler"])}


@torch.no_grad()
def bits_per_dim(
    model: DiffusionModel,
    bundle: DataBundle | Scaler,
    x_data: torch.Tensor,
    stride: int,
    seed: int,
    exact: int = 0,
) -> tuple[float, float, torch.Tensor]:
    """(mean, standard error, per image) bits/dim of 8-bit images `x_data` (N, C, H, W).

    The sum over t = 2..T is exact with stride 1. Otherwise the first `exact` steps (t = 2 ..
    exact + 1, where a schedule like the cosine one puts its largest terms) are exact and each
    image takes every stride-th later t from its own random offset, weighted by the stride
    (unbiased per image, so the standard error over images includes the sampling of t)."""
    scaler = bundle if isinstance(bundle, Scaler) else bundle.scaler
    gen = torch.Generator().manual_seed(seed)
    x0 = scaler.to_model(x_data, gen).double()
    beta = model.beta().detach()
    T, n = model.T, x0.shape[0]
    kl_sum = torch.zeros(n, dtype=torch.float64)
    first = 2 + (0 if stride == 1 else min(exact, T - 1))
    for t0 in range(2, first):
        kl_sum += model.kl_terms(x0, torch.full((n,), t0), gen, beta)
    off = torch.randint(0, stride, (n,), generator=gen)
    for k in range(math.ceil((T + 1 - first) / stride)):
        t = first + off + stride * k
        keep = t <= T
        if not bool(keep.any()):
            break
        idx = keep.nonzero().squeeze(1)
        kl_sum[idx] += stride * model.kl_terms(x0[idx], t[idx], gen, beta)
    per_k = model.process.edge_terms(x0, beta) - kl_sum  # nats per image
    D = math.prod(x_data.shape[1:])
    per_bpd = -(per_k / LN2 - scaler.log_det_bits(D)) / D
    se = float(per_bpd.std(unbiased=True) / math.sqrt(n)) if n > 1 else float("nan")
    return float(per_bpd.mean()), se, per_bpd
