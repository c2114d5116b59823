"""The training step's KL terms (diffusion.processes.fused: the Gaussian KL straight from the
network's outputs, the Bernoulli KL node) and the binomial per-schedule case tables, against
the unfused computation (`DiffusionModel.readout` then `Process.kl`) and against finite
differences (torch.autograd.gradcheck, float64).

What they catch: a wrong hand-written derivative of the Bernoulli KL (gradcheck), a forward
formula that departs from the paper's kernel (the wrong mean form, the variance's logit taken
from the wrong rows, a Bernoulli KL written with the wrong sign of l: the value checks), and a
binomial case table indexed in the wrong order (x^0 and x^t swapped, t off by one: the lookup
check).
"""

from __future__ import annotations

import pytest
import torch

from diffusion.model import DiffusionModel
from diffusion.presets import PRESETS
from diffusion.processes.binomial import BinomialDiffusion, neg_entropy
from diffusion.processes.fused import binomial_kl_from_output, gaussian_kl_from_output
from diffusion.processes.gaussian import GaussianDiffusion, coefficient_table
from diffusion.processes.schedules import baseline_beta, geometric_beta


def _gaussian_inputs(seed: int, B: int = 5, shape: tuple[int, ...] = (3,)):
    gen = torch.Generator().manual_seed(seed)
    T = 12
    beta = geometric_beta(T, beta1=1e-3)
    t = torch.randint(2, T + 1, (B,), generator=gen)
    rows = coefficient_table(beta)[:, t - 1].reshape((11, B) + (1,) * len(shape))
    x0 = torch.randn(B, *shape, generator=gen, dtype=torch.float64)
    xt = torch.randn(B, *shape, generator=gen, dtype=torch.float64)
    y = torch.randn(B, *shape, 2, generator=gen, dtype=torch.float64)
    return beta, t, rows, x0, xt, y


@pytest.mark.parametrize("v_mean", [False, True])
def test_gaussian_backward_matches_finite_differences(v_mean):
    """gradcheck of y, x^t and every schedule row (each perturbed on its own)."""
    _, _, rows, x0, xt, y = _gaussian_inputs(0)
    y, xt, rows = (v.clone().requires_grad_() for v in (y, xt, rows))
    assert torch.autograd.gradcheck(
        lambda y, xt, rows: gaussian_kl_from_output(y, xt, x0, rows, v_mean),
        (y, xt, rows),
        eps=1e-6,
        atol=1e-8,
        rtol=1e-6,
    )


@pytest.mark.parametrize("v_mean", [False, True])
def test_gaussian_value_equals_readout_then_kl(v_mean):
    """The fused value is the readout's kernel and GaussianDiffusion.kl to rounding, for image
    shapes too; where no gradient is wanted the function is the same."""
    config = PRESETS["swissroll-smoke"].with_overrides(
        [f"diffusion.mean={'v' if v_mean else 'noise'}", "diffusion.T=12"]
    )
    model = DiffusionModel(config, (3,))
    beta, t, _, x0, xt, y = _gaussian_inputs(1)
    proc = model.process
    assert isinstance(proc, GaussianDiffusion)
    torch.nn.init.normal_(next(iter(model.net.readout.parameters())), std=1.0)
    with torch.no_grad():
        y = model.net_output(xt, t)
        z = model.readout(xt, t, beta)
        ref = proc.kl(x0, xt, t, z, beta)
        fused = gaussian_kl_from_output(y, xt, x0, proc.coefficient_rows(beta, t, xt), v_mean)
    torch.testing.assert_close(fused, ref, rtol=1e-12, atol=1e-12)


def test_binomial_backward_matches_finite_differences():
    gen = torch.Generator().manual_seed(2)
    base = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    q = torch.rand(4, 6, generator=gen, dtype=torch.float64)
    z = torch.randn(4, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda z: binomial_kl_from_output(z, base, q, neg_entropy(q)), (z,), eps=1e-6, atol=1e-8
    )


@pytest.mark.parametrize("bits", [True, False])
def test_binomial_step_terms_and_kl_equal_the_per_element_ones(bits):
    """Bits x^0: the case table's lookup; fractional x^0: per element. Both give the
    posterior, its negative entropy and the forward logit of q_posterior / forward_logit,
    and the fused KL equals BinomialDiffusion.kl; the edge terms by counts equal the sum."""
    gen = torch.Generator().manual_seed(3)
    T, B, D = 30, 16, 7
    proc, beta = BinomialDiffusion(0.2), baseline_beta(T, beta1=1 / T)
    x0 = (torch.rand(B, D, generator=gen) < 0.4).float()
    if not bits:
        x0 = x0 * 0.5 + 0.25
    t = torch.randint(2, T + 1, (B,), generator=gen)
    xt = proc.q_sample(x0, t, beta, gen)
    q, neg_ent, base = proc.step_terms(x0, xt, t, beta)
    q_ref = proc.q_posterior(x0, xt, t, beta)
    torch.testing.assert_close(q, q_ref, rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(neg_ent, neg_entropy(q_ref), rtol=1e-14, atol=1e-15)
    assert torch.equal(base, proc.forward_logit(xt, t, beta))
    z = torch.randn(B, D, 1, generator=gen, dtype=torch.float64)
    ref = proc.kl(x0, xt, t, z, beta)
    torch.testing.assert_close(
        binomial_kl_from_output(z[..., 0], base, q, neg_ent), ref, rtol=1e-12, atol=1e-13
    )
    per_element = BinomialDiffusion(0.2)._edge_elements(x0.double(), beta).sum(1)
    torch.testing.assert_close(proc.edge_terms(x0, beta), per_element, rtol=1e-13, atol=1e-13)
