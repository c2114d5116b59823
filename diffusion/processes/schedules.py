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
- geometric: the noise variance 1 - abar_t grows by the same factor every step, from beta_1 to
  1 - abar_T: every step adds the same fraction of the noise already there, so the chain
  spends its steps evenly over the length scales of the data (from the finest, about
  sqrt(beta_1), to the whole). benchmarks/swissroll_ceiling.py shows it is close to the best
  40-step schedule for the swiss rolls; the learned schedule of their presets starts from it.
- logsnr: log(abar_t / (1 - abar_t)) falls linearly in t (the shape of the cosine schedule's
  middle; Kingma et al. 2021 view schedules this way).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from diffusion.config import DiffusionConfig
from diffusion.processes.base import PerSchedule
from diffusion.processes.readout import TemporalBasis

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


def fixed_schedule(name: str, config: DiffusionConfig) -> torch.Tensor:
    """(T,) float64: the fixed schedule `name` with the config's T and beta_1."""
    T, beta1 = config.T, config.beta1
    if name == "linear":
        return linear_beta(T, beta1=beta1)
    if name == "cosine":
        return cosine_beta(T, beta1=beta1)
    if name == "geometric":
        return geometric_beta(T, beta1=beta1)
    if name == "logsnr":
        return logsnr_beta(T, beta1=beta1)
    beta_max = config.beta_max if config.kind == "gaussian" else 1.0
    return baseline_beta(T, beta1=beta1, beta_max=beta_max)


def schedule_baseline(config: DiffusionConfig) -> torch.Tensor:
    """The fixed schedule of the config; for "learned", the one it starts from (learned_from)."""
    name = config.learned_from if config.schedule == "learned" else config.schedule
    return fixed_schedule(name, config)


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
                basis = TemporalBasis(config.T, J, config.basis)
            self.register_buffer("basis", basis.matrix()[1:].clone())  # (T-1, J) float64
            self.c = nn.Parameter(torch.zeros(basis.J, dtype=torch.float64))
            # logit(baseline): once per baseline tensor (a constant; recomputed if a
            # checkpoint is loaded into the buffer or the module moves)
            self._base_logits = PerSchedule(_logit_of_baseline)

    def forward(self) -> torch.Tensor:
        if not self.learned:
            return self.baseline
        logits = self._base_logits(self.baseline) + self.basis @ self.c
        return torch.cat([self.baseline[:1], torch.sigmoid(logits)])


def _logit_of_baseline(baseline: torch.Tensor) -> torch.Tensor:
    """(T - 1,) logit(beta_t) of the fixed schedule a learned one perturbs, t = 2..T."""
    b = baseline[1:].clamp(_EPS, 1 - 1e-6)
    return torch.log(b) - torch.log1p(-b)


def geometric_beta(T: int, *, beta1: float, abar_T: float | None = None) -> torch.Tensor:
    """(T,) float64: the noise variance 1 - abar_t grows geometrically from beta1 at t = 1 to
    1 - abar_T at t = T (abar_T defaults to the capped baseline's 1 / (2T))."""
    end = 1.0 - (abar_T if abar_T is not None else 1.0 / (2 * T))
    t = torch.arange(0, T, dtype=torch.float64)
    var = beta1 * (end / beta1) ** (t / (T - 1))
    abar = torch.cat([torch.ones(1, dtype=torch.float64), 1 - var])
    beta = 1 - abar[1:] / abar[:-1]
    beta[0] = beta1
    return beta


def logsnr_beta(T: int, *, beta1: float, abar_T: float | None = None) -> torch.Tensor:
    """(T,) float64: log SNR_t = log(abar_t / (1 - abar_t)) falls linearly in t, from that of
    beta1 at t = 1 to that of abar_T at t = T (abar_T defaults to 1 / (2T))."""
    end = abar_T if abar_T is not None else 1.0 / (2 * T)
    lo, hi = math.log(end / (1 - end)), math.log((1 - beta1) / beta1)
    t = torch.arange(0, T, dtype=torch.float64)
    abar = torch.sigmoid(hi + (lo - hi) * t / (T - 1))
    abar = torch.cat([torch.ones(1, dtype=torch.float64), abar])
    beta = 1 - abar[1:] / abar[:-1]
    beta[0] = beta1
    return beta
