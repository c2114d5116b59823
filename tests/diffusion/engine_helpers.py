"""Helpers for the engine tests: small models, an oracle reverse kernel."""

from __future__ import annotations

import torch
from torch import nn

from diffusion.config import DataConfig, DiffusionConfig, NetworkConfig, RunConfig
from diffusion.model import DiffusionModel
from diffusion.presets import PRESETS

# a short swiss-roll run with every event: 6 logged steps, 2 evaluations, a gallery
SMOKE = PRESETS["swissroll-smoke"].with_overrides(
    [
        "train.steps=24",
        "train.log_every=4",
        "train.eval_every=12",
        "train.eval_examples=64",
        "train.gallery_size=16",
        "data.n_train=500",
        "data.n_holdout=64",
    ]
)


def make_config(
    kind: str = "gaussian",
    T: int = 8,
    *,
    beta1: float = 0.02,
    m: float = 0.3,
    schedule: str = "baseline",
    J: int = 0,
    hidden: tuple[int, ...] = (16,),
) -> RunConfig:
    data = DataConfig("heartbeat" if kind == "binomial" else "swissroll")
    return RunConfig(
        data=data,
        diffusion=DiffusionConfig(kind, T=T, beta1=beta1, m=m, schedule=schedule, J=J),
        network=NetworkConfig("mlp", hidden=hidden),
    )


def make_model(
    kind: str = "gaussian", T: int = 8, D: int = 2, *, seed: int = 0, readout_std: float = 0.5, **kw
) -> DiffusionModel:
    """A small model whose network gives non-trivial (random) perturbations z."""
    torch.manual_seed(seed)
    model = DiffusionModel(make_config(kind, T, **kw), (D,)).double()
    with torch.no_grad():
        model.net.readout.weight.normal_(0, readout_std)
        model.net.readout.bias.normal_(0, readout_std)
    return model


class OracleNet(nn.Module):
    """Raw outputs y that make p(x^{t-1} | x^t) the exact reversal of the forward kernel under pi.

    Gaussian: variance beta_t (yS = 0) and mean sqrt(alpha_t) x^t; through the engine's
    preconditioning mu = x^t + beta_t yM / sqrt(1 - abar_t), so
    yM = (sqrt(1 - beta_t) - 1) x^t sqrt(1 - abar_t) / beta_t. Binomial: y = 0.
    """

    def __init__(self, beta: torch.Tensor, kind: str) -> None:
        super().__init__()
        self.register_buffer("beta", beta.clone())
        self.register_buffer("abar", torch.cumprod(1 - beta, 0))
        self.kind = kind

    def forward(self, xt: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        if self.kind == "binomial":
            return torch.zeros(*xt.shape, 1, dtype=xt.dtype)
        t = g.argmax(1)
        shape = (-1,) + (1,) * (xt.dim() - 1)
        b = self.beta[t].reshape(shape).to(xt.dtype)
        abar = self.abar[t].reshape(shape).to(xt.dtype)
        y_m = ((1 - b).sqrt() - 1) * xt * (1 - abar).sqrt() / b
        return torch.stack([y_m, torch.zeros_like(y_m)], dim=-1)


def oracle_model(kind: str, T: int, D: int, **kw) -> DiffusionModel:
    model = DiffusionModel(make_config(kind, T, **kw), (D,))
    model.net = OracleNet(model.beta(), kind)
    return model
