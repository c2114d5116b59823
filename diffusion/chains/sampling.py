"""Ancestral sampling from a trained model (Sohl-Dickstein et al. 2015, section 2.2).

x^T ~ pi, then x^{t-1} ~ p(x^{t-1} | x^t) for t = T..2, then the fixed first step (App. B.2), by the
one chain of diffusion.chains.chain; with S = `steps` < T kept steps the same loop runs on the
respaced process (strided sampling, diffusion.chains.strided; diagonal Gaussian kernels).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from diffusion.chains.chain import Reverse, run_chain
from diffusion.chains.reverse import gaussian_reverse, model_reverse
from diffusion.model import DiffusionModel


@dataclass(frozen=True)
class ChainSamples:
    """x0: (n, *shape) float64 model space; trajectory: (k, n, *shape) snapshots from x^T to x^0
    at steps `trajectory_steps` (descending), or None."""

    x0: torch.Tensor
    trajectory: torch.Tensor | None = None
    trajectory_steps: tuple[int, ...] = ()


def snapshot_steps(T: int, snapshots: int) -> set[int]:
    """`snapshots` steps evenly spaced from T down to 0 (just {0} for snapshots <= 1)."""
    if snapshots <= 1:
        return {0}
    return {int(round(T - i * T / (snapshots - 1))) for i in range(snapshots)}


def model_chain(model: DiffusionModel, steps: int | None = None) -> Reverse:
    """The reverse process that sampling with S = `steps` runs: the model's own for every
    step (any process), else its respaced diagonal Gaussian process; ValueError otherwise."""
    if steps is None or steps == model.T:
        return model_reverse(model)
    kind = getattr(model.process, "kind", "?")
    if kind != "gaussian":
        raise ValueError(
            "strided sampling (steps < T) is for Gaussian diffusion models; "
            f"this one is {kind}: leave steps unset"
        )
    return gaussian_reverse(model).respaced(steps)


@torch.no_grad()
def sample_chain(
    model: DiffusionModel,
    n: int,
    generator: torch.Generator | None,
    device: torch.device | str = "cpu",
    *,
    steps: int | None = None,
    return_trajectory: bool = False,
    snapshots: int = 11,
) -> ChainSamples:
    """Draw n samples by the reverse chain with S = `steps` kept steps (None: all T).

    The trajectory holds `snapshots` evenly spaced steps of the full chain, or every kept
    step of a strided one.
    """
    device = torch.device(device)
    rev = model_chain(model, steps)
    keep = snapshot_steps(model.T, snapshots) if rev.T == model.T else set(rev.steps)
    frames: list[torch.Tensor] = []
    kept: list[int] = []

    def on_level(x: torch.Tensor, level: int) -> None:
        if rev.steps[level] in keep:
            frames.append(x.cpu())
            kept.append(rev.steps[level])

    x_T = rev.prior((n, *model.shape), device).sample(generator)
    x = run_chain(rev, x_T, generator, on_level=on_level if return_trajectory else None)
    traj = torch.stack(frames) if return_trajectory else None
    return ChainSamples(x, traj, tuple(kept))
