"""The multi-scale convolutional network (App. D.2.2) and the entropy bounds (section 2.6)."""

from __future__ import annotations

import pytest
import torch

from diffusion.config import ConfigError, NetworkConfig
from diffusion.nets import NetSpec, build_network
from diffusion.nets.conv import MultiScaleConv, MultiScaleConvNet, auto_scales


def test_output_contract_grey_and_rgb() -> None:
    for shape in [(1, 8, 8), (3, 12, 10)]:
        spec = NetSpec(shape, 2, 5, "images")
        net = build_network(NetworkConfig("conv", options={"conv_channels": 6, "upper": [7]}), spec)
        x = torch.randn(4, *shape)
        g = torch.softmax(torch.randn(4, 5), 1)
        z = net(x, g)
        assert z.shape == (4, *shape, 2)
        assert torch.all(z == 0)  # readout starts at zero: the forward kernel's form


def test_readout_is_linear_in_the_basis_weights() -> None:
    torch.manual_seed(0)
    net = MultiScaleConvNet(NetSpec((1, 8, 8), 2, 4), conv_channels=5, dense_hidden=16)
    torch.nn.init.normal_(net.readout.weight)
    x = torch.randn(3, 1, 8, 8)
    e = torch.eye(4)
    g = torch.tensor([0.1, 0.2, 0.3, 0.4])
    parts = torch.stack([net(x, e[j].expand(3, 4)) for j in range(4)], -1)
    assert torch.allclose(net(x, g.expand(3, 4)), parts @ g, atol=1e-5)


def test_multiscale_layer_sees_far_pixels_and_dense_pathway_sees_all() -> None:
    assert auto_scales(32, 32) == 4 and auto_scales(8, 8) == 2
    torch.manual_seed(1)
    layer = MultiScaleConv(1, 3, 3, 3)
    x = torch.zeros(1, 1, 16, 16, requires_grad=True)
    layer(x)[0, :, 0, 0].sum().backward()
    # a 3 x 3 kernel alone reaches 1 pixel; pooled by 4 it reaches beyond 4 pixels
    assert x.grad[0, 0, 6, 6].abs() > 0
    net = MultiScaleConvNet(NetSpec((1, 8, 8), 2, 3), conv_layers=0, dense_hidden=8, upper=(4,))
    torch.nn.init.normal_(net.readout.weight)
    x = torch.zeros(1, 1, 8, 8, requires_grad=True)
    net(x, torch.ones(1, 3) / 3)[0, 0, 0, 0].sum().backward()
    assert x.grad[0, 0, 7, 7].abs() > 0


def test_bad_options_raise() -> None:
    spec = NetSpec((1, 8, 8), 2, 3, "images")
    for opts, field in [
        ({"kernel": 4}, "kernel"),
        ({"depth": 2}, "depth"),
        ({"conv_layers": -1}, "conv_layers"),
        ({"upper": ["a"]}, "upper"),
    ]:
        with pytest.raises(ConfigError, match=field):
            build_network(NetworkConfig("conv", options=opts), spec)
    with pytest.raises(ConfigError, match="images"):
        build_network(NetworkConfig("conv"), NetSpec((2,), 2, 3))


def test_without_dense_pathway_any_image_size_works() -> None:
    net = MultiScaleConvNet(NetSpec((1, 8, 8), 2, 3), conv_channels=4)
    assert net(torch.randn(2, 1, 12, 20), torch.ones(2, 3) / 3).shape == (2, 1, 12, 20, 2)


def test_untrained_model_sits_at_the_upper_variance_limit() -> None:
    """Section 2.6: the reverse variance lies between the forward posterior variance and
    beta_t; an untrained network (zS = 0) gives beta_t itself, the data-as-pi limit. The
    run page plots these vectors (diffusion.evaluation.evaluate -> reverse_var, _lower, _upper)."""
    from diffusion.evaluation.bound import evaluate_bound
    from diffusion.model import DiffusionModel
    from diffusion.presets import PRESETS

    model = DiffusionModel(PRESETS["digits-smoke"], (1, 8, 8), "images")
    x0 = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    terms = evaluate_bound(model, x0, torch.Generator().manual_seed(0))
    beta = model.beta().detach().to(torch.float64)
    abar = torch.cumprod(1 - beta, 0)
    closed = (1 - abar[:-1]) * beta[1:] / (1 - abar[1:])  # t = 2..T
    assert torch.allclose(terms.sigma_mean[1:], beta[1:], rtol=1e-6)
    assert torch.allclose(terms.posterior_var[1:], closed, rtol=1e-6)
    assert (terms.posterior_var[1:] < terms.sigma_mean[1:]).all()
