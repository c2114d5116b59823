"""Training: maximize K by stochastic gradient ascent (Sohl-Dickstein et al. 2015, section 2.3).

`train(config, out_dir, on_event=..., should_stop=...)` runs one run end to end: builds the data and
the model from the config and its seed, optimizes the training estimate of K (one random t per
example), keeps an EMA of the weights, reports events (diffusion.training.events) and checkpoints to
`out_dir/checkpoint.pt`. If a checkpoint exists the run resumes exactly (weights, optimizer, EMA,
schedule coefficients, RNG state, step): a run stopped and resumed ends with the same weights as one
that never stopped. Evaluation and galleries use their own fixed-seed generators and the EMA
weights, so they never disturb the training stream.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path

import torch

from diffusion.config import RunConfig
from diffusion.data import build_dataset
from diffusion.device import check_fits, pick_device, to_device
from diffusion.evaluation.bound import LN2, train_loss
from diffusion.evaluation.evaluate import make_eval_event
from diffusion.model import DiffusionModel
from diffusion.processes.base import device_generator_state, restore_device_generator
from diffusion.settings import compile_allowed
from diffusion.training.checkpoint import (  # noqa: F401 (load_final_eval is re-exported)
    CHECKPOINT,
    load_final_eval,
    load_latest,
    save_checkpoint,
    write_final_eval,
)
from diffusion.training.compiled import compile_terms
from diffusion.training.events import (
    CheckpointEvent,
    EvalEvent,
    EvalProgressEvent,
    EvaluationCancelled,
    Event,
    StepEvent,
    TrainResult,
    WarningEvent,
)
from diffusion.training.parts import (  # noqa: F401 (re-exported)
    TSampler,
    build_model,
    eval_tensors,
    gallery_event,
    lr_at,
    make_optimizer,
    schedule_steps,
)
from diffusion.training.run_folder import check_same_run, write_config, write_run_record


class _Trainer:
    """Holds the state of one run; `run()` is the loop."""

    def __init__(
        self,
        config: RunConfig,
        out_dir: Path,
        device: torch.device,
        on_event: Callable[[Event], None] | None,
        should_stop: Callable[[], bool] | None,
        budget_s: float | None = None,
        final_eval: bool = True,
    ) -> None:
        self.config, self.out_dir, self.device = config, out_dir, device
        self.budget_s, self.final_eval = budget_s, final_eval
        self.emit = on_event or (lambda event: None)
        self.should_stop = should_stop or (lambda: False)
        self.bundle = build_dataset(config.data, config.train.seed)
        self.model = build_model(config, self.bundle, device)
        self.ema = copy.deepcopy(self.model) if config.train.ema > 0 else None
        self.optimizer = make_optimizer(config, self.model)
        self.gen = torch.Generator().manual_seed(config.train.seed + 1)
        self.t_sampler = (
            TSampler(config.diffusion.T) if config.train.t_sampling == "importance" else None
        )
        self.step, self.elapsed = 0, 0.0
        self.ema_step = 0  # the steps the weight average has taken in (`update_ema`)
        # the parameter lists, read once (walking the modules each step costs more than the
        # EMA update itself on the toy nets)
        self.params = list(self.model.parameters())
        self.ema_params = list(self.ema.parameters()) if self.ema is not None else []
        self.x_train_eval, self.x_hold_eval = eval_tensors(config, self.bundle, device)
        self.terms, self.compile_s = None, 0.0  # the compiled step_loss (`prepare`)

    # -- checkpoints
    def state(self, done: bool) -> dict:
        return {
            "step": self.step,
            "done": done,
            "elapsed_s": self.elapsed,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "ema_step": self.ema_step,
            "optimizer": self.optimizer.state_dict(),
            "rng": self.gen.get_state(),
            # the GPU generator that draws the step's noise on a GPU (processes.base.drawing)
            "rng_device": device_generator_state(self.gen, self.device),
            "t_sampler": self.t_sampler.state_dict() if self.t_sampler is not None else None,
            "config": self.config.to_json(),
            "scaler": self.bundle.scaler.to_dict(),
            "shape": list(self.bundle.shape),
            "data_kind": self.bundle.kind,
        }

    def restore(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        if self.ema is not None and ckpt["ema"] is not None:
            self.ema.load_state_dict(ckpt["ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        for group in self.optimizer.param_groups:  # checkpoints from before foreach updates
            group["foreach"] = True
        self.gen.set_state(ckpt["rng"])
        if ckpt.get("rng_device") is not None and self.device.type == "cuda":
            restore_device_generator(self.gen, self.device, ckpt["rng_device"])
        if self.t_sampler is not None and ckpt.get("t_sampler") is not None:
            self.t_sampler.load_state_dict(ckpt["t_sampler"])
        self.step, self.elapsed = int(ckpt["step"]), float(ckpt["elapsed_s"])
        # checkpoints from before `ema_every` updated the average every step
        self.ema_step = int(ckpt.get("ema_step", self.step))

    def checkpoint(self, done: bool = False) -> None:
        path = self.out_dir / CHECKPOINT
        save_checkpoint(path, self.state(done))
        self.emit(CheckpointEvent(self.step, path))

    # -- one optimisation step
    def train_step(self) -> float:
        """One step; its training loss in bits (a Python float: waits for the device)."""
        return self.loss_bits(self.step_estimate())

    def loss_bits(self, k_mean: torch.Tensor) -> float:
        """A step's mean estimate (nats, `step_estimate`) as its loss in bits per unit."""
        return -float(k_mean) / LN2 / self.bundle.unit_divisor  # Python floats: no tensor ops

    def step_estimate(self) -> torch.Tensor:
        """One optimisation step; the mean estimate of K it trained on (nats, a 0-d tensor on
        the device, detached). Read as a number only at the steps that log it (`advance`): on a
        GPU each read waits for the step to finish, and the next step could not be queued
        behind it."""
        tc = self.config.train
        frac = self.budget_frac()
        lr_scale = lr_at(self.config, self.step, frac) / tc.lr
        frozen = (self.step / schedule_steps(self.config) if frac is None else frac) < (
            tc.schedule_warmup
        )
        for group in self.optimizer.param_groups:
            group["lr"] = 0.0 if frozen and group.get("schedule") else group["base_lr"] * lr_scale
        x = self.bundle.draw_train(tc.batch_size, self.gen)
        x0 = to_device(self.bundle.scaler.to_model(x, self.gen), self.device)
        if self.bundle.model_bits:
            self.model.process.known_bits(x0)
        probs = self.t_sampler.probs(self.device) if self.t_sampler is not None else None
        loss, k_mean, t, kl = train_loss(self.model, x0, self.gen, probs, self.terms)  # nats
        if self.t_sampler is not None:
            self.t_sampler.update(t, kl)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if tc.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, tc.grad_clip)
        self.optimizer.step()
        if self.ema is not None and self.step % tc.ema_every == 0:
            self.update_ema(self.step)
        return k_mean.detach()

    def update_ema(self, n: int) -> None:
        """The weight average takes in the weights after step n (from 0), standing for the
        steps since its last update (`ema_step`): the decay min(ema, (1 + n) / (10 + n))
        (warming up) raised to their number, so that an average updated every `ema_every`
        steps (after ema-pytorch's update_every) spans as many steps as one updated every
        step. One multi-tensor lerp: a memory pass over the weights and their average, a few
        percent of a toy network's step when paid every step (issue 14)."""
        steps = n + 1 - self.ema_step
        decay = min(self.config.train.ema, (1 + n) / (10 + n)) ** steps
        with torch.no_grad():
            torch._foreach_lerp_(self.ema_params, self.params, 1 - decay)
        self.ema_step = n + 1

    def finish_ema(self) -> None:
        """At the end of training: the steps since the average's last update taken in, once
        (`ema_step` is kept in the checkpoint)."""
        if self.ema is not None and self.step > self.ema_step:
            self.update_ema(self.step - 1)

    def budget_frac(self) -> float | None:
        """Fraction of the wall-clock budget spent (None: no budget, steps rule)."""
        return None if not self.budget_s else min(1.0, self.elapsed / self.budget_s)

    def budget_spent(self) -> bool:
        return (self.budget_frac() or 0.0) >= 1.0

    def eval_model(self) -> DiffusionModel:
        return self.ema if self.ema is not None else self.model

    def evaluate(self) -> EvalEvent:
        """The bound on the evaluation subsets, reporting its progress as it goes; a stop
        request raises EvaluationCancelled between blocks of work."""
        started = time.monotonic()
        sizes = {"train": len(self.x_train_eval), "holdout": len(self.x_hold_eval)}

        def progress(phase: str, t_done: int, done: int) -> None:
            self.emit(
                EvalProgressEvent(
                    self.step,
                    phase,
                    t_done,
                    self.config.diffusion.T,
                    done,
                    sizes[phase],
                    time.monotonic() - started,
                )
            )
            if self.should_stop():
                raise EvaluationCancelled(f"evaluation at step {self.step} cancelled")

        event = make_eval_event(
            self.step,
            self.eval_model(),
            self.bundle,
            self.x_train_eval,
            self.x_hold_eval,
            self.config.train.seed + 2,
            on_progress=progress,
            t_per_example=self.config.train.eval_timesteps,
        )
        self.emit(event)
        return event

    def gallery(self) -> None:
        self.emit(
            gallery_event(
                self.step,
                self.eval_model(),
                self.bundle,
                self.config.train.gallery_size,
                self.config.train.seed + 3,
                self.device,
            )
        )

    def prepare(self) -> None:
        """Compile the training step where train.compile asks and DIFFLAB_COMPILE allows (once
        per process, on the step clock: the compilation is part of the run's time)."""
        if not self.config.train.compile or self.terms is not None or not compile_allowed():
            return
        done = compile_terms(
            self.model,
            self.bundle,
            self.config.train.batch_size,
            self.device,
            self.config.train.seed + 6,
        )
        self.terms, self.compile_s = done.terms, self.compile_s + done.seconds
        if done.warning:
            self.emit(WarningEvent(self.step, done.warning))

    def start_clock(self) -> None:
        """Reset the step clock (elapsed time carries over from a checkpoint)."""
        now = time.monotonic()
        self.t_start, self.last_ckpt, self.t_log, self.seen = now - self.elapsed, now, now, 0

    def advance(self) -> None:
        """One training step and its StepEvent every `log_every` steps (with
        `maybe_checkpoint`, the unit the speed benchmark times: benchmarks/speed_engine.py)."""
        tc = self.config.train
        k_mean = self.step_estimate()
        self.step += 1
        self.seen += tc.batch_size
        self.elapsed = time.monotonic() - self.t_start
        if self.step % tc.log_every == 0 or self.step == tc.steps:
            loss_bits = self.loss_bits(k_mean)  # first: on a GPU it waits for the steps queued
            now = time.monotonic()
            lr = lr_at(self.config, self.step, self.budget_frac())
            rate = self.seen / max(now - self.t_log, 1e-9)
            self.emit(StepEvent(self.step, tc.steps, loss_bits, lr, rate, self.elapsed))
            self.seen, self.t_log = 0, now

    def maybe_checkpoint(self) -> None:
        """The periodic checkpoint, every `checkpoint_every_s` seconds."""
        if time.monotonic() - self.last_ckpt >= self.config.train.checkpoint_every_s:
            self.checkpoint()
            self.last_ckpt = time.monotonic()

    def run(self) -> TrainResult:
        tc = self.config.train
        self.start_clock()
        self.prepare()
        while self.step < tc.steps and not self.budget_spent():
            if self.should_stop():
                self.checkpoint()
                return TrainResult("stopped", self.step)
            self.advance()
            if self.step < tc.steps and not self.budget_spent():
                if tc.eval_every and self.step % tc.eval_every == 0:
                    try:
                        self.evaluate()
                    except EvaluationCancelled:
                        return self.stopped_in_evaluation()
                if tc.gallery_every and self.step % tc.gallery_every == 0:
                    self.gallery()
                self.maybe_checkpoint()
        self.finish_ema()
        if not self.final_eval:  # the caller evaluates (benchmarks): the weights only
            self.checkpoint(done=True)
            return TrainResult("done", self.step, None, None, self.info())
        self.checkpoint()  # the trained weights are kept whatever the evaluation does
        try:
            final = self.evaluate()
        except EvaluationCancelled:
            return self.stopped_in_evaluation()
        self.gallery()
        self.elapsed = time.monotonic() - self.t_start
        self.checkpoint(done=True)  # final_eval.json is never written without its checkpoint
        write_final_eval(self.out_dir, final)
        return TrainResult("done", self.step, final.k_holdout, final, self.info())

    def info(self) -> dict:
        """The run's times: train_seconds (compilation included), compile_seconds."""
        return {"train_seconds": self.elapsed, "compile_seconds": self.compile_s}

    def stopped_in_evaluation(self) -> TrainResult:
        self.checkpoint()
        return TrainResult("stopped", self.step, info={"stopped_in": "evaluation"})


def train(
    config: RunConfig,
    out_dir: Path | str,
    *,
    on_event: Callable[[Event], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: str | None = None,
    budget_s: float | None = None,
    final_eval: bool = True,
) -> TrainResult:
    """Train (or resume, or return a finished) run in `out_dir`; see the module docstring.

    `budget_s`: a wall-clock budget of training time (evaluations included); the run ends
    when it is spent (or at train.steps, whichever comes first) and the learning-rate (and
    schedule warm-up) follow the fraction of the budget spent rather than of the steps.
    `final_eval=False` skips the closing evaluation and gallery (a caller that evaluates the
    checkpoint itself, e.g. benchmarks/images.py)."""
    out_dir = Path(out_dir)
    dev = pick_device(device or config.train.device)
    check_fits(config, dev)  # refused with the estimate, before anything is allocated
    check_same_run(out_dir, config)
    ckpt, warning = load_latest(out_dir, dev)
    spent = bool(budget_s) and ckpt is not None and float(ckpt["elapsed_s"]) >= budget_s
    if ckpt is not None and ckpt["done"] and (int(ckpt["step"]) >= config.train.steps or spent):
        final = load_final_eval(out_dir)
        if final is None:  # the checkpoint was written, its evaluation was not: redo it
            return _evaluate_finished(config, out_dir, dev, ckpt, on_event)
        return TrainResult(
            "done",
            int(ckpt["step"]),
            final.k_holdout if final else None,
            final,
            {"train_seconds": float(ckpt["elapsed_s"])},
        )
    # validates data, network
    trainer = _Trainer(config, out_dir, dev, on_event, should_stop, budget_s, final_eval)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_config(out_dir, config)
    if warning is not None and on_event is not None:
        on_event(WarningEvent(int(ckpt["step"]) if ckpt else 0, warning))
    if ckpt is not None:
        trainer.restore(ckpt)
    else:
        write_run_record(out_dir, config, trainer.bundle, dev)
    return trainer.run()


def _evaluate_finished(
    config: RunConfig,
    out_dir: Path,
    dev: torch.device,
    ckpt: dict,
    on_event: Callable[[Event], None] | None,
) -> TrainResult:
    trainer = _Trainer(config, out_dir, dev, on_event, None)
    trainer.restore(ckpt)
    final = trainer.evaluate()
    write_final_eval(out_dir, final)
    return TrainResult(
        "done", trainer.step, final.k_holdout, final, {"train_seconds": trainer.elapsed}
    )
