"""The reverse chain, run over a list of kept steps (Sohl-Dickstein et al. 2015, section 2.2).

x^T ~ pi, then x^{t-1} ~ p(x^{t-1} | x^t) down to x^0; the step 1 -> 0 is the fixed first step
(App. B.2). One loop, `run_chain`, serves every use: full ancestral sampling (levels T..0 of
the model's own reverse process), strided sampling (the same loop on `rev.respaced(S)`, whose
levels are the S kept steps) and every posterior method (diffusion.chains.posterior_chains: each
step multiplied by r with `times`, known values set with `after`, RePaint's jumps back up
with `jump`).

`Reverse` is what a chain sees of a reverse process: the one-step kernel as a step
distribution (diffusion.processes.base), the prior pi, and for Gaussian processes the schedule beta,
from which it derives alpha_bar once (the one owner of the derived tensors, as
improved-diffusion's GaussianDiffusion). Respacing builds a new `Reverse` from the kept
steps (`Respaced`), as improved-diffusion's SpacedDiffusion does. Implementations:
diffusion.chains.reverse (a trained model's, and closed-form ones for tests and oracles).

Tensors: x (B, *shape) float64 model space; levels are ints in 0..T.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from functools import cached_property

import torch

from diffusion.chains.strided import kept_steps, strided_from_one_step
from diffusion.processes.base import Normal, StepDist
from diffusion.processes.gaussian import alpha_bar


class Reverse(ABC):
    """A reverse process p(x^{t-1} | x^t), t = T..1, as the chains see it.

    Subclasses give `T` (number of levels), `kernel(x, t)` and `prior(shape, device)`; those
    with a Gaussian kernel also give `beta` (T,) float64, the forward schedule.
    """

    T: int
    beta: torch.Tensor

    @abstractmethod
    def kernel(self, x: torch.Tensor, t: int) -> StepDist:
        """p(x^{t-1} | x^t) at level t (for t = 1 the fixed first step)."""

    @abstractmethod
    def prior(self, shape: tuple[int, ...], device: torch.device) -> StepDist:
        """pi over a batch of shape (B, *example shape)."""

    @property
    def steps(self) -> list[int]:
        """The process step t of each level 0..T (every step: the identity)."""
        return list(range(self.T + 1))

    @cached_property
    def alpha_bar(self) -> torch.Tensor:
        """(T + 1,) float64 on the CPU: abar_0 = 1, abar_t = prod_{s<=t} (1 - beta_s)."""
        b = self.beta.detach().to(torch.float64).cpu()
        return torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar(b)])

    def step(self, x: torch.Tensor, t: int, s: int) -> StepDist:
        """p(x^s | x^t), 0 <= s < t <= T: the one-step kernel for s = t - 1, else the strided
        step built from it (diffusion.chains.strided; diagonal Gaussian kernels only)."""
        if not 0 <= s < t <= self.T:
            raise ValueError(f"need 0 <= s < t <= T, got s={s}, t={t}")
        dist = self.kernel(x, t)
        if s == t - 1:
            return dist
        if not isinstance(dist, Normal):
            raise ValueError(
                f"strided steps need a diagonal Gaussian kernel; this one is {type(dist).__name__}"
            )
        if s == 0:
            raise ValueError("the step to x^0 must start at t = 1 (the fixed first step)")
        return Normal(*strided_from_one_step(self.alpha_bar, x, dist.mean, dist.var, t, s))

    def run_bits(
        self,
        x: torch.Tensor,
        top: int,
        stop: int,
        generator: torch.Generator | None,
        log_odds: torch.Tensor | None,
        on_level: OnLevel | None,
    ) -> tuple[torch.Tensor, int]:
        """Moves down from level `top` towards `stop`, each level drawn in one fused call,
        where this reverse process has such calls (a binomial model whose network runs
        compiled: diffusion.chains.reverse.ModelReverse), with each step multiplied by
        r = prod_i Bernoulli(sigmoid(log_odds_i)) (None: r = 1) and `on_level` after each
        move; the same draws from `generator` in the same order as `run_chain`'s level by
        level. Returns (x, the level reached); here none: (x, top)."""
        return x, top

    def respaced(self, steps: int | None) -> Reverse:
        """The reverse process on S = `steps` kept steps (`diffusion.chains.strided.kept_steps`);
        itself when every step is kept (steps None or T)."""
        grid = kept_steps(self.T, steps)
        return self if len(grid) == self.T + 1 else Respaced(self, grid)


class Respaced(Reverse):
    """`base` on the kept steps `grid` = [0, 1, tau_2, ..., T]: level i is step grid[i].

    alpha_bar is base.alpha_bar at the kept steps (the same numbers, not recomputed), beta
    the one-level betas 1 - abar_i / abar_{i-1}; the kernel at level i is base's strided step
    from grid[i] to grid[i - 1].
    """

    def __init__(self, base: Reverse, grid: Sequence[int]) -> None:
        grid = [int(g) for g in grid]
        if grid[:2] != [0, 1] or grid[-1] != base.T or sorted(set(grid)) != grid:
            raise ValueError(f"kept steps must rise from 0, 1 to T={base.T}; got {grid}")
        self.base, self.grid, self.T = base, grid, len(grid) - 1

    @property
    def steps(self) -> list[int]:
        return list(self.grid)

    @cached_property
    def alpha_bar(self) -> torch.Tensor:
        return self.base.alpha_bar[self.grid]

    @cached_property
    def beta(self) -> torch.Tensor:  # type: ignore[override]
        abar = self.alpha_bar
        return 1 - abar[1:] / abar[:-1]

    def kernel(self, x: torch.Tensor, t: int) -> StepDist:
        return self.base.step(x, self.grid[t], self.grid[t - 1])

    def prior(self, shape: tuple[int, ...], device: torch.device) -> StepDist:
        return self.base.prior(shape, device)


Times = Callable[[StepDist, int], StepDist]
"""(p(x^{s} | x^t), s) -> that step multiplied by r and renormalized."""
After = Callable[[torch.Tensor, int], torch.Tensor]
"""(x^s, s) -> x^s conditioned (e.g. known values set)."""
Jump = Callable[[torch.Tensor, int, int], torch.Tensor]
"""(x^s, s, t) -> x^t for t > s (a move back up the chain)."""
OnLevel = Callable[[torch.Tensor, int], None]
"""(x, level) called at the start and after every move."""


def levels_down(T: int) -> list[int]:
    """The plain chain's visits: T, T - 1, ..., 0."""
    return list(range(T, -1, -1))


def run_chain(
    rev: Reverse,
    x: torch.Tensor,
    generator: torch.Generator | None,
    *,
    levels: Sequence[int] | None = None,
    times: Times | None = None,
    after: After | None = None,
    jump: Jump | None = None,
    on_level: OnLevel | None = None,
) -> torch.Tensor:
    """Run `rev`'s reverse chain from x at level levels[0] through `levels` (default T..0).

    A move down from level t to t - 1 draws x ~ p(x^{t-1} | x^t), multiplied by r with
    `times` if given, then applies `after(x, t - 1)`. A move up (RePaint's resampling) calls
    `jump(x, s, t)`. Noise comes from `generator` in the order of the moves. Returns the
    (B, *shape) float64 state at the last level.

    A chain straight down with no `after` and no `jump`, and `times` either None or a product
    with a factorized Bernoulli r (a `times` with a `log_odds` attribute), lets the reverse
    process draw its levels fused (`Reverse.run_bits`) and goes on level by level from where
    that stopped.
    """
    levels = levels_down(rev.T) if levels is None else list(levels)
    x = x.to(torch.float64)
    if on_level is not None:
        on_level(x, levels[0])
    with torch.no_grad():
        start = 0
        log_odds = getattr(times, "log_odds", None)
        plain = after is None and jump is None and (times is None or log_odds is not None)
        if plain and levels == levels_down(levels[0])[: len(levels)]:  # straight down
            x, reached = rev.run_bits(x, levels[0], levels[-1], generator, log_odds, on_level)
            start = levels[0] - reached
        for cur, nxt in zip(levels[start:-1], levels[start + 1 :], strict=True):
            if nxt == cur - 1:
                dist = rev.kernel(x, cur)
                if times is not None:
                    dist = times(dist, nxt)
                x = dist.sample(generator)
                if after is not None:
                    x = after(x, nxt)
            elif nxt > cur and jump is not None:
                x = jump(x, cur, nxt)
            else:
                raise ValueError(f"a chain moves down one level or jumps up; got {cur} -> {nxt}")
            if on_level is not None:
                on_level(x, nxt)
    return x
