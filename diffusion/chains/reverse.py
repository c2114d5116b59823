"""Reverse processes for the chains (diffusion.chains.chain.Reverse): a trained model's, and ones
given by closed-form kernels (oracles, tests).

- `ModelReverse`: a `DiffusionModel`'s kernel p(x^{t-1} | x^t) =
  process.p_step(x^t, t, readout(x^t, t), beta), any process and covariance, evaluated without
  gradients; `model_reverse(model)` builds it, `gaussian_reverse(model)` too after checking
  that the kernel is the paper's diagonal Gaussian one (what strided steps and the image
  posteriors need).
- `GaussianReverse(beta, mean_var)`: a diagonal Gaussian kernel from a function of (x, t).
- `BinomialReverse(T, m, prob)`: a binomial kernel from its flip probabilities.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn.functional import logsigmoid

from diffusion.chains.chain import Reverse
from diffusion.chains.strided import strided_constants
from diffusion.nets.compiled import (
    CompiledCall,
    compiled_binary_level,
    compiled_binary_logit,
    compiled_forward,
)
from diffusion.processes.base import Bernoulli, Normal, Process, StepDist, rand
from diffusion.processes.binomial import BinomialDiffusion
from diffusion.processes.gaussian import GaussianDiffusion, StepCoefficients

if TYPE_CHECKING:
    from diffusion.model import DiffusionModel

MeanVar = Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]
"""(x^t (B, *shape) float64, t) -> mean, var of p(x^{t-1} | x^t), each (B, *shape)."""


@dataclass(frozen=True, eq=False)
class GaussianReverse(Reverse):
    """A Gaussian reverse process: its forward schedule and one-step reverse kernel.

    beta: (T,) float64, beta_1..T. mean_var(x, t): p(x^{t-1} | x^t) at step t (for t = 1
    the fixed first step). pi = N(0, I).
    """

    beta: torch.Tensor
    mean_var: MeanVar

    @property
    def T(self) -> int:  # type: ignore[override]
        return int(self.beta.shape[0])

    def kernel(self, x: torch.Tensor, t: int) -> Normal:
        return Normal(*self.mean_var(x, t))

    def prior(self, shape: tuple[int, ...], device: torch.device) -> Normal:
        zeros = torch.zeros(shape, dtype=torch.float64, device=device)
        return Normal(zeros, torch.ones_like(zeros))


@dataclass(frozen=True, eq=False)
class BinomialReverse(Reverse):
    """A binomial reverse process: T steps, pi = Bernoulli(m), and the model's flip rates.

    prob(x, t): P(x^{t-1} = 1 | x^t) = f_b(x^t, t), (B, *shape) float64 (model.md section 7).
    """

    T: int
    m: float
    prob: Callable[[torch.Tensor, int], torch.Tensor]

    def kernel(self, x: torch.Tensor, t: int) -> Bernoulli:
        return Bernoulli(self.prob(x, t))

    def prior(self, shape: tuple[int, ...], device: torch.device) -> Bernoulli:
        return Bernoulli(torch.full(shape, self.m, dtype=torch.float64, device=device))


class ModelReverse(Reverse):
    """The reverse process of a trained `DiffusionModel` (App. D.2.1), without gradients.

    `net`, if given, evaluates in place of the model's network (a wrapper with its
    interface, e.g. `diffusion.images.tiling.SizedNet` for images of another size).

    Every row of a chain's batch is at the same level, so the kernel reads the schedule's
    numbers at t as single numbers (no gather per row) and, for the paper's diagonal
    Gaussian kernel, forms the mean straight from the network's outputs (mu = x^t + beta_t
    yM / sqrt(1 - abar_t), or the forward posterior's mean at x0_hat for the "v" form) and a
    strided step's mean and variance in one pass (`step`): the numbers of
    process.p_step(readout) and diffusion.chains.strided to float64 rounding, in a fraction of
    the tensor operations (tests/diffusion/test_chain.py). The schedule's table is read into
    Python floats once per chain (one transfer from the model's device).
    """

    def __init__(self, model: DiffusionModel, net: nn.Module | None = None) -> None:
        # the network compiled where train.compile is set and the model's chains have run
        # long enough in this process (DiffusionModel.chain_net); a caller's wrapper as it is
        self.model, self.net = model, net if net is not None else model.chain_net()
        # while the network runs eagerly and may be compiled later: the model's chain seconds
        # at which it is (read once per chain); None: no levels to count
        eager = net is None and not isinstance(self.net, CompiledCall)
        self._compile_after = model.chains_compile_after_s() if eager else None
        self.process: Process = model.process
        self.T = model.T
        self.beta = model.beta().detach()
        self.v_mean = model.config.diffusion.mean == "v"
        proc = self.process
        self._diagonal = isinstance(proc, GaussianDiffusion) and not proc.full

    @torch.no_grad()
    def kernel(self, x: torch.Tensor, t: int) -> StepDist:
        if self._compile_after is None:
            return self.differentiable_kernel(x, t)
        started = time.perf_counter()
        dist = self.differentiable_kernel(x, t)
        self._count(started)
        return dist

    def _count(self, started: float) -> None:
        """Add an eager level's seconds to the model's (DiffusionModel.chain_net); once they
        reach `_compile_after`, the rest of this chain calls the network compiled."""
        model = self.model
        model.chain_eager_s += time.perf_counter() - started
        if model.chain_eager_s >= self._compile_after:  # type: ignore[operator]
            self.net, self._compile_after = compiled_forward(model.net), None
            for name in ("_binary_compiled", "_binary_fused"):  # built again for the compiled net
                self.__dict__.pop(name, None)

    def differentiable_kernel(self, x: torch.Tensor, t: int) -> StepDist:
        """`kernel` with autograd as the caller has it: reconstruction guidance
        (diffusion.chains.posterior_guided) differentiates the kernel's mean in x^t."""
        proc, model = self.process, self.model
        if isinstance(proc, BinomialDiffusion):  # bit for bit p_step(readout) (eager)
            return Bernoulli(*self._binary_kernel(x, t))
        if not self._diagonal:
            tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
            return proc.p_step(x, tt, model.readout(x, tt, self.beta, net=self.net), self.beta)
        y = model.net_output(x, t, self.net)
        x = x.double()
        if t == 1:  # the fixed first step (App. B.2)
            c = self._numbers_at(t)
            return Normal(c.sqrt_1m_beta * x, torch.full_like(x, c.beta))
        m1, m2, logit_beta = self._levels[t]
        mean = torch.add(x if m1 == 1.0 else x * m1, y[..., 0], alpha=m2)
        return Normal(mean, torch.sigmoid(y[..., 1] + logit_beta))

    def _binary_kernel(self, x: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The binomial kernel's (probability, logit) at level t: p_logit_at of the network's
        z and its sigmoid, or where the network is compiled (train.compile) the same
        expressions compiled whole with the level's basis row and forward logits as inputs
        (diffusion.nets.compiled.binary_logit)."""
        fast = self._binary_compiled
        if fast is None or t == 1:
            z = self.model.net_output(x, t, self.net)[..., 0]
            logit = self.process.p_logit_at(x, t, z, self.beta)  # type: ignore[attr-defined]
            return torch.sigmoid(logit), logit
        fn, rows, logits = fast
        return fn(self.net.fn, x.double(), rows[t - 1], logits[t - 1])  # type: ignore[union-attr]

    @cached_property
    def _binary_compiled(self) -> tuple[CompiledCall, list, list] | None:
        """(compiled binary_logit, basis rows, (2,) forward logits per step) for a binomial
        model whose network the chain runs compiled; else None."""
        tables = self._binary_tables
        return None if tables is None else (compiled_binary_logit(), *tables)

    @cached_property
    def _binary_fused(self) -> tuple[CompiledCall, list, list] | None:
        """(compiled binary_level, basis rows, forward logits) as `_binary_compiled`."""
        tables = self._binary_tables
        return None if tables is None else (compiled_binary_level(), *tables)

    @cached_property
    def _binary_tables(self) -> tuple[list, list] | None:
        """(basis row per step in the network's dtype, (2,) forward logits per step) for a
        binomial model whose network the chain runs compiled; else None."""
        if not isinstance(self.net, CompiledCall) or not isinstance(
            self.process, BinomialDiffusion
        ):
            return None
        dtype = self.model._net_dtype()
        rows = list(self.model.basis.table().to(dtype).unbind(0))
        logits = list(self.process.logit_table(self.beta).T.contiguous().unbind(0))
        return rows, logits

    FUSED_DRAWS = 1 << 20  # U(0, 1) draws made at once by `run_bits` (8 MiB of float64)

    @torch.no_grad()
    def run_bits(
        self,
        x: torch.Tensor,
        top: int,
        stop: int,
        generator: torch.Generator | None,
        log_odds: torch.Tensor | None,
        on_level: Callable[[torch.Tensor, int], None] | None,
    ) -> tuple[torch.Tensor, int]:
        """Levels top..max(stop, 1) + 1 of a binomial chain whose network runs compiled, each
        one compiled call (diffusion.nets.compiled.binary_level: kernel, product with r and
        draw). The U(0, 1) draws of up to 64 levels are made at once (at most FUSED_DRAWS
        numbers), which is the stream the level-by-level chain draws one level at a time
        (its `Bernoulli.sample`): on the CPU the same bits, level for level, and the same
        generator state after. The fixed first step (level 1) stays level by level."""
        fused, last = self._binary_fused, max(stop, 1)
        if fused is None or top <= last:
            return x, top
        fn, rows, logits = fused
        x = x.to(torch.float64)
        odds = (
            torch.zeros_like(x)
            if log_odds is None
            else torch.broadcast_to(log_odds.to(x.device, torch.float64), x.shape).contiguous()
        )
        chunk = max(1, min(64, self.FUSED_DRAWS // max(1, x.numel())))
        draws: list[torch.Tensor] = []
        for t in range(top, last, -1):
            if not draws:  # the next levels' draws, in the order the levels use them
                n = min(chunk, t - last)
                draws = list(rand((n, *x.shape), generator, x.device).unbind(0))[::-1]
            x = fn(self.net.fn, x, rows[t - 1], logits[t - 1], draws.pop(), odds)  # type: ignore[union-attr]
            if on_level is not None:
                on_level(x, t - 1)
        return x, last

    @cached_property
    def _columns(self) -> list[list[float]]:
        """The schedule's table as Python floats, one list per step (read once per chain)."""
        return self.process.table(self.beta).T.tolist()  # type: ignore[attr-defined]

    @cached_property
    def _abar(self) -> list[float]:
        """`alpha_bar` (abar_0..T) as Python floats."""
        return self.alpha_bar.tolist()

    @cached_property
    def _levels(self) -> list[tuple[float, float, float]]:
        """(m1, m2, log beta_t - log(1 - beta_t)) at each step t (index t; `_mean_coefficients`
        and the variance's offset), Python floats computed once per chain."""
        out = [(1.0, 0.0, 0.0)]
        for t in range(1, self.T + 1):
            c = self._numbers_at(t)
            out.append((*self._mean_coefficients(c), c.log_beta - c.log1m_beta))
        return out

    def _numbers_at(self, t: int) -> StepCoefficients:
        """`StepCoefficients` at step t as Python floats."""
        return StepCoefficients(*self._columns[t - 1])

    def _mean_coefficients(self, c: StepCoefficients) -> tuple[float, float]:
        """(m1, m2) with the kernel's mean mu = m1 x^t + m2 yM: noise form m1 = 1,
        m2 = beta_t / sqrt(1 - abar_t); "v" form mu = c0 x0_hat + ct x^t at
        x0_hat = sqrt(abar_t) x^t - sqrt(1 - abar_t) yM (diffusion.model.readout)."""
        if self.v_mean:
            return c.c0 * c.sqrt_abar + c.ct, -(c.c0 * c.sqrt_1m_abar)
        return 1.0, c.beta / c.sqrt_1m_abar

    @torch.no_grad()
    def step(self, x: torch.Tensor, t: int, s: int) -> StepDist:
        """p(x^s | x^t): for the diagonal Gaussian kernel and s < t - 1 the strided step of
        diffusion.chains.strided (`strided_constants`) applied to the one-step kernel's mean
        mu = m1 x^t + m2 yM and log variance log Sigma = log sigmoid(.), without forming
        either: the same numbers as `strided_from_one_step(kernel(x, t))` to float64
        rounding."""
        if not self._diagonal or not 1 <= s < t - 1 or t > self.T:
            return super().step(x, t, s)
        k = strided_constants(self._abar[t], self._abar[t - 1], self._abar[s])
        started = time.perf_counter()
        y = self.model.net_output(x, t, self.net)
        if self._compile_after is not None:
            self._count(started)
        m1, m2, logit_beta = self._levels[t]
        mean = torch.add(x.double() * (k.mu * m1 + k.x), y[..., 0], alpha=k.mu * m2)
        log_var = logsigmoid(y[..., 1] + logit_beta)  # log Sigma
        return Normal(mean, (log_var * k.power).add_(k.log_offset).exp_())

    def prior(self, shape: tuple[int, ...], device: torch.device) -> StepDist:
        return self.process.prior(shape, device)


def model_reverse(model: DiffusionModel, net: nn.Module | None = None) -> ModelReverse:
    """The reverse process of a trained model, any process (full ancestral sampling)."""
    return ModelReverse(model, net)


def gaussian_reverse(model: DiffusionModel, net: nn.Module | None = None) -> ModelReverse:
    """`model_reverse` for a model with the paper's diagonal Gaussian kernel; ValueError
    otherwise (strided chains and the image posteriors need that kernel)."""
    kind = getattr(model.process, "kind", "?")
    if kind != "gaussian":
        raise ValueError(f"this needs a Gaussian diffusion model, got {kind}")
    if getattr(model.process, "full", False):
        raise ValueError(
            "strided chains and posteriors use the diagonal reverse kernel; this model has a "
            "full-covariance kernel (diffusion.covariance = 'full'): sample it with the full chain"
        )
    return ModelReverse(model, net)
