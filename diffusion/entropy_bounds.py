"""Entropy bounds of a reverse step (Sohl-Dickstein et al. 2015, section 2.6, Eq. 29-30;
model.md section 9).

For any data distribution the entropy of the true reverse step is bracketed:

    H_q(X^t | X^{t-1}) + H_q(X^{t-1} | X^0) - H_q(X^t | X^0)
        <= H_q(X^{t-1} | X^t) <= H_q(X^t | X^{t-1}).

(model.md writes the first term as H_q(X^t | X^{t+1}); the paper's derivation, from
H(X^{t-1} | X^t) >= H(X^{t-1} | X^t, X^0) = H(X^t | X^{t-1}) + H(X^{t-1} | X^0) -
H(X^t | X^0), has X^{t-1}, used here.) For Gaussian diffusion every term is (1/2) log(2 pi e
var) per dimension, so the bounds bracket the reverse variance between the forward
posterior variance (1 - abar_{t-1}) beta_t / (1 - abar_t), reached when x^0 is known, and
beta_t, reached when the data are pi itself. `ReverseVarianceProfile` puts a trained
model's mean learned Sigma(t) beside both limits, per step, for plots and export.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

LOG2_2PIE = math.log2(2 * math.pi * math.e)


@dataclass(frozen=True)
class GaussianEntropyBounds:
    """Per step t = 1..T (lists of length T), per dimension.

    lower_var, upper_var: the variance limits (lower is 0 at t = 1, whose reverse step is
    fixed); lower_bits, upper_bits: the entropy limits in bits per dimension (lower is
    -inf at t = 1).
    """

    t: list[int]
    lower_var: list[float]
    upper_var: list[float]
    lower_bits: list[float]
    upper_bits: list[float]


def gaussian_entropy_bounds(beta: torch.Tensor) -> GaussianEntropyBounds:
    """Bounds on H_q(X^{t-1} | X^t) for Gaussian diffusion with schedule beta (T,)."""
    beta = beta.detach().to(torch.float64).cpu()
    abar = torch.cumprod(1 - beta, 0)
    abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])

    def h_bits(var: torch.Tensor) -> torch.Tensor:  # (1/2) log2(2 pi e var), -inf at 0
        return 0.5 * (LOG2_2PIE + torch.log2(var))

    # lower entropy = H(X^t|X^{t-1}) + H(X^{t-1}|X^0) - H(X^t|X^0), each Gaussian
    lower_bits = h_bits(beta) + h_bits(1 - abar_prev) - h_bits(1 - abar)
    lower_var = (1 - abar_prev) * beta / (1 - abar)
    return GaussianEntropyBounds(
        t=list(range(1, beta.numel() + 1)),
        lower_var=lower_var.tolist(),
        upper_var=beta.tolist(),
        lower_bits=lower_bits.tolist(),
        upper_bits=h_bits(beta).tolist(),
    )


@dataclass(frozen=True)
class ReverseVarianceProfile:
    """A model's learned reverse variance against its limits, per step t = 1..T.

    sigma: geometric mean of the learned Sigma(t) over dimensions and examples; lower,
    upper: the limits of `GaussianEntropyBounds` (variances); position: where sigma sits
    between them on the entropy scale, log(sigma / lower) / log(upper / lower) (0 = the
    data were known exactly, 1 = the data were pi; NaN at t = 1).
    """

    t: list[int]
    sigma: list[float]
    lower: list[float]
    upper: list[float]
    position: list[float]

    def to_dict(self) -> dict[str, list]:
        return asdict(self)

    def to_csv(self, path: str | Path) -> None:
        """Write one row per step: t, sigma, lower, upper, position."""
        with Path(path).open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["t", "sigma", "lower", "upper", "position"])
            for row in zip(self.t, self.sigma, self.lower, self.upper, self.position, strict=True):
                w.writerow(row)


@torch.no_grad()
def reverse_variance_profile(
    model, x0: torch.Tensor, generator: torch.Generator | None = None
) -> ReverseVarianceProfile:
    """Learned Sigma(t) of a Gaussian `DiffusionModel` at x^t ~ q(x^t | x^0), for x0 (B,
    *shape) in model space, against the entropy bounds of section 2.6."""
    if getattr(model.process, "kind", None) != "gaussian":
        raise ValueError("reverse variance bounds are defined here for Gaussian diffusion")
    beta = model.beta().detach()
    bounds = gaussian_entropy_bounds(beta)
    sig = []
    for t in range(1, model.T + 1):
        tt = torch.full((x0.shape[0],), t, dtype=torch.long, device=x0.device)
        xt = model.process.q_sample(x0, tt, beta, generator)
        _, var = model.process.p_mean_var(xt, tt, model.readout(xt, tt), beta)
        sig.append(float(torch.exp(torch.log(var).mean())))
    pos = []
    for s, lo, hi in zip(sig, bounds.lower_var, bounds.upper_var, strict=True):
        pos.append(math.log(s / lo) / math.log(hi / lo) if lo > 0 and hi > lo else math.nan)
    return ReverseVarianceProfile(
        t=bounds.t, sigma=sig, lower=bounds.lower_var, upper=bounds.upper_var, position=pos
    )
