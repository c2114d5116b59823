"""Per-step time of each image network: one training step through the lab's trainer
(diffusion.training.train._Trainer.train_step: data draw and dequantization, importance-sampled t,
the bound in float64, backward, clipping, Adam, EMA) beside a bare PyTorch loop of the same network
at the same batch (random x^t, the network, a squared-output loss, backward, Adam). The two are
interleaved so that load on a shared machine hits both alike; ratio = bare / lab (1 = no overhead;
the issue asks >= 0.95), the median of the ratios of adjacent pairs (a load change between pairs
cancels; the medians of each side's times are reported beside it).

    python benchmarks/images.py --step-times

With them, for each UNet (`memory_format_rows`): the same network in PyTorch's channels-last
memory format (`network.options.channels_last`) against the default, the lab's training step
and a no-gradient forward at the training batch (the chains' call) timed in alternation, and
how far the first step's loss moves (the same arithmetic in another order); and
(`compile_rows`) each UNet's training step compiled (`train.compile`: the step as one graph,
checked against the eager step before it trains) against the eager step: the compilation's
seconds, the speed-up, and the training time after which the compilation has paid for itself;
and (`draw_rows`) what drawing a step's float64 normals for CIFAR-10-sized images costs the
CPU, which a GPU run no longer pays (diffusion.processes.base.drawing).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

NETWORKS = {  # preset, overrides: the Table 1 multi-scale net and the UNet presets
    "conv (paper, deadleaves 32 x 32)": (
        "deadleaves",
        ["data.options.size=32", "train.batch_size=64", "diffusion.T=1000"],
    ),
    "unet (deadleaves-unet)": ("deadleaves-unet", []),
    "unet 32 ch (cifar10-unet net, greyscale)": (
        "deadleaves-unet",
        ["network.options.channels=32", "network.options.groups=32"],
    ),
}


def _trainer(preset: str, overrides: list[str]):
    from diffusion.presets import PRESETS
    from diffusion.training.train import _Trainer

    cfg = PRESETS[preset].with_overrides(
        [
            *overrides,
            "data.n_train=256",
            "data.n_holdout=8",
            "train.eval_examples=8",
            "train.device=cpu",
        ]
    )
    return _Trainer(cfg, Path(tempfile.mkdtemp()), torch.device("cpu"), None, None)


def bare_step_fn(trainer):
    """A bare loop step of the trainer's network: same batch and shapes, no engine around it."""
    net = trainer.model.net
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    B = trainer.config.train.batch_size
    x = torch.randn(B, *trainer.bundle.shape)
    g = trainer.model.basis(torch.randint(2, trainer.model.T + 1, (B,)))

    def step() -> None:
        loss = net(x, g).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


UNETS = [name for name in NETWORKS if name.startswith("unet")]


def time_pair(lab, bare, reps: int) -> tuple[float, float, float]:
    """(median seconds per step of lab, of bare, median of the per-pair ratios bare / lab),
    interleaved, after one warm-up step each."""
    lab(), bare()
    tl, tb = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        lab()
        tl.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        bare()
        tb.append(time.perf_counter() - t0)
    ratios = [b / a for a, b in zip(tl, tb, strict=True)]
    return statistics.median(tl), statistics.median(tb), statistics.median(ratios)


def step_times(reps: int = 7, threads: int = 1) -> list[dict]:
    torch.set_num_threads(threads)
    out = []
    for name, (preset, overrides) in NETWORKS.items():
        trainer = _trainer(preset, overrides)
        t0 = time.perf_counter()
        lab_s, bare_s, ratio = time_pair(trainer.train_step, bare_step_fn(trainer), reps)
        took = time.perf_counter() - t0
        out.append(
            {
                "network": name,
                "parameters": sum(p.numel() for p in trainer.model.net.parameters()),
                "batch": trainer.config.train.batch_size,
                "threads": threads,
                "lab_step_s": lab_s,
                "bare_step_s": bare_s,
                "ratio_bare_over_lab": ratio,
                "reps": reps,
                "seeds": [trainer.config.train.seed],
                "split": {},
                "train_seconds": took,
                "eval_seconds": 0.0,
            }
        )
    return out


def _provenance_keys(trainer, reps: int, started: float) -> dict:
    """What every results row says besides its figures (benchmarks/provenance.py)."""
    return {
        "reps": reps,
        "seeds": [trainer.config.train.seed],
        "split": {},
        "train_seconds": time.perf_counter() - started,
        "eval_seconds": 0.0,
    }


def _forward_fn(trainer):
    """A no-gradient forward of the trainer's network at its batch (a chain level's call)."""
    net, B = trainer.model.net, trainer.config.train.batch_size
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(B, *trainer.bundle.shape, generator=gen)
    g = trainer.model.basis(torch.randint(2, trainer.model.T + 1, (B,), generator=gen))

    def forward() -> None:
        with torch.no_grad():
            net(x, g)

    return forward


def memory_format_rows(reps: int = 7, threads: int = 1) -> list[dict]:
    """Each UNet in channels-last against the default memory format: ratios default time /
    channels-last time (above 1: channels-last is faster), medians of interleaved pairs."""
    torch.set_num_threads(threads)
    out = []
    for name in UNETS:
        preset, overrides = NETWORKS[name]
        plain = _trainer(preset, [*overrides, "network.options.channels_last=false"])
        last = _trainer(preset, [*overrides, "network.options.channels_last=true"])
        loss_plain, loss_last = plain.train_step(), last.train_step()  # also the warm-up
        t0 = time.perf_counter()
        last_s, plain_s, step_speedup = time_pair(last.train_step, plain.train_step, reps)
        fwd_last, fwd_plain, fwd_speedup = time_pair(_forward_fn(last), _forward_fn(plain), reps)
        out.append(
            {
                "network": f"{name} channels-last",
                "measure": "channels_last",
                "batch": plain.config.train.batch_size,
                "threads": threads,
                "contiguous_step_s": plain_s,
                "channels_last_step_s": last_s,
                "step_speedup": step_speedup,
                "contiguous_forward_s": fwd_plain,
                "channels_last_forward_s": fwd_last,
                "forward_speedup": fwd_speedup,
                "first_loss_rel_diff": abs(loss_last - loss_plain) / abs(loss_plain),
                **_provenance_keys(plain, reps, t0),
            }
        )
    return out


def compile_rows(reps: int = 7, threads: int = 1) -> list[dict]:
    """Each UNet's compiled training step against its eager step (interleaved pairs); the
    break-even: compile seconds / (1 - 1 / speed-up), the training time a run needs before the
    compilation has paid for itself."""
    torch.set_num_threads(threads)
    out = []
    for name in UNETS:
        preset, overrides = NETWORKS[name]
        eager = _trainer(preset, overrides)
        compiled = _trainer(preset, [*overrides, "train.compile=true"])
        t0 = time.perf_counter()
        compiled.start_clock()
        compiled.prepare()
        compile_s = time.perf_counter() - t0
        comp_s, eager_s, speedup = time_pair(compiled.train_step, eager.train_step, reps)
        gain = 1 - 1 / speedup
        out.append(
            {
                "network": f"{name} compiled",
                "measure": "compile",
                "batch": eager.config.train.batch_size,
                "threads": threads,
                "step_compiled": compiled.terms is not None,
                "compile_s": compile_s,
                "compile_cache": os.environ.get("TORCHINDUCTOR_CACHE_DIR", "default"),
                "eager_step_s": eager_s,
                "compiled_step_s": comp_s,
                "step_speedup": speedup,
                "break_even_s": compile_s / gain if gain > 0 else None,
                **_provenance_keys(eager, reps, t0),
            }
        )
    return out


def draw_rows(reps: int = 7, threads: int = 1, batches: tuple[int, ...] = (128, 256)) -> list[dict]:
    """Seconds of one draw of B x 3 x 32 x 32 float64 standard normals from a CPU generator
    (median of `reps`): a training step's noise at batch 128, a chain level's at 256 images,
    as a GPU run drew them on the CPU before its noise moved to the GPU."""
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    out = []
    for batch in batches:
        t0 = time.perf_counter()
        shape = (batch, 3, 32, 32)
        torch.randn(shape, generator=gen, dtype=torch.float64)  # warm-up
        times = []
        for _ in range(reps):
            t1 = time.perf_counter()
            torch.randn(shape, generator=gen, dtype=torch.float64)
            times.append(time.perf_counter() - t1)
        out.append(
            {
                "network": f"float64 normals, {batch} x 3 x 32 x 32, CPU generator",
                "measure": "cpu_draws",
                "batch": batch,
                "threads": threads,
                "draw_s": statistics.median(times),
                "reps": reps,
                "seeds": [0],
                "split": {},
                "train_seconds": time.perf_counter() - t0,
                "eval_seconds": 0.0,
            }
        )
    return out
