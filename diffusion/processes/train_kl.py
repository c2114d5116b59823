"""The training step's KL term in one autograd node (Sohl-Dickstein et al. 2015, Eq. 14's
summand; model.md sections 3, 4 and 7).

On the toy networks a training step's float64 bookkeeping is a few dozen small tensor ops
forward and as many backward, each costing microseconds of dispatch against a network step
of a few milliseconds (issue 14). These functions compute the same numbers as
`DiffusionModel.readout` followed by `Process.kl`, but as one `torch.autograd.Function` each,
with the derivatives written out:

- `gaussian_kl_from_output`: the diagonal Gaussian kernel read out from the network's raw
  outputs y (both mean forms, "noise" and "v") and the KL to the forward posterior, with
  gradients to y, to x^t (a learned schedule's path through the network's input) and to the
  gathered schedule rows (its path through the coefficients);
- `binomial_kl_from_output`: the Bernoulli KL at logit = forward logit + z, with its
  gradient to z (the binomial schedule is fixed: nothing else needs one).

Forward values equal the unfused computation up to float64 rounding: the Gaussian reverse
mean is formed directly, mu = x^t + beta_t yM / sqrt(1 - abar_t) (or the forward posterior's
mean at x0_hat), where the unfused path goes through zM and back (the paper's form
mu = (x^t - zM)(1 - Sigma) + zM). tests/diffusion/test_train_kl.py checks values against the
unfused path and the hand-written backward with torch.autograd.gradcheck. Steps t >= 2 only
(the training estimate never draws t = 1, whose fixed first step has no KL term).

Tensors: y (B, *shape, 2) float64; x0, xt (B, *shape) float64; rows (K, B, 1, ..., 1) the
gathered `coefficient_table` rows (diffusion.processes.gaussian); KL (B,) nats.
"""

from __future__ import annotations

import torch
from torch.nn.functional import logsigmoid

# rows of diffusion.processes.gaussian.coefficient_table (StepCoefficients' order)
_ABAR, _ABAR_PREV, _BETA, _SQRT_ABAR, _SQRT_1M_ABAR = 0, 1, 2, 3, 4
_LOG_BETA, _LOG1M_BETA, _SQRT_1M_BETA, _C0, _CT, _VQ = 5, 6, 7, 8, 9, 10


def _sum_to_rows(v: torch.Tensor) -> torch.Tensor:
    """(B, *shape) -> (B, 1, ..., 1): the per-example sum, shaped like a gathered row."""
    return v.reshape(v.shape[0], -1).sum(1).reshape((-1,) + (1,) * (v.dim() - 1))


class _GaussianKL(torch.autograd.Function):
    """KL(q(x^{t-1} | x^t, x^0) || p(x^{t-1} | x^t)) from the network's outputs y, per
    example; `v_mean` selects the "v" mean form (diffusion.model.DiffusionModel.readout)."""

    @staticmethod
    def forward(ctx, y, xt, x0, rows, v_mean: bool):
        r = rows.unbind(0)
        y_m, y_s = y[..., 0], y[..., 1]
        var = torch.sigmoid(y_s + r[_LOG_BETA] - r[_LOG1M_BETA])  # Sigma (App. D.2.1)
        if v_mean:  # mu = c0 x0_hat + ct x^t at x0_hat = sqrt(abar) x^t - sqrt(1 - abar) yM
            x0_hat = r[_SQRT_ABAR] * xt - r[_SQRT_1M_ABAR] * y_m
            mean_p = r[_C0] * x0_hat + r[_CT] * xt
        else:  # mu = x^t + beta_t yM / sqrt(1 - abar_t)
            mean_p = xt + r[_BETA] * y_m / r[_SQRT_1M_ABAR]
        d = r[_C0] * x0 + r[_CT] * xt - mean_p  # forward posterior mean - reverse mean
        ratio = r[_VQ] / var
        kl = 0.5 * (ratio - 1 - torch.log(ratio) + d * d / var)
        ctx.save_for_backward(y, xt, x0, rows, var, d)
        ctx.v_mean = v_mean
        return kl.reshape(kl.shape[0], -1).sum(1)

    @staticmethod
    def backward(ctx, grad):
        y, xt, x0, rows, var, d = ctx.saved_tensors
        r = rows.unbind(0)
        g = grad.reshape((-1,) + (1,) * (xt.dim() - 1))
        vq = r[_VQ]
        g_d = g * d / var  # dKL/dd
        # dKL/dSigma = (Sigma - vq - d^2) / (2 Sigma^2); dSigma/du = Sigma (1 - Sigma)
        g_u = g * 0.5 * (var - vq - d * d) * (1 - var) / var
        g_rows = torch.zeros_like(rows)
        g_y = torch.empty_like(y)
        g_y[..., 1] = g_u
        g_rows[_LOG_BETA] = _sum_to_rows(g_u)
        g_rows[_LOG1M_BETA] = -g_rows[_LOG_BETA]
        g_rows[_VQ] = _sum_to_rows(g * 0.5 * (1 / var - 1 / vq))
        g_rows[_C0] = _sum_to_rows(g_d * x0)
        y_m = y[..., 0]
        if ctx.v_mean:  # d = c0 x0 + ct x^t - c0 (sqrt(abar) x^t - sqrt(1 - abar) yM) - ct x^t
            c0 = r[_C0]
            g_rows[_C0] -= _sum_to_rows(g_d * (r[_SQRT_ABAR] * xt - r[_SQRT_1M_ABAR] * y_m))
            g_rows[_SQRT_ABAR] = -_sum_to_rows(g_d * c0 * xt)
            g_rows[_SQRT_1M_ABAR] = _sum_to_rows(g_d * c0 * y_m)
            g_y[..., 0] = g_d * c0 * r[_SQRT_1M_ABAR]
            g_xt = -g_d * c0 * r[_SQRT_ABAR]
        else:  # d = c0 x0 + ct x^t - x^t - beta yM / sqrt(1 - abar)
            s1 = r[_SQRT_1M_ABAR]
            g_rows[_CT] = _sum_to_rows(g_d * xt)
            g_rows[_BETA] = -_sum_to_rows(g_d * y_m / s1)
            g_rows[_SQRT_1M_ABAR] = _sum_to_rows(g_d * r[_BETA] * y_m / (s1 * s1))
            g_y[..., 0] = -g_d * r[_BETA] / s1
            g_xt = g_d * (r[_CT] - 1)
        return (
            g_y if ctx.needs_input_grad[0] else None,
            g_xt if ctx.needs_input_grad[1] else None,
            None,
            g_rows if ctx.needs_input_grad[3] else None,
            None,
        )


def gaussian_kl_from_output(
    y: torch.Tensor, xt: torch.Tensor, x0: torch.Tensor, rows: torch.Tensor, v_mean: bool
) -> torch.Tensor:
    """(B,) KL_t, nats, of the diagonal Gaussian kernel read out from y at steps t >= 2:
    `GaussianDiffusion.kl(x0, xt, t, model.readout(xt, t, beta), beta)` in one node.
    x0 gets no gradient (data)."""
    return _GaussianKL.apply(y, xt, x0.detach(), rows, v_mean)


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
