"""The best K any factorized-Bernoulli reverse kernel can reach on the binary heartbeat.

For binomial diffusion (model.md section 7) the KL term at step t is minimised, over every
reverse kernel that is a product of Bernoullis given x^t, by the posterior marginals
p*(x^{t-1}_i = 1 | x^t) = E_{x^0 | x^t} q(x^{t-1}_i = 1 | x^t_i, x^0_i). For the heartbeat
(length L, a 1 every P bins, phase uniform over P) x^0 is one of P patterns; pattern k has its
ones on the positions of class k (i mod P = k). Under q(x^t | x^0) the bits are independent, so
the posterior over the phase depends on x^t only through the counts c_j of ones per class:
log w_k = c_k log(p1/p0) + (n_k - c_k) log((1 - p1)/(1 - p0)) + const, with
p1 = abar_t + m (1 - abar_t) and p0 = m (1 - abar_t) (a softmax of logits linear in x^t whose
scale log-odds depend on t). The script enumerates every count vector (prod_j (n_j + 1) of
them, 3125 for L = 20, P = 5) with its exact probability, so the per-t KL and the ceiling

    K* = E[log p(x^0 | x^1)] - KL(q(x^T | x^0) || pi) - sum_{t=2..T} E KL(q || p*)

are exact (no Monte Carlo). With `--run DIR` (a run kept by `benchmarks/table1.py --out`) it
also evaluates that run's K per t on its holdout set and shows where it loses against p*.

  .venv/bin/python benchmarks/heartbeat_ceiling.py
  .venv/bin/python benchmarks/heartbeat_ceiling.py --run /tmp/table1-x/heartbeat-fixed --json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

import torch

from diffusion.presets import PRESETS
from diffusion.processes.binomial import BinomialDiffusion, bernoulli_kl_logits
from diffusion.processes.gaussian import alpha_bar
from diffusion.processes.schedules import baseline_beta

LN2 = math.log(2)
# t ranges of the per-t table (inclusive bounds)
RANGES = ((2, 10), (11, 50), (51, 200), (201, 500), (501, 1000), (1001, 1500), (1501, 2000))


def class_sizes(length: int, period: int) -> list[int]:
    return [len(range(j, length, period)) for j in range(period)]


def heartbeat_patterns(length: int, period: int) -> torch.Tensor:
    """(P, L) float64: pattern k has ones at positions i with i mod P = k."""
    pos = torch.arange(length)
    return torch.stack([((pos - k) % period == 0).double() for k in range(period)])


def ceiling_profile(
    beta: torch.Tensor, m: float, length: int = 20, period: int = 5, t_chunk: int = 128
) -> torch.Tensor:
    """(T,) float64 nats: min over factorized reverse kernels of E KL_t, t = 1..T (t = 1: 0).

    Exact: enumerates the counts of ones per class of x^t for each true phase.
    """
    T = len(beta)
    proc = BinomialDiffusion(m)
    sizes = class_sizes(length, period)
    P = period
    n = torch.tensor(sizes, dtype=torch.float64)  # (P,)
    counts = torch.tensor(
        list(itertools.product(*[range(s + 1) for s in sizes])), dtype=torch.float64
    )  # (S, P)
    log_binom = sum(
        torch.lgamma(n[j] + 1)
        - torch.lgamma(counts[:, j] + 1)
        - torch.lgamma(n[j] - counts[:, j] + 1)
        for j in range(P)
    )  # (S,)
    eye = torch.eye(P, dtype=torch.float64)
    out = torch.zeros(T, dtype=torch.float64)
    for t0 in range(2, T + 1, t_chunk):
        ts = torch.arange(t0, min(t0 + t_chunk, T + 1))
        nt = len(ts)
        p1 = proc.q_prob(torch.ones(nt, 1, dtype=torch.float64), ts, beta)[:, 0]  # (nt,)
        p0 = proc.q_prob(torch.zeros(nt, 1, dtype=torch.float64), ts, beta)[:, 0]
        # q(x^{t-1} = 1 | x^t = v, x^0 = u) for u, v in {0, 1}: (nt, u, v)
        qpost = torch.empty(nt, 2, 2, dtype=torch.float64)
        for u in (0, 1):
            for v in (0, 1):
                x0 = torch.full((nt, 1), float(u), dtype=torch.float64)
                xt = torch.full((nt, 1), float(v), dtype=torch.float64)
                qpost[:, u, v] = proc.q_posterior(x0, xt, ts, beta)[:, 0]
        # posterior over phases given the counts: (nt, S, P)
        a = torch.log(p1 / p0)[:, None, None]
        b = (torch.log1p(-p1) - torch.log1p(-p0))[:, None, None]
        logw = a * counts[None] + b * (n[None, None] - counts[None])
        post = torch.softmax(logw, dim=2)
        # p*(x^{t-1}_i = 1 | x^t) for a bit of class j with x^t_i = v: (nt, S, P, v)
        q_off, q_on = qpost[:, 0, :], qpost[:, 1, :]  # (nt, v)
        pstar = q_off[:, None, None, :] + (q_on - q_off)[:, None, None, :] * post[..., None]
        logit_pstar = torch.logit(pstar)
        kl_t = torch.zeros(nt, dtype=torch.float64)
        for k in range(P):  # true phase k, probability 1/P
            pk = torch.where(eye[k] > 0, p1[:, None], p0[:, None])  # (nt, P) P(x^t_i=1) by class
            log_pc = log_binom[None] + (
                counts[None] * torch.log(pk[:, None, :])
                + (n - counts)[None] * torch.log1p(-pk[:, None, :])
            ).sum(2)  # (nt, S)
            q_true = qpost[:, eye[k].long(), :]  # (nt, P, v): x^0 of class j is [j == k]
            kl1 = bernoulli_kl_logits(q_true[:, None, :, 1].expand_as(post), logit_pstar[..., 1])
            kl0 = bernoulli_kl_logits(q_true[:, None, :, 0].expand_as(post), logit_pstar[..., 0])
            per_state = (counts[None] * kl1 + (n - counts)[None] * kl0).sum(2)  # (nt, S)
            kl_t += (torch.exp(log_pc) * per_state).sum(1) / P
        out[ts - 1] = kl_t
    return out


def edge_mean(beta: torch.Tensor, m: float, length: int, period: int) -> float:
    """E over the P patterns of E log p(x^0 | x^1) - KL(q(x^T | x^0) || pi), nats."""
    x0 = heartbeat_patterns(length, period)
    return float(BinomialDiffusion(m).edge_terms(x0, beta).mean())


def ceiling(beta: torch.Tensor, m: float, length: int = 20, period: int = 5) -> dict:
    prof = ceiling_profile(beta, m, length, period)
    edge = edge_mean(beta, m, length, period)
    return {
        "K_ceiling_bits": (edge - float(prof.sum())) / LN2,
        "edge_bits": edge / LN2,
        "kl_sum_bits": float(prof.sum()) / LN2,
        "true_ll_bits": -math.log2(period),
        "profile_bits": (prof / LN2).tolist(),
    }


def range_table(profile: list[float], ranges=RANGES) -> list[tuple[int, int, float]]:
    T = len(profile)
    rows = []
    for lo, hi in ranges:
        if lo > T:
            break
        rows.append((lo, min(hi, T), sum(profile[lo - 1 : min(hi, T)])))
    return rows


def run_profile(run_dir: Path) -> dict:
    """K and the per-t KL (bits) of a trained run on its holdout set (EMA weights)."""
    from diffusion.inference import load_trained

    trained = load_trained(run_dir, device="cpu")
    rep = trained.report(k=1)
    prof = (rep.terms.kl_profile / LN2).tolist()
    return {
        "K_bits": rep.k.bits,
        "K_stderr_bits": rep.k.stderr_bits,
        "profile_bits": prof,
        "step": trained.step,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="heartbeat")
    p.add_argument("--run", type=Path, default=None, help="a kept run dir to compare per t")
    p.add_argument("--json", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = PRESETS[args.preset]
    if args.run is not None:
        from diffusion.config import RunConfig

        cfg = RunConfig.from_json((args.run / "config.json").read_text())
    d = cfg.diffusion
    if d.kind != "binomial" or d.schedule != "baseline":
        raise SystemExit("the ceiling is for binomial diffusion with the baseline schedule")
    length = int(cfg.data.option("length", 20))
    period = int(cfg.data.option("period", 5))
    beta = baseline_beta(d.T, beta1=d.beta1)
    assert torch.allclose(alpha_bar(beta)[-1], torch.zeros((), dtype=torch.float64), atol=1e-12)
    res = ceiling(beta, d.m, length, period)
    run = run_profile(args.run) if args.run is not None else None
    if args.json:
        out = {k: v for k, v in res.items() if k != "profile_bits"}
        out["ranges"] = [
            {"t": [lo, hi], "ceiling_kl_bits": c} for lo, hi, c in range_table(res["profile_bits"])
        ]
        if run is not None:
            out["run_K_bits"], out["run_K_stderr_bits"] = run["K_bits"], run["K_stderr_bits"]
            out["run_step"] = run["step"]
            for r, (_, _, v) in zip(out["ranges"], range_table(run["profile_bits"]), strict=True):
                r["run_kl_bits"] = v
        print(json.dumps(out))
        return 0
    print(
        f"K ceiling {res['K_ceiling_bits']:.4f} bits/seq (edge terms {res['edge_bits']:.4f}, "
        f"sum of KL {res['kl_sum_bits']:.4f}; truth {res['true_ll_bits']:.4f})"
    )
    if run is not None:
        print(f"run K {run['K_bits']:.4f} +- {run['K_stderr_bits']:.4f} (step {run['step']})")
    print("| t | ceiling KL bits | run KL bits | gap |")
    print("|---|---|---|---|")
    ceil_rows = range_table(res["profile_bits"])
    run_rows = range_table(run["profile_bits"]) if run is not None else [None] * len(ceil_rows)
    for (lo, hi, c), r in zip(ceil_rows, run_rows, strict=True):
        rv = "-" if r is None else f"{r[2]:.4f}"
        gap = "-" if r is None else f"{r[2] - c:+.4f}"
        print(f"| {lo}-{hi} | {c:.4f} | {rv} | {gap} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
