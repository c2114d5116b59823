"""Ancestral sampling from the reverse chain (Sohl-Dickstein et al. 2015, section 2.2).

x^T ~ pi, then x^{t-1} ~ p(x^{t-1} | x^t) for t = T..2, then the fixed first step (App. B.2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from diffusion.model import DiffusionModel


@dataclass(frozen=True)
class ChainSamples:
    """x0: (n, *shape) float64 model space; trajectory: (k, n, *shape) snapshots from x^T to x^0
    at steps `trajectory_steps` (descending), or None."""

    x0: torch.Tensor
    trajectory: torch.Tensor | None = None
    trajectory_steps: tuple[int, ...] = ()


@torch.no_grad()
def sample_chain(
    model: DiffusionModel,
    n: int,
    generator: torch.Generator | None,
    device: torch.device | str = "cpu",
    *,
    return_trajectory: bool = False,
    snapshots: int = 11,
) -> ChainSamples:
    """Draw n samples by running the full reverse chain."""
    device = torch.device(device)
    beta = model.beta().detach()
    x = model.process.prior_sample(n, model.shape, generator, device)
    T = model.T
    keep = (
        {int(round(T - i * T / (snapshots - 1))) for i in range(snapshots)}
        if snapshots > 1
        else {0}
    )
    frames, steps = [], []
    if return_trajectory and T in keep:
        frames.append(x.cpu()), steps.append(T)
    for step in range(T, 0, -1):
        t = torch.full((n,), step, dtype=torch.long, device=device)
        z = model.readout(x, t, beta)
        x = model.process.p_sample(x, t, z, beta, generator)
        if return_trajectory and (step - 1) in keep:
            frames.append(x.cpu()), steps.append(step - 1)
    traj = torch.stack(frames) if return_trajectory else None
    return ChainSamples(x, traj, tuple(steps))
