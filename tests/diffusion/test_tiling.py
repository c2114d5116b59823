"""Images of any size (diffusion/images/tiling.py): tiled evaluation against the whole-image one,
size plans, and posteriors at sizes other than the training size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from diffusion.chains.posterior import PosteriorInputError, denoise, inpaint, make_mask, size_plan
from diffusion.config import NetworkConfig
from diffusion.data import Scaler
from diffusion.images.tiling import (
    SizedNet,
    SizeError,
    edge_ramp,
    plan_size,
    size_rule,
    tile_starts,
)
from diffusion.inference import Trained
from diffusion.model import DiffusionModel
from diffusion.nets import NetSpec, build_network
from diffusion.presets import PRESETS

# 4 plain 3 x 3 conv layers (one scale), 1 x 1 layers above: receptive-field radius 4
PLAIN = {"conv_layers": 4, "conv_channels": 6, "scales": 1, "upper": [6]}


def conv_net(shape=(1, 8, 8), J: int = 3, **opts) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_network(NetworkConfig("conv", options=opts), NetSpec(shape, 2, J, "images"))
    with torch.no_grad():  # the readout starts at zero: make the outputs non-trivial
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return net.eval()


def trained(options: dict, shape=(1, 8, 8)) -> Trained:
    cfg = PRESETS["digits-smoke"].with_overrides(
        [f"network.options.{k}={v}".replace("'", '"') for k, v in options.items()]
    )
    torch.manual_seed(0)
    model = DiffusionModel(cfg, shape, "images")
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return Trained(cfg, model.eval(), Scaler(5.4, 6.0, True), torch.device("cpu"), 0, Path("."))


def test_tiles_equal_the_whole_image_when_the_margin_covers_the_receptive_field() -> None:
    net = conv_net(**PLAIN)
    x, g = torch.randn(2, 1, 40, 53), torch.softmax(torch.randn(2, 3), 1)
    with torch.no_grad():
        whole = net(x, g)
        tiled = SizedNet(net, tile=16, overlap=12, margin=4)(x, g)  # margin = radius 4
        short = SizedNet(net, tile=16, overlap=12, margin=1)(x, g)  # margin < radius
    assert tiled.shape == whole.shape == (2, 1, 40, 53, 2)
    torch.testing.assert_close(tiled, whole, rtol=1e-5, atol=1e-6)
    # the broken variant (margin below the receptive field) differs: the test can fail
    assert (short - whole).abs().max() > 1e-3


def test_multiscale_tiles_agree_with_the_whole_image_away_from_tile_edges() -> None:
    net = conv_net((1, 32, 32))  # 4 scales: pools up to 8 x 8 blocks, a wide receptive field
    assert net.fully_convolutional and net.tile_align == 8
    x, g = torch.randn(1, 1, 96, 96), torch.softmax(torch.randn(1, 3), 1)
    with torch.no_grad():
        whole = net(x, g)
        tiled = SizedNet(net, tile=64, overlap=32)(x, g)
    err = (tiled - whole).abs()
    assert err.max() < 0.5 * whole.abs().max()  # blended, not garbage
    assert err[:, :, :24, :24].max() < 0.1 * err.max() + 1e-6  # inside one tile only


def test_window_and_tile_grid() -> None:
    assert tile_starts(100, 32, 8) == [0, 24, 48, 68]
    assert tile_starts(20, 32, 8) == [0]
    assert all(s % 8 == 0 for s in tile_starts(200, 64, 16, align=8)[:-1])
    w = edge_ramp(10, True, False, 2, 3)
    assert w.tolist() == [0, 0, 0.25, 0.5, 0.75, 1, 1, 1, 1, 1]
    assert edge_ramp(5, False, False, 2, 3).tolist() == [1] * 5


def test_size_plans_and_refusals() -> None:
    conv = conv_net(**PLAIN)
    assert plan_size(conv, (1, 8, 8), (8, 8)).mode == "native"
    full = plan_size(conv, (1, 8, 8), (512, 384), 4)
    assert full.mode == "full" and full.size == (512, 384)
    tiled = plan_size(conv, (1, 8, 8), (512, 512), 16, max_pixels=1_000_000)
    assert tiled.mode == "tiled" and "exceed" in tiled.reason
    dense = conv_net(dense_hidden=16)  # a fully connected pathway: one size only
    assert not dense.fully_convolutional
    assert plan_size(dense, (1, 8, 8), (8, 8)).mode == "native"
    with pytest.raises(SizeError, match=r"only 8 x 8 .*not fully convolutional.* 12 x 16"):
        plan_size(dense, (1, 8, 8), (16, 12))
    with pytest.raises(SizeError, match="margin"):
        plan_size(conv, (1, 8, 8), (64, 64), tile=16, overlap=8, margin=4)


def test_a_posterior_is_one_chain_whether_tiled_or_not() -> None:
    model = trained(PLAIN)
    image = np.random.default_rng(0).uniform(0, 16, (30, 41))
    mask = make_mask("center", image.shape, size=10)
    runs = {}
    for name, kw in {"full": {}, "tiled": {"tile": 16, "overlap": 12, "margin": 4}}.items():
        d = denoise(model, image, 2.0, 2, steps=6, generator=torch.Generator().manual_seed(3), **kw)
        p = inpaint(
            model, image, mask, 2, steps=6, generator=torch.Generator().manual_seed(4), **kw
        )
        runs[name] = (d, p)
        assert d.plan.mode == name and d.samples.shape == (2, 30, 41) and d.std.shape == (30, 41)
        assert np.array_equal(p.samples[:, mask], np.broadcast_to(image[mask], (2, mask.sum())))
    for a, b in zip(runs["full"], runs["tiled"], strict=True):
        np.testing.assert_allclose(a.samples, b.samples, atol=1e-4)
    d, p = runs["tiled"]
    assert (d.std > 0).mean() > 0.5 and (p.std[~mask] > 0).mean() > 0.8 and (p.std[mask] == 0).all()


def test_a_network_with_a_dense_pathway_refuses_other_sizes() -> None:
    model = trained({"dense_hidden": 16})
    with pytest.raises(PosteriorInputError, match="only 8 x 8.*16 x 16"):
        denoise(model, np.zeros((16, 16)), 1.0, 1)
    with pytest.raises(PosteriorInputError, match="only 8 x 8"):
        inpaint(model, np.zeros((16, 16)), make_mask("left", (16, 16)), 1)
    assert size_plan(model, (8, 8)).mode == "native"


@pytest.mark.parametrize(
    "options,shape",
    [({}, (1, 32, 32)), ({"dense_hidden": 8}, (1, 8, 8)), ({"scales": 2}, (1, 16, 16))],
)
def test_the_rule_read_from_a_config_is_the_networks_own(options: dict, shape: tuple) -> None:
    from diffusion.images.sizes import config_size_rule

    net = conv_net(shape, **options)
    rule = config_size_rule({"kind": "conv", "options": options}, shape[1:])
    assert rule == size_rule(net, shape)
    assert not config_size_rule({"kind": "mlp"}, (8, 8)).fully_convolutional


def test_inpainting_runs_on_the_window_around_the_hole() -> None:
    from diffusion.images.tiling import hole_window

    mask = np.ones((60, 80), bool)
    mask[20:30, 41:50] = False
    assert hole_window(mask, 5) == (15, 35, 36, 55)
    assert hole_window(mask, 5, align=8) == (8, 40, 32, 56)
    assert hole_window(mask, 100) == (0, 60, 0, 80)
    model = trained(PLAIN)
    image = np.random.default_rng(1).uniform(0, 16, (60, 80))
    r = inpaint(
        model, image, mask, 2, steps=4, context=6, generator=torch.Generator().manual_seed(0)
    )
    assert r.samples.shape == (2, 60, 80) and r.plan.size == (22, 21)
    assert "window around the missing pixels" in r.plan.reason
    assert np.array_equal(r.samples[:, mask], np.broadcast_to(image[mask], (2, mask.sum())))
    assert (r.std[~mask] > 0).mean() > 0.8


@pytest.mark.parametrize("hole,blind", [(4, False), (7, False), (8, True), (20, True)])
def test_the_plan_says_when_tiles_lie_wholly_inside_the_hole(hole: int, blind: bool) -> None:
    """An 8-pixel tile fits in a hole of 8 but not of 7: the plan says so exactly then (a rule
    off by one, e.g. from the hole's chessboard depth, which is 4 for both, or one that never
    speaks, fails one of these)."""
    mask = np.ones((40, 40), bool)
    mask[10 : 10 + hole, 12 : 12 + hole] = False
    r = inpaint(
        trained(PLAIN),
        np.full((40, 40), 8.0),
        mask,
        1,
        steps=2,
        tile=8,
        overlap=4,
        generator=torch.Generator().manual_seed(0),
    )
    assert r.plan.mode == "tiled"
    assert ("a tile inside it sees no known pixel" in r.plan.reason) == blind, r.plan.reason
    if blind:
        assert f"up to {(hole + 1) // 2} pixels from a known one" in r.plan.reason


def test_every_config_rule_matches_its_registered_network() -> None:
    """diffusion.images.sizes.CONFIG_RULES (what the dashboard plans with) against the networks'
    own attributes, for every kind with a rule that this installation registers."""
    from diffusion.images.sizes import CONFIG_RULES, config_size_rule
    from diffusion.nets import registered_networks

    kinds = [k for k in CONFIG_RULES if k in registered_networks()]
    assert "conv" in kinds
    for kind in kinds:
        net = build_network(NetworkConfig(kind), NetSpec((1, 32, 32), 2, 3, "images"))
        assert config_size_rule({"kind": kind}, (32, 32)) == size_rule(net, (1, 32, 32)), kind
