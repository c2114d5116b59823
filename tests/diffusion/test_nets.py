"""The network contract: forward(xt (B, *shape), g (B, J)) -> (B, *shape, n_outputs)."""

from __future__ import annotations

import pytest
import torch

from diffusion.config import ConfigError, NetworkConfig
from diffusion.nets import NetSpec, build_network
from diffusion.processes.readout import TemporalBasis


@pytest.mark.parametrize(
    "config",
    [
        NetworkConfig("mlp", hidden=(16, 16)),
        NetworkConfig("heartbeat"),
        NetworkConfig("heartbeat", options={"t_input": True, "width": 12}),
        NetworkConfig("heartbeat", options={"film": True, "width": 12}),
        NetworkConfig("heartbeat", options={"film": True, "x_skip": True, "width": 12}),
        NetworkConfig("mlp", hidden=(16, 16), options={"film": True, "t_input": True}),
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
    assert info.value.field == "options.bogus"
    with pytest.raises(ConfigError) as info:
        build_network(NetworkConfig("rbf", options={"width": -1}), spec)
    assert info.value.field == "options.width"


def test_heartbeat_options_are_validated():
    spec = NetSpec((20,), 1, 4)
    for options, field in [
        ({"bogus": 1}, "options.bogus"),
        ({"width": 0}, "options.width"),
        ({"t_input": "yes"}, "options.t_input"),
    ]:
        with pytest.raises(ConfigError) as info:
            build_network(NetworkConfig("heartbeat", options=options), spec)
        assert info.value.field == field


@pytest.mark.parametrize("kind", ["mlp", "heartbeat"])
@pytest.mark.parametrize("t_input", [False, True])
def test_film_with_unit_scale_and_zero_shift_is_the_plain_mlp(kind, t_input):
    """a(t) = 1, b(t) = 0 (the initialisation) gives the plain MLP with the same weights;
    a non-zero a(t) multiplies the pre-activations of each layer by exactly that factor."""
    T, J, D = 40, 6, 20
    basis = TemporalBasis(T, J)
    spec = NetSpec((D,), 1, J)
    opts = {"t_input": t_input, **({"width": 8} if kind == "heartbeat" else {})}
    plain_cfg = NetworkConfig(kind, hidden=(8, 8), activation="tanh", options=opts)
    film_cfg = NetworkConfig(kind, hidden=(8, 8), activation="tanh", options={**opts, "film": True})
    torch.manual_seed(0)
    plain = build_network(plain_cfg, spec)
    film = build_network(film_cfg, spec)
    missing = film.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("film_") for k in missing)
    xt = torch.randint(0, 2, (9, D)).float()
    g = basis(torch.randint(1, T + 1, (9,)))
    assert torch.equal(film(xt, g), plain(xt, g))
    # a(t) = 2 everywhere (g rows sum to 1), b = 0: the same as doubling W and c of every layer
    with torch.no_grad():
        for a in film.film_scale:
            a.fill_(1.0)
        for i in range(0, len(plain.body), 2):
            plain.body[i].weight.mul_(2)
            plain.body[i].bias.mul_(2)
    assert torch.allclose(film(xt, g), plain(xt, g), atol=1e-6)
    # a shift b(t) that depends on t changes the output with t
    with torch.no_grad():
        film.film_shift[0].copy_(torch.randn(J, 8))
    assert not torch.allclose(film(xt, g), plain(xt, g), atol=1e-4)


def test_mlp_film_options_are_validated():
    spec = NetSpec((2,), 2, 4)
    for kind, options, field in [
        ("mlp", {"bogus": 1}, "options.bogus"),
        ("mlp", {"film": "yes"}, "options.film"),
        ("mlp", {"t_input": 1}, "options.t_input"),
        ("heartbeat", {"film": 1}, "options.film"),
        ("heartbeat", {"x_skip": "no"}, "options.x_skip"),
    ]:
        with pytest.raises(ConfigError) as info:
            build_network(NetworkConfig(kind, options=options), spec)
        assert info.value.field == field


@pytest.mark.parametrize("x_skip", [False, True])
def test_x_skip_feeds_the_input_to_later_layers(x_skip):
    """With the first layer cut off from x^t, the output depends on x^t only via the skips."""
    T, J, D = 40, 6, 20
    basis = TemporalBasis(T, J)
    cfg = NetworkConfig("heartbeat", options={"width": 8, "film": True, "x_skip": x_skip})
    net = build_network(cfg, NetSpec((D,), 1, J))
    assert net.body[2].in_features == 8 + (D if x_skip else 0)
    with torch.no_grad():
        net.body[0].weight.zero_()
    g = basis(torch.full((4,), 7))
    x_a, x_b = torch.zeros(4, D), torch.ones(4, D)
    assert torch.equal(net(x_a, g), net(x_b, g)) is not x_skip
