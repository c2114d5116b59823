"""Forward schedules beta_1..T (Sohl-Dickstein et al. 2015, section 2.4.1; model.md section 5).

All schedules are float64. beta_1 is always the fixed constant `beta1` (the first reverse step
is the fixed Bayes reversal, App. B.2).

- baseline: beta_t = 1 / (T - t + 1), each step erasing a fraction 1/T of what is left of the
  signal (the paper's binomial schedule, footnote: as good for Gaussian). For Gaussian diffusion
  it is capped at `beta_max` (the official code's baseline ends at 0.5).
- learned: beta_{2..T} = sigmoid(logit(baseline_t) + sum_j c_j g_j(t)), coefficients c on the
  temporal basis (App. D.2.1), trained by gradient ascent on K.
- linear: DDPM's 1e-4 .. 0.02, rescaled by 1000 / T (Ho et al. 2020; Nichol & Dhariwal 2021).
- cosine: improved DDPM's alpha_bar(t) = cos^2(((t/T) + s) / (1 + s) pi / 2), s = 0.008,
  beta clipped at 0.999 (Nichol & Dhariwal 2021, Eq. 17).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from diffusion.config import DiffusionConfig
from diffusion.readout import TemporalBasis

_EPS = 1e-9


def baseline_beta(T: int, *, beta1: float, beta_max: float = 1.0) -> torch.Tensor:
    """(T,) float64: 1 / (T - t + 1) for t = 1..T, capped at beta_max, beta_1 = beta1."""
    t = torch.arange(1, T + 1, dtype=torch.float64)
    beta = torch.clamp(1.0 / (T - t + 1.0), max=beta_max)
    beta[0] = beta1
    return beta


def linear_beta(T: int, *, beta1: float) -> torch.Tensor:
    """(T,) float64: DDPM's linear schedule rescaled to T steps, beta_1 = beta1."""
    scale = 1000.0 / T
    beta = torch.linspace(scale * 1e-4, min(scale * 0.02, 0.999), T, dtype=torch.float64)
    beta[0] = beta1
    return beta


def cosine_beta(T: int, *, beta1: float, s: float = 0.008) -> torch.Tensor:
    """(T,) float64: improved DDPM's cosine schedule, beta_1 = beta1."""
    t = torch.arange(0, T + 1, dtype=torch.float64)
    f = torch.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    beta = torch.clamp(1 - abar[1:] / abar[:-1], max=0.999)
    beta[0] = beta1
    return beta


def schedule_baseline(config: DiffusionConfig) -> torch.Tensor:
    """The fixed schedule named by the config ("learned" starts from the baseline)."""
    if config.schedule == "linear":
        return linear_beta(config.T, beta1=config.beta1)
    if config.schedule == "cosine":
        return cosine_beta(config.T, beta1=config.beta1)
    beta_max = config.beta_max if config.kind == "gaussian" else 1.0
    return baseline_beta(config.T, beta1=config.beta1, beta_max=beta_max)


class Schedule(nn.Module):
    """Holds beta_1..T; `forward()` returns the (T,) float64 schedule (differentiable if learned).

    Learned: coefficients `c` (J,) on the temporal basis perturb logit(baseline) for t >= 2.
    """

    def __init__(self, config: DiffusionConfig, basis: TemporalBasis | None = None) -> None:
        super().__init__()
        base = schedule_baseline(config)
        self.register_buffer("baseline", base)
        self.learned = config.schedule == "learned"
        if self.learned:
            J = config.learned_schedule_J
            if basis is None or basis.J != J:
                basis = TemporalBasis(config.T, J)
            self.register_buffer("basis", basis.matrix()[1:].clone())  # (T-1, J) float64
            self.c = nn.Parameter(torch.zeros(basis.J, dtype=torch.float64))

    def forward(self) -> torch.Tensor:
        if not self.learned:
            return self.baseline
        b = self.baseline[1:].clamp(_EPS, 1 - 1e-6)
        logits = torch.log(b) - torch.log1p(-b) + self.basis @ self.c
        return torch.cat([self.baseline[:1], torch.sigmoid(logits)])
