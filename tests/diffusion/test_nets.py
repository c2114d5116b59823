"""The network contract: forward(xt (B, *shape), g (B, J)) -> (B, *shape, n_outputs)."""

from __future__ import annotations

import pytest
import torch

from diffusion.config import ConfigError, NetworkConfig
from diffusion.nets import NetSpec, build_network
from diffusion.readout import TemporalBasis


@pytest.mark.parametrize(
    "config",
    [
        NetworkConfig("mlp", hidden=(16, 16)),
        NetworkConfig("heartbeat"),
        NetworkConfig("heartbeat", options={"t_input": True, "width": 12}),
        NetworkConfig("rbf", n_rbf=8),
        NetworkConfig("rbf", n_rbf=8, options={"local_linear": True}),
    ],
)
@pytest.mark.parametrize(("T", "J"), [(30, 30), (30, 5)])
def test_contract_shapes_and_gradients(config, T, J):
    D = 20 if config.kind == "heartbeat" else 2
    basis = TemporalBasis(T, J)
    net = build_network(config, NetSpec((D,), 2, J, one_hot=basis.one_hot))
    xt = torch.randn(7, D)
    z = net(xt, basis(torch.randint(1, T + 1, (7,))))
    assert z.shape == (7, D, 2)
    z.square().sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_rbf_options_are_validated():
    spec = NetSpec((2,), 2, 4)
    with pytest.raises(ConfigError) as info:
        build_network(NetworkConfig("rbf", options={"bogus": 1}), spec)
    assert info.value.field == "network.options.bogus"
    with pytest.raises(ConfigError) as info:
        build_network(NetworkConfig("rbf", options={"width": -1}), spec)
    assert info.value.field == "network.options.width"


def test_heartbeat_options_are_validated():
    spec = NetSpec((20,), 1, 4)
    for options, field in [
        ({"bogus": 1}, "network.options.bogus"),
        ({"width": 0}, "network.options.width"),
        ({"t_input": "yes"}, "network.options.t_input"),
    ]:
        with pytest.raises(ConfigError) as info:
            build_network(NetworkConfig("heartbeat", options=options), spec)
        assert info.value.field == field
