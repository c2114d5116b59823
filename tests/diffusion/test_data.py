"""Toy data sets, the scaler, and the swiss roll's true log-likelihood by quadrature."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffusion.config import ConfigError, DataConfig
from diffusion.data import Scaler, build_dataset, fit_scaler
from diffusion.data.toy import swissroll_log_density, swissroll_raw, swissroll_scaler


def test_swissroll_density_integrates_to_one_and_matches_histogram():
    sigma = 0.5
    xs = np.linspace(-17, 17, 171)
    gx, gy = np.meshgrid(xs, xs)
    pts = np.stack([gx.ravel(), gy.ravel()], 1)
    dens = np.exp(swissroll_log_density(pts, sigma))
    cell = (xs[1] - xs[0]) ** 2
    assert abs(dens.sum() * cell - 1) < 3e-3
    # Monte Carlo: mass of a box from samples vs from the density
    x = swissroll_raw(200_000, sigma, torch.Generator().manual_seed(0)).numpy()
    inside = (x[:, 0] > 0) & (x[:, 0] < 5) & (x[:, 1] > 0) & (x[:, 1] < 12)
    box = (pts[:, 0] > 0) & (pts[:, 0] < 5) & (pts[:, 1] > 0) & (pts[:, 1] < 12)
    p_mc = inside.mean()
    assert abs(dens[box].sum() * cell - p_mc) < 4 * math.sqrt(p_mc * (1 - p_mc) / len(x)) + 3e-3


def test_swissroll_bundle_scaling_and_truth():
    b = build_dataset(DataConfig("swissroll", {"sigma": 0.25}, 20_000, 2_000), seed=0)
    y = b.scaler.to_model(b.train)
    assert abs(float(y.mean())) < 0.03 and abs(float(y.var()) - 1) < 0.03
    assert -1.05 < b.true_ll_bits < -0.85  # model.md: about -0.97 bits
    thin = build_dataset(DataConfig("swissroll", {"sigma": 0.02}, 10, 2_000), seed=0)
    assert 2.55 < thin.true_ll_bits < 2.8  # model.md: about 2.69 bits
    s = swissroll_scaler(0.25)
    torch.testing.assert_close(s.to_data(s.to_model(b.holdout)), b.holdout)


def test_heartbeat():
    b = build_dataset(DataConfig("heartbeat", {}, 5000, 100), seed=1)
    x = b.train
    assert x.shape == (5000, 20) and (x.sum(1) == 4).all()
    phase = x[:, :5].argmax(1)
    counts = torch.bincount(phase, minlength=5).float()
    assert (abs(counts / 5000 - 0.2) < 4 * math.sqrt(0.16 / 5000)).all()
    assert abs(b.true_ll_bits - math.log2(1 / 5)) < 1e-12 and b.unit == "bits/seq"


def test_vector_loader_csv_npy_and_errors(tmp_path):
    arr = np.random.default_rng(0).normal(size=(100, 3)) * 5 + 2
    np.save(tmp_path / "a.npy", arr)
    np.savetxt(tmp_path / "a.csv", arr, delimiter=",")
    for name in ("a.npy", "a.csv"):
        b = build_dataset(DataConfig("vector", {"path": str(tmp_path / name)}, 0, 20), 0)
        assert b.shape == (3,) and b.holdout.shape == (20, 3) and b.train.shape == (80, 3)
    with pytest.raises(ConfigError) as info:
        build_dataset(DataConfig("vector", {"path": str(tmp_path / "none.npy")}), 0)
    assert info.value.field == "data.options.path"
    with pytest.raises(ConfigError) as info:
        build_dataset(DataConfig("vector", {"path": str(tmp_path / "a.npy"), "bogus": 1}), 0)
    assert info.value.field == "options.bogus"
    with pytest.raises(ConfigError, match="0/1"):
        build_dataset(DataConfig("vector", {"path": str(tmp_path / "a.npy"), "binary": True}), 0)


def test_scaler_dequantizes_and_inverts():
    x = torch.tensor([[0.0, 128.0, 255.0]])
    s = fit_scaler(torch.randint(0, 256, (1000, 3)).float(), dequantize=True)
    y = s.to_model(x, torch.Generator().manual_seed(0))
    back = s.to_data(y)
    torch.testing.assert_close(back, x)
    assert Scaler.from_dict(s.to_dict()) == s
    assert s.log_det_bits(3) == pytest.approx(3 * math.log2(s.scale))
