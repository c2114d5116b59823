"""The "photos" data set (diffusion/data/photos.py): patches of scikit-image's photos, with
the photos under test never trained on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from diffusion.config import ConfigError, DataConfig
from diffusion.data import build_dataset
from diffusion.data.photos import DEFAULT_HOLDOUT, PHOTOS, photo


def _is_patch_of(patch: np.ndarray, image: np.ndarray) -> bool:
    windows = sliding_window_view(image, patch.shape)
    return bool((windows == patch).all(axis=(2, 3)).any())


def test_patches_come_from_the_training_photos_only() -> None:
    cfg = DataConfig("photos", {"patch": 8, "photos": ["moon"], "holdout": ["coins"]}, n_holdout=4)
    bundle = build_dataset(cfg, 0)
    assert bundle.shape == (1, 8, 8) and bundle.info["holdout_photos"] == ["coins"]
    moon, coins = photo("moon"), photo("coins")
    train = bundle.draw_train(6, torch.Generator().manual_seed(0))[:, 0].numpy().astype(np.uint8)
    assert all(_is_patch_of(p, moon) for p in train)
    hold = bundle.holdout[:, 0].numpy().astype(np.uint8)
    assert all(_is_patch_of(p, coins) for p in hold)


def test_defaults_hold_out_the_benchmark_photos_and_convert_colour_like_an_upload() -> None:
    bundle = build_dataset(DataConfig("photos", {}, n_holdout=2), 0)
    assert set(bundle.info["holdout_photos"]) == set(DEFAULT_HOLDOUT)
    assert not set(bundle.info["photos"]) & set(DEFAULT_HOLDOUT)
    assert set(bundle.info["photos"]) | set(DEFAULT_HOLDOUT) == set(PHOTOS)
    from PIL import Image
    from skimage import data as skdata

    grey = np.asarray(Image.fromarray(skdata.astronaut()).convert("L"))
    assert np.array_equal(photo("astronaut"), grey)
    with pytest.raises(ConfigError, match="both trained on and held out"):
        build_dataset(DataConfig("photos", {"photos": ["moon"], "holdout": ["moon"]}), 0)
    with pytest.raises(ConfigError, match="must be one of astronaut, camera"):
        build_dataset(DataConfig("photos", {"holdout": ["lena"]}), 0)
