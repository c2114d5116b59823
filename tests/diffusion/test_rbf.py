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


def _dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise distances, exact (torch.cdist's matrix form rounds small ones to ~1e-3)."""
    return (a[:, None, :] - b[None, :, :]).norm(dim=-1)


def test_centres_from_data_cover_the_sample_evenly(gen):
    """`init_from_data` puts every centre on a sample point in farthest-point order: then no
    sample point is farther from its nearest centre than the two closest centres are from each
    other. Broken versions caught: centres left at N(0, I) (not on the points), or drawn at
    random among the points (clusters and gaps: the covering radius exceeds the spacing)."""
    torch.manual_seed(0)
    net = _net({"local_linear": True, "centres": "data"})
    s = torch.rand(2000, generator=gen) * 3 * torch.pi + 1.5 * torch.pi  # a thin spiral
    x = torch.stack([s * torch.cos(s), s * torch.sin(s)], 1) / 8
    net.init_from_data(x)
    c = net.centres.detach()
    assert _dist(c, x).min(1).values.max() < 1e-6  # every centre is a sample point
    spacing = torch.pdist(c).min()
    cover = _dist(x, c).min(1).values.max()
    assert cover <= spacing + 1e-6
    random_pick = x[torch.randperm(2000, generator=gen)[:16]]
    assert _dist(x, random_pick).min(1).values.max() > torch.pdist(random_pick).min()
    with pytest.raises(ValueError, match="at least 16"):
        net.init_from_data(x[:10])


def test_build_model_places_the_centres_on_the_training_data():
    """With options.centres = "data" the built model's centres lie on the run's training data
    (model units) and the rest of its initial weights are those of the "normal" model of the
    same seed. Broken versions caught: the option ignored by build_model (centres N(0, I)),
    or the sample drawn from the seed's weight stream before the net is built (every other
    weight changes)."""
    from diffusion.data import build_dataset
    from diffusion.presets import PRESETS
    from diffusion.training.parts import build_model

    base = PRESETS["swissroll-thin"].with_overrides(["data.n_train=2000", "network.n_rbf=16"])
    bundle = build_dataset(base.data, 0)
    normal = build_model(base, bundle, torch.device("cpu"))
    data = build_model(
        base.with_overrides(["network.options.centres=data"]), bundle, torch.device("cpu")
    )
    x = bundle.scaler.to_model(bundle.train)
    assert _dist(data.net.centres.detach(), x).min(1).values.max() < 1e-6
    assert _dist(normal.net.centres.detach(), x).min(1).values.max() > 1e-2
    for (name, a), (_, b) in zip(normal.named_parameters(), data.named_parameters(), strict=True):
        if not name.endswith("centres"):
            torch.testing.assert_close(a, b, msg=name)


def test_width_t_starts_as_the_plain_net_and_changes_the_width_with_t(gen):
    """`width_t` adds log-width offsets per (basis function, unit), zero at initialisation: the
    net is then the plain one of the same seed; with offsets set, the output at a fixed x^t
    depends on t through the units' softmax, and only on the offsets of the step read. Broken
    versions caught: the offsets built but not added (the output ignores them), or not selected
    by g(t) (e.g. their mean over the basis added: rows of unread steps change the output)."""
    x = torch.randn(8, 2, generator=gen)
    g = torch.eye(40)[torch.randint(0, 40, (8,), generator=gen)]
    torch.manual_seed(0)
    plain = _net({"local_linear": True, "dense": [8]})
    torch.manual_seed(0)
    net = _net({"local_linear": True, "dense": [8], "width_t": True})
    assert net.log_width_t.shape == (40, 16)
    torch.testing.assert_close(net(x, g), plain(x, g))
    with torch.no_grad():
        net.log_width_t.copy_(torch.randn(40, 16, generator=gen))
    assert not torch.allclose(net(x, g), plain(x, g))
    with torch.no_grad():  # only the row of the step read: other rows change nothing
        before = net(x, g).clone()
        unused = (g.sum(0) == 0).nonzero().flatten()
        net.log_width_t[unused] += 5.0
    torch.testing.assert_close(net(x, g), before)
