"""How long a preset's evaluation takes on this machine's CPU: (example, t) pairs per second of
`diffusion.evaluation.bound.evaluate_bound` for each preset's network and data shape, and the time
of the preset's own evaluation (2 subsets x train.eval_examples x (T - 1) pairs, or x
train.eval_timesteps where the preset samples t).

The network's cost does not depend on T or on the data's values, so each preset is timed at
T = 6 on random model-space examples of its shape (untrained weights), and the rate is scaled.

    OMP_NUM_THREADS=1 python benchmarks/eval_speed.py [--threads 1] [--presets a,b] [--json]

Writes benchmarks/results/eval_speed.json through benchmarks/provenance.py (commit, dirty
flag, command, machine, seeds, times), and the rates by data set (each data set's preset,
`DATA_PRESETS`) to dashboard/eval_rates.json, which the New run form's estimate reads
(dashboard.forms.eval_estimate); tests/benchmarks/test_results_provenance.py checks that the
two agree. Runs in the lab's float mode (diffusion.device.flush_denormals).
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


# the preset whose network a data set's estimate is measured on (the form estimates by data set)
DATA_PRESETS = {
    "swissroll": "swissroll",
    "heartbeat": "heartbeat",
    "digits": "digits",
    "texture": "bark",
    "deadleaves": "deadleaves",
    "mnist": "mnist",
    "cifar10": "cifar10",
    "photos": "photos-unet",
}
RATES = ROOT / "dashboard" / "eval_rates.json"


def rates_doc(results: dict) -> dict:
    """dashboard/eval_rates.json from an eval_speed results document: (example, t) pairs per
    second by data set (3 significant digits), and where they were measured."""
    by_preset = {r["preset"]: r["pairs_per_s"] for r in results["rows"]}
    prov = results["provenance"]
    return {
        "pairs_per_s": {
            data: float(f"{by_preset[preset]:.3g}")
            for data, preset in DATA_PRESETS.items()
            if preset in by_preset
        },
        "measured": {
            "by": "benchmarks/eval_speed.py (benchmarks/results/eval_speed.json)",
            "commit": prov["commit"],
            "started_at": prov["started_at"],
            "threads": prov.get("threads"),
            "cpu": prov["machine"].get("cpu_model"),
            "load_average_at_start": prov["machine"].get("load_average_at_start"),
        },
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
    p.add_argument("--presets", default=",".join(dict.fromkeys(DATA_PRESETS.values())))
    p.add_argument("--examples", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "eval_speed.json"))
    p.add_argument("--rates-out", default=str(RATES), help="the form's rates ('' to skip)")
    run = provenance.start()
    args = p.parse_args()
    from diffusion.device import flush_denormals

    flush_denormals()  # the mode every run computes in
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
    if args.rates_out:
        Path(args.rates_out).write_text(json.dumps(rates_doc(out), indent=1) + "\n")
        print(f"wrote {args.rates_out}")


if __name__ == "__main__":
    main()
