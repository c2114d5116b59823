"""The training step's float64 terms as few autograd nodes, with the derivatives written out
(Sohl-Dickstein et al. 2015, Eq. 14 and App. B; model.md sections 3, 4 and 7).

On the toy networks a training step's float64 bookkeeping was a few dozen small tensor ops
forward and as many autograd nodes backward, each costing microseconds of dispatch against a
network step of a few milliseconds (issue 14). Each function here computes the same numbers as
the straightforward code as one `torch.autograd.Function`:

- `table_with_grad`: `diffusion.processes.gaussian.coefficient_table` (the schedule's derived
  numbers at every t), with its gradient to beta (a learned schedule);
- `q_sample_rows`: x^t = sqrt(abar_t) x^0 + sqrt(1 - abar_t) eps from the gathered rows;
- `gaussian_edge`: `GaussianDiffusion.edge_terms` from sum_i (x^0_i)^2, beta_1 and abar_T;
- `gaussian_kl_from_output`: the diagonal Gaussian kernel read out from the network's raw
  outputs y (both mean forms, "noise" and "v") and the KL to the forward posterior, with
  gradients to y, to x^t (a learned schedule's path through the network's input) and to the
  gathered schedule rows;
- `binomial_kl_from_output`: the Bernoulli KL at logit = forward logit + z, with its
  gradient to z (the binomial schedule is fixed: nothing else needs one).

Forward values equal the unfused computation up to float64 rounding (the table and x^t bit
for bit): the Gaussian reverse mean is formed directly, mu = x^t + beta_t yM / sqrt(1 - abar_t)
(or the forward posterior's mean at x0_hat), where the unfused path goes through zM and back
(the paper's form mu = (x^t - zM)(1 - Sigma) + zM). tests/diffusion/test_fused.py checks each
against the unfused path and its backward with torch.autograd.gradcheck. KL terms: steps
t >= 2 only (the training estimate never draws t = 1, whose fixed first step has no KL term).

Tensors: y (B, *shape, 2) float64; x0, xt (B, *shape) float64; rows (K, B, 1, ..., 1) the
gathered `coefficient_table` rows; beta (T,); KL and edge terms (B,) nats.
"""

from __future__ import annotations

import math

import torch
from torch.nn.functional import logsigmoid

LOG_2PI = math.log(2 * math.pi)

# rows of diffusion.processes.gaussian.coefficient_table (StepCoefficients' order)
_ABAR, _ABAR_PREV, _BETA, _SQRT_ABAR, _SQRT_1M_ABAR = 0, 1, 2, 3, 4
_LOG_BETA, _LOG1M_BETA, _SQRT_1M_BETA, _C0, _CT, _VQ = 5, 6, 7, 8, 9, 10
# the rows a KL's gradient reaches, in the order _GaussianKL.backward lists them
_NOISE_ROWS = torch.tensor([_LOG_BETA, _VQ, _C0, _CT, _BETA, _SQRT_1M_ABAR])
_V_ROWS = torch.tensor([_LOG_BETA, _VQ, _C0, _SQRT_ABAR, _SQRT_1M_ABAR])


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


class _CoefficientTable(torch.autograd.Function):
    """(K, T) rows of `StepCoefficients` from beta (T,); the expressions of
    diffusion.processes.gaussian.coefficient_table, and their derivatives."""

    @staticmethod
    def forward(ctx, beta):
        table = table_rows(beta)
        ctx.save_for_backward(beta, table)
        return table

    @staticmethod
    def backward(ctx, grad):
        beta, table = ctx.saved_tensors
        G, r = grad.unbind(0), table.unbind(0)
        abar, ap, sq_a, sq_1ma, sq_1mb = r[_ABAR], r[_ABAR_PREV], r[3], r[4], r[_SQRT_1M_BETA]
        one_m_a, one_m_ap = 1 - abar, 1 - ap
        # c0, ct, vq = (...) / (1 - abar): each one's derivative in abar is itself / (1 - abar)
        g_abar = (
            G[_ABAR]
            + G[3] * 0.5 / sq_a
            - G[4] * 0.5 / sq_1ma
            + (G[_C0] * r[_C0] + G[_CT] * r[_CT] + G[_VQ] * r[_VQ]) / one_m_a
        )
        g_ap = (
            G[_ABAR_PREV]
            + G[_C0] * beta / one_m_a * 0.5 / ap.sqrt()
            - (G[_CT] * sq_1mb + G[_VQ] * beta) / one_m_a
        )
        g_beta = (
            G[_BETA]
            + G[_LOG_BETA] / beta
            - G[_LOG1M_BETA] / (1 - beta)
            - (G[_SQRT_1M_BETA] + G[_CT] * one_m_ap / one_m_a) * 0.5 / sq_1mb
            + (G[_C0] * ap.sqrt() + G[_VQ] * one_m_ap) / one_m_a
        )
        g_abar = g_abar + torch.cat([g_ap[1:], g_ap.new_zeros(1)])  # ap_t = abar_{t-1}
        # abar_t = prod_{s <= t} (1 - beta_s): d abar_t / d beta_s = -abar_t / (1 - beta_s)
        tail = (g_abar * abar).flip(0).cumsum(0).flip(0)
        return g_beta - tail / (1 - beta)


def table_with_grad(beta: torch.Tensor) -> torch.Tensor:
    """`diffusion.processes.gaussian.coefficient_table(beta)` as one autograd node."""
    return _CoefficientTable.apply(beta)


class _QSample(torch.autograd.Function):
    """x^t = sqrt(abar_t) x^0 + sqrt(1 - abar_t) eps from gathered rows; gradient to rows."""

    @staticmethod
    def forward(ctx, rows, x0, noise):
        ctx.save_for_backward(x0, noise)
        ctx.rows_shape = rows.shape
        return rows[_SQRT_ABAR] * x0 + rows[_SQRT_1M_ABAR] * noise

    @staticmethod
    def backward(ctx, grad):
        x0, noise = ctx.saved_tensors
        K, B = ctx.rows_shape[:2]
        sums = torch.stack([grad * x0, grad * noise]).reshape(2, B, -1).sum(2)  # (2, B)
        g_rows = sums.new_zeros(K, B)
        g_rows[_SQRT_ABAR : _SQRT_1M_ABAR + 1] = sums  # rows 3 and 4
        return g_rows.reshape(ctx.rows_shape), None, None


def q_sample_rows(rows: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """(B, *shape) x^t ~ q(x^t | x^0) at the gathered rows' steps, eps = noise (float64)."""
    return _QSample.apply(rows, x0.detach(), noise.detach())


class _GaussianEdge(torch.autograd.Function):
    """The edge terms of GaussianDiffusion.edge_terms from sum_i (x^0_i)^2 (B,), D, beta_1 and
    abar_T (0-dim): l0 - lT with l0 = E_q[log p(x^0 | x^1)], lT = KL(q(x^T | x^0) || pi)."""

    @staticmethod
    def forward(ctx, sq, D: int, b1, abar_T):
        l0 = -0.5 * D * (LOG_2PI + torch.log(b1)) - 0.5 * b1 * sq - 0.5 * (1 - b1) * D
        lT = 0.5 * (abar_T * sq - D * abar_T - D * torch.log1p(-abar_T))
        ctx.save_for_backward(sq, b1, abar_T)
        ctx.D = D
        return l0 - lT

    @staticmethod
    def backward(ctx, grad):
        sq, b1, abar_T = ctx.saved_tensors
        D = ctx.D
        g_b1 = (grad * (0.5 * D - 0.5 * D / b1 - 0.5 * sq)).sum()
        g_abar_T = -0.5 * (grad * (sq - D + D / (1 - abar_T))).sum()
        return None, None, g_b1, g_abar_T


def gaussian_edge(sq: torch.Tensor, D: int, b1: torch.Tensor, abar_T: torch.Tensor) -> torch.Tensor:
    """(B,) `GaussianDiffusion.edge_terms` as one node; sq (B,) = sum_i (x^0_i)^2."""
    return _GaussianEdge.apply(sq, D, b1, abar_T)


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
        want_y, want_xt, _, want_rows, _ = ctx.needs_input_grad
        r = rows.unbind(0)
        g = grad.reshape((-1,) + (1,) * (xt.dim() - 1))
        vq, y_m = r[_VQ], y[..., 0]
        g_d = g * d / var  # dKL/dd
        # dKL/dSigma = (Sigma - vq - d^2) / (2 Sigma^2); dSigma/du = Sigma (1 - Sigma)
        g_u = g * 0.5 * (var - vq - d * d) * (1 - var) / var
        if ctx.v_mean:  # d = c0 x0 + ct x^t - c0 (sqrt(abar) x^t - sqrt(1 - abar) yM) - ct x^t
            c0 = r[_C0]
            g_ym = g_d * c0 * r[_SQRT_1M_ABAR]
            g_xt = -g_d * c0 * r[_SQRT_ABAR] if want_xt else None
            if want_rows:  # rows LOG_BETA, VQ, C0, SQRT_ABAR, SQRT_1M_ABAR
                parts = [
                    g_u,
                    g * 0.5 * (1 / var - 1 / vq),
                    g_d * (x0 - r[_SQRT_ABAR] * xt + r[_SQRT_1M_ABAR] * y_m),
                    -g_d * c0 * xt,
                    g_d * c0 * y_m,
                ]
        else:  # d = c0 x0 + ct x^t - x^t - beta yM / sqrt(1 - abar)
            s1 = r[_SQRT_1M_ABAR]
            g_ym = -g_d * r[_BETA] / s1
            g_xt = g_d * (r[_CT] - 1) if want_xt else None
            if want_rows:  # rows LOG_BETA, VQ, C0, CT, BETA, SQRT_1M_ABAR
                parts = [
                    g_u,
                    g * 0.5 * (1 / var - 1 / vq),
                    g_d * x0,
                    g_d * xt,
                    -g_d * y_m / s1,
                    -g_ym * y_m / s1,
                ]
        g_rows = None
        if want_rows:
            sums = torch.stack(parts).reshape(len(parts), rows.shape[1], -1).sum(2)  # (R, B)
            g_rows = sums.new_zeros(rows.shape[:2])
            g_rows[_V_ROWS if ctx.v_mean else _NOISE_ROWS] = sums
            g_rows[_LOG1M_BETA] = -sums[0]
            g_rows = g_rows.reshape(rows.shape)
        g_y = torch.stack([g_ym, g_u], -1) if want_y else None
        return g_y, g_xt, None, g_rows, None


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
