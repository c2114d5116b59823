"""GPU check (issue 10): training and sampling throughput on CIFAR-10-sized data (3 x 32 x 32),
fp32 against bf16 autocast, eager against torch.compile, for the UNet preset (`cifar10-unet`,
channels-last) and the paper's multi-scale net (`cifar10`), as the lab runs them, and the UNet
in the default memory format beside its channels-last preset.

Each row is one network, precision and compile setting:

- training: the lab's own step (`_Trainer.advance`: the batch drawn and copied to the device,
  t importance-sampled, the bound's terms in float64, backward, Adam, EMA; with `compile` the
  step compiled and checked against the eager one by `_Trainer.prepare`) in images per second,
  timed in alternating blocks against a bare loop of the same network (benchmarks/speed_engine.py
  `BareLoop`: the same network, optimizer and batch, its inputs already on the device, a
  mean-square loss; under the same autocast in bf16): `engine_vs_bare` = bare time / engine
  time, the share of the step that is the network's own arithmetic;
- sampling: the ancestral chain over all T levels for `n_sample` images at once, images per
  second (with `compile`, the chains' compiled network, diffusion.nets.compiled), and
  `sample_vs_forwards`: the chain's time over that of T bare eager forward passes of the
  network at the same batch;
- bf16 rows: the mean bound estimate of one fixed batch and its draws against the fp32 model
  with the same weights (`estimate_rel_vs_fp32`): what autocast changes in the objective;
- peak GPU memory of the row.

The rows run in the order of `plan` (what matters most first), and the file is written after
every row, so a run cut short by its time budget (`--budget-s`, default 220: with the GPU
tests before it, the whole check must finish within 5 minutes on a lent machine,
benchmarks/gpu_check.sh) keeps what it measured; a row that fails records its error and the
check goes on. The data:
random 32 x 32 crops of scikit-image's colour photographs written as CIFAR-10 batch files (the
real files need not be on the GPU machine; throughput does not depend on the pictures).

    bash benchmarks/gpu_prepare.sh   # here: the wheels the GPU machine lacks, into .whl/
    bash benchmarks/gpu_check.sh     # there: writes benchmarks/results/gpu_check.json
    python benchmarks/gpu_check.py --tiny   # the same code on the CPU at a toy size (tests)

`--tiny` runs on the CPU with batch 2, T = 10 and a few steps, bf16 rows through the same
autocast code on the CPU (diffusion.model.BF16_DEVICE_TYPES), compiled rows only with
`--compile`, and writes nothing unless `--out` is given: its numbers say nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import provenance  # noqa: E402

import diffusion.model as model_module  # noqa: E402
from benchmarks.speed_common import interleaved, median, paired_ratio  # noqa: E402
from benchmarks.speed_engine import BareLoop  # noqa: E402
from diffusion.chains.sampling import sample_chain  # noqa: E402
from diffusion.evaluation.bound import step_draws, step_terms  # noqa: E402
from diffusion.model import DiffusionModel  # noqa: E402
from diffusion.presets import PRESETS  # noqa: E402
from diffusion.training.events import WarningEvent  # noqa: E402
from diffusion.training.train import _Trainer  # noqa: E402

# network -> (preset, overrides): the UNet preset (channels-last), the paper's net, and the UNet
# in the default memory format (does channels-last pay on a GPU as it does on the CPU?)
NETS: dict[str, tuple[str, list[str]]] = {
    "unet": ("cifar10-unet", []),
    "conv (paper)": ("cifar10", []),
    "unet (default format)": ("cifar10-unet", ["network.options.channels_last=false"]),
}
RESULTS = ROOT / "benchmarks" / "results" / "gpu_check.json"
SOURCE_COMMIT = ROOT / ".whl" / "SOURCE_COMMIT"  # written by gpu_prepare.sh (no .git there)


@dataclass(frozen=True)
class Sizes:
    """How much each row does: a full check on a GPU, or `--tiny` on the CPU."""

    batch: int
    T: int
    calls: int  # training steps per timed block
    blocks: int  # alternating blocks, engine against the bare loop
    n_sample: int  # images per sampling chain
    images: int  # training images written in CIFAR-10 format
    reserve_s: dict  # time a row needs, by compiled or not: skipped when less is left


FULL = Sizes(128, 1000, 10, 6, 256, 2000, {False: 20.0, True: 75.0})
TINY = Sizes(2, 10, 1, 2, 2, 60, {False: 1.0, True: 60.0})


@dataclass(frozen=True)
class Row:
    net: str
    precision: str
    compiled: bool

    @property
    def name(self) -> str:
        return f"{self.net} {self.precision}{' compiled' if self.compiled else ''}"


def plan(nets: list[str], compiled: bool) -> list[Row]:
    """In the order of what matters most, for a run that its budget may cut short: each
    preset network eager in fp32 and bf16, then compiled in fp32, then the UNet in the default
    memory format (eager), then compiled in bf16."""
    main = [n for n in nets if n in ("unet", "conv (paper)")]
    rows = [Row(n, p, False) for n in main for p in ("fp32", "bf16")]
    rows += [Row(n, "fp32", True) for n in main] if compiled else []
    rows += [Row(n, p, False) for n in nets if n not in main for p in ("fp32", "bf16")]
    rows += [Row(n, "bf16", True) for n in main] if compiled else []
    return rows


def write_cifar_folder(root: Path, n: int, seed: int = 0) -> Path:
    """`n` random 32 x 32 crops of scikit-image's colour photographs as CIFAR-10 batch files
    (`data_batch_1..5`, `test_batch`) under root/cifar-10-batches-py."""
    import skimage.data

    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]
    rng = np.random.default_rng(seed)
    out = np.empty((n, 3, 32, 32), dtype=np.uint8)
    for i in range(n):
        img = photos[i % len(photos)]
        y, x = rng.integers(0, img.shape[0] - 32), rng.integers(0, img.shape[1] - 32)
        out[i] = img[y : y + 32, x : x + 32, :3].transpose(2, 0, 1)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name, part in zip(names, np.array_split(out, len(names)), strict=True):
        doc = {b"data": part.reshape(len(part), -1), b"labels": [0] * len(part)}
        (folder / name).write_bytes(pickle.dumps(doc))
    return root


def _config(row: Row, data_root: Path, sizes: Sizes):
    preset, overrides = NETS[row.net]
    return PRESETS[preset].with_overrides(
        [
            *overrides,
            f"data.options.root={data_root}",
            "data.options.download=false",
            "data.n_train=0",
            "data.n_holdout=16",
            "train.eval_examples=16",
            f"train.batch_size={sizes.batch}",
            f"train.precision={row.precision}",
            f"train.compile={'true' if row.compiled else 'false'}",
            f"diffusion.T={sizes.T}",
            "train.seed=0",
        ]
    )


def _clock(dev: torch.device) -> Callable[[], float]:
    """Wall time after the device's queued work is done (each timed block ends complete)."""
    if dev.type != "cuda":
        return time.perf_counter

    def clock() -> float:
        torch.cuda.synchronize(dev)
        return time.perf_counter()

    return clock


def _estimate_vs_fp32(trainer: _Trainer) -> float:
    """|bf16 - fp32| / |fp32| of the mean bound estimate on one fixed batch and its draws, the
    fp32 model holding the bf16 model's weights."""
    model = trainer.model
    cfg32 = trainer.config.with_overrides(["train.precision=fp32"])
    fp32 = DiffusionModel(cfg32, tuple(model.shape), model.data_kind).to(trainer.device)
    fp32.load_state_dict(model.state_dict())
    gen = torch.Generator().manual_seed(11)
    x = trainer.bundle.draw_train(trainer.config.train.batch_size, gen)
    x0 = trainer.bundle.scaler.to_model(x, gen).to(trainer.device)
    t, noise, weight = step_draws(model, x0, gen)
    with torch.no_grad():
        k16 = step_terms(model, x0, t, noise, weight)[0].mean()
        k32 = step_terms(fp32, x0, t, noise, weight)[0].mean()
    return float((k16 - k32).abs() / k32.abs())


def measure(row: Row, data_root: Path, sizes: Sizes, dev: torch.device) -> dict:
    """One row's numbers (module docstring)."""
    cfg = _config(row, data_root, sizes)
    warnings: list[str] = []
    on_event = lambda e: warnings.append(e.message) if isinstance(e, WarningEvent) else None  # noqa: E731
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = _Trainer(cfg, Path(tmp), dev, on_event, None)
        bare = BareLoop(trainer)
        bare.hook.remove()  # fixed inputs on the device (the hook would break a compiled step)
        trainer.start_clock()
        t0 = time.perf_counter()
        trainer.prepare()  # compiles and checks the step (compiled rows)
        trainer.advance()
        compile_s = time.perf_counter() - t0

        bf16 = trainer.model.bf16_autocast(bare.x)  # the bare loop autocasts as the lab does

        def bare_step() -> None:
            with torch.autocast(dev.type, torch.bfloat16, enabled=bf16):
                bare.step()

        times = interleaved(
            {"engine": trainer.advance, "bare": bare_step},
            calls=sizes.calls,
            blocks=sizes.blocks,
            clock=_clock(dev),
        )
        train_s = time.perf_counter() - started
        t1 = time.perf_counter()
        model = trainer.eval_model().eval()
        gen = torch.Generator().manual_seed(5)
        with torch.no_grad():
            sample_chain(model, sizes.n_sample, gen, dev, steps=min(10, sizes.T))  # warm-up
            clock = _clock(dev)
            s0 = clock()
            sample_chain(model, sizes.n_sample, gen, dev)
            sample_s = clock() - s0
            forwards_s = _forwards_seconds(model, bare, sizes, dev)
        rel = _estimate_vs_fp32(trainer) if row.precision == "bf16" else None
        eval_s = time.perf_counter() - t1
    engine = median(times["engine"])
    return {
        "row": row.name,
        "network": row.net,
        "preset": NETS[row.net][0],
        "channels_last": bool(dict(cfg.network.options).get("channels_last")),
        "precision": row.precision,
        "compiled": row.compiled,
        "step_compiled": trainer.terms is not None,
        "train_images_per_s": sizes.batch / engine,
        "bare_images_per_s": sizes.batch / median(times["bare"]),
        "engine_vs_bare": paired_ratio(times["bare"], times["engine"]),
        "sample_images_per_s": sizes.n_sample / sample_s,
        "sample_seconds": sample_s,
        "sample_vs_forwards": sample_s / forwards_s,
        "estimate_rel_vs_fp32": rel,
        "compile_s": compile_s if row.compiled else None,
        "warnings": warnings,
        "peak_gib": torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None,
        "batch": sizes.batch,
        "n_sample": sizes.n_sample,
        "T": sizes.T,
        "parameters": sum(p.numel() for p in trainer.model.net.parameters()),
        "device": str(dev),
        "seeds": [0],
        "split": {},
        "train_seconds": train_s,
        "eval_seconds": eval_s,
    }


def _forwards_seconds(model: DiffusionModel, bare: BareLoop, sizes: Sizes, dev) -> float:
    """Seconds of T bare forward passes of the network (eager, no gradients) at the chain's
    batch, timed over at most 50 and scaled: the floor of an ancestral chain."""
    x = bare.x[:1].expand(sizes.n_sample, *bare.x.shape[1:]).contiguous()
    g = bare.g[:1].expand(sizes.n_sample, *bare.g.shape[1:]).contiguous()
    n = min(50, sizes.T)
    with torch.autocast(dev.type, torch.bfloat16, enabled=model.bf16_autocast(x)):
        model.net(x, g)  # warm-up
        clock = _clock(dev)
        t0 = clock()
        for _ in range(n):
            model.net(x, g)
        return (clock() - t0) * sizes.T / n


def speedups(rows: list[dict]) -> list[dict]:
    """bf16 over fp32 (eager, compiled) and compiled over eager (fp32, bf16), per network:
    ratios of images per second, training and sampling."""
    done = {
        (r["network"], r["precision"], r["compiled"]): r for r in rows if "train_images_per_s" in r
    }
    out = []
    pairs = (  # (what, setting, numerator row, denominator row)
        [
            ("bf16 / fp32", "compiled" if c else "eager", (n, "bf16", c), (n, "fp32", c))
            for c in (False, True)
            for n in NETS
        ]
        + [
            ("compiled / eager", q, (n, q, True), (n, q, False))
            for q in ("fp32", "bf16")
            for n in NETS
        ]
        + [
            (
                "channels-last / default format",
                q,
                ("unet", q, False),
                ("unet (default format)", q, False),
            )
            for q in ("fp32", "bf16")
        ]
    )
    for what, setting, a, b in pairs:
        if a in done and b in done:
            out.append(
                {
                    "what": what,
                    "network": a[0],
                    "setting": setting,
                    "train": done[a]["train_images_per_s"] / done[b]["train_images_per_s"],
                    "sample": done[a]["sample_images_per_s"] / done[b]["sample_images_per_s"],
                }
            )
    return out


def _write(path: Path, run: provenance.Run, rows: list[dict], dev: torch.device, **extra) -> None:
    provenance.write_results(
        path,
        run,
        rows,
        seeds=[0],
        split={},
        device=str(dev),
        extra={"speedups": speedups(rows), **extra},
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="CPU, batch 2, T = 10: the code path")
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the compiled rows (default: on a GPU only)",
    )
    p.add_argument("--nets", default=",".join(NETS), help=f"of {', '.join(NETS)}")
    p.add_argument("--budget-s", type=float, default=220.0, help="skip rows past this")
    p.add_argument("--out", type=Path, help=f"results file (default {RESULTS}; --tiny: none)")
    args = p.parse_args(argv)
    nets = [n.strip() for n in args.nets.split(",") if n.strip()]
    unknown = sorted(set(nets) - set(NETS))
    if unknown:
        p.error(f"unknown network {unknown}: choose from {', '.join(NETS)}")
    run = provenance.start(argv)
    if run.commit is None and SOURCE_COMMIT.exists():  # a copy of the tree without .git
        run.commit, *rest = SOURCE_COMMIT.read_text().split()
        run.dirty = bool(rest and rest[0] == "dirty")
    cuda = torch.cuda.is_available() and not args.tiny
    dev = torch.device("cuda" if cuda else "cpu")
    sizes = FULL if cuda else TINY
    if cuda:
        os.environ.setdefault("DIFFLAB_COMPILE_CHAINS_AFTER_S", "0")  # compiled chains at once
    out = args.out if args.out or args.tiny else RESULTS
    compiled = cuda if args.compile is None else args.compile
    rows: list[dict] = []

    def after_row(row: dict) -> None:
        rows.append(row)
        print(json.dumps(row), flush=True)
        if out:
            _write(out, run, rows, dev, complete=False)

    saved = model_module.BF16_DEVICE_TYPES
    if args.tiny:  # the bf16 rows take the autocast path on the CPU (module docstring)
        model_module.BF16_DEVICE_TYPES = saved | {"cpu"}
    try:
        run_rows(plan(nets, compiled), sizes, dev, args.budget_s, after_row)
    finally:
        model_module.BF16_DEVICE_TYPES = saved
    for s in speedups(rows):
        print(json.dumps(s), flush=True)
    if out:
        _write(out, run, rows, dev, complete=True)
    return 1 if any("error" in r for r in rows) else 0


def run_rows(
    rows: list[Row], sizes: Sizes, dev: torch.device, budget_s: float, done: Callable
) -> None:
    """Each row in turn, measured, skipped (less time left than it needs) or failed (its
    error is its result), handed to `done` as it finishes."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        data_root = write_cifar_folder(Path(tmp), sizes.images)
        for row in rows:
            left = budget_s - (time.monotonic() - started)
            if left < sizes.reserve_s[row.compiled]:
                result = {"skipped": f"time budget: {left:.0f} s of {budget_s:.0f} left"}
            else:
                try:
                    result = measure(row, data_root, sizes, dev)
                except Exception as exc:  # noqa: BLE001 (one row's failure is its result)
                    traceback.print_exc()
                    result = {"error": f"{type(exc).__name__}: {str(exc).strip()[:500]}"}
            if "row" not in result:
                base = {"network": row.net, "precision": row.precision, "compiled": row.compiled}
                none = {"train_seconds": None, "eval_seconds": None}
                result = {"row": row.name, **base, "seeds": [0], "split": {}, **none, **result}
            done(result)


if __name__ == "__main__":
    sys.exit(main())
