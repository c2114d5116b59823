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


def test_scales_add_the_photos_shrunk_by_block_means() -> None:
    """With scales [1, 4] every patch is a patch of the photo at full size or of the photo
    shrunk by 4 with 4 x 4 block means, and both sizes are drawn. Broken versions this
    catches: scales ignored (no patch of the shrunk photo), a shrink by subsampling instead of
    block means (the coarse pass averages), or holdout patches from the training photos."""
    from diffusion.data.photos import shrunk

    tiny = np.array([[0, 2, 4, 4], [2, 4, 6, 8], [9, 9, 1, 1], [9, 9, 1, 2]], dtype=np.uint8)
    assert shrunk(tiny, 2).tolist() == [[2, 6], [9, 1]]  # (1.25 rounds to 1)
    cfg = DataConfig(
        "photos",
        {"patch": 8, "photos": ["moon"], "holdout": ["coins"], "scales": [1, 4]},
        n_holdout=8,
    )
    bundle = build_dataset(cfg, 0)
    moon = photo("moon")
    small = shrunk(moon, 4)
    assert small.shape == (moon.shape[0] // 4, moon.shape[1] // 4)
    train = bundle.draw_train(40, torch.Generator().manual_seed(0))[:, 0].numpy()
    train = train.astype(np.uint8)
    full = [_is_patch_of(p, moon) for p in train]
    shrunk_ = [_is_patch_of(p, small) for p in train]
    assert all(a or b for a, b in zip(full, shrunk_, strict=True))
    assert min(sum(shrunk_), sum(full)) >= 5
    coins = photo("coins")
    hold = bundle.holdout[:, 0].numpy().astype(np.uint8)
    assert all(_is_patch_of(p, coins) or _is_patch_of(p, shrunk(coins, 4)) for p in hold)


def test_a_scale_that_leaves_less_than_a_patch_is_refused() -> None:
    cfg = DataConfig("photos", {"patch": 64, "photos": ["page"], "scales": [1, 4]})
    with pytest.raises(ConfigError, match="scale 4 shrinks page .* smaller than a 64 x 64"):
        build_dataset(cfg, 0)
    with pytest.raises(ConfigError, match="different factors"):
        _ = DataConfig("photos", {"scales": [2, 2]}).typed_options


def test_photos_unet_64_draws_64_pixel_patches_and_takes_its_patch_size_for_auto() -> None:
    """The photos-unet-64 preset (benchmarks/posterior_photos.py NETWORKS) trains on 64 x 64
    patches of the same photos as photos-unet, and "auto" inpainting measures a hole against
    its own patch: a central 48 x 48 hole starts from the biharmonic fill for photos-unet (a
    32 x 32 box fits) and runs in one pass for photos-unet-64 (no 64 x 64 box does). Broken
    versions this catches: the patch option ignored (32 x 32 patches), or the auto rule
    computed from a fixed 32-pixel patch."""
    from diffusion.chains.posterior_coarse import coarse_setting
    from diffusion.images.imageio import make_mask
    from diffusion.presets import PRESETS

    wide, narrow = PRESETS["photos-unet-64"], PRESETS["photos-unet"]
    assert wide.network == narrow.network and wide.diffusion == narrow.diffusion
    bundle = build_dataset(wide.data, 0)
    assert bundle.shape == (1, 64, 64)
    small = build_dataset(narrow.data, 0)
    assert bundle.info["photos"] == small.info["photos"] and small.shape == (1, 32, 32)
    assert bundle.draw_train(3, torch.Generator().manual_seed(0)).shape == (3, 1, 64, 64)
    mask = make_mask("center", (512, 512), size=48)
    assert coarse_setting(1000, bundle.shape[-1], mask, "auto", None, 861) is None
    assert coarse_setting(1000, small.shape[-1], mask, "auto", None, 861).first == "biharmonic"
