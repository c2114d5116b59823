"""Posteriors on photo-sized inputs (part d of benchmarks/posterior.py; issue 10, "Any image
size"): a fully convolutional model trained on 32 x 32 patches of scikit-image's other photos
denoises and inpaints whole photos at their own size.

Model: the "photos" preset (the paper's multi-scale conv net without the dense pathway, so
fully convolutional; T = 1000) trained on patches of scikit-image's photos with camera,
astronaut and coffee held out, for `budget_s` seconds on one CPU thread.
Test photos (greyscale, PIL "L"): camera 512 x 512, astronaut 512 x 512, coffee at its own
400 x 600.
- Inpainting a central 64 x 64 hole (the paper's chain, known pixels held): spectrum and
  histogram distances of `benchmarks/posterior.py` against scikit-image's biharmonic fill.
  Target: a lower spectrum distance, a histogram (Wasserstein) distance within 10%.
- Denoising at sigma 25 (0-255): PSNR of the posterior mean against scipy's Wiener filter
  (best window of 3, 5, 7) and scikit-image's non-local means (sigma given, fast mode).
Every chain is the strided chain with `steps` kept steps (a full T = 1000 chain on a
512 x 512 photo costs about 1.3 s per network evaluation per sample on one busy thread).

    python benchmarks/posterior.py --parts d --json [--photo-budget-min 15] [--photo-steps 50]
"""

from __future__ import annotations

import time
from pathlib import Path

from diffusion.presets import PRESETS

TEST_PHOTOS = ("camera", "astronaut", "coffee")
PHOTO_OVERRIDES = (
    "train.batch_size=64",
    "train.eval_every=0",
    "train.eval_examples=16",
    "train.gallery_every=0",
    "train.gallery_size=16",
    "train.log_every=50",
    "train.checkpoint_every_s=120",
    "train.seed=0",
    "train.device=cpu",
)


def train_photos(out: Path, budget_s: float, steps: int):
    """Train the photos preset in `out` for at most `budget_s` seconds (reused if done)."""
    from diffusion.train import TrainResult, load_final_eval, train

    final = load_final_eval(out)
    if final is not None:
        return TrainResult("done", final.step, final.k_holdout, final, {})
    cfg = PRESETS["photos"].with_overrides([*PHOTO_OVERRIDES, f"train.steps={steps}"])
    t0 = time.monotonic()
    r = train(cfg, out, should_stop=lambda: time.monotonic() - t0 > budget_s)
    if r.status == "stopped":
        cfg = cfg.with_overrides([f"train.steps={max(r.step, 1)}"])
        r = train(cfg, out)
    return r
