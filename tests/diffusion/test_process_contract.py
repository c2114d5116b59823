"""One suite that every diffusion process runs (diffusion.processes.base.Process), as diffusers runs
every scheduler through one common test class.

Each check compares the process with itself through identities that hold for any correct
process, exactly or within Monte Carlo standard errors (no pinned numbers):
- detailed balance of q under pi, and the fixed first step is q's reversal (App. B.2);
- the forward posterior is Bayes' rule over the forward kernel and the marginals;
- the marginal sampler equals t chained forward steps (moments);
- the per-step KL equals E[log q(x^{t-1}|x^t,x^0) - log p(x^{t-1}|x^t)] over the joint q;
- the edge terms equal their Monte Carlo definition (Eq. 14, docs/model-notes.md);
- the reverse sampler draws from the reverse density (importance weights average to 1);
- pi's sampler draws from pi's density, and its law is stationary under q.
A new process gets all of them by subclassing `ProcessContract`.
"""

from __future__ import annotations

import math

import torch

from diffusion.processes.base import Process
from diffusion.processes.binomial import BinomialDiffusion
from diffusion.processes.gaussian import GaussianDiffusion

Z = 4.5  # standard errors allowed
N = 20_000


def full(n: int, t: int) -> torch.Tensor:
    return torch.full((n,), t, dtype=torch.long)


def close_to(estimates: torch.Tensor, truth: torch.Tensor | float) -> None:
    """The mean of per-sample estimates (N,) within Z standard errors of `truth`."""
    se = estimates.std() / math.sqrt(estimates.numel())
    err = float((estimates.mean() - truth).abs())
    assert err < Z * float(se) + 1e-12, (float(estimates.mean()), truth, float(se))


class ProcessContract:
    """The checks; subclasses give the process, its schedule and draws of x and z."""

    T = 6
    shape: tuple[int, ...] = (3,)

    def process(self) -> Process:
        raise NotImplementedError

    def beta(self) -> torch.Tensor:
        return torch.linspace(0.1, 0.5, self.T, dtype=torch.float64)

    def draw_x(self, n: int, g: torch.Generator) -> torch.Tensor:
        """(n, *shape) states in the process's support (used as x^0 and as any x^t)."""
        raise NotImplementedError

    def draw_z(self, n: int, g: torch.Generator) -> torch.Tensor:
        """(n, *shape, n_outputs) readouts of moderate size."""
        p = self.process()
        return 0.4 * torch.randn(n, *self.shape, p.n_outputs, generator=g, dtype=torch.float64)

    # ------------------------------------------------------------------ exact identities
    def test_is_a_process(self) -> None:
        p = self.process()
        assert isinstance(p, Process) and p.kind in ("gaussian", "binomial")

    def test_detailed_balance_under_pi(self) -> None:
        """pi(x) q(y | x) = pi(y) q(x | y) at every step: pi is q's stationary law."""
        p, beta, g = self.process(), self.beta(), torch.Generator().manual_seed(0)
        x, y = self.draw_x(64, g), self.draw_x(64, g)
        for t in range(1, self.T + 1):
            tt = full(64, t)
            lhs = p.log_prior(x) + p.log_q_step(x, y, tt, beta)
            rhs = p.log_prior(y) + p.log_q_step(y, x, tt, beta)
            torch.testing.assert_close(lhs, rhs, rtol=1e-10, atol=1e-10)

    def test_first_step_is_the_reversal_of_q(self) -> None:
        """p(x^0 | x^1) at t = 1 ignores z and equals pi(x^0) q(x^1 | x^0) / pi(x^1)."""
        p, beta, g = self.process(), self.beta(), torch.Generator().manual_seed(1)
        x0, x1, z = self.draw_x(64, g), self.draw_x(64, g), self.draw_z(64, g)
        one = full(64, 1)
        want = p.log_prior(x0) + p.log_q_step(x0, x1, one, beta) - p.log_prior(x1)
        torch.testing.assert_close(p.log_p_step(x0, x1, one, z, beta), want)
        torch.testing.assert_close(p.log_p_step(x0, x1, one, 3 * z, beta), want)

    def test_posterior_is_bayes_rule(self) -> None:
        """q(x^{t-1} | x^t, x^0) = q(x^{t-1} | x^0) q(x^t | x^{t-1}) / q(x^t | x^0)."""
        p, beta, g = self.process(), self.beta(), torch.Generator().manual_seed(2)
        x0, xp, xt = self.draw_x(64, g), self.draw_x(64, g), self.draw_x(64, g)
        for t in range(2, self.T + 1):
            tt = full(64, t)
            want = (
                p.log_q(xp, x0, tt - 1, beta)
                + p.log_q_step(xp, xt, tt, beta)
                - p.log_q(xt, x0, tt, beta)
            )
            torch.testing.assert_close(p.log_q_posterior(xp, x0, xt, tt, beta), want)

    # ------------------------------------------------------------------ Monte Carlo
    def test_marginal_is_the_chained_steps(self) -> None:
        """x^t ~ q(x^t | x^0) has the law of t chained forward steps (first two moments)."""
        p, beta, g = self.process(), self.beta(), torch.Generator().manual_seed(3)
        x0 = self.draw_x(1, g).expand(N, *self.shape)
        for t in (2, self.T):
            a = p.q_sample(x0, full(N, t), beta, g)
            b = x0.double()
            for s in range(1, t + 1):
                b = p.q_step_sample(b, full(N, s), beta, g)
            for f in (lambda x: x, lambda x: x**2):
                fa, fb = f(a).reshape(N, -1), f(b).reshape(N, -1)
                se = torch.sqrt((fa.var(0) + fb.var(0)) / N)
                assert torch.all((fa.mean(0) - fb.mean(0)).abs() <= Z * se + 1e-12), t

    def test_kl_is_the_expected_log_ratio(self) -> None:
        """E over (x^{t-1}, x^t) ~ q(. | x^0) of KL_t(x^t) - [log q(x^{t-1}|x^t,x^0) -
        log p(x^{t-1}|x^t)] is 0: the closed-form KL against the two densities."""
        p, beta, g = self.process(), self.beta(), torch.Generator().manual_seed(4)
        x0 = self.draw_x(N, g)
        z = self.draw_z(N, g)
        for t in (2, self.T):
            tt = full(N, t)
            xp = p.q_sample(x0, tt - 1, beta, g)
            xt = p.q_step_sample(xp, tt, beta, g)
            log_ratio = p.log_q_posterior(xp, x0, xt, tt, beta) - p.log_p_step(xp, xt, tt, z, beta)
            kl = p.kl(x0, xt, tt, z, beta)
            assert kl.shape == (N,) and kl.dtype == torch.float64 and bool((kl >= -1e-9).all())
            close_to(kl - log_ratio, 0.0)

    def test_edge_terms_are_their_definition(self) -> None:
        """edge = E_{x^1~q}[log p(x^0 | x^1)] - E_{x^T~q}[log q(x^T | x^0) - log pi(x^T)]."""
        p, beta, g = self.process(), self.beta(), torch.Generator().manual_seed(5)
        x0 = self.draw_x(1, g).expand(N, *self.shape)
        z = self.draw_z(N, g)
        x1 = p.q_sample(x0, full(N, 1), beta, g)
        xT = p.q_sample(x0, full(N, self.T), beta, g)
        mc = p.log_p_step(x0, x1, full(N, 1), z, beta) - (
            p.log_q(xT, x0, full(N, self.T), beta) - p.log_prior(xT)
        )
        edge = p.edge_terms(x0[:1], beta)
        assert edge.shape == (1,)
        close_to(mc, edge[0])

    def test_reverse_sampler_draws_from_the_reverse_density(self) -> None:
        """E_{x ~ p_sample}[h(x) / p(x | x^t)] = 1 for the normalized density h = q(. |
        x^t, x^0): the sampler and log_p_step describe the same law."""
        p, beta, g = self.process(), self.beta(), torch.Generator().manual_seed(6)
        x0, xt = self.draw_x(1, g), self.draw_x(1, g)
        x0, xt = x0.expand(N, *self.shape), xt.expand(N, *self.shape)
        z = self.draw_z(1, g).expand(N, *self.shape, -1)
        for t in (2, self.T):
            tt = full(N, t)
            x = p.p_sample(xt, tt, z, beta, g)
            assert x.shape == (N, *self.shape) and x.dtype == torch.float64
            w = torch.exp(p.log_q_posterior(x, x0, xt, tt, beta) - p.log_p_step(x, xt, tt, z, beta))
            close_to(w, 1.0)

    def test_prior_sampler_draws_from_pi(self) -> None:
        """E_{x ~ pi}[q(x | x^0, t) / pi(x)] = 1 (t halfway: q there is far enough from pi
        for the check to see a sampler that draws from another law)."""
        p, beta, g = self.process(), self.beta(), torch.Generator().manual_seed(7)
        x = p.prior_sample(N, self.shape, g, torch.device("cpu"))
        assert x.shape == (N, *self.shape) and x.dtype == torch.float64
        x0 = torch.ones(N, *self.shape, dtype=torch.float64)  # in every support: bits, reals
        t = full(N, self.T // 2)
        close_to(torch.exp(p.log_q(x, x0, t, beta) - p.log_prior(x)), 1.0)

    def test_prior_sampler_is_stationary_under_q(self) -> None:
        """x ~ pi and one forward step from it have the same law (first two moments): pi is
        q's unique stationary law, so a sampler that draws anything else moves."""
        p, beta, g = self.process(), self.beta(), torch.Generator().manual_seed(8)
        x = p.prior_sample(N, self.shape, g, torch.device("cpu"))
        y = p.q_step_sample(x, full(N, self.T), beta, g)
        for f in (lambda v: v, lambda v: v**2):
            d = (f(y) - f(x)).reshape(N, -1)
            for i in range(d.shape[1]):
                close_to(d[:, i], 0.0)


class TestGaussianDiagonal(ProcessContract):
    def process(self) -> Process:
        return GaussianDiffusion()

    def draw_x(self, n: int, g: torch.Generator) -> torch.Tensor:
        return 0.5 + torch.randn(n, *self.shape, generator=g, dtype=torch.float64)


class TestGaussianFullCovariance(TestGaussianDiagonal):
    def process(self) -> Process:
        return GaussianDiffusion("full", self.shape[0])


class TestBinomial(ProcessContract):
    shape = (4,)

    def process(self) -> Process:
        return BinomialDiffusion(0.3)

    def draw_x(self, n: int, g: torch.Generator) -> torch.Tensor:
        return (torch.rand(n, *self.shape, generator=g, dtype=torch.float64) < 0.6).double()
