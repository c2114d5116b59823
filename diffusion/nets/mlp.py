"""Vector networks of Sohl-Dickstein et al. 2015 (App. D.1) and a general MLP.

- "rbf": a normalized radial-basis network (paper's swiss-roll net: 16 units), then the
  temporal readout (a readout per step by default).
- "mlp": a general MLP on flattened vectors, `hidden` widths, `activation`, then the readout.
- "heartbeat": the paper's binary-heartbeat net: sigmoid MLP 20-50-50-50 and the temporal
  readout (`hidden` and `activation` are ignored; options `width` sets the three hidden
  widths and `t_input` also feeds g(t) to the first layer). The paper's bare sigmoid output
  is replaced by the perturbation form of diffusion.binomial (model.md section 7).
All follow the contract of diffusion.nets.base: forward(xt (B, *shape), g (B, J)) ->
(B, *shape, n_outputs).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from diffusion.config import ConfigError, NetworkConfig
from diffusion.nets.base import NetSpec, register_network
from diffusion.readout import ReadoutLinear

_ACTIVATIONS = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}


class MLPNet(nn.Module):
    """Flatten -> dense layers -> ReadoutLinear to D * n_outputs -> (B, *shape, n_outputs)."""

    def __init__(
        self, spec: NetSpec, hidden: tuple[int, ...], activation: str, t_input: bool = False
    ) -> None:
        super().__init__()
        self.spec = spec
        self.t_input = t_input
        D = math.prod(spec.shape)
        layers: list[nn.Module] = []
        width = D + (spec.J if t_input else 0)
        for h in hidden:
            layers += [nn.Linear(width, h), _ACTIVATIONS[activation]()]
            width = h
        self.body = nn.Sequential(*layers)
        self.readout = ReadoutLinear(width, D * spec.n_outputs, spec.J, sparse=spec.one_hot)

    def forward(self, xt: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        x = xt.reshape(xt.shape[0], -1)
        if self.t_input:  # the basis weights g(t) as extra inputs: t-dependent hidden features
            x = torch.cat([x, g.to(x.dtype)], dim=1)
        h = self.body(x)
        z = self.readout(h, g)
        return z.reshape(xt.shape[0], *self.spec.shape, self.spec.n_outputs)


class RBFNet(nn.Module):
    """Normalized radial-basis layer (learned centres and widths) -> ReadoutLinear.

    With `local_linear` each unit also carries a local linear model: the features are
    [h_k, h_k x_1, ..., h_k x_D] (a normalized-RBF mixture of linear experts), which fits
    thin manifolds (the thin swiss roll) far better than a constant per unit.
    """

    def __init__(
        self, spec: NetSpec, n_units: int, local_linear: bool = False, width: float = 0.5
    ) -> None:
        super().__init__()
        self.spec = spec
        self.local_linear = local_linear
        D = math.prod(spec.shape)
        self.centres = nn.Parameter(torch.randn(n_units, D))
        self.log_width = nn.Parameter(torch.full((n_units,), math.log(width)))
        n_feat = n_units * (1 + D) if local_linear else n_units
        self.readout = ReadoutLinear(
            n_feat, D * spec.n_outputs, spec.J, sparse=spec.one_hot, init_scale=0.1
        )

    def forward(self, xt: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        x = xt.reshape(xt.shape[0], -1)
        d2 = torch.cdist(x, self.centres).pow(2)  # (B, units)
        h = torch.softmax(-0.5 * d2 * torch.exp(-2 * self.log_width), dim=1)
        if self.local_linear:
            local = (x[:, None, :] - self.centres[None]) * h[:, :, None]  # (B, units, D)
            h = torch.cat([h, local.reshape(x.shape[0], -1)], dim=1)
        z = self.readout(h, g)
        return z.reshape(xt.shape[0], *self.spec.shape, self.spec.n_outputs)


@register_network("mlp")
def build_mlp(config: NetworkConfig, spec: NetSpec) -> nn.Module:
    return MLPNet(spec, config.hidden, config.activation)


@register_network("heartbeat")
def build_heartbeat(config: NetworkConfig, spec: NetSpec) -> nn.Module:
    """options: t_input (false): also feed the basis weights g(t) to the first layer (the
    hidden features may then depend on t); width (50): units per hidden layer."""
    opts = config.options_dict
    unknown = sorted(set(opts) - {"t_input", "width"})
    if unknown:
        raise ConfigError(
            f"network.options.{unknown[0]}",
            "unknown option for heartbeat; allowed: t_input, width",
        )
    width = opts.get("width", 50)
    if not isinstance(width, int) or not 1 <= width <= 4096:
        raise ConfigError("network.options.width", f"must be an int in [1, 4096], got {width!r}")
    t_input = opts.get("t_input", False)
    if not isinstance(t_input, bool):
        raise ConfigError("network.options.t_input", f"must be true or false, got {t_input!r}")
    return MLPNet(spec, (width,) * 3, "sigmoid", t_input)


@register_network("rbf")
def build_rbf(config: NetworkConfig, spec: NetSpec) -> nn.Module:
    """options: local_linear (false), width (0.5, initial RBF width in model units)."""
    opts = config.options_dict
    unknown = sorted(set(opts) - {"local_linear", "width"})
    if unknown:
        raise ConfigError(
            f"network.options.{unknown[0]}", "unknown option for rbf; allowed: local_linear, width"
        )
    width = opts.get("width", 0.5)
    if not isinstance(width, (int, float)) or not 1e-4 <= width <= 100:
        raise ConfigError("network.options.width", f"must be in [0.0001, 100], got {width!r}")
    return RBFNet(spec, config.n_rbf, bool(opts.get("local_linear", False)), float(width))
