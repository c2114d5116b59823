"""A trained run, loaded for sampling and evaluation (the worker, the CLI and the posteriors
use this; see docs/architecture.md section 1)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from diffusion.chains.sampling import sample_chain
from diffusion.config import ConfigError, RunConfig
from diffusion.data import DataBundle, Scaler, build_dataset
from diffusion.data.display import grey_levels, samples_to_data, shown_as, trajectory_array
from diffusion.device import pick_device
from diffusion.evaluation.evaluate import BoundReport, bound_report
from diffusion.model import DiffusionModel
from diffusion.processes.base import Process
from diffusion.training.checkpoint import CHECKPOINT, CheckpointError, load_latest
from diffusion.training.events import BoundEstimate


def report_fields(rep: BoundReport, bundle: DataBundle) -> dict:
    """A bound report's numbers beside the data set's references (true log-likelihood, the
    paper's K), under the keys the CLI and the benchmarks print."""
    return {
        "unit": rep.k.unit,
        "K_bits": rep.k.bits,
        "K_stderr_bits": rep.k.stderr_bits,
        "K_minus_Lnull_bits": rep.k_minus_lnull_bits,
        "Lnull_bits": rep.l_null_bits,
        "true_ll_bits": bundle.true_ll_bits,
        "paper_K_bits": bundle.paper_k_bits,
        "paper_K_minus_Lnull_bits": bundle.paper_k_minus_lnull_bits,
    }


@dataclass(frozen=True)
class SampleResult:
    """samples: data space (images uint8 N x H x W [x C]; points float; sequences 0/1 uint8).
    x0: model space (N, *shape) float64. trajectory: (k, N, *shape) data space or None."""

    samples: np.ndarray
    x0: torch.Tensor
    kind: str
    trajectory: np.ndarray | None = None
    trajectory_steps: tuple[int, ...] = ()


@dataclass
class Trained:
    config: RunConfig
    model: DiffusionModel
    scaler: Scaler
    device: torch.device
    step: int
    run_dir: Path

    @property
    def process(self) -> Process:
        return self.model.process

    @cached_property
    def bundle(self) -> DataBundle:
        """The run's data set, rebuilt from its config and seed (holdout for evaluation)."""
        return build_dataset(self.config.data, self.config.train.seed)

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        steps: int | None = None,
        return_trajectory: bool = False,
    ) -> SampleResult:
        """n samples by the reverse chain, with S = `steps` kept steps (None: all T; S < T:
        strided, Gaussian models with the diagonal kernel). The trajectory, if asked for,
        holds 11 snapshots of the full chain or every kept step of a strided one."""
        chain = sample_chain(
            self.model,
            n,
            generator,
            self.device,
            steps=steps,
            return_trajectory=return_trajectory,
        )
        kind = self.model.data_kind  # from the checkpoint: the data set is not rebuilt
        return SampleResult(
            samples_to_data(chain.x0, self.scaler, kind, grey_levels(self.config.data.name)),
            chain.x0,
            shown_as(kind),
            trajectory_array(self.scaler, chain.trajectory),
            chain.trajectory_steps,
        )

    def report(
        self,
        x_data: torch.Tensor | None = None,
        *,
        k: int = 1,
        generator: torch.Generator | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        t_per_example: int = 0,
    ) -> BoundReport:
        """K (k = 1) or the importance-sampled estimate on data-space x (default: the whole holdout
        set). on_progress(t_done, examples_done): see diffusion.evaluation.bound.evaluate_bound;
        t_per_example > 0 (k = 1): the sum over t estimated from that many t per example."""
        if x_data is None:
            x_data = self.bundle.holdout
        gen = generator or torch.Generator().manual_seed(self.config.train.seed + 2)
        x = self.scaler.to_model(torch.as_tensor(x_data), gen).to(self.device)
        return bound_report(
            self.model, self.bundle, x, gen, k, on_progress=on_progress, t_per_example=t_per_example
        )

    def bound(
        self,
        x_data: torch.Tensor | None = None,
        *,
        k: int = 1,
        generator: torch.Generator | None = None,
    ) -> BoundEstimate:
        return self.report(x_data, k=k, generator=generator).k


def load_trained(run_dir: Path | str, device: str | None = None, use_ema: bool = True) -> Trained:
    """Load `run_dir/checkpoint.pt` (EMA weights by default) onto `device` (default: auto)."""
    run_dir = Path(run_dir)
    dev = pick_device(device or "auto")
    ckpt, warning = load_latest(run_dir, dev)
    if ckpt is None:
        raise ConfigError("run_dir", f"no checkpoint in {run_dir} (expected {CHECKPOINT})")
    if warning:
        warnings.warn(warning, stacklevel=2)
    try:
        return _trained_from(ckpt, run_dir, dev, use_ema)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{run_dir / CHECKPOINT}: not a usable checkpoint ({type(exc).__name__}: {exc})"
        ) from None


def _trained_from(ckpt: dict, run_dir: Path, dev: torch.device, use_ema: bool) -> Trained:
    config = RunConfig.from_json(ckpt["config"])
    scaler = Scaler.from_dict(ckpt["scaler"])
    with torch.random.fork_rng(devices=[]):
        model = DiffusionModel(config, tuple(ckpt["shape"]), ckpt["data_kind"])
    state = ckpt["ema"] if use_ema and ckpt["ema"] is not None else ckpt["model"]
    model.load_state_dict(state)
    model.to(dev).eval()
    return Trained(config, model, scaler, dev, int(ckpt["step"]), run_dir)
