"""Vector networks of Sohl-Dickstein et al. 2015 (App. D.1) and a general MLP.

- "rbf": a normalized radial-basis network (paper's swiss-roll net: 16 units), then the
  temporal readout (a readout per step by default).
- "mlp": a general MLP on flattened vectors, `hidden` widths, `activation`, then the readout
  (options `t_input`, `film` and `x_skip`, below).
- "heartbeat": the paper's binary-heartbeat net: sigmoid MLP 20-50-50-50 and the temporal readout
  (`hidden` and `activation` are ignored; options `width` sets the three hidden widths, `t_input`
  also feeds g(t) to the first layer, `film` below). The paper's bare sigmoid output is replaced by
  the perturbation form of diffusion.processes.binomial (model.md section 7).
Option `film` (time modulation, FiLM: Perez et al. 2018; the scale/shift time embedding of
modern diffusion nets): every hidden pre-activation becomes a(t) * (W h + c) + b(t) with
a(t) = 1 + g(t) A and b(t) = g(t) B read out from the temporal basis (A, B: (J, width), zero
at initialisation, so the net starts as the plain MLP). The hidden features can then change
their gain with the noise level, e.g. the t-dependent temperature of a posterior softmax.
Option `x_skip`: every hidden layer after the first also sees x^t (dense skips from the
input), so late features can combine what earlier layers inferred with each input bit.
All follow the contract of diffusion.nets.base: forward(xt (B, *shape), g (B, J)) ->
(B, *shape, n_outputs).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from diffusion.config import NetworkConfig
from diffusion.nets.base import NetSpec, register_network
from diffusion.processes.readout import ReadoutLinear

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
        self,
        spec: NetSpec,
        hidden: tuple[int, ...],
        activation: str,
        t_input: bool = False,
        film: bool = False,
        x_skip: bool = False,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.t_input = t_input
        self.film = film
        self.x_skip = x_skip
        D = math.prod(spec.shape)
        layers: list[nn.Module] = []
        width = D + (spec.J if t_input else 0)
        for k, h in enumerate(hidden):
            extra = D if x_skip and k > 0 else 0  # x^t again beside the previous layer
            layers += [nn.Linear(width + extra, h), _ACTIVATIONS[activation]()]
            width = h
        self.body = nn.Sequential(*layers)
        if film:  # a(t) = 1 + g A_l, b(t) = g B_l per hidden layer; zero: the plain MLP
            self.film_scale = nn.ParameterList(
                [nn.Parameter(torch.zeros(spec.J, h)) for h in hidden]
            )
            self.film_shift = nn.ParameterList(
                [nn.Parameter(torch.zeros(spec.J, h)) for h in hidden]
            )
        self.readout = ReadoutLinear(width, D * spec.n_outputs, spec.J, sparse=spec.one_hot)

    def forward(self, xt: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        x = xt.reshape(xt.shape[0], -1)
        g = g.to(x.dtype)
        if self.t_input:  # the basis weights g(t) as extra inputs: t-dependent hidden features
            x = torch.cat([x, g], dim=1)
        if not (self.film or self.x_skip):
            h = self.body(x)
        else:
            x_flat, h = x[:, : math.prod(self.spec.shape)], x
            for i in range(0, len(self.body), 2):
                if self.x_skip and i > 0:
                    h = torch.cat([h, x_flat], dim=1)
                u = self.body[i](h)
                if self.film:
                    a, b = self.film_scale[i // 2], self.film_shift[i // 2]
                    u = u * (1 + g @ a) + g @ b
                h = self.body[i + 1](u)
        z = self.readout(h, g)
        return z.reshape(xt.shape[0], *self.spec.shape, self.spec.n_outputs)


class RBFNet(nn.Module):
    """Normalized radial-basis layer (learned centres and widths) -> ReadoutLinear.

    With `local_linear` each unit also carries a local linear model: the features are
    [h_k, h_k x_1, ..., h_k x_D] (a normalized-RBF mixture of linear experts), which fits
    thin manifolds (the thin swiss roll) far better than a constant per unit. `dense` widths add
    a tanh MLP pathway in parallel whose last layer joins the features (as the paper's CIFAR-10
    net adds a dense pathway beside its convolutions): the units gather along the data, and the
    MLP covers the plane between the arms at large noise levels.
    """

    def __init__(
        self,
        spec: NetSpec,
        n_units: int,
        local_linear: bool = False,
        width: float = 0.5,
        dense: tuple[int, ...] = (),
        dense_t: bool = False,
        width_t: bool = False,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.local_linear = local_linear
        self.dense_t = bool(dense) and dense_t
        D = math.prod(spec.shape)
        self.centres = nn.Parameter(torch.randn(n_units, D))
        self.log_width = nn.Parameter(torch.full((n_units,), math.log(width)))
        # width_t: log-width offsets per (basis function, unit), zero: the t-independent widths
        self.log_width_t = nn.Parameter(torch.zeros(spec.J, n_units)) if width_t else None
        n_feat = n_units * (1 + D) if local_linear else n_units
        layers: list[nn.Module] = []
        n_in = D + (spec.J if self.dense_t else 0)
        for w in dense:
            layers += [nn.Linear(n_in, w), nn.Tanh()]
            n_in = w
        self.dense = nn.Sequential(*layers) if layers else None
        n_feat += n_in if layers else 0
        self.readout = ReadoutLinear(
            n_feat, D * spec.n_outputs, spec.J, sparse=spec.one_hot, init_scale=0.1
        )

    @torch.no_grad()
    def init_from_data(self, x0: torch.Tensor) -> None:
        """Place the centres on training data x0 (N, *shape), model units, N >= units: the
        farthest-point order of the sample (each next centre the point farthest from those
        chosen), so the units cover the data evenly, whatever the seed's sample. With N(0, I)
        centres most units of the thin roll start off the curve and only some seeds gather
        them back (docs/model-notes.md, "Networks")."""
        x = x0.reshape(x0.shape[0], -1).to(self.centres)
        n = self.centres.shape[0]
        if x.shape[0] < n:
            raise ValueError(f"init_from_data needs at least {n} points, got {x.shape[0]}")
        chosen = [0]
        d2 = (x - x[0]).pow(2).sum(1)
        for _ in range(n - 1):
            i = int(torch.argmax(d2))
            chosen.append(i)
            d2 = torch.minimum(d2, (x - x[i]).pow(2).sum(1))
        self.centres.copy_(x[chosen])

    def forward(self, xt: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        x = xt.reshape(xt.shape[0], -1)
        d2 = torch.cdist(x, self.centres).pow(2)  # (B, units)
        log_w = self.log_width
        if self.log_width_t is not None:
            log_w = log_w + g.to(x.dtype) @ self.log_width_t  # (B, units)
        h = torch.softmax(-0.5 * d2 * torch.exp(-2 * log_w), dim=1)
        if self.local_linear:
            local = (x[:, None, :] - self.centres[None]) * h[:, :, None]  # (B, units, D)
            h = torch.cat([h, local.reshape(x.shape[0], -1)], dim=1)
        if self.dense is not None:
            h = torch.cat([h, self.dense(torch.cat([x, g], 1) if self.dense_t else x)], dim=1)
        z = self.readout(h, g)
        return z.reshape(xt.shape[0], *self.spec.shape, self.spec.n_outputs)


@register_network("mlp")
def build_mlp(config: NetworkConfig, spec: NetSpec) -> nn.Module:
    """options: t_input (false): also feed g(t) to the first layer; film (false): scale and
    shift every hidden pre-activation by functions of t on the temporal basis; x_skip (false):
    feed x^t to every hidden layer after the first too."""
    opts = config.typed_options  # MlpOptions
    return MLPNet(spec, config.hidden, config.activation, opts.t_input, opts.film, opts.x_skip)


@register_network("heartbeat")
def build_heartbeat(config: NetworkConfig, spec: NetSpec) -> nn.Module:
    """options: t_input (false): also feed the basis weights g(t) to the first layer (the
    hidden features may then depend on t); width (50): units per hidden layer; film (false):
    scale and shift every hidden pre-activation by functions of t; x_skip (false): feed x^t
    to every hidden layer after the first too (module docstring)."""
    o = config.typed_options  # HeartbeatNetOptions
    return MLPNet(spec, (o.width,) * 3, "sigmoid", o.t_input, o.film, o.x_skip)


@register_network("rbf")
def build_rbf(config: NetworkConfig, spec: NetSpec) -> nn.Module:
    """options: local_linear (false), width (0.5, initial RBF width in model units), dense
    ([], widths of a tanh MLP pathway in parallel), dense_t (false: also feed the temporal
    basis weights g(t) to that pathway, so that its features may change with the noise level),
    width_t (false: each unit's width also depends on t, on the temporal basis), centres
    ("normal": N(0, I); "data": on the training data, RBFNet.init_from_data, called by
    diffusion.training.parts.build_model)."""
    o = config.typed_options  # RbfOptions
    net = RBFNet(spec, config.n_rbf, o.local_linear, o.width, o.dense, o.dense_t, o.width_t)
    net.centres_from_data = o.centres == "data"
    return net
