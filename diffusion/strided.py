"""Fast sampling: a strided reverse chain of S < T steps for Gaussian diffusion.

Beyond the paper (Sohl-Dickstein et al. 2015 samples with all T steps); the idea is that of
DDIM's and improved DDPM's respacing (Song et al. 2021; Nichol & Dhariwal 2021, section 4):
keep steps 0 = tau_0 < tau_1 = 1 < ... < tau_S = T, reuse abar at the kept steps, and step
from x^t to x^s (s < t) with the strided forward posterior

    q(x^s | x^t, x^0) = N(mu, var),  alpha' = abar_t / abar_s,  beta' = 1 - alpha',
    mu  = sqrt(abar_s) beta' / (1 - abar_t) x^0 + sqrt(alpha') (1 - abar_s) / (1 - abar_t) x^t,
    var = (1 - abar_s) beta' / (1 - abar_t),

where x^0 is replaced by the model's estimate. The one-step reverse mean of the paper's
kernel (App. D.2.1) estimates E[x^{t-1} | x^t] = c0 E[x^0 | x^t] + ct x^t with c0, ct the
coefficients of the one-step forward posterior (model.md section 3), so
x0_hat = (mu_t - ct x^t) / c0. The learned variance carries over by its place between the
entropy bounds of section 2.6 (forward posterior variance below, beta above): the same
place between the strided bounds. With s = t - 1 this is exactly the one-step kernel, so
S = T gives the full chain; for data drawn from pi with the exact kernel, every strided
step is exact too. The step 1 -> 0 is always the fixed first step (App. B.2).

Tensors: x (B, *shape) float64 in model space; alpha_bar (T + 1,) float64 with abar_0 = 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

MeanVar = Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]
"""(x^t (B, *shape) float64, t) -> mean, var of p(x^{t-1} | x^t), each (B, *shape)."""


@dataclass(frozen=True)
class GaussianReverse:
    """A Gaussian reverse process: its forward schedule and one-step reverse kernel.

    beta: (T,) float64, beta_1..T. mean_var(x, t): the model's p(x^{t-1} | x^t) at step t
    (for t = 1 the fixed first step).
    """

    beta: torch.Tensor
    mean_var: MeanVar

    @property
    def T(self) -> int:
        return int(self.beta.shape[0])

    @property
    def alpha_bar(self) -> torch.Tensor:
        """(T + 1,) float64 with alpha_bar[0] = 1, alpha_bar[t] = prod_{s<=t} (1 - beta_s)."""
        b = self.beta.detach().to(torch.float64).cpu()
        return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - b, 0)])


def kept_steps(T: int, S: int | None) -> list[int]:
    """The grid [0, tau_1 = 1, ..., tau_S = T] of S kept steps, evenly spaced, ascending.

    S = None or S = T keeps every step. Raises ValueError unless 2 <= S <= T.
    """
    if S is None or S == T:
        return list(range(T + 1))
    if isinstance(S, bool) or not isinstance(S, int | np.integer) or not 2 <= S <= T:
        raise ValueError(f"steps must be an integer in [2, T={T}], got {S!r}")
    taus = np.unique(np.round(np.linspace(1, T, int(S))).astype(int))
    while taus.size < S:  # rounding merged two steps: add the largest gaps' midpoints
        gaps = np.diff(taus)
        k = int(gaps.argmax())
        taus = np.unique(np.append(taus, taus[k] + gaps[k] // 2))
    return [0, *taus.tolist()]


def strided_mean_var(
    rev: GaussianReverse, x: torch.Tensor, t: int, s: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance (B, *shape) of the strided reverse step p(x^s | x^t), s < t.

    s = t - 1 returns the model's own one-step kernel unchanged.
    """
    if not 0 <= s < t <= rev.T:
        raise ValueError(f"need 0 <= s < t <= T, got s={s}, t={t}")
    mu, var = rev.mean_var(x, t)
    if s == t - 1:
        return mu, var
    if s == 0:
        raise ValueError("the step to x^0 must start at t = 1 (the fixed first step)")
    return strided_from_one_step(rev.alpha_bar, x, mu, var, t, s)


def strided_from_one_step(
    alpha_bar: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, var: torch.Tensor, t: int, s: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn the one-step kernel N(mu, var) at step t >= 2 into the step t -> s (1 <= s < t).

    Mean: the strided forward posterior at x0_hat = (mu - ct x^t) / c0. Variance: the
    one-step variance's place between its entropy bounds (section 2.6; model.md section 9),
    lambda = log(var / var_q) / log(beta_t / var_q), carried to the strided bounds:
    log var_s = log var_q(t->s) + lambda log(beta(t->s) / var_q(t->s)). For the exact
    reverse kernel of data drawn from pi (lambda = 1) this is the exact strided kernel.
    """
    a_t, a_p, a_s = float(alpha_bar[t]), float(alpha_bar[t - 1]), float(alpha_bar[s])
    beta_t = 1.0 - a_t / a_p
    c0 = np.sqrt(a_p) * beta_t / (1 - a_t)
    ct = np.sqrt(1 - beta_t) * (1 - a_p) / (1 - a_t)
    x = x.to(torch.float64)
    x0_hat = (mu - ct * x) / c0
    alpha_s = a_t / a_s
    beta_s = 1 - alpha_s
    mean = (np.sqrt(a_s) * beta_s / (1 - a_t)) * x0_hat + (
        np.sqrt(alpha_s) * (1 - a_s) / (1 - a_t)
    ) * x
    vq_one = (1 - a_p) * beta_t / (1 - a_t)
    vq_s = (1 - a_s) * beta_s / (1 - a_t)
    lam = torch.log(var / vq_one) / np.log(beta_t / vq_one)
    return mean, vq_s * torch.exp(lam * np.log(beta_s / vq_s))


def forward_jump(
    rev: GaussianReverse, x: torch.Tensor, s: int, t: int, noise: torch.Tensor
) -> torch.Tensor:
    """x^t ~ q(x^t | x^s) for s < t: sqrt(abar_t / abar_s) x^s + sqrt(1 - abar_t / abar_s) eps."""
    abar = rev.alpha_bar
    a = float(abar[t] / abar[s])
    return np.sqrt(a) * x.to(torch.float64) + np.sqrt(1 - a) * noise


def sample_strided(
    rev: GaussianReverse,
    x_T: torch.Tensor,
    steps: int | None,
    noise: Callable[[tuple[int, ...]], torch.Tensor],
) -> torch.Tensor:
    """Plain sampling with S = `steps` kept steps: x^T -> x^0, (B, *shape) float64.

    `noise(shape)` draws standard normal float64 noise (e.g. from a seeded generator).
    """
    grid = kept_steps(rev.T, steps)
    x = x_T.to(torch.float64)
    for i in range(len(grid) - 1, 0, -1):
        mean, var = strided_mean_var(rev, x, grid[i], grid[i - 1])
        x = mean + var.sqrt() * noise(tuple(mean.shape))
    return x


def gaussian_reverse(model, net=None) -> GaussianReverse:  # model: a DiffusionModel
    """The reverse process of a trained Gaussian `DiffusionModel`: its schedule and its
    one-step kernel p(x^{t-1} | x^t) (App. D.2.1), evaluated without gradients. `net`, if
    given, evaluates in place of the model's network (e.g. `diffusion.tiling.SizedNet`)."""
    if getattr(model.process, "kind", None) != "gaussian":
        raise ValueError(
            f"this needs a Gaussian diffusion model, got {getattr(model.process, 'kind', '?')}"
        )
    if getattr(model.process, "full", False):
        raise ValueError(
            "strided chains and posteriors use the diagonal reverse kernel; this model has a "
            "full-covariance kernel (diffusion.covariance = 'full'): sample it with the full chain"
        )
    beta = model.beta().detach()

    @torch.no_grad()
    def mean_var(x: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        return model.process.p_mean_var(x, tt, model.readout(x, tt, net=net), beta)

    return GaussianReverse(beta=beta, mean_var=mean_var)


@torch.no_grad()
def sample_model(
    model,
    n: int,
    steps: int | None,
    generator: torch.Generator | None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """n samples (n, *shape) float64, model space, from a Gaussian `DiffusionModel` with S =
    `steps` kept steps (None = all T). Draws its noise in the order of
    `diffusion.sampling.sample_chain`, so S = T reproduces it exactly for the same generator."""
    device = torch.device(device)
    rev = gaussian_reverse(model)
    gdev = generator.device if generator is not None else device

    def noise(shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(shape, generator=generator, device=gdev, dtype=torch.float64).to(device)

    x_T = noise((n, *model.shape))
    return sample_strided(rev, x_T, steps, noise)


def strided_sample(
    trained,
    n: int,
    *,
    steps: int,
    generator: torch.Generator | None = None,
    return_trajectory: bool = False,
):
    """`Trained.sample` with S = `steps` < T kept steps (Gaussian models): the same
    `SampleResult` as the full chain (samples in data space, x0 in model space). The
    trajectory, if asked for, holds every kept step from x^T to x^0."""
    from diffusion.inference import SampleResult
    from diffusion.train import gallery_kind, to_data_array

    model = trained.model
    if getattr(model.process, "kind", None) != "gaussian":
        raise ValueError(
            "strided sampling (steps < T) is for Gaussian diffusion models; "
            f"this one is {model.process.kind}: leave steps unset"
        )
    grid = kept_steps(model.T, steps)
    rev = gaussian_reverse(model)
    device = torch.device(trained.device)
    gdev = generator.device if generator is not None else device

    def noise(shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(shape, generator=generator, device=gdev, dtype=torch.float64).to(device)

    x = noise((n, *model.shape))
    frames = [x.cpu()]
    with torch.no_grad():
        for i in range(len(grid) - 1, 0, -1):
            mean, var = strided_mean_var(rev, x, grid[i], grid[i - 1])
            x = mean + var.sqrt() * noise(tuple(mean.shape))
            frames.append(x.cpu())
    traj, traj_steps = None, ()
    if return_trajectory:
        traj = np.stack([trained.scaler.to_data(f.float()).numpy() for f in frames])
        traj_steps = tuple(reversed(grid))
    bundle = trained.bundle
    return SampleResult(to_data_array(bundle, x), x, gallery_kind(bundle), traj, traj_steps)


@torch.no_grad()
def strided_bound(
    model, x0: torch.Tensor, steps: int | None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(B,) the bound K, in nats per example, of the S-step strided chain of a Gaussian
    `DiffusionModel` on x0 (B, *shape) in model space.

    The forward marginals at the kept steps form a Markov chain, so Eq. 14 holds for it:
    K_S = E[log p(x^0 | x^1)] - KL(q(x^T | x^0) || pi)
          - sum_{i >= 2} E KL(q(x^{tau_{i-1}} | x^{tau_i}, x^0) || p(x^{tau_{i-1}} | x^{tau_i})),
    one x^{tau_i} ~ q(x^{tau_i} | x^0) per kept step (exact in the sum, Monte Carlo in x^t).
    S = T gives the full chain's K.
    """
    return reverse_strided_bound(gaussian_reverse(model), model.process, x0, steps, generator)


def reverse_strided_bound(
    rev: GaussianReverse,
    process,
    x0: torch.Tensor,
    steps: int | None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """`strided_bound` for any reverse kernel; `process` gives the edge terms (a
    `diffusion.gaussian.GaussianDiffusion`)."""
    from diffusion.gaussian import normal_kl

    grid = kept_steps(rev.T, steps)
    abar = rev.alpha_bar.to(x0.device)
    x0 = x0.to(torch.float64)
    total = process.edge_terms(x0, rev.beta)
    gdev = generator.device if generator is not None else x0.device
    for i in range(len(grid) - 1, 1, -1):
        t, s = grid[i], grid[i - 1]
        eps = torch.randn(x0.shape, generator=generator, device=gdev, dtype=torch.float64).to(
            x0.device
        )
        a_t, a_s = float(abar[t]), float(abar[s])
        xt = np.sqrt(a_t) * x0 + np.sqrt(1 - a_t) * eps
        alpha_s = a_t / a_s
        mq = (np.sqrt(a_s) * (1 - alpha_s) / (1 - a_t)) * x0 + (
            np.sqrt(alpha_s) * (1 - a_s) / (1 - a_t)
        ) * xt
        vq = torch.full_like(x0, (1 - a_s) * (1 - alpha_s) / (1 - a_t))
        mp, vp = strided_mean_var(rev, xt, t, s)
        total = total - normal_kl(mq, vq, mp, vp)
    return total
