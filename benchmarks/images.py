"""Image models per CPU-minute: the lab's image presets against openai/improved-diffusion.

Head to head (default): 32 x 32 greyscale dead leaves from the lab's generator
(diffusion/data/image_deadleaves.py) written once as PNG folders (train: 20,000 images, seed
[0, 0]; test: seed [0, 1]; val: seed [1, 1], used only for tuning), the lab's preset and
improved-diffusion (fetched outside the repo, never committed; benchmarks/id_driver.py runs
its code unmodified from --id-root) trained side by side at the same time for the same
wall-clock budget, one thread each; snapshots along the way; then bits/dim of every snapshot
on the first --n-test test images, each side with its own evaluation (the lab: its bound
with uniform dequantization; improved-diffusion: calc_bpd_loop's discretized-decoder bound).
Curve points use an unbiased strided estimate in t (--curve-stride), the final points
--final-stride (1 = exact). Writes benchmarks/results/images.json and images_curves.png.

    python benchmarks/images.py --json --head-to-head --id-driver benchmarks/id_driver.py \
        --id-root /work/ext/improved-diffusion [--budget-s 1800]

Folder mode: train the lab's best greyscale preset(s) on anyone's PNG folders on all cores,
the LR schedule fitted to the budget, and print one JSON object per preset:

    python benchmarks/images.py --data TRAIN --test TEST --size 32 --budget-s 1800 --json

Seeds: `--seed S` trains both sides from seed S; `--merge-seeds A.json B.json ... --results
OUT.json` pools the files of separate seeds into one (benchmarks/images_seeds.py): mean, spread
across seeds and each seed's value at every point of the curve.

Per-step times (--step-times): each image network's training step through the lab's trainer
beside a bare PyTorch loop of the same network and loss (benchmarks/images_steps.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

BEST_GREY = ("deadleaves-unet",)
RESULTS = ROOT / "benchmarks" / "results"


def folder_config(preset: str, train: Path, test: Path, size: int, n_test: int, seed: int = 0):
    """`preset` retargeted to PNG folders: all of `train` trains, the first n_test of `test`
    (name order) are held out."""
    from images_common import budget_overrides

    from diffusion.presets import PRESETS

    return PRESETS[preset].with_overrides(
        [
            "data.name=images",
            "data.options={}",
            f"data.options.path={train}",
            f"data.options.test_path={test}",
            f"data.options.size={size}",
            "data.options.mode=L",
            "data.n_train=0",
            *budget_overrides(n_test, seed),
        ]
    )


def write_deadleaves(
    root: Path, n_train: int = 20_000, n_test: int = 512, n_val: int = 256
) -> None:
    """The head-to-head data as PNG folders (skipped when complete)."""
    import numpy as np
    from PIL import Image

    from diffusion.data.image_deadleaves import DeadLeavesParams, dead_leaves

    params = DeadLeavesParams(size=32, r_min=1.0, r_max=32.0)
    for split, seed, n in (
        ("test", [0, 1], n_test),
        ("val", [1, 1], n_val),
        ("train", [0, 0], n_train),
    ):
        d = root / split
        if d.is_dir() and len(list(d.glob("*.png"))) >= n:
            continue
        d.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        for start in range(0, n, 1000):  # chunks of 1,000 from one stream
            for i, im in enumerate(dead_leaves(min(1000, n - start), params, rng)):
                Image.fromarray(im).save(d / f"{start + i:05d}.png")


def lab_train(args: argparse.Namespace) -> None:
    """Subprocess entry: train one preset on the folders with a budget and snapshots."""
    import torch
    from images_common import train_budget

    torch.set_num_threads(args.threads)
    cfg = folder_config(args.preset, args.data, args.test, args.size, args.n_test, args.seed)
    snaps = [float(s) for s in args.curve_s.split(",") if s]
    r = train_budget(cfg, args.out, args.budget_s, snaps)
    (args.out / "train_result.json").write_text(json.dumps(r))


def lab_eval(args: argparse.Namespace) -> None:
    """Subprocess entry: bits/dim of one snapshot on the first n_test test images."""
    import torch
    from images_common import bits_per_dim, load_snapshot

    from diffusion.data.image_files import read_image_collection
    from diffusion.data.images import to_nchw

    torch.set_num_threads(args.threads)
    model, meta = load_snapshot(args.snapshot)
    scaler = meta.pop("scaler")  # the training data's, from the checkpoint
    images, _ = read_image_collection(args.test, (args.size, args.size), "L")
    x = to_nchw(images[: args.n_test])  # the first n_test by name
    t0 = time.monotonic()
    bpd, se, _ = bits_per_dim(model, scaler, x, args.stride, args.seed, args.t_exact)
    print(
        json.dumps(
            {
                "side": "lab",
                "preset": args.preset,
                "snapshot": str(args.snapshot),
                **meta,
                "bits_per_dim": bpd,
                "stderr": se,
                "n_test": int(x.shape[0]),
                "t_stride": args.stride,
                "t_exact": args.t_exact,
                "eval_seconds": time.monotonic() - t0,
            }
        )
    )


def folder_mode(args: argparse.Namespace) -> list[dict]:
    """Train each preset on the folders (all cores), evaluate the first n_test test images."""
    import torch
    from images_common import bits_per_dim, load_snapshot, train_budget

    from diffusion.data import build_dataset

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    out = []
    for preset in args.presets.split(","):
        cfg = folder_config(preset, args.data, args.test, args.size, args.n_test, args.seed)
        r = train_budget(cfg, args.out / f"folder-{preset}", args.budget_s, [])
        model, _ = load_snapshot(Path(r["snapshots"][-1]))
        bundle = build_dataset(cfg.data, args.seed)
        x = bundle.holdout[: args.n_test]
        bpd, se, _ = bits_per_dim(model, bundle, x, args.final_stride, args.seed)
        out.append(
            {
                "preset": preset,
                "steps": r["steps"],
                "train_seconds": r["train_seconds"],
                "bits_per_dim": bpd,
                "bits_per_dim_stderr": se,
                "n_test": int(x.shape[0]),
                "t_stride": args.final_stride,
            }
        )
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true")
    p.add_argument("--data", type=Path, help="folder of training PNGs")
    p.add_argument("--test", type=Path, help="folder of test PNGs (first --n-test by name)")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--budget-s", type=float, default=1800.0)
    p.add_argument("--n-test", type=int, default=64)
    p.add_argument("--presets", default=",".join(BEST_GREY))
    p.add_argument("--preset", default=BEST_GREY[0])
    p.add_argument("--id-driver", type=Path, help="benchmarks/id_driver.py")
    p.add_argument("--id-root", type=Path, help="improved-diffusion checkout (outside the repo)")
    p.add_argument("--curve-s", default="300,600,900,1200,1500")
    p.add_argument("--curve-stride", type=int, default=25)
    p.add_argument("--final-stride", type=int, default=1)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--eval-workers", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "images")
    p.add_argument("--head-to-head", action="store_true")
    p.add_argument(
        "--one-at-a-time",
        action="store_true",
        help="head to head: each side alone on every core (--threads), one after the other",
    )
    p.add_argument("--results", type=Path, help="head to head: results file (default by mode)")
    p.add_argument(
        "--merge-seeds",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="pool head-to-head results files of separate seeds into --results",
    )
    p.add_argument("--evaluate-only", action="store_true", help="evaluate a finished --out")
    p.add_argument("--step-times", action="store_true")
    p.add_argument("--reps", type=int, default=7, help="--step-times: interleaved pairs")
    p.add_argument("--lab-train", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--lab-eval", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--snapshot", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--stride", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--t-exact", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--curve-exact", type=int, default=10, help="exact first steps, curve")
    p.add_argument("--final-exact", type=int, default=20, help="exact first steps, final")
    return p


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    from provenance import start

    run = start(argv)  # commit, dirty flag and command, before any work
    args.threads = args.threads or 1 if (args.lab_train or args.lab_eval) else args.threads
    if args.lab_train:
        lab_train(args)
        return 0
    if args.lab_eval:
        lab_eval(args)
        return 0
    if args.merge_seeds:
        from images_seeds import merge_main

        return merge_main(p, args, run)
    if args.data and not args.test and not args.head_to_head:
        p.error("--data needs --test (a folder of test PNGs)")
    if args.data and args.test and not args.head_to_head:
        for row in folder_mode(args):
            print(json.dumps(row))
        return 0
    if args.step_times:
        if args.reps < 1:
            p.error(f"--reps must be at least 1, got {args.reps}")
        import tempfile

        from images_steps import compile_rows, draw_rows, memory_format_rows, step_times
        from provenance import write_results

        # compilations timed from an empty cache (what a fresh worker pays), not this machine's
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-")

        rows = [
            *step_times(reps=args.reps),
            *memory_format_rows(reps=args.reps),
            *compile_rows(reps=args.reps),
            *draw_rows(reps=args.reps),
        ]
        doc = write_results(RESULTS / "image_steps.json", run, rows, seeds=[0], split={})
        print(json.dumps(doc, indent=1))
        return 0
    from images_h2h import evaluate_all, train_both

    if not args.evaluate_only:
        train_both(args)
    doc = evaluate_all(args, run)
    if args.json:
        print(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
