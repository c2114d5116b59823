"""The training estimate of K written the straightforward way, as the engine computed it
before its schedule-derived numbers were tabulated (issue 14): every use looks its numbers up
from beta on its own (alpha_bar recomputed at each use, one gather per number). The tests
(test_step_tables.py) hold the engine's tabulated step to this reference.

Gaussian (diagonal and full covariance, mean "noise" and "v") and binomial processes.
"""

from __future__ import annotations

import math

import torch
from torch.nn.functional import logsigmoid

from diffusion.processes.base import drawing, rand, randn
from diffusion.processes.gaussian import unit_lower_inverse

LOG_2PI = math.log(2 * math.pi)


def alpha_bar(beta):
    return torch.cumprod(1 - beta, dim=0)


def at(v, t, x):
    return v[t - 1].reshape((-1,) + (1,) * (x.dim() - 1))


def sum_dims(x):
    return x.reshape(x.shape[0], -1).sum(1)


def normal_kl(m1, v1, m2, v2):
    r = v1 / v2
    return sum_dims(0.5 * (r - 1 - torch.log(r) + (m1 - m2) ** 2 / v2))


# ------------------------------------------------------------------------------ Gaussian
def g_q_sample(x0, t, beta, generator):
    noise = randn(x0.shape, generator, x0.device)
    abar = at(alpha_bar(beta), t, x0)
    return abar.sqrt() * x0.double() + (1 - abar).sqrt() * noise


def g_q_posterior(x0, xt, t, beta):
    abar = alpha_bar(beta)
    abar_prev = torch.cat([abar.new_ones(1), abar[:-1]])
    a_t, ap, b = at(abar, t, xt), at(abar_prev, t, xt), at(beta, t, xt)
    mean = (ap.sqrt() * b / (1 - a_t)) * x0.double() + (
        (1 - b).sqrt() * (1 - ap) / (1 - a_t)
    ) * xt.double()
    return mean, ((1 - ap) * b / (1 - a_t)).expand_as(mean)


def g_p_mean_var(xt, t, z, beta):
    xt = xt.double()
    b = at(beta, t, xt)
    z_m, z_s = z[..., 0], z[..., 1]
    var = torch.sigmoid(z_s + torch.log(b) - torch.log1p(-b))
    mean = (xt - z_m) * (1 - var) + z_m
    first = (t == 1).reshape(b.shape)
    mean = torch.where(first, (1 - b).sqrt() * xt, mean)
    var = torch.where(first, b.expand_as(var), var)
    return mean, var


def g_readout(model, xt, t, beta, y):
    b = at(beta, t, xt)
    abar = alpha_bar(beta)
    a_t = at(abar, t, xt)
    var = torch.sigmoid(y[..., 1] + torch.log(b) - torch.log1p(-b))
    x = xt.double()
    if model.config.diffusion.mean == "v":
        ap = at(torch.cat([abar.new_ones(1), abar[:-1]]), t, xt)
        x0_hat = a_t.sqrt() * x - (1 - a_t).sqrt() * y[..., 0]
        mu = (ap.sqrt() * b / (1 - a_t)) * x0_hat + ((1 - b).sqrt() * (1 - ap) / (1 - a_t)) * x
        z_m = (mu - x * (1 - var)) / var
    else:
        z_m = x + b * y[..., 0] / (var * (1 - a_t).sqrt())
    return torch.cat([z_m.unsqueeze(-1), y[..., 1:]], dim=-1)


def g_kl(proc, x0, xt, t, z, beta):
    mq, vq = g_q_posterior(x0, xt, t, beta)
    if not proc.full:
        mp, vp = g_p_mean_var(xt, t, z, beta)
        return normal_kl(mq, vq, mp, vp)
    mean, s = g_p_mean_var(xt, t, z, beta)
    u_inv = unit_lower_inverse(proc.p_factor(t, z))
    B = xt.shape[0]
    mp, s = mean.reshape(B, -1), s.reshape(B, -1)
    mq, vq = mq.reshape(B, -1), vq.reshape(B, -1)
    trace = ((u_inv**2) * (vq / s).unsqueeze(1)).sum((1, 2))
    w = (u_inv @ ((mq - mp) / s.sqrt()).unsqueeze(-1)).squeeze(-1)
    quad = (w**2).sum(1)
    return 0.5 * (trace + quad - proc.D + torch.log(s).sum(1) - torch.log(vq).sum(1))


def g_edge_terms(x0, beta):
    x0 = x0.double()
    D = x0[0].numel()
    sq = sum_dims(x0**2)
    b1, abar_T = beta[0], alpha_bar(beta)[-1]
    l0 = -0.5 * D * (LOG_2PI + torch.log(b1)) - 0.5 * b1 * sq - 0.5 * (1 - b1) * D
    lT = 0.5 * (abar_T * sq - D * abar_T - D * torch.log1p(-abar_T))
    return l0 - lT


# ------------------------------------------------------------------------------ binomial
def bernoulli_log_prob(x, logit_p):
    return x * logsigmoid(logit_p) + (1 - x) * logsigmoid(-logit_p)


def bernoulli_kl_logits(q, logit_p):
    xlogx = torch.special.xlogy(q, q) + torch.special.xlogy(1 - q, 1 - q)
    return xlogx - q * logsigmoid(logit_p) - (1 - q) * logsigmoid(-logit_p)


def b_forward_logit(m, x_prev, t, beta):
    x = x_prev.double()
    b = beta
    p1, p0 = 1 - (1 - m) * b, m * b
    table = torch.stack([torch.log(p0) - torch.log1p(-p0), torch.log(p1) - torch.log((1 - m) * b)])[
        :, t - 1
    ].reshape((2, -1) + (1,) * (x.dim() - 1))
    return torch.where(x > 0.5, table[1], table[0])


def b_q_prob(m, x0, t, beta):
    abar = torch.cat([beta.new_ones(1), alpha_bar(beta)])
    a = abar[t].reshape((-1,) + (1,) * (x0.dim() - 1))
    return x0.double() * a + m * (1 - a)


def b_kl(m, x0, xt, t, z, beta):
    xt = xt.double()
    prior1 = b_q_prob(m, x0, t - 1, beta)
    lik1 = torch.exp(bernoulli_log_prob(xt, b_forward_logit(m, torch.ones_like(xt), t, beta)))
    lik0 = torch.exp(bernoulli_log_prob(xt, b_forward_logit(m, torch.zeros_like(xt), t, beta)))
    num = lik1 * prior1
    q = num / (num + lik0 * (1 - prior1))
    first = (t == 1).reshape((-1,) + (1,) * (xt.dim() - 1))
    logit = b_forward_logit(m, xt, t, beta) + torch.where(first, 0.0, z[..., 0])
    return sum_dims(bernoulli_kl_logits(q, logit))


def b_edge_terms(m, x0, beta):
    x0 = x0.double()
    one = torch.ones(x0.shape[0], dtype=torch.long)
    q1 = b_q_prob(m, x0, one, beta)
    l0 = torch.zeros_like(x0)
    for x1, w in ((torch.ones_like(x0), q1), (torch.zeros_like(x0), 1 - q1)):
        l0 = l0 + w * bernoulli_log_prob(x0, b_forward_logit(m, x1, one, beta))
    qT = b_q_prob(m, x0, one * len(beta), beta)
    m_logit = torch.full_like(qT, m).logit()
    return sum_dims(l0) - sum_dims(bernoulli_kl_logits(qT, m_logit))


# ------------------------------------------------------------------------------ the step
def reference_train_loss(model, x0, generator, t_probs=None, loss_fn=None):
    """(loss, mean estimate, t, KL_t) nats: diffusion.evaluation.bound.train_loss the
    straightforward way (`loss_fn`, the compiled arithmetic, is not used)."""
    k, t, kl = reference_train_terms(model, x0, generator, t_probs)
    k_mean = k.mean()
    return -k_mean / model.dims, k_mean, t, kl


def reference_train_terms(model, x0, generator, t_probs=None):
    """(estimate (B,), t (B,), KL_t (B,)) nats: diffusion.evaluation.bound.train_terms the
    straightforward way (same draws from `generator`, in the same order)."""
    T, B = model.T, x0.shape[0]
    gen, gdev = drawing(generator, x0.device)
    if t_probs is None:
        t = torch.randint(2, T + 1, (B,), generator=gen, device=gdev)
        weight = torch.full((B,), float(T - 1), dtype=torch.float64)
    else:
        idx = torch.multinomial(t_probs.to(gdev), B, replacement=True, generator=gen)
        t = idx + 2
        weight = 1.0 / t_probs.to(torch.float64)[idx]
    beta = model.beta()
    proc = model.process
    param = next(model.net.parameters())
    if proc.kind == "gaussian":
        xt = g_q_sample(x0, t, beta, generator)
        y = model.net(xt.to(param.dtype), model.basis(t).to(param.dtype)).double()
        kl = g_kl(proc, x0, xt, t, g_readout(model, xt, t, beta, y), beta)
        edge = g_edge_terms(x0, beta)
    else:
        m = proc.m
        noise = rand(x0.shape, generator, x0.device)
        xt = (noise < b_q_prob(m, x0, t, beta)).double()
        y = model.net(xt.to(param.dtype), model.basis(t).to(param.dtype)).double()
        kl = b_kl(m, x0, xt, t, y, beta)
        edge = b_edge_terms(m, x0, beta)
    return edge - weight * kl, t, kl
