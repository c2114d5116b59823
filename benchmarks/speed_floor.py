"""Reference floors for the toy rows of the speed benchmark (issue 14): how much of each gap
is work that any sampler or trainer of the same model must do. Report-only rows; the issue's
rows and their baselines (bare forwards, the bare loop) are unchanged.

- `minimal_gaussian_chain` / `minimal_binary_chain`: a hand-written chain of the same
  kernel, written plainly: the same network's forwards (one per level, as the lab's chain
  makes, the step 1 -> 0 included) and per step only what a sampler of that kernel must do.
  Gaussian: the kernel's mean and standard deviation from the network's two outputs, one
  noise draw of the state's shape and one fused update x = mean + sigma * z; binomial: the
  kernel's logit from the network's output and one Bernoulli draw. The per-level constants
  (the schedule's numbers, a strided step's constants) are Python floats computed before the
  chain; the state stays in the network's dtype (float32), where the lab's chains keep
  float64 (a choice of the lab: the difference is counted in the lab's share).
- `PaperLossLoop`: the bare loop of speed_engine.BareLoop (the same network given the
  engine's weights each step, batch, optimizer, clipping) with the paper's loss for a FIXED
  schedule: t uniform on 2..T, x^t drawn from q(x^t | x^0), and the KL of the forward
  posterior to the network's kernel (Gaussian, App. D.2.1; binomial, App. D.2.2), summed over
  dimensions, averaged over the batch. No learned schedule, no importance sampling, no EMA,
  no metrics; the constant edge terms are left out (a fixed schedule gives them no gradient).
"""

from __future__ import annotations

import math

import torch
from torch.nn.functional import logsigmoid

from diffusion.chains.strided import kept_steps, strided_constants


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def gaussian_levels(
    model, steps: int | None = None
) -> list[tuple[int, float, float, float, float, float]]:
    """Per level i = 1..S of the (strided) chain, index i - 1: (t, a, b, logit_beta_t, power,
    scale): the step grid[i] -> grid[i - 1] draws x = a x^t + b yM + scale *
    sigmoid(yV + logit_beta_t) ** power * z (noise form of the mean: mu = x^t + beta_t /
    sqrt(1 - abar_t) yM; the learned variance Sigma = sigmoid(yV + logit beta_t), carried to a
    strided step by its place between the entropy bounds, diffusion.chains.strided). The step
    1 -> 0 is the fixed first step: a = sqrt(1 - beta_1), b = 0, power = 0, scale =
    sqrt(beta_1)."""
    if model.config.diffusion.mean != "noise":
        raise ValueError("the minimal chain is written for the noise form of the mean")
    beta = model.beta().detach().double().cpu().tolist()
    T = len(beta)
    abar = [1.0]
    for b in beta:
        abar.append(abar[-1] * (1.0 - b))
    grid = kept_steps(T, steps)
    out = []
    for i in range(1, len(grid)):
        t, s = grid[i], grid[i - 1]
        bt = beta[t - 1]
        if t == 1:
            out.append((1, math.sqrt(1.0 - bt), 0.0, 0.0, 0.0, math.sqrt(bt)))
            continue
        m2, lb = bt / math.sqrt(1.0 - abar[t]), _logit(bt)
        if s == t - 1:
            out.append((t, 1.0, m2, lb, 0.5, 1.0))
            continue
        k = strided_constants(abar[t], abar[t - 1], abar[s])
        out.append((t, k.mu + k.x, k.mu * m2, lb, 0.5 * k.power, math.exp(0.5 * k.log_offset)))
    return out


def gaussian_update(
    x: torch.Tensor, y: torch.Tensor, level: tuple, z: torch.Tensor
) -> torch.Tensor:
    """One step of the minimal Gaussian chain: x^t, the network's outputs y (n, *shape, 2) at
    the level's step, the level's constants (`gaussian_levels`) and the noise z -> x^s."""
    t, a, b, lb, power, scale = level
    if power == 0.0:  # the fixed first step
        return torch.add(x * a, z, alpha=scale)
    sigma = torch.sigmoid(y[..., 1] + lb).pow_(power)
    if scale != 1.0:
        sigma.mul_(scale)
    mean = torch.add(x if a == 1.0 else x * a, y[..., 0], alpha=b)
    return torch.addcmul(mean, sigma, z)


def minimal_gaussian_chain(model, n: int, generator: torch.Generator, steps: int | None = None):
    """A function drawing n samples (n, *shape) float32 by the model's diagonal Gaussian
    kernel over S = `steps` kept steps (None: every step), written plainly (module docstring)."""
    net, basis, shape = model.net, model.basis, (n, *model.shape)
    dtype = next(net.parameters()).dtype
    levels = gaussian_levels(model, steps)[::-1]  # from level S down to 1
    table = basis.table().to(dtype)

    @torch.no_grad()
    def run() -> torch.Tensor:
        x = torch.randn(shape, generator=generator, dtype=dtype)
        for level in levels:
            y = net(x, table[level[0] - 1].expand(n, -1).contiguous())
            x = gaussian_update(x, y, level, torch.randn(shape, generator=generator, dtype=dtype))
        return x

    return run


def binary_levels(model) -> list[tuple[int, float, float]]:
    """Per step t = 1..T, index t - 1: (t, l0, l1 - l0), the forward logits logit(m beta_t) and
    logit(1 - beta_t + m beta_t): the kernel's logit is l0 + (l1 - l0) x^t + z (z = 0 at
    t = 1, the fixed first step; diffusion.processes.binomial)."""
    beta = model.beta().detach().double().cpu().tolist()
    m = float(model.config.diffusion.m)
    out = []
    for t, b in enumerate(beta, start=1):
        l0, l1 = _logit(m * b), _logit(1.0 - b + m * b)
        out.append((t, l0, l1 - l0))
    return out


def binary_prob(x: torch.Tensor, z: torch.Tensor, level: tuple) -> torch.Tensor:
    """P(x^{t-1} = 1 | x^t) of the minimal binary chain from x^t, the network's output z and
    the level's constants (`binary_levels`)."""
    t, l0, dl = level
    logit = torch.add(z, x, alpha=dl).add_(l0) if t > 1 else x * dl + l0
    return torch.sigmoid(logit)


def minimal_binary_chain(model, d: torch.Tensor, generator: torch.Generator):
    """A function drawing posterior samples of the binomial model under r = prod_i
    Bernoulli(d_i) with d in {0, 1/2, 1} (known bits 0 or 1, unknown 1/2; the benchmark's
    observation), written plainly: each step's Bernoulli draw from the kernel's logit, known
    bits then set to their values (the product with d = 0 or 1 pins them; d = 1/2 changes
    nothing). ValueError for other values of d."""
    net, basis = model.net, model.basis
    dtype = next(net.parameters()).dtype
    if not bool(((d == 0) | (d == 1) | (d == 0.5)).all()):
        raise ValueError("the minimal binary chain takes d in {0, 1/2, 1}")
    known = d != 0.5
    pin = bool(known.any())  # nothing observed: plain ancestral sampling, no pinning
    values = d.to(dtype)
    n, m = d.shape[0], float(model.config.diffusion.m)
    levels = binary_levels(model)[::-1]
    table = basis.table().to(dtype)

    @torch.no_grad()
    def run() -> torch.Tensor:
        x = torch.bernoulli(torch.full(d.shape, m, dtype=dtype), generator=generator)
        x = torch.where(known, values, x) if pin else x
        for level in levels:
            z = net(x, table[level[0] - 1].expand(n, -1).contiguous())[..., 0]
            x = torch.bernoulli(binary_prob(x, z, level), generator=generator)
            if pin:
                x = torch.where(known, values, x)
        return x

    return run


class PaperLossLoop:
    """speed_engine.BareLoop's loop with the paper's loss for a fixed schedule (module
    docstring). `bare`: a BareLoop, whose network copy, optimizer and clipping are reused (the
    engine's weights are copied in each step, as the bare loop does); `trainer`: the engine's
    _Trainer (its model, data and config)."""

    def __init__(self, trainer, bare) -> None:
        model, tc = trainer.model, trainer.config.train
        self.bare, self.net, self.B = bare, bare.net, tc.batch_size
        self.dtype = bare.dtype
        self.gen = torch.Generator().manual_seed(1)
        data = trainer.bundle.draw_train(min(4096, 8 * tc.batch_size), self.gen)
        self.data = trainer.bundle.scaler.to_model(data).to(self.dtype)
        self.kind = model.process.kind
        self.T = model.T
        self.table = model.basis.table().to(self.dtype)
        beta = model.beta().detach().double().cpu()
        abar = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - beta, 0)])
        at, ap = abar[1:], abar[:-1]  # abar_t, abar_{t-1} at t = 1..T
        if self.kind == "gaussian":
            if model.config.diffusion.mean != "noise":
                raise ValueError("the paper-loss loop is written for the noise form of the mean")
            cols = {
                "sa": at.sqrt(),
                "s1": (1 - at).sqrt(),
                "m2": beta / (1 - at).sqrt(),
                "lb": beta.log() - (-beta).log1p(),
                "c0": ap.sqrt() * beta / (1 - at),
                "ct": (1 - beta).sqrt() * (1 - ap) / (1 - at),
                "vq": (1 - ap) * beta / (1 - at),
            }
        else:
            m = float(model.config.diffusion.m)
            cols = {
                "at": at,
                "ap": ap,
                "beta": beta,
                "m": torch.full_like(beta, m),
                "l0": torch.logit(m * beta),
                "dl": torch.logit(1 - beta + m * beta) - torch.logit(m * beta),
            }
        view = (-1,) + (1,) * (self.data.dim() - 1)
        self.cols = {k: v.to(self.dtype) for k, v in cols.items()}
        self.view = view

    def _at(self, t: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: torch.index_select(v, 0, t - 1).view(self.view) for k, v in self.cols.items()}

    def loss(self) -> torch.Tensor:
        """The batch's mean KL: x^0 from the data, t uniform on 2..T, x^t ~ q(x^t | x^0)."""
        B, gen = self.B, self.gen
        x0 = self.data[torch.randint(0, self.data.shape[0], (B,), generator=gen)]
        t = torch.randint(2, self.T + 1, (B,), generator=gen)
        c = self._at(t)
        if self.kind == "gaussian":
            xt = torch.addcmul(c["sa"] * x0, c["s1"], torch.randn(x0.shape, generator=gen))
        else:
            xt = torch.bernoulli(x0 * c["at"] + c["m"] * (1 - c["at"]), generator=gen)
        return self.kl(x0, xt, t, c).mean()

    def kl(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, c=None) -> torch.Tensor:
        """(B,) KL(q(x^{t-1} | x^t, x^0) || p(x^{t-1} | x^t)) in nats, summed over dimensions;
        `c`: the schedule's numbers at t (`_at`), looked up if not given."""
        c = self._at(t) if c is None else c
        g = torch.index_select(self.table, 0, t - 1)
        dims = tuple(range(1, x0.dim()))
        y = self.net(xt, g)
        if self.kind == "gaussian":
            mu = torch.addcmul(xt, c["m2"], y[..., 0])
            log_var = logsigmoid(y[..., 1] + c["lb"])
            mu_q = torch.addcmul(c["c0"] * x0, c["ct"], xt)
            vq = c["vq"]
            kl = 0.5 * (log_var - vq.log() + (vq + (mu_q - mu).square()) * torch.exp(-log_var) - 1)
            return kl.sum(dims)
        # binomial: the posterior q(x^{t-1} = 1 | x^t, x^0) against the kernel's logit
        p_prev = x0 * c["ap"] + c["m"] * (1 - c["ap"])  # q(x^{t-1} = 1 | x^0)
        keep = 1 - c["beta"] + c["m"] * c["beta"]  # q(x^t = 1 | x^{t-1} = 1)
        flip = c["m"] * c["beta"]  # q(x^t = 1 | x^{t-1} = 0)
        a1 = p_prev * torch.where(xt > 0.5, keep, 1 - keep)
        a0 = (1 - p_prev) * torch.where(xt > 0.5, flip, 1 - flip)
        q = a1 / (a1 + a0)
        logit = torch.addcmul(y[..., 0] + c["l0"], xt, c["dl"])
        kl = torch.xlogy(q, q) + torch.xlogy(1 - q, 1 - q)
        kl = kl - q * logsigmoid(logit) - (1 - q) * logsigmoid(-logit)
        return kl.sum(dims)

    def step(self) -> None:
        bare = self.bare
        with torch.no_grad():
            torch._foreach_copy_(bare.params, bare.source)
        loss = self.loss()
        bare.opt.zero_grad(set_to_none=True)
        loss.backward()
        if bare.clip > 0:
            torch.nn.utils.clip_grad_norm_(bare.params, bare.clip)
        bare.opt.step()
