"""The head to head of benchmarks/images.py: both trainings side by side, one thread each, or
one at a time on every core (`--one-at-a-time`) (`train_both`), then every snapshot of both
evaluated and written with provenance (`evaluate_all`).

Each side evaluates itself: the lab with its bound (diffusion.evaluation.bound terms, uniform
dequantization, edge terms exact), improved-diffusion with its own `_vb_terms_bpd` /
`calc_bpd_loop` (its decoder term at t = 0 exact). With a stride s > 1 both sum every s-th step
from a random offset per image, weighted by s: unbiased per image, so the standard error over
the test images includes the sampling of t. Results: benchmarks/results/images.json, figure:
docs/figures/images_curves.png.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FIGURE = ROOT / "docs" / "figures" / "images_curves.png"
SCRIPT = ROOT / "benchmarks" / "images.py"


def _dirs(args: argparse.Namespace) -> tuple[Path, Path, Path, Path]:
    if args.data:
        train_dir, test_dir = args.data, args.test
    else:
        from images import write_deadleaves

        write_deadleaves(args.out / "deadleaves32")
        train_dir, test_dir = (
            args.out / "deadleaves32" / "train",
            args.out / "deadleaves32" / "test",
        )
    return train_dir, test_dir, args.out / f"lab-{args.preset}", args.out / "improved-diffusion"


def train_threads(args: argparse.Namespace) -> int:
    """Threads per side: one each side by side; every core (or --threads) one at a time."""
    if not args.one_at_a_time:
        return 1
    return args.threads or os.cpu_count() or 1


def results_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    """The results file and its figure: images.json and images_curves.png side by side,
    images_alone.json and images_alone_curves.png one at a time (unless --results)."""
    default = RESULTS / ("images_alone.json" if args.one_at_a_time else "images.json")
    results = Path(args.results) if args.results else default
    return results, figure_for(results)


def figure_for(results: Path) -> Path:
    """A results file's figure: docs/figures/STEM_curves.png for benchmarks/results/STEM.json,
    STEM_curves.png beside any other (a seed's file, a trial), so the README's stay its own."""
    if results.resolve().parent == RESULTS.resolve():
        return FIGURE.with_name(f"{results.stem}_curves.png")
    return results.with_name(f"{results.stem}_curves.png")


def how_sides(mode: str, threads: int) -> str:
    """How the two sides shared the machine, for the results' note and the figure."""
    if mode == "one_at_a_time":
        return f"improved-diffusion trained first, then the lab, each alone with {threads} threads"
    return "both trainings started together on the same shared machine, one thread each"


def _run(cmd: list[str], log: Path, threads: int = 1) -> str:
    """Run `threads` threads' worth of work; its last stdout line (JSON) is the answer."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    with open(log, "a") as fh:
        out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=fh, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    return lines[-1] if lines else "{}"


def _common(
    args: argparse.Namespace, train_dir: Path, test_dir: Path, threads: int = 1
) -> list[str]:
    return [
        "--data",
        str(train_dir),
        "--test",
        str(test_dir),
        "--size",
        "32",
        "--n-test",
        str(args.n_test),
        "--preset",
        args.preset,
        "--threads",
        str(threads),
        "--seed",
        str(args.seed),
    ]


def _id_cmd(args: argparse.Namespace, *rest: str) -> list[str]:
    """A command of the improved-diffusion driver, with its checkout (--id-root) when given."""
    root = ["--id-root", str(args.id_root)] if args.id_root else []
    return [sys.executable, str(args.id_driver), *rest, *root]


def _sample_load(path: Path, stop: threading.Event, every_s: float = 60.0) -> None:
    """The machine's load average (1, 5, 15 min) every `every_s` seconds while the trainings
    run, written to `path` as [[seconds since start, l1, l5, l15], ...]."""
    t0, samples = time.monotonic(), []
    while True:
        samples.append([round(time.monotonic() - t0, 1), *os.getloadavg()])
        path.write_text(json.dumps(samples))
        if stop.wait(every_s):
            samples.append([round(time.monotonic() - t0, 1), *os.getloadavg()])
            path.write_text(json.dumps(samples))
            return


def train_both(args: argparse.Namespace) -> None:
    """The lab's preset and improved-diffusion, same budget: started together, one thread each,
    or (--one-at-a-time) improved-diffusion and then the lab, each alone on every core; the
    load average sampled every minute meanwhile (load.json under --out)."""
    if not args.id_driver or not Path(args.id_driver).is_file():
        raise SystemExit("--id-driver: the improved-diffusion driver (benchmarks/id_driver.py)")
    train_dir, test_dir, lab_dir, id_dir = _dirs(args)
    for d in (lab_dir, id_dir):
        d.mkdir(parents=True, exist_ok=True)
    curve = [str(int(float(c))) for c in args.curve_s.split(",") if c]
    threads = train_threads(args)
    lab = [
        sys.executable,
        str(SCRIPT),
        "--lab-train",
        *_common(args, train_dir, test_dir, threads),
        "--out",
        str(lab_dir),
        "--budget-s",
        str(args.budget_s),
        "--curve-s",
        args.curve_s,
    ]
    idc = _id_cmd(
        args,
        "train",
        "--data",
        str(train_dir),
        "--out",
        str(id_dir),
        "--budget-s",
        str(args.budget_s),
        "--threads",
        str(threads),
        "--seed",
        str(args.seed),
        "--save-s",
        *curve,
    )
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_load, args=(args.out / "load.json", stop))
    sampler.start()
    try:
        if args.one_at_a_time:
            _run(idc, id_dir / "log.txt", threads)
            _run(lab, lab_dir / "log.txt", threads)
        else:
            with ThreadPoolExecutor(2) as pool:  # side by side
                jobs = [
                    pool.submit(_run, lab, lab_dir / "log.txt"),
                    pool.submit(_run, idc, id_dir / "log.txt"),
                ]
                for job in jobs:
                    job.result()
    finally:
        stop.set()
        sampler.join()


def _eval_jobs(args, train_dir, test_dir, lab_dir, id_dir) -> list[tuple[str, bool, list]]:
    """(side, final, command) of every evaluation; improved-diffusion's (slower) and the
    finals first. Curve points: --curve-stride with the first --curve-exact steps exact;
    finals: --final-stride and --final-exact."""
    jobs = []
    for ck in sorted(id_dir.glob("ckpt_*.pt")):
        final = ck.stem == "ckpt_final"
        stride, exact = _stride(args, final)
        cmd = _id_cmd(args, "eval", "--data", str(test_dir), "--seed", str(args.seed))
        cmd += ["--ckpt", str(ck), "--n-test", str(args.n_test), "--t-stride", str(stride)]
        jobs.append(("improved-diffusion", final, [*cmd, "--t-exact", str(max(1, exact))]))
    for snap in sorted(lab_dir.glob("snapshot_*.pt")):
        final = snap.stem == "snapshot_final"
        stride, exact = _stride(args, final)
        cmd = [sys.executable, str(SCRIPT), "--lab-eval", *_common(args, train_dir, test_dir)]
        cmd += ["--snapshot", str(snap), "--stride", str(stride), "--t-exact", str(exact)]
        jobs.append(("lab", final, cmd))
    jobs.sort(key=lambda j: (j[0] != "improved-diffusion", not j[1]))
    return jobs


def _stride(args: argparse.Namespace, final: bool) -> tuple[int, int]:
    if final:
        return args.final_stride, args.final_exact
    return args.curve_stride, args.curve_exact


def _result_row(side: str, final: bool, out: dict, test_dir, seed: int) -> dict:
    """One snapshot's evaluation as a results row."""
    return {
        "row": f"{side} {'final' if final else round(out['wall_s'])} s",
        "side": side,
        "final": final,
        "steps": out.get("step", out.get("steps")),
        "wall_s": out["wall_s"],
        "bits_per_dim": out["bits_per_dim"],
        "bits_per_dim_stderr": out["stderr"],
        "n_test": out["n_test"],
        "t_stride": out["t_stride"],
        "t_exact": out.get("t_exact"),
        "seeds": [seed],
        "split": {"test": str(test_dir), "first_n_by_name": out["n_test"]},
        "train_seconds": out["wall_s"],
        "eval_seconds": out["eval_seconds"],
    }


def evaluate_all(args: argparse.Namespace, run) -> dict:
    """Every snapshot of both sides on the first n_test test images; the results document."""
    from images_report import plot
    from provenance import write_results

    from diffusion.presets import PRESETS

    train_dir, test_dir, lab_dir, id_dir = _dirs(args)
    jobs = _eval_jobs(args, train_dir, test_dir, lab_dir, id_dir)
    if not jobs:
        raise SystemExit(f"no snapshots under {args.out}: train first (without --evaluate-only)")
    log = args.out / "eval_log.txt"
    with ThreadPoolExecutor(args.eval_workers) as pool:
        outs = list(pool.map(lambda j: json.loads(_run(j[2], log)), jobs))
    rows = []
    for (side, final, _), out in zip(jobs, outs, strict=True):
        rows.append(_result_row(side, final, out, test_dir, args.seed))
    rows.sort(key=lambda r: (r["side"], r["wall_s"]))
    settings = json.loads(
        subprocess.run(
            _id_cmd(args, "settings", "--seed", str(args.seed)),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    load_file = args.out / "load.json"
    load = json.loads(load_file.read_text()) if load_file.is_file() else None
    threads = train_threads(args)
    how = how_sides("one_at_a_time" if args.one_at_a_time else "side_by_side", threads)
    extra = {
        "budget_s": args.budget_s,
        "mode": "one_at_a_time" if args.one_at_a_time else "side_by_side",
        "threads_per_side": threads,
        "load_average_during_training": load,
        "note": f"{how}, same wall-clock budget; curve points: the lab's at its "
        "first checkpoint (every 30 s) from 15 s before each --curve-s time, "
        "improved-diffusion's at its first step end past each --curve-s time",
        "train": str(train_dir),
        "lab_preset": args.preset,
        "lab_config": PRESETS[args.preset].to_dict(),
        "improved_diffusion_settings": settings,
        "curve_stride": args.curve_stride,
        "final_stride": args.final_stride,
        "curve_exact_first_steps": args.curve_exact,
        "final_exact_first_steps": args.final_exact,
    }
    results, figure = results_paths(args)
    doc = write_results(
        results,
        run,
        rows,
        seeds=[args.seed],
        split={"train": str(train_dir), "test": str(test_dir), "n_test": args.n_test},
        extra=extra,
    )
    plot(rows, args.preset, figure, how)
    return doc
