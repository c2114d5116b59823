"""The engine and threads sections of benchmarks/speed.py: which networks, at which
sizes (full and --quick)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from benchmarks.speed_common import Measurement, mean_of_runs
from diffusion.config import NETWORK_KINDS, RunConfig
from diffusion.presets import PRESETS

ROOT = Path(__file__).resolve().parent.parent


def _cfg(preset: str, *overrides: str) -> RunConfig:
    return PRESETS[preset].with_overrides(list(overrides))


def image_configs(quick: bool) -> dict[str, RunConfig]:
    """One config per image network kind: conv (dead leaves 32 x 32, batch 64) and, where the
    engine has one, the UNet."""
    if quick:
        base = ("data.n_train=64", "data.n_holdout=16", "train.batch_size=8", "diffusion.T=10")
        out = {"conv": _cfg("digits-smoke", *base)}
    else:
        base = ("data.n_train=512", "data.n_holdout=64", "train.batch_size=64")
        out = {"conv": _cfg("deadleaves", *base)}
    if "unet" in NETWORK_KINDS:
        out["unet"] = out["conv"].with_overrides(["network.kind=unet"])
    return out


def training_configs(quick: bool) -> dict[str, RunConfig]:
    if quick:
        small = ("train.batch_size=16",)
        out = {
            "swissroll": _cfg("swissroll-smoke", *small),
            "heartbeat": _cfg("heartbeat-smoke", *small),
        }
    else:
        out = {
            "swissroll": _cfg("swissroll", "data.n_train=10000"),
            "heartbeat": _cfg("heartbeat", "data.n_train=5000"),
        }
    return {**out, **image_configs(quick)}


ENGINE_PARTS = ("train", "sample", "bound")


def engine_section(
    quick: bool, emit, nets: set[str] | None = None, parts: set[str] | None = None
) -> None:
    """`nets`: only these networks (swissroll, heartbeat, conv, unet); `parts`: only these
    figures (train, sample, bound); None: all."""
    from benchmarks.speed_chains import sampling_overheads
    from benchmarks.speed_engine import bound_costs, training_overhead

    parts = set(ENGINE_PARTS) if parts is None else parts
    calls, blocks = (2, 2) if quick else (10, 9)
    for label, config in training_configs(quick).items():
        if "train" in parts and (nets is None or label in nets):
            toy = label in ("swissroll", "heartbeat")
            # a toy step takes milliseconds: one run of 9 blocks moved the heartbeat's ratio
            # between 0.91 and 1.01 from run to run on the shared machine; each run builds
            # its own trainer, and the rows report the mean of the runs and their spread
            repeats = 5 if toy and not quick else 1
            runs = [
                training_overhead(label, config, calls=calls, blocks=blocks, floor=toy)
                for _ in range(repeats)
            ]
            for m in mean_of_runs(runs):
                emit(m)
    # the toy chains take 0.05-2 s: 7 blocks cost little, and at 3 their medians moved by
    # +-0.1 from run to run on the shared machine (the image chains keep 3)
    toy_blocks = 2 if quick else 7
    chain_blocks = 2 if quick else 3
    toy = {
        "swissroll": (training_configs(quick)["swissroll"], 64 if quick else 1000),
        "heartbeat": (training_configs(quick)["heartbeat"], 8 if quick else 64),
    }
    for label, config in image_configs(quick).items():
        T = config.diffusion.T if quick else 50  # per-step cost does not depend on T
        toy[label] = (config.with_overrides([f"diffusion.T={T}"]), 4 if quick else 16)
    toy = {k: v for k, v in toy.items() if nets is None or k in nets}
    for label, (config, n) in toy.items() if "sample" in parts else ():
        posteriors = label != "swissroll"
        blocks = toy_blocks if label in ("swissroll", "heartbeat") else chain_blocks
        floor = label in ("swissroll", "heartbeat")
        for m in sampling_overheads(
            label, config, n, calls=1, blocks=blocks, posteriors=posteriors, floor=floor
        ):
            emit(m)
    for label, (config, n) in toy.items() if "bound" in parts else ():
        n_eval = min(n, 16) if quick else {"swissroll": 1000, "heartbeat": 32}.get(label, 8)
        ks = (1,) if quick else (1, 4)
        blocks = toy_blocks if label in ("swissroll", "heartbeat") else chain_blocks
        for m in bound_costs(label, config, n_eval, blocks=blocks, ks=ks):
            emit(m)


_THREAD_JOB = textwrap.dedent(
    """
    import sys, time, tempfile, torch
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from worker import threads
    mode, conc = sys.argv[1], int(sys.argv[2])
    n = threads.threads_per_job(conc) if mode == "share" else threads.usable_cpus()
    torch.set_num_threads(n)
    from diffusion.presets import PRESETS
    from diffusion.training.train import _Trainer
    cfg = PRESETS[{preset!r}].with_overrides({overrides!r})
    tr = _Trainer(cfg, Path(tempfile.mkdtemp()), torch.device("cpu"), None, None)
    tr.start_clock()
    tr.advance()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range({steps}):
        tr.advance()
    print(time.perf_counter() - t0, time.process_time() - c0, n)
    """
)


def _concurrent_jobs(mode: str, conc: int, code: str) -> tuple[float, float, int]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.pop("DIFFLAB_TORCH_THREADS", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, mode, str(conc)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(conc)
    ]
    rows = [tuple(map(float, p.communicate()[0].split())) for p in procs]
    wall = max(r[0] for r in rows)
    cpu = sum(r[1] for r in rows)
    return wall, cpu, int(rows[0][2])


def threads_section(quick: bool, emit) -> None:
    """`concurrency` jobs side by side, each with its share of the cores (what the worker
    sets) against each with torch's default of every core (oversubscribed)."""
    from worker import threads

    cpus = threads.usable_cpus()
    conc = 2 if cpus >= 2 else 1
    config = image_configs(quick)["conv"]
    code = _THREAD_JOB.format(
        root=str(ROOT),
        preset="digits-smoke" if quick else "deadleaves",
        overrides=[f"{k}={v}" for k, v in _flat(config).items()],
        steps=2 if quick else 40,
    )
    share = _concurrent_jobs("share", conc, code)
    every = _concurrent_jobs("all", conc, code)
    emit(
        Measurement(
            "threads/share_vs_all_cores",
            share[0],
            every[0],
            share[0] / every[0],
            1.0,
            "<=",
            "s wall",
            {
                "usable_cpus": cpus,
                "concurrency": conc,
                "threads_share": share[2],
                "threads_all": every[2],
                "cpu_s_share": round(share[1], 2),
                "cpu_s_all": round(every[1], 2),
                "ratio": "wall time with the worker's share / with every core per job",
            },
        )
    )


def _flat(config: RunConfig) -> dict[str, object]:
    """The overrides that turn the preset into `config` (data and batch only)."""
    d = config.to_dict()
    return {
        "data.n_train": d["data"]["n_train"],
        "data.n_holdout": d["data"]["n_holdout"],
        "train.batch_size": d["train"]["batch_size"],
        "diffusion.T": d["diffusion"]["T"],
    }
