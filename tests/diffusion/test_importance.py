"""The importance-sampled log-likelihood (section 2.2, "Model probability"): >= K, rising
toward the true log p(x^0) of the model, computed here by quadrature for a 1-D chain."""

from __future__ import annotations

import itertools
import math

import torch
from engine_helpers import make_model
from torch.distributions import Normal
from torch.nn.functional import logsigmoid

from diffusion.evaluation.bound import evaluate_bound, importance_log_likelihood


@torch.no_grad()
def model_log_density(model, x0: torch.Tensor) -> torch.Tensor:
    """log p(x^0) of a 1-D model: pass the density of x^t down the chain on a grid."""
    grid = torch.linspace(-9, 9, 3001, dtype=torch.float64)
    dx = grid[1] - grid[0]
    beta = model.beta()
    dens = Normal(0.0, 1.0).log_prob(grid).exp()  # pi(x^T)
    for step in range(model.T, 0, -1):
        t = torch.full((len(grid),), step)
        mean, var = model.process.p_mean_var(
            grid[:, None], t, model.readout(grid[:, None], t, beta), beta
        )
        target = x0[None, :, 0] if step == 1 else grid[None, :]
        kern = Normal(mean, var.sqrt()).log_prob(target).exp()  # (from grid, to target)
        dens = (dens[:, None] * kern).sum(0) * dx
    return dens.log()


def test_importance_estimate_rises_from_k_toward_truth(gen):
    model = make_model("gaussian", T=4, D=1, beta1=0.05, readout_std=0.6, seed=3)
    x0 = torch.randn(3000, 1, generator=gen).double() * 0.8 + 0.4
    truth = model_log_density(model, x0).mean()
    k = evaluate_bound(model, x0, gen).per_example
    est = {n: importance_log_likelihood(model, x0, n, gen) for n in (1, 8, 64)}
    se = {n: e.std() / math.sqrt(len(e)) for n, e in est.items()}
    assert abs(est[1].mean() - k.mean()) < 4 * math.hypot(se[1], k.std() / math.sqrt(len(k)))
    assert k.mean() < truth
    assert est[8].mean() > est[1].mean()
    assert est[64].mean() > est[8].mean()
    assert est[64].mean() <= truth + 4 * se[64]
    assert truth - est[64].mean() < 0.25 * (truth - k.mean())  # most of the gap closed


@torch.no_grad()
def binomial_log_prob_exact(model, x0: torch.Tensor) -> torch.Tensor:
    """log p(x^0) of a small binary model by enumerating all 2^D states at every step."""
    D = x0.shape[1]
    states = torch.tensor(list(itertools.product((0.0, 1.0), repeat=D)), dtype=torch.float64)
    beta = model.beta()
    prob = model.process.log_prior(states).exp()  # pi over the 2^D states
    for step in range(model.T, 0, -1):
        t = torch.full((len(states),), step)
        logit = model.process.p_logit(states, t, model.readout(states, t, beta), beta)
        # kern[a, b] = p(x^{t-1} = states[b] | x^t = states[a])
        kern = (
            (
                states[None] * logsigmoid(logit)[:, None]
                + (1 - states[None]) * logsigmoid(-logit)[:, None]
            )
            .sum(-1)
            .exp()
        )
        prob = prob @ kern
    index = (x0 * (2 ** torch.arange(D - 1, -1, -1, dtype=torch.float64))).sum(1).long()
    return prob[index].log()


def test_binomial_importance_estimate_rises_toward_enumerated_truth(gen):
    model = make_model("binomial", T=5, D=3, m=0.3, beta1=0.2, readout_std=1.0, seed=2)
    x0 = (torch.rand(3000, 3, generator=gen) < 0.6).double()
    truth = binomial_log_prob_exact(model, x0).mean()
    k = evaluate_bound(model, x0, gen).per_example
    est = {n: importance_log_likelihood(model, x0, n, gen) for n in (1, 64)}
    se1 = math.hypot(est[1].std() / math.sqrt(len(x0)), k.std() / math.sqrt(len(x0)))
    assert abs(est[1].mean() - k.mean()) < 4 * se1
    assert k.mean() < truth
    assert est[1].mean() < est[64].mean() <= truth + 4 * est[64].std() / math.sqrt(len(x0))
    assert truth - est[64].mean() < 0.25 * (truth - k.mean())
