"""Group-norm networks on larger images (diffusion.images.sizes.SizeRule.norm_tile).

Group norm takes its statistics over the whole input, so a UNet run on a whole photo sees
other statistics than on its training patches (the photos UNet: 25.1 dB on camera at sigma
25 in one piece, 29.4 dB on tiles of its 32-pixel training size). Its default plan is tiles
of its training size; the test below shows the cause: in one piece, the output at the centre
of a 128 x 128 image changes when pixels 40 and more away change; on 32-pixel tiles it cannot.
"""

from __future__ import annotations

import pytest
import torch

from diffusion.config import NetworkConfig
from diffusion.images.sizes import config_size_rule, plan_for
from diffusion.images.tiling import plan_size, size_rule, sized_net
from diffusion.nets import NetSpec, build_network

UNET = {"channels": 8, "groups": 8, "mults": [1, 2, 2]}


def unet(side: int = 32) -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_network(
        NetworkConfig("unet", options=UNET), NetSpec((1, side, side), 2, 3, "images")
    )
    with torch.no_grad():  # the output layer starts at zero: make the outputs non-trivial
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net.eval()


def test_a_unet_runs_larger_images_on_tiles_of_its_training_size() -> None:
    net = unet()
    plan = plan_size(net, (1, 32, 32), (512, 512))
    assert (plan.mode, plan.tile, plan.overlap, plan.margin) == ("tiled", 32, 16, 6)
    assert "group norm" in plan.reason and "32 x 32" in plan.reason
    assert plan_size(net, (1, 32, 32), (32, 32)).mode == "native"
    assert plan_size(net, (1, 32, 32), (24, 20)).mode == "full"  # smaller: one piece
    assert plan_size(net, (1, 32, 32), (20, 100)).mode == "tiled"  # one side larger
    asked = plan_size(net, (1, 32, 32), (512, 512), tile=64, overlap=24, margin=8)
    assert asked.tile == 64 and "asked for" in asked.reason
    # the dashboard's rule (from the config) says the same; sides round up to the multiple
    assert config_size_rule({"kind": "unet", "options": UNET}, (32, 32)) == size_rule(
        net, (1, 32, 32)
    )
    assert config_size_rule({"kind": "unet", "options": UNET}, (30, 28)).norm_tile == 32


@pytest.mark.parametrize("norm_tile", [32, 0], ids=["tiles", "broken-one-piece"])
def test_tiles_keep_far_pixels_out_of_the_statistics(norm_tile: int) -> None:
    net = unet()
    rule = size_rule(net, (1, 32, 32))
    assert rule.norm_tile == 32
    rule = type(rule)(rule.built, rule.fully_convolutional, rule.multiple, rule.align, norm_tile)
    plan = plan_for(rule, (128, 128))
    run = sized_net(net, plan)
    x = torch.randn(1, 1, 128, 128, generator=torch.Generator().manual_seed(1))
    far = x.clone()
    far[..., :, :24] += 4.0  # columns 40 and more away from the centre block
    g = torch.softmax(torch.randn(1, 3), 1)
    with torch.no_grad():
        a, b = run(x, g)[..., 56:72, 56:72, :], run(far, g)[..., 56:72, 56:72, :]
    changed = float((a - b).abs().max())
    if norm_tile:
        assert changed < 1e-5, changed  # the centre's tiles never see those columns
    else:
        assert changed > 1e-3, changed  # one piece: far pixels move the group statistics
