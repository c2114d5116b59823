"""Engine overheads of the speed benchmark: training step and bound evaluation (the sampling
chains: benchmarks/speed_chains.py).

Each figure is timed against a bare PyTorch baseline of the same network in the same process
(benchmarks/speed_common.py: interleaved blocks, median of per-block ratios). Both sides run
in this one thread (torch at one intra-op thread, speed.py sets it), so they are timed by the
thread's CPU time (`CLOCK`): on the shared machine (load average often 10-25 on 2 cores) wall
time mostly measures how long the process waited for a core, and swings by 2x from block to
block; the checkpoint (a file write) is timed by the wall clock.

- training: `_Trainer.advance()` (data draw, t importance-sampled where configured, the bound
  estimate in float64, backward, optimizer, gradient clipping, EMA, the StepEvent) plus the
  periodic checkpoint amortized over its default interval, against a bare loop: the same
  network (a copy, given the engine's current weights each step, fed the engine's latest
  network inputs), optimizer (the engine's settings: Adam or RMSprop with its multi-tensor
  `foreach` update) and learning rate, gradient clipping, the same batch size, loss = mean
  square of the network's output (the same shape as the engine's).
- sampling: benchmarks/speed_chains.py.
- reference floor (report only, the toy nets): the training step against the bare loop with
  the paper's loss for a fixed schedule (benchmarks/speed_floor.py), timed in the same blocks:
  how much of a gap any trainer would have.
- flushing subnormals (report only, the toy nets): the engine's training step (and, in
  speed_chains, the full chain) with subnormal floats computed in full (the CPU's default)
  against the lab's mode, where they are flushed to zero (diffusion.device.flush_denormals),
  in the same blocks: what the mode saves.
- bound: `evaluate_bound` over every t against T - 1 forward passes per example, batched the
  same way; the importance-sampled estimate's cost is reported per k (no target).
"""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.speed_common import Measurement, interleaved, median, paired_ratio, time_calls
from benchmarks.speed_floor import PaperLossLoop
from diffusion.config import RunConfig
from diffusion.evaluation.bound import MAX_ELEMENTS, evaluate_bound, importance_log_likelihood
from diffusion.training.train import _Trainer

CPU = torch.device("cpu")
CLOCK = time.thread_time  # CPU seconds of this thread (module docstring)


class BareLoop:
    """The baseline training loop: the engine's network, optimizer and clipping, a plain loss.

    The network's cost depends on its weights and inputs (float32 denormals: the RBF units'
    far tails and tiny gradients take the slow path of the CPU), so the baseline runs the
    engine's network on what the engine gave it: each step copies the engine's current
    weights (microseconds, counted against the baseline) and feeds the inputs of the engine's
    latest forward pass (a forward hook records them), never drifting into cheaper weights or
    inputs of its own."""

    def __init__(self, trainer: _Trainer) -> None:
        model, tc = trainer.model, trainer.config.train
        self.source = list(model.net.parameters())
        self.net = copy.deepcopy(model.net)
        self.params = list(self.net.parameters())
        self.basis, self.T, self.B, self.clip = model.basis, model.T, tc.batch_size, tc.grad_clip
        self.dtype = next(self.net.parameters()).dtype
        opt = torch.optim.RMSprop if tc.optimizer == "rmsprop" else torch.optim.Adam
        self.opt = opt(self.params, lr=tc.lr, foreach=True)  # as the engine's (training.parts)
        x = trainer.bundle.draw_train(tc.batch_size, torch.Generator().manual_seed(0))
        self.x = trainer.bundle.scaler.to_model(x).to(trainer.device, self.dtype)
        g = self.basis(torch.randint(1, self.T + 1, (self.B,)))
        self.g = g.to(trainer.device, self.dtype)
        # the engine's inputs, recorded at each of its forwards (`hook.remove()` to stop: a
        # compiled step cannot trace the hook's side effect)
        self.hook = model.net.register_forward_pre_hook(self._record)

    def _record(self, module, args) -> None:
        self.x, self.g = args[0].detach(), args[1].detach()

    def step(self) -> None:
        with torch.no_grad():
            torch._foreach_copy_(self.params, self.source)
        out = self.net(self.x, self.g)
        loss = out.square().mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.opt.step()


def with_subnormals(fn):
    """`fn` run with subnormal floats computed in full (the CPU's default mode), the lab's mode
    (flushed to zero, diffusion.device.flush_denormals) restored after it. One thread: the
    mode is per thread (speed.py runs torch at one thread)."""

    def run():
        torch.set_flush_denormal(False)
        try:
            return fn()
        finally:
            torch.set_flush_denormal(True)

    return run


def _flush_gain(
    name: str, flushed: list[float], full: list[float], unit: str, detail: dict
) -> Measurement:
    """Report-only row: the same work with subnormals computed in full against flushed."""
    return Measurement(
        name,
        median(flushed),
        median(full),
        paired_ratio(full, flushed),
        None,
        "report",
        unit,
        {**detail, "ratio": "time with subnormals computed / time with them flushed (speed-up)"},
    )


def training_overhead(
    label: str, config: RunConfig, *, calls: int, blocks: int, floor: bool = False
) -> list[Measurement]:
    """Engine training step against the bare loop; ratio = bare / engine (>= 0.95). With
    `floor` also a report-only row: the engine step against the bare loop with the paper's
    loss for a fixed schedule (benchmarks/speed_floor.py), timed in the same blocks."""
    with tempfile.TemporaryDirectory() as tmp:
        events: list = []
        trainer = _Trainer(config, Path(tmp), CPU, events.append, None)
        bare = BareLoop(trainer)
        fns = {"engine": trainer.advance, "bare": bare.step}
        if floor:
            fns["paper"] = PaperLossLoop(trainer, bare).step
            fns["subnormal"] = with_subnormals(trainer.advance)
        trainer.start_clock()
        trainer.prepare()  # train.compile: compiled and checked here, outside the timed blocks
        for _ in range(3):  # importance sampling of t starts once every t has been seen
            trainer.advance()
        ckpt_s = min(time_calls(trainer.checkpoint, 1) for _ in range(3))
        times = interleaved(fns, calls=calls, blocks=blocks, clock=CLOCK)
    every = config.train.checkpoint_every_s
    engine = [t * (1 + ckpt_s / every) for t in times["engine"]]  # amortized checkpoints
    main = Measurement(
        f"train_overhead/{label}",
        median(engine),
        median(times["bare"]),
        paired_ratio(times["bare"], engine),
        0.95,
        ">=",
        "s/step",
        {
            "batch": config.train.batch_size,
            "T": config.diffusion.T,
            "t_sampling": config.train.t_sampling,
            "checkpoint_s": round(ckpt_s, 4),
            "checkpoint_every_s": every,
            "compiled": trainer.terms is not None,
            "compile_s": round(trainer.compile_s, 1),
            "ratio": "bare / engine (throughput)",
        },
    )
    if not floor:
        return [main]
    paper = Measurement(
        f"train_vs_paper_loss/{label}",
        median(engine),
        median(times["paper"]),
        paired_ratio(engine, times["paper"]),
        None,
        "report",
        "s/step",
        {
            "batch": config.train.batch_size,
            "T": config.diffusion.T,
            "engine_over_bare": round(paired_ratio(engine, times["bare"]), 4),
            "paper_over_bare": round(paired_ratio(times["paper"], times["bare"]), 4),
            "ratio": "engine step / bare loop with the paper's loss, fixed schedule (time)",
        },
    )
    gain = _flush_gain(
        f"train_flush_gain/{label}",
        times["engine"],
        times["subnormal"],
        "s/step",
        {"batch": config.train.batch_size, "T": config.diffusion.T},
    )
    return [main, paper, gain]


_MODELS: dict[str, tuple] = {}


def _trainer_model(config: RunConfig):
    """The model (initial weights: costs do not depend on them) and data of `config`."""
    key = config.to_json()
    if key not in _MODELS:
        with tempfile.TemporaryDirectory() as tmp:
            trainer = _Trainer(config, Path(tmp), CPU, None, None)
        _MODELS[key] = (trainer.model.eval(), trainer.bundle)
    return _MODELS[key]


def bound_costs(
    label: str, config: RunConfig, n: int, *, blocks: int, ks: tuple[int, ...] = (1, 4)
) -> list[Measurement]:
    """Exact bound over every t against T - 1 bare forwards per example, batched alike; the
    importance-sampled estimate's seconds per k."""
    model, bundle = _trainer_model(config)
    gen = torch.Generator().manual_seed(0)
    x0 = bundle.scaler.to_model(bundle.holdout[:n]).double()
    T = model.T
    net, basis = model.net, model.basis
    dtype = next(net.parameters()).dtype
    max_batch = max(1, min(32_768, MAX_ELEMENTS // max(1, x0[0].numel())))
    nb = min(n, max_batch)  # evaluate_bound's chunks: nb examples x tb steps per call
    tb = max(1, max_batch // nb)
    xs = x0[:nb].to(dtype).repeat((tb,) + (1,) * (x0.dim() - 1))

    @torch.no_grad()
    def bare() -> None:  # the same chunks as evaluate_bound: tb steps of nb examples each
        for _ in range(0, n, nb):
            for t0 in range(2, T + 1, tb):
                ts = torch.arange(t0, min(t0 + tb, T + 1))
                t = ts.repeat_interleave(nb)
                net(xs[: t.shape[0]], basis(t).to(dtype))

    times = interleaved(
        {"bound": lambda: evaluate_bound(model, x0, gen), "bare": bare},
        calls=1,
        blocks=blocks,
        warmup=1,
        clock=CLOCK,
    )
    out = [
        Measurement(
            f"bound_exact/{label}",
            median(times["bound"]),
            median(times["bare"]),
            paired_ratio(times["bound"], times["bare"]),
            1.2,
            "<=",
            "s/eval",
            {"n": n, "T": T, "ratio": "exact bound / (T - 1) forwards per example"},
        )
    ]
    for k in ks:
        s = min(
            time_calls(lambda k=k: importance_log_likelihood(model, x0, k, gen), 1, CLOCK)
            for _ in range(max(1, blocks // 2))
        )
        out.append(
            Measurement(
                f"bound_importance_k{k}/{label}",
                s / k,
                median(times["bare"]),
                s / k / median(times["bare"]),
                None,
                "report",
                "s/k",
                {"n": n, "T": T, "k": k, "ratio": "seconds per k / exact-bound baseline"},
            )
        )
    return out
