"""Toy data sets of Sohl-Dickstein et al. 2015 (section 3.1) and a generic vector loader.

- swissroll: s ~ U(1.5 pi, 4.5 pi), x = (s cos s, s sin s) + sigma N(0, I), scaled by one
  constant to unit variance (model.md section 11). Its true log-likelihood is a 1-D integral
  over s, computed here by quadrature for the holdout points (the ceiling for K).
- heartbeat: binary sequences of length 20 with a 1 every 5th bin, phase uniform over the first
  5 bins (paper section 3.1, App. D.1.2). True log-likelihood log2(1/5) bits per sequence.
- vector: rows of a .npy or .csv file; `binary=true` for 0/1 data (binomial diffusion).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from scipy import integrate

from diffusion.config import ConfigError, DataConfig
from diffusion.data.base import DataBundle, Scaler, fit_scaler, register_dataset

S_LO, S_HI = 1.5 * math.pi, 4.5 * math.pi
PAPER_SWISSROLL_K, PAPER_SWISSROLL_K_MINUS_LNULL = 2.35, 6.45
PAPER_HEARTBEAT_K, PAPER_HEARTBEAT_K_MINUS_LNULL = -2.414, 12.024


# ---------------------------------------------------------------------------- swiss roll
def swissroll_raw(n: int, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """(n, 2) float64 raw swiss-roll points (before scaling)."""
    s = S_LO + (S_HI - S_LO) * torch.rand(n, generator=generator, dtype=torch.float64)
    centre = torch.stack([s * torch.cos(s), s * torch.sin(s)], dim=1)
    return centre + sigma * torch.randn(n, 2, generator=generator, dtype=torch.float64)


def swissroll_scaler(sigma: float) -> Scaler:
    """Population shift and scale (one constant each, over both coordinates), by quadrature."""

    def moment(f):
        return integrate.quad(f, S_LO, S_HI, limit=200)[0] / (S_HI - S_LO)

    mean = 0.5 * (moment(lambda s: s * math.cos(s)) + moment(lambda s: s * math.sin(s)))
    second = 0.5 * moment(lambda s: s * s) + sigma**2  # E[x_i^2] averaged over i
    return Scaler(shift=mean, scale=math.sqrt(second - mean**2))


def swissroll_log_density(x: np.ndarray, sigma: float) -> np.ndarray:
    """log p(x) in nats for raw points x (N, 2): log of (1/(3 pi)) int N(x; c(s), sigma^2 I) ds.

    Riemann sum on a grid finer than half the width sigma / |c'(s)| of the integrand in s
    (spectrally accurate for Gaussians away from the ends of the interval).
    """
    h = sigma / (4.0 * math.sqrt(1.0 + S_HI**2))
    n_grid = int(math.ceil((S_HI - S_LO) / h)) + 1
    s = np.linspace(S_LO, S_HI, n_grid)
    w = np.full(n_grid, (S_HI - S_LO) / (n_grid - 1))
    w[0] = w[-1] = w[0] / 2
    cx, cy = s * np.cos(s), s * np.sin(s)
    log_w = np.log(w / (S_HI - S_LO)) - math.log(2 * math.pi * sigma**2)
    out = np.empty(len(x))
    for i in range(0, len(x), 256):  # log-sum-exp over the grid, in place (2x scipy's)
        xb = x[i : i + 256]
        a = (xb[:, :1] - cx) ** 2
        a += (xb[:, 1:] - cy) ** 2
        a *= -1.0 / (2 * sigma**2)
        a += log_w
        top = a.max(axis=1, keepdims=True)
        a -= top
        np.exp(a, out=a)
        out[i : i + 256] = top[:, 0] + np.log(a.sum(axis=1))
    return out


@register_dataset("swissroll")
def build_swissroll(config: DataConfig, seed: int) -> DataBundle:
    """Swiss roll; options (diffusion.config_options.SwissrollOptions): sigma."""
    sigma = config.typed_options.sigma
    gen = torch.Generator().manual_seed(seed)
    train = swissroll_raw(config.n_train, sigma, gen)
    holdout = swissroll_raw(config.n_holdout, sigma, gen)
    scaler = swissroll_scaler(float(sigma))
    log_p = swissroll_log_density(holdout.numpy(), float(sigma))
    true_ll = float(log_p.mean() / math.log(2)) + scaler.log_det_bits(2)
    return DataBundle(
        train=train.float(),
        holdout=holdout.float(),
        scaler=scaler,
        shape=(2,),
        kind="points",
        unit="bits/example",
        true_ll_bits=true_ll,
        paper_k_bits=PAPER_SWISSROLL_K,
        paper_k_minus_lnull_bits=PAPER_SWISSROLL_K_MINUS_LNULL,
        info={"sigma": float(sigma)},
    )


# ---------------------------------------------------------------------------- heartbeat
def heartbeat_raw(n: int, length: int, period: int, generator: torch.Generator) -> torch.Tensor:
    """(n, length) 0/1 float32: a 1 every `period` bins, phase uniform over the first `period`."""
    phase = torch.randint(0, period, (n, 1), generator=generator)
    pos = torch.arange(length).unsqueeze(0)
    return ((pos - phase) % period == 0).float()


@register_dataset("heartbeat")
def build_heartbeat(config: DataConfig, seed: int) -> DataBundle:
    """Binary heartbeat; options (HeartbeatOptions): length, period."""
    opts = config.typed_options
    length, period = opts.length, opts.period
    gen = torch.Generator().manual_seed(seed)
    train = heartbeat_raw(config.n_train, length, period, gen)
    holdout = heartbeat_raw(config.n_holdout, length, period, gen)
    paper = (length, period) == (20, 5)
    return DataBundle(
        train=train,
        holdout=holdout,
        scaler=Scaler(),
        shape=(length,),
        kind="binary",
        unit="bits/seq",
        binary=True,
        true_ll_bits=-math.log2(period),
        paper_k_bits=PAPER_HEARTBEAT_K if paper else None,
        paper_k_minus_lnull_bits=PAPER_HEARTBEAT_K_MINUS_LNULL if paper else None,
        info={"length": length, "period": period},
    )


# ---------------------------------------------------------------------------- vector files
def load_vectors(path: str) -> np.ndarray:
    """Rows of a .npy (N, D) or .csv (N, D; comma separated, '#' comments) file as float64."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("data.options.path", f"no such file: {path}")
    try:
        arr = np.load(p) if p.suffix == ".npy" else np.loadtxt(p, delimiter=",", ndmin=2)
    except (ValueError, OSError) as exc:
        raise ConfigError("data.options.path", f"cannot read {path}: {exc}") from None
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 2 or not np.isfinite(arr).all():
        raise ConfigError("data.options.path", "must hold a finite 2-D array with >= 2 rows")
    return arr


@register_dataset("vector")
def build_vector(config: DataConfig, seed: int) -> DataBundle:
    """Vector data from a file; options (VectorOptions): path (.npy or .csv), binary."""
    opts = config.typed_options
    arr = load_vectors(opts.path)
    binary = opts.binary
    if binary and not np.isin(arr, (0.0, 1.0)).all():
        raise ConfigError("data.options.binary", "is true but the file has values other than 0/1")
    rng = np.random.default_rng(seed)
    arr = arr[rng.permutation(len(arr))]
    n_hold = min(config.n_holdout, max(1, len(arr) // 5))
    x = torch.from_numpy(arr).float()
    train, holdout = x[n_hold:], x[:n_hold]
    if config.n_train:
        train = train[: config.n_train]
    scaler = Scaler() if binary else fit_scaler(train)
    return DataBundle(
        train=train,
        holdout=holdout,
        scaler=scaler,
        shape=(arr.shape[1],),
        kind="binary" if binary else "points",
        binary=binary,
        info={"path": opts.path, "rows": int(len(arr))},
    )
