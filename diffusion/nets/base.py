"""Network registry and the contract between networks and the engine (App. D; model.md 6, 10).

A network kind is registered under a name from `diffusion.config.NETWORK_KINDS`:

    @register_network("mlp")
    def build_mlp(config: NetworkConfig, spec: NetSpec) -> nn.Module: ...

CONTRACT. The module's `forward(xt, g)` takes
    xt: (B, *spec.shape) float32, the state x^t in model space,
    g:  (B, spec.J) float32, the temporal basis weights g_j(t) of each example's step t
        (from `diffusion.processes.readout.TemporalBasis`; rows sum to 1, one-hot when J = T),
and returns z: (B, *spec.shape, spec.n_outputs), the network's outputs read out at step t:
        z[..., k] = sum_j g[:, j] * y[..., k, j]     (App. D.2.1)
where y are the network's per-dimension coefficients for basis function j. The network does
not see t itself, only g. n_outputs is 2 for Gaussian diffusion (zM, zS) and 1 for binomial (z).
Outputs near zero mean "the forward kernel" (the reverse kernels are perturbations of it), so
initialise the readout layer small.

Helpers for the readout step: `diffusion.processes.readout.apply_readout(y, g)` contracts
coefficients (B, ..., J) with g; `diffusion.processes.readout.ReadoutLinear(h, out, J)` is a dense
layer with a separate weight per basis function, fast for J = T (it gathers only the active ones).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from diffusion.config import NETWORK_KINDS, NetworkConfig
from diffusion.config_registry import Registry


@dataclass(frozen=True)
class NetSpec:
    """What the engine asks of a network: example shape, outputs per dimension, basis size."""

    shape: tuple[int, ...]
    n_outputs: int
    J: int
    data_kind: str = "points"
    one_hot: bool = False  # J = T: g has at most two non-zero weights per row (sparse readout)


Builder = Callable[[NetworkConfig, NetSpec], nn.Module]
_REGISTRY: Registry[Builder] = Registry(
    "network.kind",
    "network {name} is not available in this installation; available: {names}",
    NETWORK_KINDS,
    "diffusion.config.NETWORK_KINDS",
)


def register_network(kind: str) -> Callable[[Builder], Builder]:
    """Decorator: register `builder(config, spec) -> nn.Module` under `kind`."""
    return _REGISTRY.register(kind)


def registered_networks() -> tuple[str, ...]:
    return _REGISTRY.names()


def build_network(config: NetworkConfig, spec: NetSpec) -> nn.Module:
    return _REGISTRY.get(config.kind)(config, spec)
