"""The radial-basis net's dense pathway (network option `dense`)."""

from __future__ import annotations

import pytest
import torch

from diffusion.config import ConfigError, NetworkConfig
from diffusion.nets import NetSpec, build_network


def _net(options: dict):
    spec = NetSpec((2,), 3, 40, "points", one_hot=True)
    return build_network(NetworkConfig("rbf", hidden=(), n_rbf=16, options=options), spec)


def test_dense_pathway_adds_features_and_zero_weights_remove_it(gen):
    torch.manual_seed(0)
    plain = _net({"local_linear": True})
    torch.manual_seed(0)
    both = _net({"local_linear": True, "dense": [8, 8]})
    n_plain = plain.readout.weight.shape[1]
    assert both.readout.weight.shape[1] == n_plain + 8
    with torch.no_grad():
        both.centres.copy_(plain.centres)
        both.readout.weight[:, :n_plain].copy_(plain.readout.weight)
        both.readout.weight[:, n_plain:] = 0
        both.readout.bias.copy_(plain.readout.bias)
    x = torch.randn(32, 2, generator=gen)
    g = torch.eye(40)[torch.randint(0, 40, (32,), generator=gen)]
    torch.testing.assert_close(both(x, g), plain(x, g))
    with torch.no_grad():
        both.readout.weight[:, n_plain:] = 1
    assert not torch.allclose(both(x, g), plain(x, g))


@pytest.mark.parametrize("bad", [[0], "wide", [8, 2.5], True])
def test_bad_dense_widths_are_refused(bad):
    with pytest.raises(ConfigError, match="options.dense"):
        _net({"dense": bad})


def test_dense_t_feeds_the_noise_level_to_the_dense_pathway(gen):
    """With `dense_t` the pathway's features change with g(t) at a fixed x^t; without it they
    cannot. Broken versions caught: the option accepted but g not fed (features equal across
    t), or g fed to a pathway built for D inputs (a shape error)."""
    x = torch.randn(8, 2, generator=gen).repeat(2, 1)
    g = torch.eye(40)[torch.tensor([3] * 8 + [30] * 8)]
    for dense_t, differs in ((True, True), (False, False)):
        torch.manual_seed(0)
        net = _net({"local_linear": True, "dense": [8, 8], "dense_t": dense_t})
        assert net.dense[0].in_features == 2 + (40 if dense_t else 0)
        feats = net.dense(torch.cat([x, g], 1) if dense_t else x)
        assert (not torch.allclose(feats[:8], feats[8:])) == differs
        assert net(x, g).shape == (16, 2, 3)


def test_dense_t_without_a_dense_pathway_changes_nothing():
    torch.manual_seed(0)
    a = _net({"local_linear": True, "dense_t": True})
    torch.manual_seed(0)
    b = _net({"local_linear": True})
    assert a.dense is None and a.readout.weight.shape == b.readout.weight.shape
