"""The best bound K any diagonal-Gaussian reverse kernel can reach on the swiss roll, per schedule.

For Gaussian diffusion with T steps and a schedule beta, the reverse kernel of the paper is a
diagonal Gaussian per step. The best such kernel at step t is the moment match of the true
one-step reverse q(x^{t-1} | x^t): mean E[mu_q | x^t] and variance var_q + a_t^2 Var(x^0_i | x^t),
with mu_q = a_t x^0 + b_t x^t the forward posterior mean. Its expected KL term is then

    E_{x^t} 1/2 sum_i log(1 + a_t^2 Var(x^0_i | x^t) / var_q),

and the ceiling of K is the bound's edge terms minus the sum of these over t = 2..T. For the
swiss roll, p(x^0 | x^t) is a mixture over the roll parameter s of Gaussians (the data's noise
is Gaussian), so Var(x^0 | x^t) is a quadrature over s. No network is involved: the ceiling is
what the schedule and T allow, and the distance between it and a trained model's K is what the
network leaves on the table.

Everything is differentiable in the schedule (frozen x^0 and noise, the reparameterization
trick), so `--optimize` finds the schedule with the highest ceiling for a given T and beta_1.

  .venv/bin/python benchmarks/swissroll_ceiling.py --sigma 0.25 --beta1 1e-3
  .venv/bin/python benchmarks/swissroll_ceiling.py --sigma 0.02 --beta1 1e-6 --covariance full
  .venv/bin/python benchmarks/swissroll_ceiling.py --run DIR   # a trained run against its ceiling

With --run, the trained model's expected KL at every t (evaluate_bound's profile, on the same
data points) is printed beside the best possible one for the run's own schedule and kernel.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from diffusion.data.toy import S_HI, S_LO, swissroll_raw, swissroll_scaler
from diffusion.processes.schedules import (
    baseline_beta,
    cosine_beta,
    geometric_beta,
    linear_beta,
    logsnr_beta,
)

LN2 = math.log(2)


def roll_grid(sigma: float, scale: float, shift: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Centres c(s) of the roll in model units on an s grid finer than the noise (n, 2), and
    their log quadrature weights (n,)."""
    h = sigma / (4.0 * math.sqrt(1.0 + S_HI**2))
    n = int(math.ceil((S_HI - S_LO) / h)) + 1
    s = torch.linspace(S_LO, S_HI, n, dtype=torch.float64)
    c = (torch.stack([s * torch.cos(s), s * torch.sin(s)], 1) - shift) / scale
    w = torch.full((n,), 1.0 / (n - 1), dtype=torch.float64)
    w[0] = w[-1] = w[0] / 2
    return c, torch.log(w)


def posterior_cov_x0(
    xt: torch.Tensor, ab: torch.Tensor, c: torch.Tensor, log_w: torch.Tensor, sd: float
) -> torch.Tensor:
    """Cov(x^0 | x^t) (B, 2, 2) for x^t (B, 2) at one noise level abar `ab` (0-dim tensor).

    Given s, x^0 ~ N(c(s), sd^2 I) and x^t ~ N(sqrt(ab) c(s), (ab sd^2 + 1 - ab) I).
    """
    v = ab * sd**2 + 1 - ab
    k = sd**2 * ab.sqrt() / v  # E[x0 | xt, s] = c + k (xt - sqrt(ab) c)
    r = sd**2 * (1 - k * ab.sqrt())  # Var[x0 | xt, s] per dimension
    eye = torch.eye(2, dtype=torch.float64)
    out = []
    for i in range(0, xt.shape[0], 64):
        x = xt[i : i + 64]
        d = x[:, None, :] - ab.sqrt() * c[None]  # (b, n, 2)
        p = torch.softmax(log_w - 0.5 * (d**2).sum(-1) / v, dim=1)  # (b, n) posterior over s
        m = c[None] + k * d  # (b, n, 2)
        dm = m - (p[..., None] * m).sum(1, keepdim=True)
        out.append(torch.einsum("bn,bni,bnj->bij", p, dm, dm) + r * eye)
    return torch.cat(out)


def ceiling_bits(
    beta: torch.Tensor,
    x0: torch.Tensor,
    eps: torch.Tensor,
    c: torch.Tensor,
    log_w: torch.Tensor,
    sd: float,
    full: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ceiling of K in bits per example, best expected KL_t in bits (T,)) for schedule beta
    (T,), for the diagonal kernel of the paper or (full=True) a full-covariance one.

    x0 (N, 2) model-unit data, eps (T, N, 2) frozen noise. Step t uses eps[t - 1].
    """
    T = beta.shape[0]
    D = x0.shape[1]
    ab = torch.cumprod(1 - beta, 0)
    sq = (x0**2).sum(1)
    b1 = beta[0]
    log_p0 = -D / 2 * torch.log(2 * math.pi * b1) - b1 * sq / 2 - (1 - b1) * D / 2
    kl_T = (ab[-1] * sq - D * ab[-1] - D * torch.log1p(-ab[-1])) / 2
    losses = [torch.zeros((), dtype=torch.float64)]
    for t in range(2, T + 1):
        abt, abp = ab[t - 1], ab[t - 2]
        xt = abt.sqrt() * x0 + (1 - abt).sqrt() * eps[t - 1]
        cov = posterior_cov_x0(xt, abt, c, log_w, sd)
        a = abp.sqrt() * beta[t - 1] / (1 - abt)
        var_q = (1 - abp) * beta[t - 1] / (1 - abt)
        m = torch.eye(2, dtype=torch.float64) + a**2 * cov / var_q
        half_logdet = torch.logdet(m) if full else torch.log(torch.diagonal(m, 0, 1, 2)).sum(1)
        losses.append(0.5 * half_logdet.mean())
    per_step = torch.stack(losses)
    k = (log_p0 - kl_T).mean() - per_step.sum()
    return k / LN2, per_step / LN2


def compare_run(run_dir: Path, n: int, seed: int) -> None:
    """Print a trained swiss-roll run's KL_t beside the best possible, for its own schedule."""
    from diffusion.evaluation.bound import evaluate_bound
    from diffusion.inference import load_trained

    trained = load_trained(run_dir, device="cpu")
    model, sigma = trained.model, float(trained.bundle.info["sigma"])
    scaler = swissroll_scaler(sigma)
    gen = torch.Generator().manual_seed(seed)
    x0 = (swissroll_raw(n, sigma, gen) - scaler.shift) / scaler.scale
    T = model.T
    eps = torch.randn(T, n, 2, generator=gen, dtype=torch.float64)
    c, log_w = roll_grid(sigma, scaler.scale, scaler.shift)
    beta = model.beta().detach()
    full = bool(getattr(model.process, "full", False))
    with torch.no_grad():
        terms = evaluate_bound(model, x0, gen)
        best_k, best = ceiling_bits(beta, x0, eps, c, log_w, sigma / scaler.scale, full)
    kl = terms.kl_profile / LN2
    for t in range(2, T + 1):
        row = {
            "t": t,
            "beta": float(f"{beta[t - 1]:.3g}"),
            "model_kl_bits": round(float(kl[t - 1]), 4),
        }
        row["best_kl_bits"] = round(float(best[t - 1]), 4)
        print(json.dumps(row))
    k_model = float(terms.per_example.mean()) / LN2
    print(
        json.dumps({"K_model_bits": round(k_model, 4), "K_ceiling_bits": round(float(best_k), 4)})
    )


class FreeSchedule(torch.nn.Module):
    """beta_2..T = sigmoid(free logits), beta_1 fixed: the family the optimizer searches."""

    def __init__(self, init: torch.Tensor) -> None:
        super().__init__()
        self.beta1 = init[:1].clone()
        b = init[1:].clamp(1e-9, 1 - 1e-6)
        self.logits = torch.nn.Parameter(torch.log(b) - torch.log1p(-b))

    def forward(self) -> torch.Tensor:
        return torch.cat([self.beta1, torch.sigmoid(self.logits)])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sigma", type=float, default=0.25)
    p.add_argument("--beta1", type=float, default=1e-3)
    p.add_argument("--T", type=int, default=40)
    p.add_argument("--n", type=int, default=256, help="Monte Carlo examples per step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--optimize", type=int, default=0, help="Adam steps on the free schedule")
    p.add_argument("--start", default="geometric", help="schedule the optimizer starts from")
    p.add_argument(
        "--covariance", choices=("diagonal", "full"), default="diagonal", help="kernel family"
    )
    p.add_argument("--run", type=Path, default=None, help="compare a trained run, per step")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.run is not None:
        compare_run(args.run, args.n, args.seed)
        return

    scaler = swissroll_scaler(args.sigma)
    gen = torch.Generator().manual_seed(args.seed)
    x0 = (swissroll_raw(args.n, args.sigma, gen) - scaler.shift) / scaler.scale
    eps = torch.randn(args.T, args.n, 2, generator=gen, dtype=torch.float64)
    c, log_w = roll_grid(args.sigma, scaler.scale, scaler.shift)
    sd = args.sigma / scaler.scale
    full = args.covariance == "full"
    schedules = {
        "baseline": baseline_beta(args.T, beta1=args.beta1, beta_max=0.5),
        "linear": linear_beta(args.T, beta1=args.beta1),
        "cosine": cosine_beta(args.T, beta1=args.beta1),
        "geometric": geometric_beta(args.T, beta1=args.beta1),
        "logsnr": logsnr_beta(args.T, beta1=args.beta1),
    }
    for name, beta in schedules.items():
        k, _ = ceiling_bits(beta, x0, eps, c, log_w, sd, full)
        print(json.dumps({"schedule": name, "ceiling_bits": round(float(k), 4)}), flush=True)
    if args.optimize:
        sched = FreeSchedule(schedules[args.start])
        opt = torch.optim.Adam(sched.parameters(), lr=0.05)
        for i in range(args.optimize):
            k, _ = ceiling_bits(sched(), x0, eps, c, log_w, sd, full)
            opt.zero_grad()
            (-k).backward()
            opt.step()
            if i % 10 == 0 or i == args.optimize - 1:
                print(json.dumps({"iter": i, "ceiling_bits": round(float(k), 4)}), flush=True)
        beta = sched().detach()
        print(json.dumps({"optimized_beta": [float(f"{b:.4g}") for b in beta]}))
        noise_var = 1 - torch.cumprod(1 - beta, 0)
        print(json.dumps({"noise_var": [float(f"{v:.4g}") for v in noise_var]}))


if __name__ == "__main__":
    main()
