"""The bound K on the log-likelihood and the importance-sampled estimate (Sohl-Dickstein et
al. 2015, Eq. 14 and App. B; section 2.2 "Model probability"; model.md section 4).

K(x^0) = E_q[log p(x^0 | x^1)] - KL(q(x^T | x^0) || pi) - sum_{t=2..T} E_q KL(q(x^{t-1} | x^t, x^0)
|| p(x^{t-1} | x^t)), which equals Eq. 14 with the entropies and the paper's dropped edge term
computed exactly from x^0 (docs/model-notes.md). The first two terms (`edge_terms`) are closed
form per example; the sum over t is exact in t at evaluation and Monte Carlo over x^t only.

`strided_bound` is K for the S-step strided chain (diffusion.chains.strided), the same sum over the
kept steps.

All tensors in nats unless named *_bits; bits = nats / ln 2, divided by the unit's divisor
(pixels for images) to give bits per unit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from diffusion.chains.chain import Reverse
from diffusion.chains.reverse import gaussian_reverse
from diffusion.model import DiffusionModel
from diffusion.processes.base import Normal, Process, drawing, expect_step, randn
from diffusion.processes.binomial import is_bits
from diffusion.processes.gaussian import normal_kl
from diffusion.training.events import BoundEstimate

LN2 = math.log(2)
MAX_ELEMENTS = 2**19  # cap on (examples x dimensions) per network call: 512 images of 32 x 32


def train_objective(
    model: DiffusionModel,
    x0: torch.Tensor,
    generator: torch.Generator | None,
    t_probs: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B,) unbiased estimate of K(x^0) in nats: one random t in 2..T per example.

    Uniform t: the KL term is scaled by (T - 1). With `t_probs` ((T - 1,) probabilities of
    t = 2..T, importance sampling of t) it is divided by p(t) instead; the estimate stays
    unbiased and its variance drops when p(t) follows the size of the KL terms.
    """
    return train_terms(model, x0, generator, t_probs)[0]


def step_draws(
    model: DiffusionModel,
    x0: torch.Tensor,
    generator: torch.Generator | None,
    t_probs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(t (B,), noise, weight (B,) float64): a training step's random draws from `generator`
    (t, then the draws behind x^t) and the weight of each KL term (T - 1 for uniform t,
    1 / p(t) where `t_probs` gives p(t = 2..T))."""
    T, B = model.T, x0.shape[0]
    gen, gdev = drawing(generator, x0.device)
    if t_probs is None:
        t = torch.randint(2, T + 1, (B,), generator=gen, device=gdev).to(x0.device)
        weight = torch.full((B,), float(T - 1), dtype=torch.float64, device=x0.device)
    else:
        idx = torch.multinomial(t_probs.to(gdev), B, replacement=True, generator=gen)
        t = (idx + 2).to(x0.device)
        probs = t_probs.to(x0.device, torch.float64)
        weight = 1.0 / torch.index_select(probs, 0, idx.to(x0.device))
    noise = model.process.q_noise(x0.shape, generator, x0.device)
    return t, noise, weight


def train_terms(
    model: DiffusionModel,
    x0: torch.Tensor,
    generator: torch.Generator | None,
    t_probs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(estimate (B,), t (B,), KL_t (B,)) of `train_objective`, nats: `step_draws`, then the
    arithmetic of `step_terms`."""
    t, noise, weight = step_draws(model, x0, generator, t_probs)
    k, kl = step_terms(model, x0, t, noise, weight)
    return k, t, kl


def train_loss(
    model: DiffusionModel,
    x0: torch.Tensor,
    generator: torch.Generator | None,
    t_probs: torch.Tensor | None = None,
    loss_fn: Callable | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, mean estimate, t (B,), KL_t (B,)) of one training step, nats: `step_draws`, then
    `step_loss`, or `loss_fn` in its place (the same function compiled:
    diffusion.training.compiled), which gets the draws as inputs."""
    t, noise, weight = step_draws(model, x0, generator, t_probs)
    if loss_fn is not None:  # what the compiled graph branches on, tested on this batch
        model.process.trace_hints(x0)
    loss, k_mean, kl = (loss_fn or step_loss)(model, x0, t, noise, weight)
    return loss, k_mean, t, kl


def step_terms(
    model: DiffusionModel,
    x0: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
    weight: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(estimate (B,), KL_t (B,)) nats of one training step given its draws: the edge terms
    less weight x KL_t at x^t = q_sample(x^0, t, noise). No random draws and no Python
    branches on tensor values, so that torch.compile takes it whole."""
    beta = model.beta()
    kl = model.kl_terms(x0, t, None, beta, noise)
    return model.process.edge_terms(x0, beta) - weight * kl, kl


def step_loss(
    model: DiffusionModel,
    x0: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
    weight: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, mean estimate, KL_t (B,)): `step_terms` and the training loss -mean(K) / D
    (D dimensions per example), in one function so that the compiled step takes the mean
    and the scaling into its graph (on a toy network their eager operations and autograd
    nodes, each way, cost about 2% of a step: issue 14)."""
    k, kl = step_terms(model, x0, t, noise, weight)
    k_mean = k.mean()
    return -k_mean / model.dims, k_mean, kl


@dataclass(frozen=True)
class BoundTerms:
    """Evaluation of K over every t. per_example: (N,) K in nats; kl_profile: (T,) mean KL_t
    in nats (t = 1 is 0); log_null: (N,) log pi(x^0) nats; sigma_mean: (T,) mean learned reverse
    variance (Gaussian) or None; posterior_var: (T,) mean forward-posterior variance or None."""

    per_example: torch.Tensor
    kl_profile: torch.Tensor
    log_null: torch.Tensor
    sigma_mean: torch.Tensor | None = None
    posterior_var: torch.Tensor | None = None


@torch.no_grad()
def evaluate_bound(
    model: DiffusionModel,
    x0: torch.Tensor,
    generator: torch.Generator | None,
    max_batch: int = 32_768,
    on_progress: Callable[[int, int], None] | None = None,
    t_per_example: int = 0,
) -> BoundTerms:
    """K for each example with the sum over t = 2..T done exactly (one x^t draw per t).

    x0: (N, *shape) model space. Vectorised over (example, t) pairs in chunks of `max_batch`.
    on_progress(t_done, examples_done) is called after each chunk (t_done of T for the
    current block of examples); it may raise to stop the evaluation.
    t_per_example: 0 (or >= T - 1) for the exact sum over t; k > 0 for `sampled_bound`.
    """
    T, N = model.T, x0.shape[0]
    if 0 < t_per_example < T - 1:
        return sampled_bound(model, x0, generator, t_per_example, max_batch, on_progress)
    beta = model.beta().detach()
    gaussian = model.process.kind == "gaussian"
    kl_sum = torch.zeros(N, dtype=torch.float64, device=x0.device)
    profile = torch.zeros(T, dtype=torch.float64, device=x0.device)
    sig = torch.zeros(T, dtype=torch.float64, device=x0.device)
    post = torch.zeros(T, dtype=torch.float64, device=x0.device)
    max_batch = max(1, min(max_batch, MAX_ELEMENTS // max(1, x0[0].numel())))  # images: memory
    nb = min(N, max_batch)
    tb = max(1, max_batch // nb)
    for i in range(0, N, nb):
        xb = x0[i : i + nb]
        n = xb.shape[0]
        bits = not gaussian and is_bits(xb)  # tested once a block
        for t0 in range(2, T + 1, tb):
            ts = torch.arange(t0, min(t0 + tb, T + 1), device=x0.device)
            t = ts.repeat_interleave(n)
            xr = _copies(model, xb, len(ts), bits)
            if not gaussian:  # the training step's KL (its case tables): the same numbers
                kl = model.kl_terms(xr, t, generator, beta).view(len(ts), n)
            else:
                xt = model.process.q_sample(xr, t, beta, generator)
                z = model.readout(xt, t, beta)
                kl = model.process.kl(xr, xt, t, z, beta).view(len(ts), n)
            kl_sum[i : i + n] += kl.sum(0)
            profile[ts - 1] += kl.sum(1)
            if gaussian:
                _, var = model.process.p_mean_var(xt, t, z, beta)
                _, pv = model.process.q_posterior(xr, xt, t, beta)
                sig[ts - 1] += var.reshape(len(ts), n, -1).mean(2).sum(1)
                post[ts - 1] += pv.reshape(len(ts), n, -1).mean(2).sum(1)
            if on_progress is not None:
                on_progress(int(ts[-1]), i + (n if int(ts[-1]) == T else 0))
    per_example = model.process.edge_terms(x0, beta) - kl_sum
    if gaussian:
        sig[0], post[0] = beta[0] * N, 0.0
    return BoundTerms(
        per_example,
        profile / N,
        model.process.log_null(x0),
        sig / N if gaussian else None,
        post / N if gaussian else None,
    )


def _copies(model: DiffusionModel, xb: torch.Tensor, c: int, bits: bool) -> torch.Tensor:
    """xb repeated c times along the batch; noted as bits where xb is (`bits`), so that the
    binomial step does not test each chunk's c x n copies again."""
    xr = xb.repeat((c,) + (1,) * (xb.dim() - 1))
    if bits:
        model.process.known_bits(xr)
    return xr


@torch.no_grad()
def sampled_bound(
    model: DiffusionModel,
    x0: torch.Tensor,
    generator: torch.Generator | None,
    k: int,
    max_batch: int = 32_768,
    on_progress: Callable[[int, int], None] | None = None,
) -> BoundTerms:
    """K for each example with the sum over t = 2..T estimated from k of its terms:
    (T - 1) / k times the KL terms at k values of t, each uniform on 2..T (blocks of random
    permutations, so that the N k draws cover every t about equally). Unbiased for K; its
    extra variance is in the examples' spread, hence in the standard error. The KL profile
    and variances are means over the draws that hit each t (NaN for a t never drawn).

    on_progress(t_done, examples_done): t_done is the share of this block's k draws done,
    scaled to T.
    """
    T, N = model.T, x0.shape[0]
    beta = model.beta().detach()
    gaussian = model.process.kind == "gaussian"
    dev = x0.device
    gen, gdev = drawing(generator, dev)
    reps = -(-N * k // (T - 1))
    perms = [torch.randperm(T - 1, generator=gen, device=gdev) for _ in range(reps)]
    ts_all = (torch.cat(perms)[: N * k] + 2).view(N, k).to(dev)
    kl_sum = torch.zeros(N, dtype=torch.float64, device=dev)
    sums = torch.zeros(3, T, dtype=torch.float64, device=dev)  # KL, Sigma, posterior variance
    hits = torch.zeros(T, dtype=torch.float64, device=dev)
    max_batch = max(1, min(max_batch, MAX_ELEMENTS // max(1, x0[0].numel())))
    nb = min(N, max_batch)
    kb = max(1, max_batch // nb)
    for i in range(0, N, nb):
        xb = x0[i : i + nb]
        n = xb.shape[0]
        bits = not gaussian and is_bits(xb)  # tested once a block
        for j0 in range(0, k, kb):
            cols = ts_all[i : i + n, j0 : j0 + kb]  # (n, c)
            c = cols.shape[1]
            t = cols.T.reshape(-1)  # column by column, matching xb.repeat
            xr = _copies(model, xb, c, bits)
            if not gaussian:  # the training step's KL, as in evaluate_bound
                kl, xt, z = model.kl_terms(xr, t, generator, beta).view(c, n), None, None
            else:
                xt = model.process.q_sample(xr, t, beta, generator)
                z = model.readout(xt, t, beta)
                kl = model.process.kl(xr, xt, t, z, beta).view(c, n)
            kl_sum[i : i + n] += kl.sum(0) * ((T - 1) / k)
            _add_profile(model, sums, hits, kl, xr, xt, t, z, beta, gaussian)
            if on_progress is not None:
                done = j0 + c
                on_progress(max(2, round(T * done / k)), i + (n if done == k else 0))
    per_example = model.process.edge_terms(x0, beta) - kl_sum
    means = _profile_means(sums, hits, beta, gaussian)
    return BoundTerms(
        per_example,
        means[0],
        model.process.log_null(x0),
        means[1] if gaussian else None,
        means[2] if gaussian else None,
    )


def _add_profile(
    model: DiffusionModel,
    sums: torch.Tensor,
    hits: torch.Tensor,
    kl: torch.Tensor,
    xr: torch.Tensor,
    xt: torch.Tensor | None,
    t: torch.Tensor,
    z: torch.Tensor | None,
    beta: torch.Tensor,
    gaussian: bool,
) -> None:
    """Add one block's draws (kl: (c, n)) to the per-t sums of KL, Sigma and the posterior
    variance, and to the per-t hit counts (in place)."""
    c, n = kl.shape
    sums[0].index_add_(0, t - 1, kl.reshape(-1).double())
    hits.index_add_(0, t - 1, torch.ones_like(t, dtype=torch.float64))
    if gaussian:
        _, var = model.process.p_mean_var(xt, t, z, beta)
        _, pv = model.process.q_posterior(xr, xt, t, beta)
        sums[1].index_add_(0, t - 1, var.reshape(c * n, -1).mean(1).double())
        sums[2].index_add_(0, t - 1, pv.reshape(c * n, -1).mean(1).double())


def _profile_means(
    sums: torch.Tensor, hits: torch.Tensor, beta: torch.Tensor, gaussian: bool
) -> torch.Tensor:
    """Per-t means over the draws that hit each t (NaN for a t never drawn; t = 1 set)."""
    means = sums / hits.clamp(min=1)
    means[:, hits == 0] = float("nan")
    means[0, 0] = 0.0  # t = 1 has no KL term
    if gaussian:
        means[1, 0], means[2, 0] = beta[0], 0.0
    return means


@torch.no_grad()
def importance_log_likelihood(
    model: DiffusionModel,
    x0: torch.Tensor,
    k: int,
    generator: torch.Generator | None,
    max_batch: int = 32_768,
) -> torch.Tensor:
    """(N,) nats: log (1/k) sum_k pi(x^T) prod_t p(x^{t-1}|x^t) / q(x^t|x^{t-1}) over k forward
    trajectories (section 2.2, Eq. 9; annealed importance sampling). k = 1 is an unbiased
    single-trajectory estimate of K; the estimate's mean rises to log p(x^0) as k grows."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    beta = model.beta().detach()
    proc = model.process
    out = torch.empty(x0.shape[0], dtype=torch.float64, device=x0.device)
    max_batch = max(1, min(max_batch, MAX_ELEMENTS // max(1, x0[0].numel())))  # images: memory
    nb = max(1, max_batch // k)
    for i in range(0, x0.shape[0], nb):
        xb = x0[i : i + nb].double()
        n = xb.shape[0]
        x_prev = xb.repeat((k,) + (1,) * (xb.dim() - 1))
        logw = torch.zeros(k * n, dtype=torch.float64, device=x0.device)
        for step in range(1, model.T + 1):
            t = torch.full((k * n,), step, dtype=torch.long, device=x0.device)
            xt = proc.q_step_sample(x_prev, t, beta, generator)
            z = model.readout(xt, t, beta)
            logw += proc.log_p_step(x_prev, xt, t, z, beta) - proc.log_q_step(x_prev, xt, t, beta)
            x_prev = xt
        logw += proc.log_prior(x_prev)
        out[i : i + n] = torch.logsumexp(logw.view(k, n), 0) - math.log(k)
    return out


def estimate(per_example_nats: torch.Tensor, unit: str, divisor: float = 1.0) -> BoundEstimate:
    """Mean and standard error over examples, in bits per unit."""
    x = per_example_nats.detach().double().cpu() / LN2 / divisor
    n = x.numel()
    se = float(x.std(unbiased=True) / math.sqrt(n)) if n > 1 else float("nan")
    return BoundEstimate(float(x.mean()), se, unit)


@torch.no_grad()
def strided_bound(
    model: DiffusionModel,
    x0: torch.Tensor,
    steps: int | None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B,) the bound K, in nats per example, of the S-step strided chain of a Gaussian
    `DiffusionModel` (diffusion.chains.strided) on x0 (B, *shape) in model space.

    The forward marginals at the kept steps form a Markov chain, so Eq. 14 holds for it:
    K_S = E[log p(x^0 | x^1)] - KL(q(x^T | x^0) || pi)
          - sum_{i >= 2} E KL(q(x^{tau_{i-1}} | x^{tau_i}, x^0) || p(x^{tau_{i-1}} | x^{tau_i})),
    one x^{tau_i} ~ q(x^{tau_i} | x^0) per kept step (exact in the sum, Monte Carlo in x^t).
    S = T gives the full chain's K.
    """
    return reverse_strided_bound(gaussian_reverse(model), model.process, x0, steps, generator)


def reverse_strided_bound(
    rev: Reverse,
    process: Process,
    x0: torch.Tensor,
    steps: int | None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """`strided_bound` for any Gaussian `Reverse` (diagonal kernel); `process` gives the
    edge terms (a `diffusion.processes.gaussian.GaussianDiffusion`)."""
    chain = rev.respaced(steps)
    abar = chain.alpha_bar
    x0 = x0.to(torch.float64)
    total = process.edge_terms(x0, rev.beta)
    for level in range(chain.T, 1, -1):
        eps = randn(x0.shape, generator, x0.device)
        a_t, a_s = float(abar[level]), float(abar[level - 1])
        xt = math.sqrt(a_t) * x0 + math.sqrt(1 - a_t) * eps
        alpha_s = a_t / a_s
        mq = (math.sqrt(a_s) * (1 - alpha_s) / (1 - a_t)) * x0 + (
            math.sqrt(alpha_s) * (1 - a_s) / (1 - a_t)
        ) * xt
        vq = torch.full_like(x0, (1 - a_s) * (1 - alpha_s) / (1 - a_t))
        step = expect_step(chain.kernel(xt, level), Normal, "the strided bound")
        total = total - normal_kl(mq, vq, step.mean, step.var)
    return total
