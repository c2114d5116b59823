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

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from diffusion.chains.chain import Reverse
from diffusion.processes.base import Bernoulli, Normal, Process, StepDist

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
    """

    def __init__(self, model: DiffusionModel, net: nn.Module | None = None) -> None:
        self.model, self.net = model, net
        self.process: Process = model.process
        self.T = model.T
        self.beta = model.beta().detach()

    @torch.no_grad()
    def kernel(self, x: torch.Tensor, t: int) -> StepDist:
        return self.model.kernel_at(x, t, self.beta, self.net)

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
