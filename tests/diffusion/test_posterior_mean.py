"""The posterior mean in one call (diffusion/chains/posterior_mean.py) against closed forms.

The oracle: data x^0 ~ N(m, C) in D = 3 dimensions (correlation 0.9 between neighbours, a
non-zero mean), and its exact reverse kernel, diagonal in the eigenbasis of C (x' = Q^T x):
per eigen-coordinate with eigenvalue lam and mean m', the marginal of x^t is
N(sqrt(abar_t) m', s_t), s_t = abar_t lam + 1 - abar_t, and

    q(x^{t-1} | x^t) = N(sqrt(abar_{t-1}) m' + sqrt(alpha_t) s_{t-1} / s_t (x^t - sqrt(abar_t) m'),
                         s_{t-1} beta_t / s_t).

For y = x^0 + N(0, s2 I) the exact posterior mean is m + C (C + s2 I)^-1 (y - m): the
read-out must give it to rounding when s2 is a step's own noise level (1 - abar_t) / abar_t,
and to the interpolation's second-order error between levels.

Broken variants kept here and shown to fail: the network fed y unscaled (x^t = y instead of
sqrt(abar_t) y), the reverse mean read as the estimate (no inversion of the forward
posterior), and the nearest level without interpolation (on a coarse schedule).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from diffusion.chains.posterior import PosteriorInputError, posterior_mean
from diffusion.chains.posterior_mean import (
    bracket,
    noise_levels,
    posterior_mean_chain,
    x0_estimate,
)
from diffusion.chains.reverse import GaussianReverse
from diffusion.data import Scaler
from diffusion.inference import Trained
from diffusion.model import DiffusionModel
from diffusion.presets import PRESETS

RHO = 0.9
C = np.array([[1.0, RHO, RHO**2], [RHO, 1.0, RHO], [RHO**2, RHO, 1.0]]) * 0.8
M = np.array([0.3, -0.2, 0.5])
LAM, Q = np.linalg.eigh(C)
Y = np.array([[1.4, 0.1, -0.7], [-1.0, -1.2, 0.4]])  # two observations


def schedule(T: int) -> np.ndarray:
    return np.geomspace(1e-4, 0.5, T)


def gaussian_reverse(T: int) -> GaussianReverse:
    """The exact reverse process of N(m, C) data in the eigenbasis of C."""
    beta = schedule(T)
    abar = np.concatenate([[1.0], np.cumprod(1 - beta)])
    s = torch.from_numpy(np.stack([a * LAM + 1 - a for a in abar]))
    mp = torch.from_numpy(Q.T @ M)

    def mean_var(x: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = 1 - beta[t - 1]
        centred = x.double() - math.sqrt(abar[t]) * mp
        mean = math.sqrt(abar[t - 1]) * mp + math.sqrt(alpha) * s[t - 1] / s[t] * centred
        return mean, (s[t - 1] * beta[t - 1] / s[t]).expand_as(x).clone()

    return GaussianReverse(beta=torch.from_numpy(beta), mean_var=mean_var)


def exact(y: np.ndarray, s2: float) -> np.ndarray:
    """m + C (C + s2 I)^-1 (y - m), for each row of y."""
    return M + (y - M) @ np.linalg.solve(C + s2 * np.eye(3), C).T


def via_eigenbasis(fn, T: int, s2: float) -> np.ndarray:
    """fn(rev, y', s2) in the eigenbasis, rotated back."""
    rev = gaussian_reverse(T)
    out = fn(rev, torch.from_numpy(Y @ Q), s2)
    return out.numpy() @ Q.T


# ------------------------------------------------------------------ the read-out
def test_the_oracle_estimate_is_tweedies_at_every_step() -> None:
    """x0_estimate at x^t equals E[x^0 | x^t] of the Gaussian: the inversion of the mean."""
    rev = gaussian_reverse(200)
    for t in (1, 2, 50, 199, 200):
        a = float(rev.alpha_bar[t])
        x = torch.from_numpy(Y @ Q)
        got = x0_estimate(rev, x, t).numpy() @ Q.T
        # x^t = sqrt(a) x^0 + sqrt(1 - a) eps: y = x^t / sqrt(a) has noise s2 = (1 - a) / a
        want = exact(Y @ Q @ Q.T / math.sqrt(a), (1 - a) / a)
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-8)


def test_posterior_mean_is_exact_at_a_steps_level() -> None:
    rev = gaussian_reverse(200)
    t = 120
    s2 = float(noise_levels(rev)[t])
    assert bracket(rev, s2)[1] == t or bracket(rev, s2)[2] in (0.0, 1.0)
    got = via_eigenbasis(posterior_mean_chain, 200, s2)
    np.testing.assert_allclose(got, exact(Y, s2), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("s2", [1e-5, 0.05, 0.3, 1.7])
def test_posterior_mean_between_levels_is_exact_to_the_interpolation(s2: float) -> None:
    """At T = 1000 the levels are close: the blend is within 1e-5 of the truth (each end
    alone is off by the level gap's first-order effect, 1e-4 or more at s2 >= 0.05)."""
    got = via_eigenbasis(posterior_mean_chain, 1000, s2)
    np.testing.assert_allclose(got, exact(Y, s2), atol=1e-5)
    # far closer than y itself (below step 1 the blend runs from y at s2_0 = 0 to step 1)
    assert np.abs(got - exact(Y, s2)).max() < 0.05 * np.abs(exact(Y, s2) - Y).max()


# ------------------------------------------------------------------ broken variants
def unscaled(rev, y, s2):
    """BROKEN: the network fed y itself as x^t."""
    t = bracket(rev, s2)[1]
    return x0_estimate(rev, y.double(), t)


def mean_as_estimate(rev, y, s2):
    """BROKEN: the reverse kernel's mean read as the clean image."""
    t = bracket(rev, s2)[1]
    return rev.kernel(math.sqrt(float(rev.alpha_bar[t])) * y.double(), t).mean


def nearest_level(rev, y, s2):
    """BROKEN (coarsely): the nearest level's estimate, no interpolation."""
    t_lo, t_hi, w = bracket(rev, s2)
    t = t_hi if w >= 0.5 else t_lo
    return x0_estimate(rev, math.sqrt(float(rev.alpha_bar[t])) * y.double(), t)


@pytest.mark.parametrize("broken", [unscaled, mean_as_estimate, nearest_level])
def test_broken_read_outs_are_caught(broken) -> None:
    s2 = 0.3
    rev = gaussian_reverse(40)  # coarse: the levels are far apart
    t_lo, t_hi, w = bracket(rev, s2)
    assert 0.2 < w < 0.8
    good = via_eigenbasis(posterior_mean_chain, 40, s2)
    np.testing.assert_allclose(good, exact(Y, s2), atol=0.02)  # interpolated: close
    bad = via_eigenbasis(broken, 40, s2)
    assert np.abs(bad - exact(Y, s2)).max() > 0.02


def test_noise_beyond_the_last_level_is_refused() -> None:
    rev = gaussian_reverse(50)
    with pytest.raises(ValueError, match="beyond the chain's last level"):
        bracket(rev, float(noise_levels(rev)[-1]) * 2)
    with pytest.raises(ValueError, match="positive"):
        bracket(rev, 0.0)


# ------------------------------------------------------------------ the data-space API
def untrained_unet() -> Trained:
    """A UNet model with the v-preconditioned mean, output layer at zero: its reverse kernel
    is the exact one of N(0, I) data in model space, so E[x | y] = y_m / (1 + s2) there."""
    cfg = PRESETS["photos-unet"].with_overrides(
        ["network.options.channels=8", "network.options.groups=8"]
    )
    torch.manual_seed(0)
    model = DiffusionModel(cfg, (1, 16, 16), "images").eval()
    return Trained(cfg, model, Scaler(120.0, 60.0, True), torch.device("cpu"), 0, Path("."))


def test_data_space_posterior_mean_of_the_untrained_unet_is_the_unit_gaussians() -> None:
    trained = untrained_unet()
    rng = np.random.default_rng(0)
    y = rng.uniform(0, 255, (24, 40))  # another size than the training patches
    sigma = 25.0
    r = posterior_mean(trained, y, sigma)
    s2 = (sigma / 60.0) ** 2
    want = 120.0 + (y - 120.0) / (1 + s2)
    assert r.mean.shape == y.shape and r.calls in (1, 2)
    np.testing.assert_allclose(r.mean, np.clip(want, 0, 256 - 1e-6), atol=1e-3)
    assert np.array_equal(r.observed, y)
    assert "posterior mean" in r.describe() and r.plan is not None


def test_data_space_posterior_mean_checks_its_input() -> None:
    trained = untrained_unet()
    y = np.zeros((16, 16))
    for bad in (0.0, -1.0, float("nan"), True):
        with pytest.raises(PosteriorInputError, match="sigma"):
            posterior_mean(trained, y, bad)
    with pytest.raises(PosteriorInputError, match="beyond the chain's last level"):
        posterior_mean(trained, y, 1e9)
    with pytest.raises(PosteriorInputError, match="shape"):
        posterior_mean(trained, np.zeros((4, 16, 16)), 10.0)
