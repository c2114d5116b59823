"""Inpainting with reconstruction guidance (Ho et al. 2022, "Video Diffusion Models", section
3.1; beyond the paper, docs/model-notes.md "Guided inpainting").

The paper's rule (diffusion.chains.posterior_chains.inpaint_paper_chain) and RePaint set the
known pixels and let the network fill the rest from what it sees of them at each level. On a
large hole that is too little: at high noise levels the missing pixels' low frequencies are
decided before the known ones constrain them, and the fill takes the training data's average
brightness rather than its surroundings'. Reconstruction guidance adds the missing link: the
network's estimate of the clean image, x0_hat(x^t), should reproduce the known pixels, and
its gradient in x^t says how to move the whole state (known and missing pixels together) so
that it does.

Every reverse mean of a Gaussian kernel is the forward posterior's mean at some x0_hat:
mu = c0 x0_hat + ct x^t (c0, ct of model.md section 3), exactly so for the "v" form of the
mean and for an exact kernel (mu = E[x^{t-1} | x^t]); so x0_hat = (mu - ct x^t) / c0 for any
kernel, read from its mean. With a = the known values and M the mask, the guided estimate is

    x0~ = x0_hat - (w sqrt(abar_t) / 2) grad_{x^t} |M (a - x0_hat(x^t))|^2,

(Ho et al.'s Eq. 7: the Tweedie correction of x0_hat under p(a | x^t) ~ N(M x0_hat,
(1 - abar_t) / abar_t I); w = 1 is that correction, larger w trusts it more), and the step's
mean becomes c0 x0~ + ct x^t with the kernel's variance unchanged. The known pixels are
replaced after every step by a draw of q(x^s | x^0 = a) at the new level (Ho et al.'s
replacement method, RePaint without resampling), so the network always sees them at the
noise level it was trained for. Strided steps are built from the guided one-step kernel
(`Reverse.step`), so S kept steps work as for every other chain.

Cost: one backward pass through the network per step on top of its forward (about 3 times a
plain step).
"""

from __future__ import annotations

import math
from dataclasses import fields

import torch

from diffusion.chains.chain import Reverse, levels_down, run_chain
from diffusion.chains.inpaint_methods import GUIDANCE
from diffusion.chains.posterior_chains import chain_start, replace_known
from diffusion.processes.base import CorrelatedNormal, Normal, StepDist


class GuidedReverse(Reverse):
    """`base`'s reverse process with every step's mean guided toward the known values
    (module docstring). known: (B, *shape) float64 model space; mask: bool broadcastable to
    it, True = known; weight: w >= 0 (0: `base` unchanged)."""

    def __init__(self, base: Reverse, known: torch.Tensor, mask: torch.Tensor, weight: float):
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"the guidance weight must be a finite number >= 0, got {weight!r}")
        self.base, self.weight = base, float(weight)
        self.known = known.to(torch.float64)
        self.mask = mask.to(torch.bool).expand_as(self.known)
        self.T, self.beta = base.T, base.beta
        # the base kernel with autograd as the caller has it (diffusion.chains.reverse)
        self._kernel = getattr(base, "differentiable_kernel", base.kernel)

    def prior(self, shape: tuple[int, ...], device: torch.device) -> StepDist:
        return self.base.prior(shape, device)

    def kernel(self, x: torch.Tensor, t: int) -> StepDist:
        if t == 1 or self.weight == 0.0:  # the fixed first step: nothing to guide
            return self.base.kernel(x, t)
        abar = self.alpha_bar
        a_t, a_p = float(abar[t]), float(abar[t - 1])
        beta_t = 1.0 - a_t / a_p
        c0 = math.sqrt(a_p) * beta_t / (1.0 - a_t)
        ct = math.sqrt(1.0 - beta_t) * (1.0 - a_p) / (1.0 - a_t)
        with torch.enable_grad():
            xg = x.detach().to(torch.float64).requires_grad_(True)
            dist = self._kernel(xg, t)
            if not isinstance(dist, (Normal, CorrelatedNormal)):
                raise ValueError(
                    f"guided inpainting needs a Gaussian reverse step; got {type(dist).__name__}"
                )
            x0_hat = (dist.mean - ct * xg) / c0
            resid = torch.where(self.mask, self.known - x0_hat, torch.zeros_like(x0_hat))
            (grad,) = torch.autograd.grad(0.5 * resid.square().sum(), xg)
        # x0~ - x0_hat = -w sqrt(abar_t) grad (|r|^2 / 2 above: Eq. 7's factor 1/2 taken in)
        mean = dist.mean.detach() - (c0 * self.weight * math.sqrt(a_t)) * grad
        rest = {f.name: getattr(dist, f.name).detach() for f in fields(dist) if f.name != "mean"}
        return type(dist)(mean=mean, **rest)


def inpaint_guided_chain(
    rev: Reverse,
    x_known: torch.Tensor,
    mask: torch.Tensor,
    *,
    steps: int | None = None,
    guidance: float = GUIDANCE,
    generator: torch.Generator | None = None,
    start: tuple[torch.Tensor, int] | None = None,
) -> torch.Tensor:
    """Inpainting with reconstruction guidance and replacement (module docstring).

    x_known: (B, *shape) model space (values outside the mask are ignored); mask: bool,
    broadcastable, True = known; guidance: the weight w. Starts from pi (or, with start =
    (x_init, t0), from q(x^t0 | x_init) over [0, t0], as the other inpainting chains) and
    runs `steps` kept steps. Returns x^0 (B, *shape) float64 whose known coordinates equal
    x_known exactly.
    """
    known = x_known.to(torch.float64)
    mask = mask.to(torch.bool).expand_as(known)
    guided = GuidedReverse(rev, known, mask, guidance)
    chain, top, x = chain_start(guided, known, steps, start, generator)
    after = replace_known(chain, known, mask, generator)
    x = run_chain(chain, after(x, top), generator, levels=levels_down(top), after=after)
    return torch.where(mask, known, x)
