"""The UNet network kind (diffusion.nets.unet), the v-preconditioned mean, training on a
wall-clock budget and the images data set's separate test folder (issue 10)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion.config import ConfigError, DataConfig, DiffusionConfig, NetworkConfig, RunConfig
from diffusion.data import build_dataset
from diffusion.evaluation.bound import evaluate_bound
from diffusion.model import DiffusionModel
from diffusion.nets import NetSpec, build_network
from diffusion.presets import PRESETS
from diffusion.training.train import lr_at, train

SMALL = {"channels": 8, "groups": 4, "mults": [1, 2]}


def _unet(shape=(1, 8, 8), n_outputs=2, J=10, **opts):
    cfg = NetworkConfig("unet", hidden=(), options={**SMALL, **opts})
    return build_network(cfg, NetSpec(shape, n_outputs, J))


def _perturb(net: torch.nn.Module) -> None:
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))


@pytest.mark.parametrize("opts", [{}, {"readout": "basis", "time": "basis", "attention": [4]}])
def test_unet_contract_any_size_and_time(opts):
    net = _unet(**opts)
    g = torch.softmax(torch.randn(3, 10), dim=1)
    assert torch.equal(net(torch.randn(3, 1, 8, 8), g), torch.zeros(3, 1, 8, 8, 2))  # zero init
    _perturb(net)
    for h, w in ((8, 8), (13, 7)):  # fully convolutional: odd sizes are padded and cropped
        x = torch.randn(3, 1, h, w)
        z = net(x, g)
        assert z.shape == (3, 1, h, w, 2) and torch.isfinite(z).all()
    x = torch.randn(3, 1, 8, 8)
    other = torch.roll(g, 3, dims=1)
    assert not torch.allclose(net(x, g), net(x, other))  # it reads the time


@pytest.mark.parametrize("opts", [{}, {"attention": [4], "mid_attention": True}])
def test_channels_last_computes_the_same_function(opts):
    """`channels_last` changes the memory format alone: the same outputs and gradients as the
    default format for the same weights, at the training size and an odd one (padded and
    cropped). Broken versions: a flag that converts nothing (the weights stay in the default
    format: checked by mutation); any operation whose result depends on the memory format
    shows here as a difference in the outputs or gradients."""
    plain, last = _unet(shape=(3, 8, 8), **opts), _unet(shape=(3, 8, 8), channels_last=True, **opts)
    _perturb(plain)
    last.load_state_dict(plain.state_dict())
    conv = next(m for m in last.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    g = torch.softmax(torch.randn(2, 10, generator=torch.Generator().manual_seed(2)), dim=1)
    for h, w in ((8, 8), (13, 7)):
        x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(3))
        zp, zl = plain(x, g), last(x, g)
        torch.testing.assert_close(zl, zp, rtol=1e-5, atol=1e-5)
        zp.square().sum().backward()
        zl.square().sum().backward()
        for (name, a), b in zip(plain.named_parameters(), last.parameters(), strict=True):
            torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-4, msg=name)
        plain.zero_grad(), last.zero_grad()


def test_unet_pixels_interact_and_options_are_checked():
    net = _unet(shape=(3, 8, 8), n_outputs=1, attention=[8], mid_attention=True, heads=2)
    _perturb(net)
    x, g = torch.randn(1, 3, 8, 8), torch.full((1, 10), 0.1)
    x2 = x.clone()
    x2[0, 0, 0, 0] += 1.0
    diff = (net(x, g) - net(x2, g)).abs()[0, :, 7, 7, 0]
    assert diff.max() > 0  # the far corner sees the change (receptive field, attention)
    for bad, field in (
        ({"widths": 3}, "options.widths"),
        ({"mults": []}, "options.mults"),
        ({"time": "clock"}, "options.time"),
        ({"heads": 3, "attention": [8]}, "options.heads"),
    ):
        with pytest.raises(ConfigError) as err:
            _unet(**bad)
        assert err.value.field == field


def _gauss_config(mean: str) -> RunConfig:
    return RunConfig(
        data=DataConfig("deadleaves", {"size": 4}),
        diffusion=DiffusionConfig("gaussian", T=12, schedule="geometric", beta1=1e-3, mean=mean),
        network=NetworkConfig("unet", hidden=(), options=SMALL),
    )


def test_v_mean_with_zero_output_is_the_exact_reverse_kernel_of_standard_normal_data():
    """For x^0 ~ N(0, I) the true reverse kernel is N(sqrt(1 - beta_t) x^t, beta_t); the
    v-preconditioned mean at zero network output is exactly that, so K = log N(x^0; 0, I) per
    example in expectation over x^{1..T} (the bound is tight: only Monte Carlo noise remains).
    The "noise" form at zero output (mu = x^t) is not."""
    x0 = torch.randn(200, 1, 4, 4, generator=torch.Generator().manual_seed(0)).double()
    for mean in ("v", "noise"):
        model = DiffusionModel(_gauss_config(mean), (1, 4, 4), "images").double()
        terms = evaluate_bound(model, x0, torch.Generator().manual_seed(1))
        diff = (terms.per_example - terms.log_null) / 16  # nats per dimension
        gap, se = float(diff.mean()), float(diff.std() / math.sqrt(len(diff)))
        if mean == "v":
            assert abs(gap) < 4 * se and se < 0.03
        else:
            assert gap < -0.05 and gap < -10 * se


def test_v_mean_is_rejected_for_binomial():
    with pytest.raises(ConfigError):
        DiffusionConfig("binomial", T=10, mean="v")


def test_budget_ends_training_and_fits_the_lr_schedule(tmp_path):
    cfg = PRESETS["digits-smoke"]
    assert lr_at(cfg, 0, 0.5) == pytest.approx(
        cfg.train.lr_final + (cfg.train.lr - cfg.train.lr_final) * 0.5 * (1 + math.cos(math.pi / 2))
    )
    result = train(cfg, tmp_path / "run", budget_s=1e-9, device="cpu", final_eval=False)
    assert result.status == "done" and result.step == 1 < cfg.train.steps
    again = train(cfg, tmp_path / "run", budget_s=1e-9, device="cpu", final_eval=False)
    assert again.step == 1  # a spent budget is a finished run


def test_images_test_folder_holds_out_the_first_by_name(tmp_path):
    for folder, n, level in (("train", 5, 10), ("test", 4, 200)):
        (tmp_path / folder).mkdir()
        for i in range(n):
            arr = np.full((6, 6), level + i, dtype=np.uint8)
            Image.fromarray(arr).save(tmp_path / folder / f"{n - i:02d}.png")
    cfg = DataConfig(
        "images",
        {"path": str(tmp_path / "train"), "test_path": str(tmp_path / "test"), "size": 6},
        n_train=0,
        n_holdout=2,
    )
    bundle = build_dataset(cfg, 0)
    assert bundle.train.shape[0] == 5  # every training image, none held out
    # names 01..04 hold levels 203, 202, 201, 200: the first two by name are 203 and 202
    assert bundle.holdout[:, 0, 0, 0].tolist() == [203.0, 202.0]


def test_unet_presets_build():
    for name in ("deadleaves-unet", "bark-unet", "cifar10-unet"):
        cfg = PRESETS[name]
        shape = (3, 32, 32) if name.startswith("cifar") else (1, 32, 32)
        model = DiffusionModel(cfg, shape, "images")
        assert model.net.__class__.__name__ == "UNet"
