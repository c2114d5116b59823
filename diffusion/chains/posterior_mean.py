"""The posterior mean E[x^0 | y] under the model in one or two network calls (Tweedie).

Beyond the paper (Sohl-Dickstein et al. 2015 denoise by sampling, section 2.5 and figure 3;
this is an addition, docs/model-notes.md "Posterior mean in one call"). For an observation
y = x^0 + N(0, s2 I) (model space), sqrt(abar_t) y is distributed exactly as the forward
marginal x^t at the step where (1 - abar_t) / abar_t = s2, and the model's estimate of x^0
from x^t is E[x^0 | x^t] (the regression the bound trains it for: the reverse mean's KL
term is minimised by mu = c0 E[x^0 | x^t] + ct x^t, model.md section 3). So

    E[x^0 | y] = x0_hat(sqrt(abar_t) y, t),  x0_hat(x, t) = (mu(x, t) - ct x) / c0,

with c0 = sqrt(abar_{t-1}) beta_t / (1 - abar_t), ct = sqrt(1 - beta_t) (1 - abar_{t-1}) /
(1 - abar_t), the one-step forward posterior's coefficients (for the v-preconditioned mean
this returns the network's x0_hat exactly; for the paper's it inverts the mean). The noise
levels s2_t = (1 - abar_t) / abar_t of the steps are discrete: when s2 falls between the
steps t - 1 and t, the estimates at both (each from sqrt(abar) y at its own step) are
interpolated linearly in s2 (s2_0 = 0, where the estimate is y itself). With T = 1000 the
neighbouring levels are close and the interpolation error is of second order in their gap.

This is a point estimate, not a sample: it is the minimum-mean-squared-error denoiser under
the model, the number a PSNR rewards; the chains of `posterior_chains` give samples.
Model-space math here; the data-space API is `diffusion.chains.posterior.posterior_mean`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from diffusion.chains.chain import Reverse
from diffusion.chains.posterior_inputs import (
    PosteriorInputError,
    bin_centres,
    check_gaussian,
    check_sigma,
    image_reverse,
    size_plan,
    to_data,
    to_model,
)
from diffusion.images.tiling import SizePlan
from diffusion.inference import Trained
from diffusion.processes.base import CorrelatedNormal, Normal


def noise_levels(rev: Reverse) -> torch.Tensor:
    """(T + 1,) float64: s2_t = (1 - abar_t) / abar_t, the variance of y's noise that
    sqrt(abar_t) y turns into x^t (s2_0 = 0)."""
    abar = rev.alpha_bar
    return (1 - abar) / abar


def x0_estimate(rev: Reverse, x: torch.Tensor, t: int) -> torch.Tensor:
    """The model's E[x^0 | x^t = x] at step t >= 1, from its one-step reverse mean:
    (mu - ct x) / c0 (module docstring). x: (B, *shape) model space."""
    if not 1 <= t <= rev.T:
        raise ValueError(f"t must be in [1, T={rev.T}], got {t}")
    abar = rev.alpha_bar
    a_t, a_p = float(abar[t]), float(abar[t - 1])
    beta_t = 1.0 - a_t / a_p
    c0 = math.sqrt(a_p) * beta_t / (1 - a_t)
    ct = math.sqrt(1 - beta_t) * (1 - a_p) / (1 - a_t)
    step = rev.kernel(x, t)
    if not isinstance(step, Normal | CorrelatedNormal):
        raise ValueError(
            f"the posterior mean needs a Gaussian reverse step; got {type(step).__name__}"
        )
    return (step.mean - ct * x.to(torch.float64)) / c0


def bracket(rev: Reverse, s2: float) -> tuple[int, int, float]:
    """(t_lo, t_hi, w): the steps whose noise levels bracket s2, s2_lo <= s2 <= s2_hi with
    t_hi = t_lo + 1, and w in [0, 1] the weight of t_hi (linear in s2). ValueError when s2
    is beyond the chain's last level (the observation is noisier than pi)."""
    levels = noise_levels(rev)
    if not s2 > 0 or not math.isfinite(s2):
        raise ValueError(f"s2 must be a positive number, got {s2!r}")
    if s2 > float(levels[-1]):
        raise ValueError(
            f"the noise variance {s2:.4g} (model space) is beyond the chain's last level "
            f"{float(levels[-1]):.4g}: the observation carries nothing the model can use"
        )
    t_hi = int(torch.searchsorted(levels, torch.tensor([s2], dtype=torch.float64))[0])
    t_hi = max(1, t_hi)
    lo, hi = float(levels[t_hi - 1]), float(levels[t_hi])
    return t_hi - 1, t_hi, (s2 - lo) / (hi - lo)


def posterior_mean_chain(rev: Reverse, y: torch.Tensor, s2: float) -> torch.Tensor:
    """E[x^0 | y] under the model for y = x^0 + N(0, s2 I), y (B, *shape) model space:
    the x0 estimates at the two steps bracketing s2, interpolated (one network call when s2
    is a step's own level, or lies below step 1: then the other end is y itself)."""
    return blend_estimates(rev, y, bracket(rev, s2))


def blend_estimates(rev: Reverse, y: torch.Tensor, steps: tuple[int, int, float]) -> torch.Tensor:
    """The x0 estimates from y at the steps (t_lo, t_hi, w) of `bracket`, blended with weight
    w on t_hi (step 0's estimate is y itself)."""
    y = y.to(torch.float64)
    t_lo, t_hi, w = steps

    def at(t: int) -> torch.Tensor:
        if t == 0:
            return y
        return x0_estimate(rev, math.sqrt(float(rev.alpha_bar[t])) * y, t)

    if w <= 0.0:
        return at(t_lo)
    if w >= 1.0:
        return at(t_hi)
    return (1 - w) * at(t_lo) + w * at(t_hi)


# ------------------------------------------------------------------------ data-space API
@dataclass(frozen=True)
class PosteriorMean:
    """E[x^0 | y] under the model for one noisy image, in data space.

    mean: (H, W[, C]) float64 (clipped to the grey levels); observed: the noisy input;
    steps: (t_lo, t_hi, w), the steps whose estimates were blended (w = t_hi's weight);
    calls: network evaluations made (1 or 2); plan: how the image's size was handled.
    """

    mean: np.ndarray
    observed: np.ndarray
    steps: tuple[int, int, float]
    calls: int
    plan: SizePlan

    def describe(self) -> str:
        t_lo, t_hi, w = self.steps
        at = (
            f"step {t_hi if w >= 1 else t_lo}"
            if self.calls == 1
            else (f"steps {t_lo} and {t_hi} (weight {w:.2f} on {t_hi})")
        )
        return f"posterior mean E[x | y] under the model, one reverse-mean read-out at {at}"


def posterior_mean(
    trained: Trained,
    y: np.ndarray,
    sigma: float,
    *,
    tile: int | None = None,
    overlap: int | None = None,
    margin: int | None = None,
) -> PosteriorMean:
    """E[x | y] under the model for y = x + N(0, sigma^2) per pixel (Tweedie; see the module
    docstring): the minimum-mean-squared-error denoiser of the model, in one or two network
    calls instead of a chain. y: (H, W[, C]) data space (uint8: bin centres); sigma: noise
    standard deviation in grey levels. Sizes as in `diffusion.chains.posterior.denoise`."""
    check_gaussian(trained)
    check_sigma(sigma)
    ym = to_model(trained, y, "the noisy image")
    plan = size_plan(trained, ym.shape[-2:], 1, tile=tile, overlap=overlap, margin=margin)
    s2 = (float(sigma) / trained.scaler.scale) ** 2
    rev = image_reverse(trained, plan)
    try:
        t_lo, t_hi, w = bracket(rev, s2)
    except ValueError as exc:
        raise PosteriorInputError(f"sigma {sigma} grey levels: {exc}") from None
    x = blend_estimates(rev, ym, (t_lo, t_hi, w))
    calls = 1 if w <= 0 or w >= 1 or t_lo == 0 else 2
    observed = bin_centres(y)
    return PosteriorMean(to_data(trained, x)[0], observed, (t_lo, t_hi, w), calls, plan)
