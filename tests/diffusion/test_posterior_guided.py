"""Guided inpainting (reconstruction guidance with replacement, Ho et al. 2022;
diffusion.chains.posterior_guided) on the correlated-Gaussian oracle of
test_posterior_oracle.py, where the chain is linear-Gaussian and its output has a closed form.

With the exact kernel x^{t-1} ~ N(A_t x^t, V_t), the kernel's own clean estimate is
x0_hat = H_t x^t, H_t = (A_t - ct I) / c0 (exact: A_t x^t = E[x^{t-1} | x^t] = c0 E[x^0 | x^t]
+ ct x^t), the guidance gradient of |M (a - H x)|^2 / 2 is -H^T M (a - H x), and a guided step
is x' = (A - k H^T M H) x + k H^T M a + N(0, V) with k = c0 w sqrt(abar_t), after which the known
coordinate is redrawn from q(x^{t-1} | a). `guided_closed_form` propagates mean and covariance
through that recursion. Pinned numbers at T = 50 (x_1 = 1.5 known; the exact conditional of
the missing pair has means (1.425, 1.354)):

    w = 0 (replacement only)   means (0.935, 0.747)
    w = 1 (Ho et al.'s Eq. 7)  means (1.155, 0.995)
    w = 4                      means (1.462, 1.374), variances (0.063, 0.145)

so guidance moves the fill toward the exact conditional, where replacement alone (and the
paper's rule, (1.136, 0.990)) leaves it far below. Broken variants shown to fail below: the
gradient's sign flipped, the residual taken over every coordinate instead of the known ones,
and the guidance weight ignored.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_posterior_oracle import (
    A_KNOWN,
    MASK,
    ExactReverse,
    exact_conditional,
    exact_kernels,
    gen,
    known_batch,
    marginals,
    moments_mismatch,
    paper_closed_form,
    schedule,
)
from test_posterior_oracle import _known as set_known

from diffusion.chains import posterior_guided
from diffusion.chains.posterior_guided import GuidedReverse, inpaint_guided_chain
from diffusion.processes.base import Normal


def guided_closed_form(T: int, w: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the missing coordinates after the guided chain (docstring)."""
    abar, sig = marginals(schedule(T))
    a_vec, M = np.where(MASK, A_KNOWN, 0.0), np.diag(MASK.astype(float))
    mean, cov = np.zeros(len(MASK)), sig[-1].copy()
    set_known(mean, cov, math.sqrt(abar[T]) * A_KNOWN, 1 - abar[T])
    for t, (A, V) in reversed(list(enumerate(exact_kernels(schedule(T)), start=1))):
        B, offset = A, 0.0
        if t > 1:  # the fixed first step is not guided
            beta = 1 - abar[t] / abar[t - 1]
            c0 = math.sqrt(abar[t - 1]) * beta / (1 - abar[t])
            ct = math.sqrt(1 - beta) * (1 - abar[t - 1]) / (1 - abar[t])
            H = (A - ct * np.eye(len(MASK))) / c0
            k = c0 * w * math.sqrt(abar[t])
            B, offset = A - k * H.T @ M @ H, k * H.T @ M @ a_vec
        mean, cov = B @ mean + offset, B @ cov @ B.T + V
        set_known(mean, cov, math.sqrt(abar[t - 1]) * A_KNOWN, 1 - abar[t - 1])
    return mean[~MASK], cov[np.ix_(~MASK, ~MASK)]


def test_guided_closed_form_pins_and_moves_toward_the_exact_conditional() -> None:
    em, _ = exact_conditional()
    g0, g1, g4 = (guided_closed_form(50, w) for w in (0.0, 1.0, 4.0))
    np.testing.assert_allclose(g0[0], [0.935, 0.747], atol=1e-3)
    np.testing.assert_allclose(g1[0], [1.155, 0.995], atol=1e-3)
    np.testing.assert_allclose(g4[0], [1.462, 1.374], atol=1e-3)
    np.testing.assert_allclose(np.diag(g4[1]), [0.063, 0.145], atol=1e-3)
    gaps = [np.abs(g[0] - em).max() for g in (g0, g1, g4)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.04
    assert np.abs(paper_closed_form(50)[0] - em).max() > 0.3  # the paper's rule, for scale


@pytest.mark.parametrize("w", [1.0, 4.0])
def test_guided_chain_gives_its_closed_form(w: float) -> None:
    x_known, mask = known_batch()
    x = inpaint_guided_chain(ExactReverse(50), x_known, mask, guidance=w, generator=gen(3))
    assert torch.equal(x[:, MASK], x_known[:, MASK])
    assert moments_mismatch(x[:, ~MASK], *guided_closed_form(50, w)) == []
    other = guided_closed_form(50, 1.0 if w == 4.0 else 4.0)
    assert moments_mismatch(x[:, ~MASK], *other)  # the check tells the weights apart


# ------------------------------------------------------------------ broken variants
class FlippedSign(GuidedReverse):
    """BROKEN: the state pushed away from the known values."""

    def kernel(self, x, t):
        base = self.base.kernel(x, t)
        step = super().kernel(x, t)
        return type(step)(**{**vars(step), "mean": 2 * base.mean - step.mean})


class EveryCoordinate(GuidedReverse):
    """BROKEN: the residual taken over every coordinate (the missing ones pulled to 0)."""

    def __init__(self, base, known, mask, weight):
        super().__init__(base, known, torch.ones_like(mask, dtype=torch.bool), weight)


class WeightIgnored(GuidedReverse):
    """BROKEN: the weight read but never applied (w = 1 whatever is asked)."""

    def __init__(self, base, known, mask, weight):
        super().__init__(base, known, mask, 1.0)


@pytest.mark.parametrize("broken", [FlippedSign, EveryCoordinate, WeightIgnored])
def test_broken_guidance_is_caught(broken, monkeypatch) -> None:
    monkeypatch.setattr(posterior_guided, "GuidedReverse", broken)
    x_known, mask = known_batch()
    x = posterior_guided.inpaint_guided_chain(
        ExactReverse(50), x_known, mask, guidance=4.0, generator=gen(3)
    )
    assert torch.equal(x[:, MASK], x_known[:, MASK])  # known values alone prove nothing
    assert len(moments_mismatch(x[:, ~MASK], *guided_closed_form(50, 4.0))) >= 2


# ------------------------------------------------------------------ a network's kernel
@pytest.fixture
def tiny_unet_model():
    """A small UNet model ("v" mean, float64) with random weights (at initialization its last
    layer is zero, which would make the Jacobian trivial)."""
    from diffusion.config import DataConfig, DiffusionConfig, NetworkConfig, RunConfig
    from diffusion.model import DiffusionModel

    config = RunConfig(
        data=DataConfig("deadleaves", {"size": 8}),
        diffusion=DiffusionConfig("gaussian", T=12, schedule="geometric", beta1=1e-3, mean="v"),
        network=NetworkConfig("unet", hidden=(), options={"channels": 8, "mults": (1, 2)}),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = DiffusionModel(config, (1, 8, 8), "images").double()
        with torch.no_grad():
            for p in model.net.parameters():
                p.add_(0.3 * torch.randn_like(p))
    return model.eval()


def test_guided_step_of_a_network_is_its_mean_minus_the_jacobian_term(tiny_unet_model) -> None:
    """On a network's kernel (ModelReverse, "v" mean): the clean estimate read from the mean,
    (mu - ct x) / c0, is the model's own x0_hat = sqrt(abar) x - sqrt(1 - abar) yM, and the
    guided mean is mu - c0 w sqrt(abar) J^T M (x0_hat - a) with J the full Jacobian of x0_hat
    in x^t (torch.autograd.functional.jacobian, no shortcuts)."""
    from diffusion.chains.reverse import model_reverse

    model = tiny_unet_model
    rev = model_reverse(model)
    g = torch.Generator().manual_seed(0)
    shape = (2, *model.shape)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    known = torch.randn(shape, generator=g, dtype=torch.float64)
    mask = torch.rand(shape, generator=g) < 0.5
    t, w = 7, 2.5
    abar = rev.alpha_bar
    a_t, a_p = float(abar[t]), float(abar[t - 1])
    beta = 1 - a_t / a_p
    c0 = math.sqrt(a_p) * beta / (1 - a_t)
    ct = math.sqrt(1 - beta) * (1 - a_p) / (1 - a_t)

    def x0_hat(x):  # the model's own clean estimate ("v" form)
        y = model.net_output(x, t)
        return math.sqrt(a_t) * x - math.sqrt(1 - a_t) * y[..., 0]

    base = rev.kernel(x, t)
    torch.testing.assert_close((base.mean - ct * x) / c0, x0_hat(x).detach())
    J = torch.autograd.functional.jacobian(x0_hat, x).reshape(x.numel(), x.numel())
    resid = torch.where(mask, x0_hat(x).detach() - known, 0.0).reshape(-1)
    expected = base.mean - (c0 * w * math.sqrt(a_t)) * (J.T @ resid).reshape(shape)
    step = GuidedReverse(rev, known, mask, w).kernel(x, t)
    assert isinstance(step, Normal)
    torch.testing.assert_close(step.mean, expected)
    torch.testing.assert_close(step.var, base.var)
    assert not torch.allclose(step.mean, base.mean)  # the guidance term is not negligible


@pytest.mark.parametrize("weight", [-1.0, math.nan, math.inf])
def test_guidance_weight_must_be_finite_and_not_negative(weight: float) -> None:
    x_known, mask = known_batch()
    with pytest.raises(ValueError, match="guidance weight"):
        GuidedReverse(ExactReverse(5), x_known, mask, weight)
