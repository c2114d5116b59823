"""Patches of scikit-image's photographs, greyscale: a model for people's own photos.

Builder registered as "photos" (`diffusion.data.base.register_dataset`). Options:
  patch    side of the square training patches (default 32)
  holdout  names of the photos never trained on (default camera, astronaut, coffee: the
           photos the posterior benchmark denoises and inpaints, benchmarks/posterior.py)
  photos   names of the photos to train on (default: every bundled photo in `PHOTOS` that
           is not held out)
Training patches are drawn afresh every minibatch, uniformly over photos, then positions;
held-out patches (n_holdout of them, seeded) come from the held-out photos only. Colour
photos are converted to grey as the dashboard converts an upload (PIL's "L", ITU-R 601-2
luma), so a model sees what a person's converted photo looks like.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from diffusion.config import ConfigError, DataConfig
from diffusion.data.base import DataBundle, check_options, register_dataset
from diffusion.data.images import _bundle, _np_rng, to_nchw

# Bundled with scikit-image (no download); sizes vary, all at least 172 pixels on a side.
PHOTOS = (
    "astronaut",
    "camera",
    "coffee",
    "chelsea",
    "rocket",
    "coins",
    "clock",
    "moon",
    "page",
    "text",
    "brick",
    "grass",
    "gravel",
    "immunohistochemistry",
    "cell",
)
DEFAULT_HOLDOUT = ("camera", "astronaut", "coffee")


def photo(name: str) -> np.ndarray:
    """scikit-image's photo `name` as a uint8 greyscale array (H, W) (PIL "L" conversion)."""
    if name not in PHOTOS:
        raise ConfigError("data.options", f"unknown photo {name!r}; one of {', '.join(PHOTOS)}")
    from PIL import Image
    from skimage import data as skdata

    arr = np.asarray(getattr(skdata, name)())
    if arr.ndim == 3:
        arr = np.asarray(Image.fromarray(arr[..., :3].astype(np.uint8)).convert("L"))
    return np.ascontiguousarray(arr, dtype=np.uint8)


def patches_of(
    images: list[np.ndarray], patch: int, n: int, rng: np.random.Generator
) -> np.ndarray:
    """n patches (n, patch, patch): a photo uniformly, then a position uniformly in it."""
    which = rng.integers(0, len(images), n)
    out = np.empty((n, patch, patch), dtype=np.uint8)
    for k, i in enumerate(which):
        img = images[i]
        y = rng.integers(0, img.shape[0] - patch + 1)
        x = rng.integers(0, img.shape[1] - patch + 1)
        out[k] = img[y : y + patch, x : x + patch]
    return out


def _names(config: DataConfig, key: str, value: Any) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value)
    bad = [v for v in names if v not in PHOTOS]
    if bad or not names:
        raise ConfigError(
            f"data.options.{key}",
            f"must be a list of photo names from {', '.join(PHOTOS)}; got {value!r}",
        )
    return names


@register_dataset("photos")
def build_photos(config: DataConfig, seed: int) -> DataBundle:
    """Greyscale patches of scikit-image's photos (see the module docstring)."""
    opts = check_options(config, {"patch": 32, "holdout": DEFAULT_HOLDOUT, "photos": None})
    patch = opts["patch"]
    if isinstance(patch, bool) or not isinstance(patch, int) or not 4 <= patch <= 160:
        raise ConfigError("data.options.patch", f"must be an integer in [4, 160], got {patch!r}")
    hold_names = _names(config, "holdout", opts["holdout"])
    train_names = (
        _names(config, "photos", opts["photos"])
        if opts["photos"] is not None
        else tuple(n for n in PHOTOS if n not in hold_names)
    )
    overlap = sorted(set(train_names) & set(hold_names))
    if overlap:
        raise ConfigError(
            "data.options.photos", f"{', '.join(overlap)} cannot be both trained on and held out"
        )
    train_imgs = [photo(n) for n in train_names]
    hold_imgs = [photo(n) for n in hold_names]
    holdout = to_nchw(
        patches_of(hold_imgs, patch, config.n_holdout, np.random.default_rng([seed, 6]))
    )
    fit = to_nchw(patches_of(train_imgs, patch, 2048, np.random.default_rng([seed, 7])))

    def sampler(n: int, generator: torch.Generator) -> torch.Tensor:
        return to_nchw(patches_of(train_imgs, patch, n, _np_rng(generator)))

    info = {"patch": patch, "photos": list(train_names), "holdout_photos": list(hold_names)}
    return _bundle(None, holdout, sampler=sampler, fit_on=fit, info=info)
