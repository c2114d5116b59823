"""The training step's KL terms straight from the network's outputs (Sohl-Dickstein et al.
2015, Eq. 14 and App. B; model.md sections 3, 4 and 7), and the schedule's coefficient rows.

- `table_rows`: the rows of `diffusion.processes.gaussian.coefficient_table` (the schedule's
  derived numbers at every t), plain differentiable expressions;
- `gaussian_kl_from_output`: the diagonal Gaussian kernel read out from the network's raw
  outputs y (both mean forms, "noise" and "v") and the KL to the forward posterior, as plain
  expressions (autograd's derivatives: gradients reach y, x^t, a learned schedule's path
  through the network's input, and the gathered schedule rows);
- `binomial_kl_from_output`: the Bernoulli KL at logit = forward logit + z as one autograd
  node with its gradient to z written out (the binomial schedule is fixed: nothing else
  needs one).

Issue 14 tried hand-written autograd nodes for the coefficient table, x^t, the Gaussian edge
terms and the Gaussian KL: side by side with autograd through the expressions they measured
within +-5 % of it on the toy nets (a training step's float64 terms are many small
operations, and a node's hand-written backward is as many), so they were removed; so was
torch.compile of the terms (the compiled terms saved 0.1-0.4 ms of a 9 ms swiss-roll step,
against 6-48 s of compilation per process).

Forward values equal the unfused computation up to float64 rounding: the Gaussian reverse
mean is formed directly, mu = x^t + beta_t yM / sqrt(1 - abar_t) (or the forward posterior's
mean at x0_hat), where the unfused path goes through zM and back (the paper's form
mu = (x^t - zM)(1 - Sigma) + zM). tests/diffusion/test_fused.py and test_step_tables.py check
them against the unfused path. KL terms: steps t >= 2 only (the training estimate never draws
t = 1, whose fixed first step has no KL term).

Tensors: y (B, *shape, 2) float64; x0, xt (B, *shape) float64; rows (K, B, 1, ..., 1) the
gathered `coefficient_table` rows; beta (T,); KL terms (B,) nats.
"""

from __future__ import annotations

import torch
from torch.nn.functional import logsigmoid

# rows of diffusion.processes.gaussian.coefficient_table (StepCoefficients' order)
_ABAR, _ABAR_PREV, _BETA, _SQRT_ABAR, _SQRT_1M_ABAR = 0, 1, 2, 3, 4
_LOG_BETA, _LOG1M_BETA, _SQRT_1M_BETA, _C0, _CT, _VQ = 5, 6, 7, 8, 9, 10


def table_rows(beta: torch.Tensor) -> torch.Tensor:
    """(K, T) rows of `StepCoefficients` from beta (T,), in the order of the row indices
    above (diffusion.processes.gaussian.coefficient_table; no gradient of its own)."""
    abar = torch.cumprod(1 - beta, dim=0)
    ap = torch.cat([abar.new_ones(1), abar[:-1]])
    one_m_a = 1 - abar
    return torch.stack(
        [
            abar,
            ap,
            beta,
            abar.sqrt(),
            one_m_a.sqrt(),
            torch.log(beta),
            torch.log1p(-beta),
            (1 - beta).sqrt(),
            ap.sqrt() * beta / one_m_a,
            (1 - beta).sqrt() * (1 - ap) / one_m_a,
            (1 - ap) * beta / one_m_a,
        ]
    )


def gaussian_kl_from_output(
    y: torch.Tensor, xt: torch.Tensor, x0: torch.Tensor, rows: torch.Tensor, v_mean: bool
) -> torch.Tensor:
    """(B,) KL_t, nats, of the diagonal Gaussian kernel read out from y at steps t >= 2:
    `GaussianDiffusion.kl(x0, xt, t, model.readout(xt, t, beta), beta)` with the reverse mean
    formed directly (module docstring). Plain differentiable expressions: gradients reach y,
    x^t and the gathered rows through autograd. x0 gets no gradient (data)."""
    r = rows.unbind(0)
    y_m, y_s = y[..., 0], y[..., 1]
    var = torch.sigmoid(y_s + (r[_LOG_BETA] - r[_LOG1M_BETA]))  # Sigma (App. D.2.1)
    if v_mean:  # mu = c0 x0_hat + ct x^t at x0_hat = sqrt(abar) x^t - sqrt(1 - abar) yM
        x0_hat = r[_SQRT_ABAR] * xt - r[_SQRT_1M_ABAR] * y_m
        d = r[_C0] * (x0.detach() - x0_hat)  # forward posterior mean - reverse mean
    else:  # mu = x^t + beta_t yM / sqrt(1 - abar_t)
        d = r[_C0] * x0.detach() + (r[_CT] - 1) * xt - (r[_BETA] / r[_SQRT_1M_ABAR]) * y_m
    ratio = r[_VQ] / var
    kl = ratio - torch.log(ratio) + d * d / var
    return 0.5 * (kl.reshape(kl.shape[0], -1).sum(1) - kl[0].numel())


class _BinomialKL(torch.autograd.Function):
    """sum_i KL(Bern(q_i) || Bern(sigmoid(l_i))) per example at l = base + z, from the
    negative entropy of q given beside it: q log q + (1 - q) log(1 - q) - log sigmoid(l)
    + (1 - q) l (log sigmoid(-l) = log sigmoid(l) - l: one log-sigmoid per element, not two).
    Gradient to z only: dKL/dl = sigmoid(l) - q."""

    @staticmethod
    def forward(ctx, z, base, q, neg_ent):
        logit = base + z
        kl = neg_ent - logsigmoid(logit) + (1 - q) * logit
        ctx.save_for_backward(logit, q)
        return kl.reshape(kl.shape[0], -1).sum(1)

    @staticmethod
    def backward(ctx, grad):
        logit, q = ctx.saved_tensors
        g = grad.reshape((-1,) + (1,) * (logit.dim() - 1))
        return g * (torch.sigmoid(logit) - q), None, None, None


def binomial_kl_from_output(
    z: torch.Tensor, base: torch.Tensor, q: torch.Tensor, neg_ent: torch.Tensor
) -> torch.Tensor:
    """(B,) KL_t, nats: `BinomialDiffusion.kl` for z (B, *shape) at steps t >= 2, given the
    forward logits `base` at x^t, the forward posterior q = q(x^{t-1} = 1 | x^t, x^0) and its
    negative entropy `neg_ent` (`BinomialDiffusion.posterior_terms`; none of them
    differentiated: the binomial schedule is fixed)."""
    return _BinomialKL.apply(z, base.detach(), q.detach(), neg_ent.detach())
