"""benchmarks/heartbeat_ceiling.py against brute force: every x^t enumerated at small L and T."""

from __future__ import annotations

import importlib.util
import itertools
import math
from pathlib import Path

import pytest
import torch

from diffusion.processes.binomial import BinomialDiffusion
from diffusion.processes.schedules import baseline_beta

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "heartbeat_ceiling.py"
_spec = importlib.util.spec_from_file_location("heartbeat_ceiling", _PATH)
hc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hc)


def brute_force_profile(
    beta: torch.Tensor, m: float, length: int, period: int, dz: float = 0.0
) -> torch.Tensor:
    """(T,) nats: E KL_t with p* = the exact posterior marginals, every x^t in {0,1}^L
    (`dz` is added to the logits of p*: a perturbed kernel)."""
    proc = BinomialDiffusion(m)
    T = len(beta)
    x0s = hc.heartbeat_patterns(length, period)  # (P, L)
    xts = torch.tensor(list(itertools.product((0.0, 1.0), repeat=length)), dtype=torch.float64)
    out = torch.zeros(T, dtype=torch.float64)
    for t in range(2, T + 1):
        tt = torch.full((len(xts),), t)
        # q(x^t | x^0 = pattern k) for every x^t: (S, P)
        lik = torch.stack(
            [
                torch.exp(
                    (
                        xts * torch.log(proc.q_prob(x0.expand_as(xts), tt, beta))
                        + (1 - xts) * torch.log1p(-proc.q_prob(x0.expand_as(xts), tt, beta))
                    ).sum(1)
                )
                for x0 in x0s
            ],
            dim=1,
        )
        post = lik / lik.sum(1, keepdim=True)  # uniform prior over phases
        qpost = torch.stack([proc.q_posterior(x0.expand_as(xts), xts, tt, beta) for x0 in x0s], 1)
        pstar = (post[..., None] * qpost).sum(1)  # (S, L)
        z = (torch.logit(pstar) - proc.forward_logit(xts, tt, beta) + dz)[..., None]
        for k, x0 in enumerate(x0s):
            kl = proc.kl(x0.expand_as(xts), xts, tt, z, beta)  # (S,)
            out[t - 1] += (lik[:, k] * kl).sum() / period
    return out


@pytest.mark.parametrize(("length", "period", "T", "m"), [(6, 3, 7, 0.2), (7, 3, 5, 0.3)])
def test_ceiling_profile_matches_brute_force(length: int, period: int, T: int, m: float) -> None:
    beta = baseline_beta(T, beta1=1 / T)
    fast = hc.ceiling_profile(beta, m, length, period, t_chunk=3)
    slow = brute_force_profile(beta, m, length, period)
    assert fast[0] == 0
    assert torch.allclose(fast, slow, rtol=1e-9, atol=1e-12)
    assert float(slow[1:].sum()) > 0


def test_ceiling_is_below_truth_and_kernel_is_optimal() -> None:
    """K* <= log(1/P); perturbing p* at any t only raises the KL (it is the minimiser)."""
    length, period, T, m = 6, 3, 6, 0.2
    beta = baseline_beta(T, beta1=1 / T)
    res = hc.ceiling(beta, m, length, period)
    assert res["K_ceiling_bits"] <= -math.log2(period) + 1e-9
    assert res["K_ceiling_bits"] == pytest.approx(res["edge_bits"] - res["kl_sum_bits"])
    best = brute_force_profile(beta, m, length, period)
    for dz in (-0.05, 0.05):
        worse = brute_force_profile(beta, m, length, period, dz)
        assert bool((worse[1:] > best[1:]).all())
