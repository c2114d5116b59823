"""Driver for openai/improved-diffusion in the head to head of benchmarks/images.py.

This file is the lab's code; improved-diffusion itself is fetched outside the repo and never
committed. Give its checkout with --id-root or the environment variable
IMPROVED_DIFFUSION_ROOT (the folder that holds the `improved_diffusion` package). Its model,
diffusion, losses and timestep sampler run unmodified; nothing of it is patched.

What the driver writes itself, and why:
- The training loop. improved-diffusion's TrainLoop (train_util.py) and its data loader need
  mpi4py and blobfile (through dist_util, logger and image_datasets), which the lab's venv
  lacks, and it has no wall-clock budget. The loop here is TrainLoop.run_step without fp16,
  microbatches or distribution: zero the grads, t and weights from its UniformSampler,
  `(diffusion.training_losses(...)["loss"] * weights).mean()`, backward, AdamW step (lr
  2e-4, weight decay 0, no LR annealing: its defaults with lr_anneal_steps = 0). No EMA is
  kept: TrainLoop's EMA rate 0.9999 averages over about 10,000 steps, more than a
  30-minute CPU run makes, so the raw weights are the ones evaluated (its better choice here).
- Data: greyscale PNGs scaled as its image_datasets.py scales them (x / 127.5 - 1), one
  channel instead of its RGB; batches drawn without replacement, reshuffled each epoch.
- Evaluation: its own `_vb_terms_bpd` (discretized Gaussian decoder at t = 0, Gaussian KLs
  above) and `_prior_bpd`, as in its calc_bpd_loop, with clip_denoised = True (its
  image_nll.py default). With --t-stride 1 that is calc_bpd_loop's total. With a stride
  s > 1 the first --t-exact steps (t = 0 .. t_exact - 1 in its indexing; the decoder term and
  the first KLs, where the cosine schedule puts the largest terms) are exact and each image
  sums every s-th later step from its own random offset, weighted by s, the same unbiased
  estimate the lab side uses (benchmarks/images_common.bits_per_dim), so the standard error
  over the test images includes the sampling of t.

Commands (each prints one JSON line last):
    id_driver.py train --data TRAIN --out DIR --budget-s 1800 --threads 1 --save-s 600 1200
    id_driver.py eval --data TEST --ckpt DIR/ckpt_600.pt --n-test 64 --t-stride 100 --t-exact 5
    id_driver.py settings
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch as th

SETTINGS = {
    "image_size": 32,
    "in_channels": 1,
    "learn_sigma": True,
    "loss": "L_hybrid (RESCALED_MSE + vb)",
    "noise_schedule": "cosine",
    "diffusion_steps": 1000,
    "num_channels": 32,
    "channel_mult": [1, 2, 2],
    "num_res_blocks": 1,
    "attention_resolutions": [],
    "num_heads": 4,
    "use_scale_shift_norm": True,
    "dropout": 0.0,
    "optimizer": "AdamW",
    "lr": 2e-4,
    "weight_decay": 0.0,
    "lr_anneal_steps": 0,
    "batch_size": 64,
    "schedule_sampler": "uniform",
    "rescale_timesteps": True,
    "rescale_learned_sigmas": True,
    "fp16": False,
    "ema": "none (raw weights evaluated; TrainLoop's 0.9999 spans more steps than a run makes)",
    "clip_denoised": True,
}


def _import_id(root: str | None):
    """improved-diffusion's modules from its checkout (never the repo)."""
    root = root or os.environ.get("IMPROVED_DIFFUSION_ROOT")
    if not root:
        raise SystemExit(
            "improved-diffusion checkout not given: --id-root DIR or IMPROVED_DIFFUSION_ROOT"
        )
    if not (Path(root) / "improved_diffusion" / "gaussian_diffusion.py").is_file():
        raise SystemExit(f"{root}: no improved_diffusion/gaussian_diffusion.py there")
    sys.path.insert(0, str(Path(root).resolve()))
    from improved_diffusion import script_util
    from improved_diffusion.resample import UniformSampler
    from improved_diffusion.unet import UNetModel

    return script_util, UniformSampler, UNetModel


def build(root: str | None):
    """(model, diffusion, UniformSampler class) at SETTINGS. The UNet is built directly because
    script_util.create_model fixes channel_mult to (1, 2, 2, 2) at 32 x 32 and RGB channels."""
    script_util, sampler_cls, unet_cls = _import_id(root)
    s = SETTINGS
    model = unet_cls(
        in_channels=s["in_channels"],
        model_channels=s["num_channels"],
        out_channels=2 * s["in_channels"] if s["learn_sigma"] else s["in_channels"],
        num_res_blocks=s["num_res_blocks"],
        attention_resolutions=tuple(s["attention_resolutions"]),
        dropout=s["dropout"],
        channel_mult=tuple(s["channel_mult"]),
        num_classes=None,
        use_checkpoint=False,
        num_heads=s["num_heads"],
        num_heads_upsample=-1,
        use_scale_shift_norm=s["use_scale_shift_norm"],
    )
    diffusion = script_util.create_gaussian_diffusion(
        steps=s["diffusion_steps"],
        learn_sigma=s["learn_sigma"],
        sigma_small=False,
        noise_schedule=s["noise_schedule"],
        use_kl=False,
        predict_xstart=False,
        rescale_timesteps=s["rescale_timesteps"],
        rescale_learned_sigmas=s["rescale_learned_sigmas"],
        timestep_respacing="",
    )
    return model, diffusion, sampler_cls


def load_pngs(folder: Path, n: int | None = None) -> th.Tensor:
    """The greyscale PNGs of `folder` in name order (the first n), (N, 1, H, W) in [-1, 1]."""
    from PIL import Image

    files = sorted(Path(folder).glob("*.png"))[:n]
    if not files:
        raise SystemExit(f"{folder}: no PNG files")
    arr = np.stack([np.asarray(Image.open(f).convert("L")) for f in files])
    x = arr.astype(np.float32) / 127.5 - 1  # as image_datasets.ImageDataset
    return th.from_numpy(x)[:, None]


def _save(model, path: Path, step: int, wall_s: float) -> None:
    tmp = path.with_suffix(".tmp")
    th.save({"model": model.state_dict(), "step": step, "wall_s": wall_s}, tmp)
    tmp.replace(path)


def train(args: argparse.Namespace) -> dict:
    """Train for --budget-s wall seconds; ckpt_<s>.pt at the first step end past each --save-s,
    ckpt_final.pt at the end."""
    th.set_num_threads(args.threads)
    th.manual_seed(args.seed)
    np.random.seed(args.seed)
    model, diffusion, sampler_cls = build(args.id_root)
    sampler = sampler_cls(diffusion)
    opt = th.optim.AdamW(
        model.parameters(), lr=SETTINGS["lr"], weight_decay=SETTINGS["weight_decay"]
    )
    data = load_pngs(args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    pending = sorted(float(s) for s in args.save_s)
    bs, n = SETTINGS["batch_size"], data.shape[0]
    rng = np.random.default_rng(args.seed)
    perm, pos, step = rng.permutation(n), 0, 0
    model.train()
    t0 = time.monotonic()
    while time.monotonic() - t0 < args.budget_s:
        if pos + bs > n:
            perm, pos = rng.permutation(n), 0
        batch = data[perm[pos : pos + bs]]
        pos += bs
        opt.zero_grad(set_to_none=False)
        t, weights = sampler.sample(bs, th.device("cpu"))
        losses = diffusion.training_losses(model, batch, t)
        loss = (losses["loss"] * weights).mean()
        loss.backward()
        opt.step()
        step += 1
        wall = time.monotonic() - t0
        if step % 25 == 0 or step == 1:
            print(
                f"step {step} wall {wall:.1f}s loss {loss.item():.4f}", file=sys.stderr, flush=True
            )
        while pending and wall >= pending[0]:
            _save(model, args.out / f"ckpt_{int(pending.pop(0))}.pt", step, wall)
    wall = time.monotonic() - t0
    _save(model, args.out / "ckpt_final.pt", step, wall)
    return {"side": "improved-diffusion", "steps": step, "wall_s": wall}


@th.no_grad()
def bits_per_dim(model, diffusion, x: th.Tensor, stride: int, exact: int, seed: int):
    """(mean, standard error, per image) of its bound in bits/dim: calc_bpd_loop's sum of
    `_vb_terms_bpd` over t = 0 .. T-1 plus `_prior_bpd`, exact with stride 1, else the first
    `exact` steps exact and every stride-th later step from a random offset per image,
    weighted by stride."""
    gen = th.Generator().manual_seed(seed)
    T, n = diffusion.num_timesteps, x.shape[0]
    total = diffusion._prior_bpd(x).double()
    first = T if stride == 1 else min(max(exact, 1), T)  # t = 0 (the decoder) always exact

    def term(idx: th.Tensor, t: th.Tensor) -> th.Tensor:
        noise = th.randn(x[idx].shape, generator=gen)
        x_t = diffusion.q_sample(x_start=x[idx], t=t, noise=noise)
        out = diffusion._vb_terms_bpd(model, x_start=x[idx], x_t=x_t, t=t, clip_denoised=True)
        return out["output"].double()

    every = th.arange(n)
    for t0 in range(first):
        total += term(every, th.full((n,), t0))
    if stride > 1:
        off = th.randint(0, stride, (n,), generator=gen)
        for k in range(math.ceil((T - first) / stride)):
            t = first + off + stride * k
            keep = t < T
            if not bool(keep.any()):
                break
            idx = keep.nonzero().squeeze(1)
            total[idx] += stride * term(idx, t[idx])
    se = float(total.std(unbiased=True) / math.sqrt(n)) if n > 1 else float("nan")
    return float(total.mean()), se, total


def evaluate(args: argparse.Namespace) -> dict:
    th.set_num_threads(args.threads)
    model, diffusion, _ = build(args.id_root)
    ck = th.load(args.ckpt, map_location="cpu", weights_only=False)
    model.load_state_dict(ck["model"])
    model.eval()
    x = load_pngs(args.data, args.n_test)
    t0 = time.monotonic()
    bpd, se, _ = bits_per_dim(model, diffusion, x, args.t_stride, args.t_exact, args.seed)
    return {
        "side": "improved-diffusion",
        "ckpt": str(args.ckpt),
        "step": int(ck["step"]),
        "wall_s": float(ck["wall_s"]),
        "bits_per_dim": bpd,
        "stderr": se,
        "n_test": int(x.shape[0]),
        "t_stride": args.t_stride,
        "t_exact": args.t_exact,
        "eval_seconds": time.monotonic() - t0,
    }


def settings(args: argparse.Namespace) -> dict:
    """SETTINGS, the parameter count and a digest of the improved_diffusion sources used."""
    model, _, _ = build(args.id_root)
    root = Path(args.id_root or os.environ["IMPROVED_DIFFUSION_ROOT"]) / "improved_diffusion"
    digest = hashlib.sha256()
    for f in sorted(root.glob("*.py")):
        digest.update(f.name.encode() + f.read_bytes())
    return {
        **SETTINGS,
        "seed": args.seed,
        "parameters": sum(p.numel() for p in model.parameters()),
        "source": "github.com/openai/improved-diffusion, run unmodified",
        "source_sha256": digest.hexdigest(),
        "driver": "benchmarks/id_driver.py",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=("train", "eval", "settings"))
    p.add_argument("--id-root", help="improved-diffusion checkout (else IMPROVED_DIFFUSION_ROOT)")
    p.add_argument("--data", type=Path, help="PNG folder: training (train) or test (eval)")
    p.add_argument("--out", type=Path)
    p.add_argument("--budget-s", type=float, default=1800.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--save-s", nargs="*", default=[])
    p.add_argument("--ckpt", type=Path)
    p.add_argument("--n-test", type=int, default=64)
    p.add_argument("--t-stride", type=int, default=1)
    p.add_argument("--t-exact", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.command == "train" and (args.data is None or args.out is None):
        p.error("train needs --data and --out")
    if args.command == "eval" and (args.data is None or args.ckpt is None):
        p.error("eval needs --data and --ckpt")
    if args.t_stride < 1:
        p.error("--t-stride must be >= 1")
    run = {"train": train, "eval": evaluate, "settings": settings}[args.command]
    print(json.dumps(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
