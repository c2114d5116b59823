"""Respacing: the kept steps and the strided step of a Gaussian reverse chain of S < T steps.

Beyond the paper (Sohl-Dickstein et al. 2015 samples with all T steps); the idea is that of
DDIM's and improved DDPM's respacing (Song et al. 2021; Nichol & Dhariwal 2021, section 4):
keep steps 0 = tau_0 < tau_1 = 1 < ... < tau_S = T, reuse abar at the kept steps, and step
from x^t to x^s (s < t) with the strided forward posterior

    q(x^s | x^t, x^0) = N(mu, var),  alpha' = abar_t / abar_s,  beta' = 1 - alpha',
    mu  = sqrt(abar_s) beta' / (1 - abar_t) x^0 + sqrt(alpha') (1 - abar_s) / (1 - abar_t) x^t,
    var = (1 - abar_s) beta' / (1 - abar_t),

where x^0 is replaced by the model's estimate. The one-step reverse mean of the paper's
kernel (App. D.2.1) estimates E[x^{t-1} | x^t] = c0 E[x^0 | x^t] + ct x^t with c0, ct the
coefficients of the one-step forward posterior (model.md section 3), so
x0_hat = (mu_t - ct x^t) / c0. The learned variance carries over by its place between the
entropy bounds of section 2.6 (forward posterior variance below, beta above): the same
place between the strided bounds. With s = t - 1 this is exactly the one-step kernel, so
S = T gives the full chain; for data drawn from pi with the exact kernel, every strided
step is exact too. The step 1 -> 0 is always the fixed first step (App. B.2).

Tensors: x (B, *shape) float64 in model space; alpha_bar (T + 1,) float64 with abar_0 = 1. The chain
that runs these steps is diffusion.chains.chain (`Reverse.respaced`); the S-step bound is
diffusion.evaluation.bound.strided_bound.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch


def kept_steps(T: int, S: int | None) -> list[int]:
    """The grid [0, tau_1 = 1, ..., tau_S = T] of S kept steps, evenly spaced, ascending.

    S = None or S = T keeps every step. Raises ValueError unless 2 <= S <= T.
    """
    if S is None or S == T:
        return list(range(T + 1))
    if isinstance(S, bool) or not isinstance(S, int | np.integer) or not 2 <= S <= T:
        raise ValueError(f"steps must be an integer in [2, T={T}], got {S!r}")
    taus = np.unique(np.round(np.linspace(1, T, int(S))).astype(int))
    while taus.size < S:  # rounding merged two steps: add the largest gaps' midpoints
        gaps = np.diff(taus)
        k = int(gaps.argmax())
        taus = np.unique(np.append(taus, taus[k] + gaps[k] // 2))
    return [0, *taus.tolist()]


class StridedConstants(NamedTuple):
    """The step t -> s as numbers applied to the one-step kernel N(mu, var) at t:
    mean = mu_coef mu + x_coef x^t, log var_s = power log var + log_offset."""

    mu: float  # A / c0, A = sqrt(abar_s) beta' / (1 - abar_t)
    x: float  # B - (A / c0) ct, B = sqrt(alpha') (1 - abar_s) / (1 - abar_t)
    power: float  # log(beta' / var_q(t->s)) / log(beta_t / var_q)
    log_offset: float  # log var_q(t->s) - power log var_q


def strided_constants(a_t: float, a_p: float, a_s: float) -> StridedConstants:
    """`StridedConstants` of the step t -> s from abar_t, abar_{t-1} and abar_s.

    Mean: the strided forward posterior at x0_hat = (mu - ct x^t) / c0. Variance: the
    one-step variance's place between its entropy bounds (section 2.6; model.md section 9),
    lambda = log(var / var_q) / log(beta_t / var_q), carried to the strided bounds:
    log var_s = log var_q(t->s) + lambda log(beta(t->s) / var_q(t->s)). For the exact
    reverse kernel of data drawn from pi (lambda = 1) this is the exact strided kernel."""
    beta_t, beta_s = 1.0 - a_t / a_p, 1.0 - a_t / a_s
    c0 = math.sqrt(a_p) * beta_t / (1 - a_t)
    ct = math.sqrt(1 - beta_t) * (1 - a_p) / (1 - a_t)
    k = math.sqrt(a_s) * beta_s / (1 - a_t) / c0
    b = math.sqrt(a_t / a_s) * (1 - a_s) / (1 - a_t)
    vq_one, vq_s = (1 - a_p) * beta_t / (1 - a_t), (1 - a_s) * beta_s / (1 - a_t)
    power = math.log(beta_s / vq_s) / math.log(beta_t / vq_one)
    return StridedConstants(k, b - k * ct, power, math.log(vq_s) - power * math.log(vq_one))


def strided_from_one_step(
    alpha_bar: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, var: torch.Tensor, t: int, s: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn the one-step kernel N(mu, var) at step t >= 2 into the step t -> s (1 <= s < t)
    (`strided_constants`)."""
    k = strided_constants(float(alpha_bar[t]), float(alpha_bar[t - 1]), float(alpha_bar[s]))
    mean = torch.add(x.to(torch.float64) * k.x, mu, alpha=k.mu)
    return mean, (torch.log(var) * k.power).add_(k.log_offset).exp_()
