"""Gaussian diffusion (Sohl-Dickstein et al. 2015, section 2 and App. B, D.2.1; model.md 3-4).

Owns the forward kernel, its marginal and exact posterior, the reverse kernel in the paper's
parameterization, the fixed first step, the per-step KL terms and the exact edge terms of the
bound. Stateless: every function takes the schedule beta (T,) float64 (possibly learned, so
gradients flow), steps t as a (B,) long tensor in 1..T, and works in float64. Log densities and
KL terms are in nats, summed over the dimensions of one example.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from diffusion.processes.base import (
    CorrelatedNormal,
    DerivedSteps,
    Normal,
    PerSchedule,
    StepRows,
    randn,
)
from diffusion.processes.fused import table_rows

LOG_2PI = math.log(2 * math.pi)


def alpha_bar(beta: torch.Tensor) -> torch.Tensor:
    """(T,) cumulative products abar_t = prod_{s<=t} (1 - beta_s)."""
    return torch.cumprod(1 - beta, dim=0)


def at(v: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """v[t - 1] shaped (B, 1, ..., 1) to broadcast against x (B, *shape)."""
    return v[t - 1].reshape((-1,) + (1,) * (x.dim() - 1))


class StepCoefficients(NamedTuple):
    """Schedule-derived numbers at the steps t of a batch, each (B, 1, ..., 1) float64 (or
    (T,) rows of the table, `GaussianDiffusion.table`): abar_t, abar_{t-1}, beta_t, their
    square roots and logs, and the forward posterior's coefficients (model.md section 3):
    mean = c0 x^0 + ct x^t, variance vq."""

    abar: torch.Tensor  # abar_t
    abar_prev: torch.Tensor  # abar_{t-1} (1 at t = 1)
    beta: torch.Tensor  # beta_t
    sqrt_abar: torch.Tensor  # sqrt(abar_t)
    sqrt_1m_abar: torch.Tensor  # sqrt(1 - abar_t)
    log_beta: torch.Tensor  # log(beta_t)
    log1m_beta: torch.Tensor  # log(1 - beta_t)
    sqrt_1m_beta: torch.Tensor  # sqrt(1 - beta_t)
    c0: torch.Tensor  # sqrt(abar_{t-1}) beta_t / (1 - abar_t)
    ct: torch.Tensor  # sqrt(1 - beta_t) (1 - abar_{t-1}) / (1 - abar_t)
    vq: torch.Tensor  # (1 - abar_{t-1}) beta_t / (1 - abar_t)


def coefficient_table(beta: torch.Tensor) -> torch.Tensor:
    """(K, T) float64: the rows of `StepCoefficients` at every t = 1..T, each computed with the
    same expression the per-step formulas use (so a row gathered at t equals the number
    computed from beta at t). Differentiable in beta (a learned schedule)."""
    return table_rows(beta)


def _gather_coefficients(table: torch.Tensor, t: torch.Tensor, x: torch.Tensor):
    """(rows (K, B, 1, ..., 1), `StepCoefficients` of those rows) at steps t (B,) against x."""
    rows = torch.index_select(table, 1, t - 1)  # t-indexing's rows, at a fraction of its cost
    rows = rows.reshape((table.shape[0], -1) + (1,) * (x.dim() - 1))
    return rows, StepCoefficients(*rows.unbind(0))


def sum_dims(x: torch.Tensor) -> torch.Tensor:
    """(B, *shape) -> (B,) sum over an example's dimensions."""
    return x.reshape(x.shape[0], -1).sum(1)


def normal_log_prob(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """(B,) sum_i log N(x_i; mean_i, var_i), nats."""
    return sum_dims(-0.5 * (LOG_2PI + torch.log(var) + (x - mean) ** 2 / var))


def normal_kl(
    m1: torch.Tensor, v1: torch.Tensor, m2: torch.Tensor, v2: torch.Tensor
) -> torch.Tensor:
    """(B,) sum_i KL(N(m1_i, v1_i) || N(m2_i, v2_i)), nats (closed form)."""
    r = v1 / v2
    return sum_dims(0.5 * (r - 1 - torch.log(r) + (m1 - m2) ** 2 / v2))


def unit_lower(z_c: torch.Tensor) -> torch.Tensor:
    """(B, D, D) unit lower-triangular U from per-dimension outputs z_c (B, D, D - 1): row i
    takes its first i entries below the diagonal."""
    B, D = z_c.shape[0], z_c.shape[1]
    full = torch.zeros(B, D, D, dtype=z_c.dtype, device=z_c.device)
    full[:, :, : D - 1] = z_c
    return torch.eye(D, dtype=z_c.dtype, device=z_c.device) + torch.tril(full, diagonal=-1)


def unit_lower_inverse(U: torch.Tensor) -> torch.Tensor:
    """(B, D, D) inverse of unit lower-triangular U = I + N: N is nilpotent, so
    U^-1 = sum_{k < D} (-N)^k (D - 1 batched products; faster than a triangular solve for the
    small D this is used with)."""
    eye = torch.eye(U.shape[-1], dtype=U.dtype, device=U.device)
    minus_n = eye - U
    inv, term = eye + minus_n, minus_n
    for _ in range(U.shape[-1] - 2):
        term = term @ minus_n
        inv = inv + term
    return inv


class GaussianDiffusion(DerivedSteps):
    """pi = N(0, I); q(x^t | x^{t-1}) = N(sqrt(alpha_t) x^{t-1}, beta_t I) (App. B, Table App.1);
    a `diffusion.processes.base.Process`.

    covariance "diagonal" is the paper's reverse kernel N(mu, diag(Sigma)). "full" (vector data
    with D dimensions) adds a unit lower-triangular factor U read out like the other outputs:
    Sigma = diag(s)^(1/2) U U^T diag(s)^(1/2), with s the paper's sigmoid variances; U = I is
    the paper's kernel (docs/model-notes.md). Each dimension then has 2 + (D - 1) outputs.
    """

    kind = "gaussian"

    def __init__(self, covariance: str = "diagonal", D: int = 1) -> None:
        self.full = covariance == "full"
        self.D = D
        self.n_outputs = 2 + (D - 1 if self.full else 0)  # zM, zS (, correlations)
        self.table = PerSchedule(coefficient_table)  # beta -> (K, T) table, kept per schedule
        self._rows = StepRows(_gather_coefficients)

    # -- the schedule's derived numbers, computed once per schedule and gathered once per t
    def coefficients(
        self, beta: torch.Tensor, t: torch.Tensor, x: torch.Tensor
    ) -> StepCoefficients:
        """`StepCoefficients` at steps t (B,), shaped (B, 1, ..., 1) against x (B, *shape):
        one gather from `self.table(beta)` (`coefficient_table`, kept per schedule by
        `diffusion.processes.base.PerSchedule`); further calls with the same (beta, t) reuse
        it: a training step's q_sample, readout, KL and posterior read one gather."""
        return self._rows(self.table(beta), t, x)[1]

    def coefficient_rows(
        self, beta: torch.Tensor, t: torch.Tensor, x: torch.Tensor
    ) -> torch.Tensor:
        """(K, B, 1, ..., 1): the same gather as `coefficients`, as one tensor (the rows of
        `coefficient_table`; diffusion.processes.fused reads it)."""
        return self._rows(self.table(beta), t, x)[0]

    def q_mean_var(
        self, x0: torch.Tensor, t: torch.Tensor, beta: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q(x^t | x^0) = N(sqrt(abar_t) x^0, (1 - abar_t) I)."""
        c = self.coefficients(beta, t, x0)
        return c.sqrt_abar * x0.double(), (1 - c.abar).expand_as(x0).clone()

    def known_bits(self, x: torch.Tensor) -> None:
        """Nothing to note (the Gaussian step does not ask whether x is bits)."""

    def trace_hints(self, x0: torch.Tensor) -> None:
        """Nothing to test before a compiled step (the Gaussian step does not branch on x0)."""

    def q_noise(
        self, shape: torch.Size | tuple[int, ...], generator: torch.Generator | None, device
    ) -> torch.Tensor:
        """The draws `q_sample` turns into x^t (Standard normal, float64): drawn apart from the
        arithmetic so that a compiled training step gets them as an input."""
        return randn(shape, generator, device)

    def q_sample(
        self,
        x0: torch.Tensor,
        t: torch.Tensor,
        beta: torch.Tensor,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x^t = sqrt(abar_t) x^0 + sqrt(1 - abar_t) eps (reparameterized: grads reach beta)."""
        if noise is None:
            noise = self.q_noise(x0.shape, generator, x0.device)
        c = self.coefficients(beta, t, x0)
        return c.sqrt_abar * x0.double() + c.sqrt_1m_abar * noise

    def log_q(
        self, xt: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, beta: torch.Tensor
    ) -> torch.Tensor:
        """(B,) log q(x^t | x^0), nats."""
        mean, var = self.q_mean_var(x0, t, beta)
        return normal_log_prob(xt.double(), mean, var)

    def q_step_sample(
        self,
        x_prev: torch.Tensor,
        t: torch.Tensor,
        beta: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """x^t ~ q(x^t | x^{t-1})."""
        b = at(beta, t, x_prev)
        noise = randn(x_prev.shape, generator, x_prev.device)
        return (1 - b).sqrt() * x_prev.double() + b.sqrt() * noise

    def log_q_step(
        self, x_prev: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, beta: torch.Tensor
    ) -> torch.Tensor:
        """(B,) log q(x^t | x^{t-1}), nats."""
        b = at(beta, t, xt)
        return normal_log_prob(xt.double(), (1 - b).sqrt() * x_prev.double(), b.expand_as(xt))

    def q_posterior(
        self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, beta: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q(x^{t-1} | x^t, x^0) = N(mu_q, var_q I) (model.md section 3), t >= 2."""
        c = self.coefficients(beta, t, xt)
        mean = c.c0 * x0.double() + c.ct * xt.double()
        return mean, c.vq.expand_as(mean)

    def log_q_posterior(
        self,
        x_prev: torch.Tensor,
        x0: torch.Tensor,
        xt: torch.Tensor,
        t: torch.Tensor,
        beta: torch.Tensor,
    ) -> torch.Tensor:
        """(B,) log q(x^{t-1} | x^t, x^0), nats, t >= 2."""
        mean, var = self.q_posterior(x0, xt, t, beta)
        return normal_log_prob(x_prev.double(), mean, var)

    def p_mean_var(
        self, xt: torch.Tensor, t: torch.Tensor, z: torch.Tensor, beta: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """p(x^{t-1} | x^t) = N(mu, Sigma) (App. D.2.1, model.md section 3).

        z: (B, *shape, 2) float64, (zM, zS) read out at t. Sigma = sigmoid(zS + logit(beta_t)),
        mu = (x^t - zM)(1 - Sigma) + zM. Rows with t = 1 use the fixed first step, the reversal
        of q(x^1 | x^0) under pi: N(sqrt(alpha_1) x^1, beta_1) (App. B.2).
        """
        xt = xt.double()
        c = self.coefficients(beta, t, xt)
        z_m, z_s = z[..., 0], z[..., 1]
        var = torch.sigmoid(z_s + c.log_beta - c.log1m_beta)
        mean = (xt - z_m) * (1 - var) + z_m
        if bool((t == 1).any()):
            first = (t == 1).reshape(c.beta.shape)
            mean = torch.where(first, c.sqrt_1m_beta * xt, mean)
            var = torch.where(first, c.beta.expand_as(var), var)
        if self.full:  # the marginal variances Sigma_ii = s_i (U U^T)_ii
            U = self.p_factor(t, z)
            var = var * (U**2).sum(-1).reshape(var.shape)
        return mean, var

    def p_factor(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """(B, D, D) the unit lower-triangular factor U of a full-covariance kernel at steps t
        (the identity on rows with t = 1, the fixed first step)."""
        B = z.shape[0]
        z_c = z.reshape(B, self.D, -1)[..., 2:].double()
        z_c = torch.where((t == 1).reshape(B, 1, 1), torch.zeros_like(z_c), z_c)
        return unit_lower(z_c)

    def _p_full(self, xt, t, z, beta):
        """(mean (B, D), s (B, D), U^-1 (B, D, D)) of a full-covariance kernel."""
        mean, s = GaussianDiffusion.p_mean_var(_DIAGONAL, xt, t, z, beta)
        u_inv = unit_lower_inverse(self.p_factor(t, z))
        B = xt.shape[0]
        return mean.reshape(B, -1), s.reshape(B, -1), u_inv

    def _whiten(self, u_inv: torch.Tensor, s: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """(B, D) A^-1 d with Sigma = A A^T, A = diag(sqrt(s)) U."""
        return (u_inv @ (d / s.sqrt()).unsqueeze(-1)).squeeze(-1)

    def kl(
        self,
        x0: torch.Tensor,
        xt: torch.Tensor,
        t: torch.Tensor,
        z: torch.Tensor,
        beta: torch.Tensor,
    ) -> torch.Tensor:
        """(B,) KL(q(x^{t-1} | x^t, x^0) || p(x^{t-1} | x^t)), nats (Eq. 14's summand)."""
        mq, vq = self.q_posterior(x0, xt, t, beta)
        if not self.full:
            mp, vp = self.p_mean_var(xt, t, z, beta)
            return normal_kl(mq, vq, mp, vp)
        mp, s, u_inv = self._p_full(xt, t, z, beta)
        B = xt.shape[0]
        mq, vq = mq.reshape(B, -1), vq.reshape(B, -1)
        trace = ((u_inv**2) * (vq / s).unsqueeze(1)).sum((1, 2))
        quad = (self._whiten(u_inv, s, mq - mp) ** 2).sum(1)
        return 0.5 * (trace + quad - self.D + torch.log(s).sum(1) - torch.log(vq).sum(1))

    def edge_terms(self, x0: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """(B,) E_q[log p(x^0 | x^1)] - KL(q(x^T | x^0) || pi), nats, exact per example.

        Equals H_q(X^T|X^0) - H_q(X^1|X^0) - H_p(X^T) + E[log pi(x^0) - log pi(x^1)] of Eq. 14
        with the cross-entropy and the edge term computed from x^0 instead of assuming unit
        variance (see docs/model-notes.md).
        """
        x0 = x0.double()
        D = x0[0].numel()
        sq = sum_dims(x0**2)
        table = self.table(beta)
        b1, abar_T = beta[0], table[0, -1]
        l0 = -0.5 * D * (LOG_2PI + torch.log(b1)) - 0.5 * b1 * sq - 0.5 * (1 - b1) * D
        lT = 0.5 * (abar_T * sq - D * abar_T - D * torch.log1p(-abar_T))
        return l0 - lT

    def log_prior(self, x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        return normal_log_prob(x, torch.zeros_like(x), torch.ones_like(x))

    def prior(self, shape: tuple[int, ...], device: torch.device) -> Normal:
        """pi = N(0, I) over a batch of shape (B, *example shape)."""
        zeros = torch.zeros(shape, dtype=torch.float64, device=device)
        return Normal(zeros, torch.ones_like(zeros))

    def p_step(
        self, xt: torch.Tensor, t: torch.Tensor, z: torch.Tensor, beta: torch.Tensor
    ) -> Normal | CorrelatedNormal:
        """p(x^{t-1} | x^t) as a step distribution: `Normal` (diagonal) or, for the full
        kernel, `CorrelatedNormal` with the paper's mean and variances s and the factor U."""
        if not self.full:
            return Normal(*self.p_mean_var(xt, t, z, beta))
        mean, s = GaussianDiffusion.p_mean_var(_DIAGONAL, xt, t, z, beta)
        return CorrelatedNormal(mean, s, self.p_factor(t, z))

    def log_p_step(
        self,
        x_prev: torch.Tensor,
        xt: torch.Tensor,
        t: torch.Tensor,
        z: torch.Tensor,
        beta: torch.Tensor,
    ) -> torch.Tensor:
        """(B,) log p(x^{t-1} | x^t), nats."""
        if not self.full:
            mean, var = self.p_mean_var(xt, t, z, beta)
            return normal_log_prob(x_prev.double(), mean, var)
        mean, s, u_inv = self._p_full(xt, t, z, beta)
        w = self._whiten(u_inv, s, x_prev.double().reshape(mean.shape) - mean)
        return -0.5 * (self.D * LOG_2PI + torch.log(s).sum(1) + (w**2).sum(1))


_DIAGONAL = GaussianDiffusion()  # the paper's kernel: the full kernel's mean and s
