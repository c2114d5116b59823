"""Reproduce the toy rows of Table 1 of Sohl-Dickstein et al. 2015 (swiss roll, binary heartbeat).

Each row trains from scratch (2 CPU cores are enough), then evaluates the bound K over every t
on the holdout set. One JSON object per row with --json, else a Markdown table.

  .venv/bin/python benchmarks/table1.py --rows swissroll,swissroll-thin,heartbeat --json
  .venv/bin/python benchmarks/table1.py --rows swissroll,swissroll-thin --schedule all

--schedule: "fixed" is the paper's baseline 1/(T - t + 1); "geometric" the fixed schedule the
learned one starts from (see diffusion/schedules.py); "learned" the preset's learned schedule;
"both" = fixed and learned; "all" = the three. The heartbeat (binomial) has one fixed schedule.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from diffusion.config import RunConfig
from diffusion.inference import load_trained, report_fields
from diffusion.presets import PRESETS
from diffusion.train import train

# The benchmark settings of each row (see docs/model-notes.md for why they differ from the paper).
ROW_OVERRIDES: dict[str, list[str]] = {"swissroll": [], "swissroll-thin": [], "heartbeat": []}
SCHEDULES = {"fixed": "baseline", "geometric": "geometric", "learned": "learned"}
SCHEDULE_SETS = {"both": ["fixed", "learned"], "all": ["fixed", "geometric", "learned"]}
try:  # the image rows (deadleaves, bark) live in benchmarks/table1_images.py
    import table1_images
except ImportError:  # run as a module from elsewhere
    from benchmarks import table1_images


def row_config(row: str, schedule: str, extra: list[str]) -> RunConfig:
    if row not in ROW_OVERRIDES:
        raise SystemExit(f"unknown row {row!r}; rows: {', '.join(ROW_OVERRIDES)}")
    cfg = PRESETS[row]
    overrides = list(ROW_OVERRIDES[row]) + ["train.gallery_every=0", "train.gallery_size=16"]
    if cfg.diffusion.kind == "gaussian":
        overrides.append(f"diffusion.schedule={SCHEDULES[schedule]}")
    return cfg.with_overrides(overrides + extra)


def run_row(row: str, schedule: str, extra: list[str], out_root: Path, budget_s: float) -> dict:
    cfg = row_config(row, schedule, extra)
    out = out_root / f"{row}-{schedule}"
    t0 = time.monotonic()
    result = train(cfg, out, should_stop=lambda: time.monotonic() - t0 > budget_s)
    train_s = time.monotonic() - t0
    trained = load_trained(out, device="cpu")
    t1 = time.monotonic()
    rep = trained.report(k=1)
    bundle = trained.bundle
    return {
        "row": row,
        "schedule": schedule if cfg.diffusion.kind == "gaussian" else "fixed (binomial)",
        **report_fields(rep, bundle),
        "n_holdout": rep.n_examples,
        "train_seconds": round(train_s, 1),
        "eval_seconds": round(time.monotonic() - t1, 1),
        "status": result.status,
        "steps": trained.step,
        "T": cfg.diffusion.T,
        "beta1": cfg.diffusion.beta1,
        "network": f"{cfg.network.kind} {list(cfg.network.hidden)}"
        + (f" {cfg.network.options_dict}" if cfg.network.options else ""),
        "J": cfg.diffusion.readout_J,
        "batch_size": cfg.train.batch_size,
        "threads": torch.get_num_threads(),
    }


def markdown(rows: list[dict]) -> str:
    def f(x: float | None, nd: int = 2) -> str:
        return "-" if x is None else f"{x:.{nd}f}"

    lines = [
        "| row | schedule | K | K - L_null | true LL | paper K | paper K - L_null | "
        "unit | train s |",
        "|---" * 9 + "|",
    ]
    for r in rows:
        lines.append(
            f"| {r['row']} | {r['schedule']} | {f(r['K_bits'], 3)} +- {f(r['K_stderr_bits'], 3)}"
            f" | {f(r['K_minus_Lnull_bits'], 3)} | {f(r['true_ll_bits'], 3)} "
            f"| {f(r['paper_K_bits'], 3)} | {f(r['paper_K_minus_Lnull_bits'], 3)} | {r['unit']} "
            f"| {r['train_seconds']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", default="swissroll,swissroll-thin,heartbeat")
    p.add_argument("--schedule", choices=(*SCHEDULES, *SCHEDULE_SETS), default="learned")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="extra config override for every row, e.g. train.steps=1000",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per row")
    p.add_argument("--out", type=Path, default=None, help="keep the runs here")
    p.add_argument(
        "--budget-s",
        type=float,
        default=14 * 60,
        help="stop a row's training after this many seconds (default 840)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: on shared, busy cores more threads only wait)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    schedules = SCHEDULE_SETS.get(args.schedule, [args.schedule])
    out_root = args.out or Path(tempfile.mkdtemp(prefix="table1-"))
    results = []
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROW_OVERRIDES and r not in table1_images.ROWS]
    if unknown:
        allowed = ", ".join([*ROW_OVERRIDES, *table1_images.ROWS])
        raise SystemExit(f"unknown row {unknown[0]!r}; rows: {allowed}")
    for row in rows:
        if row in table1_images.ROWS:  # image rows: their own budget and settings
            results.append(table1_images.run_row(row, out_root, args.budget_s))
            if args.json:
                print(json.dumps(results[-1]), flush=True)
            continue
        for schedule in schedules:
            if PRESETS[row].diffusion.kind != "gaussian" and schedule != schedules[0]:
                continue  # binomial: the schedule is fixed
            res = run_row(row, schedule, args.overrides, out_root, args.budget_s)
            results.append(res)
            if args.json:
                print(json.dumps(res), flush=True)
    if not args.json:
        print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
