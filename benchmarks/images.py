"""Image models per CPU-minute: the lab's image presets against openai/improved-diffusion.

Head to head (default): 32 x 32 greyscale dead leaves from the lab's generator
(diffusion/data/image_deadleaves.py) written once as PNG folders (train: 20,000 images, seed
[0, 0]; test: seed [0, 1]; val: seed [1, 1], used only for tuning), the lab's preset and
improved-diffusion (driver outside the repo, e.g. /work/ext/id_driver.py, which runs the
fetched code unmodified) trained side by side at the same time for the same wall-clock budget,
one thread each; snapshots along the way; then bits/dim of every snapshot on the first
--n-test test images, each side with its own evaluation (the lab: its bound with uniform
dequantization; improved-diffusion: calc_bpd_loop's discretized-decoder bound). Curve points
use an unbiased strided estimate in t (--curve-stride), the final points --final-stride (1 =
exact). Writes benchmarks/results/images.json and images_curves.png.

    python benchmarks/images.py --json --id-driver /work/ext/id_driver.py [--budget-s 1800]

Folder mode: train the lab's best greyscale preset(s) on anyone's PNG folders on all cores,
the LR schedule fitted to the budget, and print one JSON object per preset:

    python benchmarks/images.py --data TRAIN --test TEST --size 32 --budget-s 1800 --json

Per-step times (--step-times): each image network's training step through the lab's trainer
beside a bare PyTorch loop of the same network and loss (benchmarks/images_steps.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
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

    from diffusion.data import build_dataset

    torch.set_num_threads(args.threads)
    model, meta = load_snapshot(args.snapshot)
    cfg = folder_config(args.preset, args.data, args.test, args.size, args.n_test, args.seed)
    bundle = build_dataset(cfg.data, args.seed)
    t0 = time.monotonic()
    bpd, se, _ = bits_per_dim(model, bundle, bundle.holdout[: args.n_test], args.stride, args.seed)
    print(
        json.dumps(
            {
                "side": "lab",
                "preset": args.preset,
                "snapshot": str(args.snapshot),
                **meta,
                "bits_per_dim": bpd,
                "stderr": se,
                "n_test": int(min(args.n_test, bundle.holdout.shape[0])),
                "t_stride": args.stride,
                "eval_seconds": time.monotonic() - t0,
            }
        )
    )


def _py(*argv: str, threads: int) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *argv, "--threads", str(threads)]


def _run(cmd: list[str], threads: int, log: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    with open(log, "a") as fh:
        out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=fh, text=True, check=True)
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def head_to_head(args: argparse.Namespace) -> dict:
    """Both trainings at the same time, one thread each, then every snapshot evaluated."""
    data = args.data or args.out / "deadleaves32"
    if not args.data:
        write_deadleaves(data)
    train_dir, test_dir = (
        (data / "train", data / "test") if not args.data else (args.data, args.test)
    )
    if not args.id_driver or not Path(args.id_driver).is_file():
        raise SystemExit("--id-driver: path of the improved-diffusion driver (outside the repo)")
    curve = [float(s) for s in args.curve_s.split(",") if s]
    lab_dir, id_dir = args.out / f"lab-{args.preset}", args.out / "improved-diffusion"
    for d in (lab_dir, id_dir):
        d.mkdir(parents=True, exist_ok=True)
    common = ["--data", str(train_dir), "--test", str(test_dir), "--size", "32"]
    lab_cmd = _py(
        "--lab-train",
        "--preset",
        args.preset,
        *common,
        "--out",
        str(lab_dir),
        "--budget-s",
        str(args.budget_s),
        "--curve-s",
        args.curve_s,
        "--n-test",
        str(args.n_test),
        threads=1,
    )
    id_cmd = [
        sys.executable,
        str(args.id_driver),
        "train",
        "--data",
        str(train_dir),
        "--out",
        str(id_dir),
        "--budget-s",
        str(args.budget_s),
        "--threads",
        "1",
        "--save-s",
        *[str(int(s)) for s in curve],
    ]
    t0 = time.monotonic()
    with ThreadPoolExecutor(2) as pool:  # side by side, same budget
        jobs = [
            pool.submit(_run, lab_cmd, 1, lab_dir / "log.txt"),
            pool.submit(_run, id_cmd, 1, id_dir / "log.txt"),
        ]
        id_train = json.loads(jobs[1].result() or "{}")
        jobs[0].result()
    lab_train_r = json.loads((lab_dir / "train_result.json").read_text())
    train_wall = time.monotonic() - t0
    evals = []
    for snap in lab_train_r["snapshots"]:
        final = snap.endswith("snapshot_final.pt")
        evals.append(
            (
                "lab",
                _py(
                    "--lab-eval",
                    "--preset",
                    args.preset,
                    *common,
                    "--snapshot",
                    snap,
                    "--n-test",
                    str(args.n_test),
                    "--stride",
                    str(args.final_stride if final else args.curve_stride),
                    threads=1,
                ),
            )
        )
    for s in ["final", *[int(c) for c in curve]]:  # the longest evaluation first
        ck = id_dir / f"ckpt_{s}.pt"
        if ck.exists():
            evals.append(
                (
                    "id",
                    [
                        sys.executable,
                        str(args.id_driver),
                        "eval",
                        "--data",
                        str(test_dir),
                        "--ckpt",
                        str(ck),
                        "--n-test",
                        str(args.n_test),
                        "--t-stride",
                        str(args.final_stride if s == "final" else args.curve_stride),
                    ],
                )
            )
    evals.sort(key=lambda e: e[0] != "id")  # improved-diffusion's slower evaluations first
    with ThreadPoolExecutor(args.eval_workers) as pool:
        outs = list(pool.map(lambda e: json.loads(_run(e[1], 1, args.out / "eval_log.txt")), evals))
    settings = json.loads(
        subprocess.run(
            [sys.executable, str(args.id_driver), "settings"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    from diffusion.presets import PRESETS

    return {
        "budget_s": args.budget_s,
        "threads_each": 1,
        "note": "both trainings ran at the same time on the same shared machine, one thread each",
        "data": {
            "train": str(train_dir),
            "test": str(test_dir),
            "n_test": args.n_test,
            "generator": "diffusion/data/image_deadleaves.py, 32 x 32, r 1..32",
        },
        "lab": {
            "preset": args.preset,
            "config": PRESETS[args.preset].to_dict(),
            "steps": lab_train_r["steps"],
            "train_seconds": lab_train_r["train_seconds"],
            "curve": [o for o in outs if o["side"] == "lab"],
        },
        "improved_diffusion": {
            "settings": settings,
            "steps": id_train.get("steps"),
            "train_seconds": id_train.get("train_seconds"),
            "curve": [o for o in outs if o["side"] == "improved-diffusion"],
        },
        "curve_stride": args.curve_stride,
        "final_stride": args.final_stride,
        "wall_seconds_training": train_wall,
    }


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
        model, meta = load_snapshot(Path(r["snapshots"][-1]))
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true")
    p.add_argument("--data", type=Path, help="folder of training PNGs")
    p.add_argument("--test", type=Path, help="folder of test PNGs (first --n-test by name)")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--budget-s", type=float, default=1800.0)
    p.add_argument("--n-test", type=int, default=64)
    p.add_argument("--presets", default=",".join(BEST_GREY))
    p.add_argument("--preset", default=BEST_GREY[0])
    p.add_argument("--id-driver", type=Path)
    p.add_argument("--curve-s", default="300,600,900,1200,1500")
    p.add_argument("--curve-stride", type=int, default=25)
    p.add_argument("--final-stride", type=int, default=1)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--eval-workers", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "images")
    p.add_argument("--head-to-head", action="store_true")
    p.add_argument("--step-times", action="store_true")
    p.add_argument("--lab-train", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--lab-eval", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--snapshot", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--stride", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.threads = args.threads or 1 if (args.lab_train or args.lab_eval) else args.threads
    if args.lab_train:
        lab_train(args)
        return 0
    if args.lab_eval:
        lab_eval(args)
        return 0
    if args.data and not args.test and not args.head_to_head:
        p.error("--data needs --test (a folder of test PNGs)")
    if args.data and args.test and not args.head_to_head:
        for row in folder_mode(args):
            print(json.dumps(row))
        return 0
    if args.step_times:
        from images_steps import step_times

        print(json.dumps(step_times(), indent=2))
        return 0
    from images_report import write_results

    result = head_to_head(args)
    write_results(result, RESULTS, " ".join(sys.argv))
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
