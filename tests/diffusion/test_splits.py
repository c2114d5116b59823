"""Train, validation and test splits are disjoint, and the test split is one no run can draw
(diffusion/data/splits.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffusion.config import ConfigError, DataConfig, TrainConfig
from diffusion.data import build_dataset
from diffusion.data.images import digits_split, texture_image
from diffusion.data.splits import TEST_SEED, load_test_split


def test_no_training_seed_can_be_the_test_seed() -> None:
    with pytest.raises(ConfigError, match="seed"):
        TrainConfig(seed=TEST_SEED)
    TrainConfig(seed=2**63 - 1)  # the largest allowed training seed


def test_swissroll_test_points_are_fresh_and_fixed() -> None:
    cfg = DataConfig("swissroll", {"sigma": 0.25}, n_train=5_000, n_holdout=500)
    test = load_test_split(cfg, 300)
    again = load_test_split(cfg, 300)
    assert torch.equal(test.x, again.x) and test.x.shape == (300, 2)
    seen = set()
    for seed in range(4):
        b = build_dataset(cfg, seed)
        seen |= {tuple(p) for p in torch.cat([b.train, b.holdout]).tolist()}
    assert not seen & {tuple(p) for p in test.x.tolist()}
    # the true log-likelihood reported is that of the test points, not of a run's holdout
    assert test.true_ll_bits != build_dataset(cfg, 0).true_ll_bits
    assert abs(test.true_ll_bits - build_dataset(cfg, 0).true_ll_bits) < 0.2


def test_heartbeat_and_deadleaves_have_test_splits() -> None:
    hb = load_test_split(DataConfig("heartbeat", {}, n_train=100, n_holdout=50))
    assert hb.x.shape == (50, 20) and hb.true_ll_bits == pytest.approx(-np.log2(5))
    dl = load_test_split(DataConfig("deadleaves", {"size": 8}, n_train=10, n_holdout=4), 6)
    ref = build_dataset(DataConfig("deadleaves", {"size": 8}, n_train=10, n_holdout=6), 0)
    assert dl.x.shape == (6, 1, 8, 8) and not torch.equal(dl.x, ref.holdout)


def test_texture_test_band_is_never_trained_or_validated_on() -> None:
    cfg = DataConfig("texture", {"texture": "brick", "patch": 8, "holdout_rows": 64}, n_holdout=20)
    b = build_dataset(cfg, 0)
    test = load_test_split(cfg, 30)
    assert b.info["train_rows"] == [0, 448] and b.info["holdout_rows"] == [448, 480]
    assert b.info["test_rows"] == [480, 512] and test.info["test_rows"] == [480, 512]
    img = texture_image("brick")

    def top_rows(patches: torch.Tensor) -> set[int]:
        rows = set()
        for p in patches[:, 0].numpy().astype(np.uint8):
            ys = [
                y
                for y in range(img.shape[0] - 7)
                for x in np.nonzero(img[y, :505] == p[0, 0])[0]
                if np.array_equal(img[y : y + 8, x : x + 8], p)
            ]
            rows.add(min(ys))
        return rows

    assert min(top_rows(test.x[:5])) >= 480
    assert max(top_rows(b.holdout[:5])) <= 480 - 8 and min(top_rows(b.holdout[:5])) >= 448
    with pytest.raises(ConfigError, match="holdout_rows"):
        build_dataset(DataConfig("texture", {"patch": 16, "holdout_rows": 20}), 0)


def test_digits_test_images_are_in_no_run() -> None:
    test_idx, other_idx = digits_split()
    assert len(test_idx) == 297 and not set(test_idx) & set(other_idx)
    test = load_test_split(DataConfig("digits", {}, n_holdout=100), 297)
    key = lambda x: {a.tobytes() for a in x.numpy().astype(np.uint8)}  # noqa: E731
    for seed in range(3):
        b = build_dataset(DataConfig("digits", {}, n_holdout=300, n_train=0), seed)
        assert not key(test.x) & (key(b.train) | key(b.holdout))


def test_a_data_set_without_a_test_split_says_so(tmp_path) -> None:
    path = tmp_path / "v.npy"
    np.save(path, np.zeros((10, 2)))
    with pytest.raises(ConfigError, match="has no test split"):
        load_test_split(DataConfig("vector", {"path": str(path)}))
