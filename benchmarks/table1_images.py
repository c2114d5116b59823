"""Table 1's image rows on a CPU budget: dead leaves and bark (the texture stand-in).

Sohl-Dickstein et al. 2015, Table 1: dead leaves K = 1.489, K - L_null = 3.536 bits/pixel;
bark K = -0.55, K - L_null = 1.5 bits/pixel. Neither data set is public: dead leaves are
generated here (diffusion/data/image_deadleaves.py), bark is replaced by scikit-image's
gravel texture (held-out region never trained on).

The budget (stated with every result): 16 x 16 images, the paper's multi-scale conv network
at the official code's widths (4 conv layers of 20 channels, 2 upper layers of 20, J = 10),
batch 64, RMSprop 1e-3 decaying to 1e-4, trained for at most `budget_s` seconds of wall
time (default 20 minutes) on one CPU thread; K evaluated on 100 held-out images, exact in t.

    python benchmarks/table1_images.py --rows deadleaves,bark --json [--budget-min 20]

`ROWS` and `run_row` are importable (benchmarks/table1.py lists these rows from here).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diffusion.presets import PRESETS  # noqa: E402


@dataclass(frozen=True)
class ImageRow:
    preset: str
    overrides: tuple[str, ...]
    paper_k: float
    paper_k_minus_lnull: float
    note: str


COMMON = (
    "network.options.conv_layers=4",
    "network.options.conv_channels=20",
    "network.options.upper=[20,20]",
    "diffusion.J=10",
    "train.batch_size=64",
    "train.optimizer=rmsprop",
    "train.lr=0.001",
    "train.lr_final=0.0001",
    "train.lr_schedule=exponential",
    "train.eval_every=0",
    "train.eval_examples=100",
    "train.gallery_every=0",
    "train.gallery_size=16",
    "train.log_every=100",
    "train.checkpoint_every_s=120",
    "train.seed=0",
    "train.device=cpu",
)
ROWS: dict[str, ImageRow] = {
    "deadleaves": ImageRow(
        "deadleaves",
        (
            "data.options.size=16",
            "data.options.r_min=1.0",
            "data.options.r_max=16",
            "data.n_train=20000",
            "data.n_holdout=100",
            "diffusion.T=1000",
            *COMMON,
        ),
        1.489,
        3.536,
        "dead leaves 16 x 16 (paper: larger images), T = 1000",
    ),
    "bark": ImageRow(
        "bark",
        (
            "data.options.texture=gravel",
            "data.options.patch=16",
            "data.options.holdout_rows=128",
            "data.n_holdout=100",
            "diffusion.T=500",
            *COMMON,
        ),
        -0.55,
        1.5,
        "gravel texture 16 x 16 patches standing in for bark, T = 500",
    ),
}


def row_config(name: str, steps: int):
    row = ROWS[name]
    return PRESETS[row.preset].with_overrides([*row.overrides, f"train.steps={steps}"])


def run_row(name: str, out_dir: Path, budget_s: float, steps: int = 4_000) -> dict:
    """Train row `name` for at most `budget_s` seconds (then evaluate), return the numbers."""
    import torch

    from diffusion.train import train

    torch.set_num_threads(1)
    row = ROWS[name]
    run_dir = out_dir / name
    t0 = time.monotonic()
    stop = lambda: time.monotonic() - t0 > budget_s  # noqa: E731
    result = train(row_config(name, steps), run_dir, should_stop=stop)
    if result.status == "stopped":  # budget spent: finish at the step reached (final eval)
        result = train(row_config(name, max(result.step, 1)), run_dir)
    ev = result.final_eval
    assert ev is not None
    return {  # the keys of benchmarks/table1.py's rows, plus bits/dim and the budget
        "row": name,
        "schedule": "fixed",
        "note": row.note,
        "steps": result.step,
        "K_bits": ev.k_holdout.bits,
        "K_stderr_bits": ev.k_holdout.stderr_bits,
        "K_minus_Lnull_bits": ev.k_minus_lnull_bits,
        "Lnull_bits": ev.l_null_bits,
        "unit": ev.unit,
        "bits_per_dim": ev.bits_per_dim,
        "true_ll_bits": None,
        "train_seconds": result.info.get("train_seconds"),
        "wall_seconds_with_eval": time.monotonic() - t0,
        "paper_K_bits": row.paper_k,
        "paper_K_minus_Lnull_bits": row.paper_k_minus_lnull,
        "budget": f"{budget_s / 60:.0f} min wall on 1 CPU thread (shared machine), batch 64, "
        "16 x 16, official-code network widths",
        "run_dir": str(run_dir),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="deadleaves,bark")
    p.add_argument("--budget-min", type=float, default=20.0)
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "table1")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    names = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        p.error(f"unknown row {unknown[0]!r}; rows: {', '.join(ROWS)}")
    results = [run_row(n, args.out, args.budget_min * 60) for n in names]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(
                f"{r['row']:>11}: K = {r['K_bits']:.3f} +- {r['K_stderr_bits']:.3f}, "
                f"K - L_null = {r['K_minus_Lnull_bits']:.3f} bits/pixel "
                f"(paper {r['paper_K_bits']}, {r['paper_K_minus_Lnull_bits']}), "
                f"{r['bits_per_dim']:.3f} bits/dim, {r['train_seconds']:.0f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
