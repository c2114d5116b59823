"""Multiplying the model by another distribution: posterior chains (Sohl-Dickstein et al.
2015, section 2.5 and App. C; model.md section 8).

Goal: sample p~(x^0) proportional to p(x^0) r(x^0). Each reverse step is multiplied by r
and renormalized, with r(x^t) = r(x^0) at every t (section 2.5.3). This module holds the
math, on model-space tensors (B, *shape) float64:
- `gaussian_product`: N(mu, Sigma) N(y, s2) -> N(mu~, Sigma~) (Eq. 59-60), for denoising;
- `binary_product`: Bernoulli(c) Bernoulli(d) -> Bernoulli(cd / (cd + (1-c)(1-d))) (App. C);
- `denoise_chain`: every step multiplied by N(y, s2), started from the observation y as
  in the paper's figure 3 (or from pi); or, beyond the paper, the plain chain started at the
  step whose noise level matches the observation's (start="level": the model's posterior);
- `inpaint_paper_chain`: known coordinates held at their values at every step (a delta r),
  missing ones sampled from p, started from pi (figure 5); a full-covariance step is
  conditioned on the known values (`ConditionedNormal`, the normalized product with the
  delta), a diagonal one needs nothing more than the clamp;
- `inpaint_repaint_chain`: RePaint (Lugmayr et al. 2022, Alg. 1): known region drawn from
  q(x^t | x^0) at the level of each step, resampling jumps back up the chain;
- `binary_inpaint_chain`: the binary product for binomial models.
Both inpainting chains can instead start at step t0 from q(x^t0 | x_init) and run over [0, t0]
(`start`; `chain_from`), the refinement of coarse-to-fine inpainting (beyond the paper,
`diffusion.chains.posterior_coarse`).
Every chain is diffusion.chains.chain's one loop on a `Reverse` respaced to S = `steps` kept steps
(`Reverse.respaced`), so the fast strided chain serves posteriors too. The image-level API
(data space arrays, trained runs) is `diffusion.chains.posterior`.
"""

from __future__ import annotations

import math

import torch

from diffusion.chains.chain import Respaced, Reverse, levels_down, run_chain
from diffusion.chains.strided import kept_steps
from diffusion.processes.base import (
    Bernoulli,
    CorrelatedNormal,
    Normal,
    StepDist,
    expect_step,
    randn,
)


# ------------------------------------------------------------------------------ products
def gaussian_product(
    mu: torch.Tensor, var: torch.Tensor, y: torch.Tensor, s2: float | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalized product of N(mu, var) and N(y, s2), per coordinate (App. C, Eq. 59-60).

    var~ = 1 / (1/var + 1/s2), mu~ = var~ (mu / var + y / s2). Shapes broadcast.
    """
    var_new = 1.0 / (1.0 / var + 1.0 / s2)
    return var_new * (mu / var + y / s2), var_new


def binary_product(c: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """P(x = 1) under the normalized product Bernoulli(c) Bernoulli(d), per coordinate.

    c d / (c d + (1 - c)(1 - d)); d = 1 or 0 pins the bit, d = 1/2 leaves c unchanged.
    """
    num = c * d
    den = num + (1 - c) * (1 - d)
    return torch.where(den > 0, num / den.clamp_min(1e-300), c)


# ------------------------------------------------------------------------ Gaussian chains
def denoise_chain(
    rev: Reverse,
    y: torch.Tensor,
    s2: float,
    *,
    steps: int | None = None,
    start: str = "observation",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Posterior samples x^0 (B, *shape) for observations y = x^0 + N(0, s2) (model space).

    start = "observation" (figure 3) or "prior": each reverse step N(mu, Sigma) is multiplied
    by r = N(y, s2) (section 2.5.3, r(x^t) = r(x^0)), from x^T = y or x^T ~ pi.
    start = "level" (beyond the paper; SDEdit's and DDRM's observation): sqrt(abar_t) y is a
    draw of q(x^t | x^0) at the step t* where abar_t* s2 = 1 - abar_t* (made up to it with
    fresh noise at the first kept step past it), so the plain reverse chain from t* samples
    the model's own posterior p(x^0 | y), with no product; `steps` kept steps then span
    [0, t*] (Gaussian processes).
    """
    if start == "level":
        return _denoise_from_level(rev, y.to(torch.float64), s2, steps, generator)
    chain = rev.respaced(steps)
    y = y.to(torch.float64)
    if start == "observation":
        x = y.clone()
    elif start == "prior":
        x = chain.prior(tuple(y.shape), y.device).sample(generator)
    else:
        raise ValueError(f"start must be 'observation', 'prior' or 'level', got {start!r}")

    def times(dist: StepDist, level: int) -> Normal:
        step = expect_step(dist, Normal, "denoising")
        return Normal(*gaussian_product(step.mean, step.var, y, s2))

    return run_chain(chain, x, generator, times=times)


def level_of(rev: Reverse, s2: float) -> int:
    """The first step t >= 1 whose forward noise reaches the observation's: abar_t (1 + s2)
    <= 1 (T if none does)."""
    abar = rev.alpha_bar
    hits = torch.nonzero(abar[1:] * (1 + s2) <= 1)
    return int(hits[0]) + 1 if len(hits) else rev.T


def _denoise_from_level(
    rev: Reverse, y: torch.Tensor, s2: float, steps: int | None, generator
) -> torch.Tensor:
    t_star = level_of(rev, s2)
    chain, top = chain_from(rev, t_star, steps)
    a = float(rev.alpha_bar[t_star])
    extra = max(0.0, 1 - a - a * s2)
    x = math.sqrt(a) * y + math.sqrt(extra) * randn(tuple(y.shape), generator, y.device)
    return run_chain(chain, x, generator, levels=levels_down(top))


def chain_from(rev: Reverse, t0: int, steps: int | None) -> tuple[Reverse, int]:
    """The reverse process for a chain that starts at step t0 (1 <= t0 <= T) rather than at T:
    `steps` kept steps spanning [0, t0] (every step when steps is None or >= t0), and the
    level of t0 on it. The chain then runs `levels_down(level)`."""
    if isinstance(t0, bool) or not isinstance(t0, int) or not 1 <= t0 <= rev.T:
        raise ValueError(f"the start step must be an integer in [1, T={rev.T}], got {t0!r}")
    grid = kept_steps(t0, None if steps is None or steps >= t0 else max(2, steps))
    chain = rev if grid == list(range(rev.T + 1)) else Respaced(rev, _to_T(grid, rev.T))
    return chain, len(grid) - 1


def chain_start(
    rev: Reverse,
    known: torch.Tensor,
    steps: int | None,
    start: tuple[torch.Tensor, int] | None,
    generator: torch.Generator | None,
) -> tuple[Reverse, int, torch.Tensor]:
    """(chain, top level, x at the top level) of an inpainting chain: from pi at T, or, with
    start = (x_init, t0), from a draw of q(x^t0 | x^0 = x_init) (the forward process at t0;
    SDEdit's start, Meng et al. 2022), the chain then running over [0, t0]."""
    if start is None:
        chain = rev.respaced(steps)
        return chain, chain.T, chain.prior(tuple(known.shape), known.device).sample(generator)
    x_init, t0 = start
    chain, top = chain_from(rev, t0, steps)
    a = float(chain.alpha_bar[top])
    noise = randn(tuple(known.shape), generator, known.device)
    return (
        chain,
        top,
        math.sqrt(a) * x_init.to(torch.float64).expand_as(known) + math.sqrt(1 - a) * noise,
    )


def _to_T(grid: list[int], T: int) -> list[int]:
    """A kept-step grid ending at t* <= T, closed with T (Respaced's grids end at T)."""
    return grid if grid[-1] == T else [*grid, T]


class ConditionedNormal:
    """A full-covariance step N(mean, S) (`CorrelatedNormal`) times a delta on the known
    coordinates, normalized: N(mean, S) conditioned on x_K = a. A joint draw x is corrected
    to x_M + S_MK S_KK^-1 (a - x_K) (exactly a draw of the conditional), then x_K = a.

    base: CorrelatedNormal over (B, *shape); mask: bool (B, *shape), True = known; known:
    (B, *shape) float64 (values outside the mask ignored).
    """

    def __init__(self, base: CorrelatedNormal, mask: torch.Tensor, known: torch.Tensor) -> None:
        self.base, self.mask, self.known = base, mask, known

    def sample(self, generator: torch.Generator | None) -> torch.Tensor:
        b = self.base
        x = b.sample(generator)
        B, D = x.shape[0], b.U.shape[-1]
        factor = b.s.reshape(B, D).sqrt().unsqueeze(-1) * b.U  # (B, D, D) lower triangular
        cov = factor @ factor.transpose(-1, -2)
        flat_x, flat_a = x.reshape(B, D), self.known.reshape(B, D)
        flat_m = self.mask.reshape(B, D)
        out = flat_x.clone()
        rows, inverse = torch.unique(flat_m, dim=0, return_inverse=True)
        for j, row in enumerate(rows):  # examples that share a mask, together
            sel = inverse == j
            k, m = row.nonzero().squeeze(-1), (~row).nonzero().squeeze(-1)
            if k.numel() == 0 or m.numel() == 0:
                continue
            c = cov[sel]
            gain = torch.linalg.solve(c[:, k][:, :, k], c[:, k][:, :, m]).transpose(-1, -2)
            resid = (flat_a[sel][:, k] - flat_x[sel][:, k]).unsqueeze(-1)
            fixed = out[sel]
            fixed[:, m] = flat_x[sel][:, m] + (gain @ resid).squeeze(-1)
            out[sel] = fixed
        out = torch.where(flat_m, flat_a, out)
        return out.reshape(x.shape)


def inpaint_paper_chain(
    rev: Reverse,
    x_known: torch.Tensor,
    mask: torch.Tensor,
    *,
    steps: int | None = None,
    generator: torch.Generator | None = None,
    start: tuple[torch.Tensor, int] | None = None,
) -> torch.Tensor:
    """Inpainting the paper's way (section 2.5, figure 5): r is a delta on the known
    coordinates, so at every step they are set to their values; the missing ones follow p
    (conditioned on the known values where the step has a full covariance).

    x_known: (B, *shape) model space (values outside the mask are ignored); mask: bool,
    broadcastable, True = known. The chain starts from pi on the missing region, or, with
    start = (x_init, t0) (beyond the paper: the refinement of a coarse-to-fine fill,
    `diffusion.chains.posterior_coarse`), from q(x^t0 | x_init) there and runs `steps` kept
    steps over [0, t0]. Returns x^0 (B, *shape) float64 whose known coordinates equal x_known
    exactly.
    """
    known = x_known.to(torch.float64)
    mask = mask.to(torch.bool).expand_as(known)
    chain, top, x = chain_start(rev, known, steps, start, generator)
    x = torch.where(mask, known, x)

    def times(dist: StepDist, level: int) -> StepDist:
        # the step times the delta r, normalized: for a diagonal step the missing coordinates
        # are independent of the known ones (the clamp below is the whole product)
        if isinstance(dist, CorrelatedNormal):
            return ConditionedNormal(dist, mask, known)  # type: ignore[return-value]
        return dist

    return run_chain(
        chain,
        x,
        generator,
        levels=levels_down(top),
        times=times,
        after=lambda x, level: torch.where(mask, known, x),
    )


def replace_known(
    chain: Reverse, known: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None
):
    """`run_chain`'s `after` for replacement: the known coordinates set to a fresh draw of
    q(x^s | x^0 = known) at the level s just reached (x^0 itself at s = 0), the rest kept
    (RePaint's, and the guided chain's, known region)."""
    abar, dev = chain.alpha_bar, known.device

    def after(x: torch.Tensor, level: int) -> torch.Tensor:
        a = float(abar[level])
        noisy_known = a**0.5 * known + (1 - a) ** 0.5 * randn(tuple(known.shape), generator, dev)
        return torch.where(mask, noisy_known, x)

    return after


def repaint_schedule(levels: int, jump_length: int, jump_n_sample: int) -> list[int]:
    """The sequence of grid levels RePaint visits (Lugmayr et al. 2022, section 4.2, and its
    `get_schedule_jump`), from `levels` (x^T) down to 0 (x^0).

    A move down by one is a reverse step; at levels 0, j, 2j, ... (with room for a jump) the
    chain jumps back up by j = jump_length, `jump_n_sample - 1` times each, and comes down
    again. jump_n_sample = 1 means no resampling.
    """
    if jump_length < 1 or jump_n_sample < 1:
        raise ValueError("jump_length and jump_n_sample must be >= 1")
    jumps = {k: jump_n_sample - 1 for k in range(0, levels - jump_length + 1, jump_length)}
    seq, level = [levels], levels
    while level > 0:
        level -= 1
        seq.append(level)
        if jumps.get(level, 0) > 0 and level + jump_length <= levels:
            jumps[level] -= 1
            level += jump_length
            seq.append(level)
    return seq


def forward_jump(
    rev: Reverse, x: torch.Tensor, s: int, t: int, noise: torch.Tensor
) -> torch.Tensor:
    """x^t ~ q(x^t | x^s) for levels s < t of `rev`: sqrt(abar_t / abar_s) x^s +
    sqrt(1 - abar_t / abar_s) eps (Gaussian processes)."""
    a = float(rev.alpha_bar[t] / rev.alpha_bar[s])
    return math.sqrt(a) * x.to(torch.float64) + math.sqrt(1 - a) * noise


def inpaint_repaint_chain(
    rev: Reverse,
    x_known: torch.Tensor,
    mask: torch.Tensor,
    *,
    steps: int | None = None,
    jump_length: int = 10,
    jump_n_sample: int = 5,
    generator: torch.Generator | None = None,
    start: tuple[torch.Tensor, int] | None = None,
) -> torch.Tensor:
    """Inpainting RePaint's way (Lugmayr et al. 2022, Alg. 1), the second method to compare.

    After each reverse step to level s, the known region is replaced by a fresh draw from
    q(x^s | x^0) (x^0 itself at s = 0); jumps back up use q(x^t | x^s). Shapes and `start`
    as in `inpaint_paper_chain`; the known coordinates of the result equal x_known exactly.
    """
    known = x_known.to(torch.float64)
    chain, top, x = chain_start(rev, known, steps, start, generator)
    mask = mask.to(torch.bool).expand_as(known)
    dev = known.device
    after = replace_known(chain, known, mask, generator)

    def jump(x: torch.Tensor, s: int, t: int) -> torch.Tensor:
        return forward_jump(chain, x, s, t, randn(tuple(x.shape), generator, dev))

    levels = repaint_schedule(top, jump_length, jump_n_sample)
    x = run_chain(chain, x, generator, levels=levels, after=after, jump=jump)
    return torch.where(mask, known, x)


# ------------------------------------------------------------------------ binomial chain
def binary_inpaint_chain(
    rev: Reverse,
    d: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Posterior samples x^0 (B, *shape) in {0, 1} under r = prod_i Bernoulli(d_i) (App. C).

    d: (B, *shape) float64: 1 or 0 for known bits, 1/2 where nothing is known (any value in
    [0, 1] is a soft observation). x^T ~ pi multiplied by r; each step's Bernoulli(f_b) is
    multiplied by r with `binary_product`.
    """
    d = d.to(torch.float64)
    prior = expect_step(rev.prior(tuple(d.shape), d.device), Bernoulli, "the binary product")
    x = Bernoulli(binary_product(prior.p, d)).sample(generator)
    return run_chain(rev, x, generator, times=BinaryTimes(d))


class BinaryTimes:
    """A binomial step multiplied by r = prod_i Bernoulli(d_i) (`binary_product`). `log_odds`
    = logit d (-inf / +inf pin a bit, 0 leaves it) is the product in logits: run_chain hands
    it to a reverse process that draws its levels fused (Reverse.run_bits)."""

    def __init__(self, d: torch.Tensor) -> None:
        self.d = d
        self.log_odds = torch.logit(d)

    def __call__(self, dist: StepDist, level: int) -> Bernoulli:
        step = expect_step(dist, Bernoulli, "the binary product")
        if step.logit is None:
            return Bernoulli(binary_product(step.p, self.d))
        # the same product: sigmoid(l + logit d) = c d / (c d + (1 - c)(1 - d)) at
        # c = sigmoid(l), in two operations; a pinned bit stays pinned even where c
        # rounds to 0 or 1
        logit = step.logit + self.log_odds
        return Bernoulli(torch.sigmoid(logit), logit)
