"""How long a preset's evaluation takes on this machine's CPU: (example, t) pairs per second of
`diffusion.evaluation.bound.evaluate_bound` for each preset's network and data shape, and the time
of the preset's own evaluation (2 subsets x train.eval_examples x (T - 1) pairs, or x
train.eval_timesteps where the preset samples t).

The network's cost does not depend on T or on the data's values, so each preset is timed at
T = 6 on random model-space examples of its shape (untrained weights), and the rate is scaled.

    OMP_NUM_THREADS=1 python benchmarks/eval_speed.py [--threads 1] [--presets a,b] [--json]

Writes benchmarks/results/eval_speed.json through benchmarks/provenance.py (commit, dirty
flag, command, machine, seeds, times). The New run form's estimate
(dashboard.forms.EVAL_PAIRS_PER_S) uses these rates.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import provenance  # noqa: E402

from diffusion.evaluation.bound import evaluate_bound  # noqa: E402
from diffusion.model import DiffusionModel  # noqa: E402
from diffusion.presets import PRESETS  # noqa: E402

SHAPES = {  # model-space shape of one example, by data set
    "swissroll": ((2,), "points"),
    "heartbeat": ((20,), "binary"),
    "digits": ((1, 8, 8), "images"),
    "deadleaves": ((1, 32, 32), "images"),
    "texture": ((1, 32, 32), "images"),
    "mnist": ((1, 28, 28), "images"),
    "cifar10": ((3, 32, 32), "images"),
    "photos": ((3, 32, 32), "images"),
}


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def rate(name: str, n: int, repeats: int) -> dict:
    cfg = PRESETS[name].with_overrides(["diffusion.T=6", "diffusion.J=0", "diffusion.schedule_J=0"])
    shape, kind = SHAPES[cfg.data.name]
    torch.manual_seed(0)
    model = DiffusionModel(cfg, shape, kind).eval()
    x = torch.randint(0, 2, (n, *shape)).double() if kind == "binary" else torch.randn(n, *shape)
    x = x.to(next(model.parameters()).dtype)
    gen = torch.Generator().manual_seed(0)
    evaluate_bound(model, x[: min(n, 8)], gen)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        evaluate_bound(model, x, gen)
        times.append(time.perf_counter() - t0)
    best = min(times)
    pairs = n * (cfg.diffusion.T - 1)
    full = PRESETS[name]
    k = full.train.eval_timesteps  # 0: every t; else k random t per example
    per_example = min(k, full.diffusion.T - 1) if k > 0 else full.diffusion.T - 1
    preset_pairs = 2 * full.train.eval_examples * per_example
    return {
        "preset": name,
        "examples_timed": n,
        "T_timed": cfg.diffusion.T,
        "seconds": times,
        "pairs_per_s": pairs / best,
        "preset_eval_pairs": preset_pairs,
        "preset_eval_seconds": preset_pairs / (pairs / best),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--presets", default="swissroll,heartbeat,digits,bark,mnist,cifar10")
    p.add_argument("--examples", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "eval_speed.json"))
    run = provenance.start()
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.presets.split(","):
        n = args.examples if SHAPES[PRESETS[name].data.name][1] == "images" else 8 * args.examples
        row = rate(name, n, args.repeats)
        print(
            f"{name:12s} {row['pairs_per_s']:10.0f} pairs/s  preset evaluation "
            f"{row['preset_eval_seconds']:8.1f} s",
            flush=True,
        )
        rows.append(row)
    for row in rows:  # the fields every results row carries (benchmarks/provenance.py)
        row.update(
            seeds=[0],
            split="random model-space examples of the preset's shape (rate only; no data)",
            train_seconds=0.0,
            eval_seconds=round(sum(row["seconds"]), 3),
        )
    out = provenance.build(
        run,
        rows,
        seeds=[0],
        split={"all": "random model-space examples of each preset's shape (rate only)"},
        extra={"threads": args.threads},
    )
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
