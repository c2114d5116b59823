"""Patches of scikit-image's photographs, greyscale: a model for people's own photos.

Builder registered as "photos" (`diffusion.data.base.register_dataset`). Options:
  patch    side of the square training patches (default 32)
  holdout  names of the photos never trained on (default camera, astronaut, coffee: the
           photos the posterior benchmark denoises and inpaints, benchmarks/posterior.py)
  photos   names of the photos to train on (default: every bundled photo in `PHOTOS` that
           is not held out)
  scales   factors each photo is also shrunk by, with block means (default [1]: full size
           only); [1, 2, 4] adds the photos at 1/2 and 1/4, as coarse-to-fine inpainting's
           first pass shrinks an upload (diffusion.chains.posterior_coarse.downsample)
Training patches are drawn afresh every minibatch, uniformly over photos and sizes, then
positions; held-out patches (n_holdout of them, seeded) come from the held-out photos only,
at the same sizes. Colour
photos are converted to grey as the dashboard converts an upload (PIL's "L", ITU-R 601-2
luma), so a model sees what a person's converted photo looks like.
"""

from __future__ import annotations

import numpy as np
import torch

from diffusion.config import ConfigError, DataConfig
from diffusion.config_options import DEFAULT_HOLDOUT, PHOTOS  # noqa: F401  (re-exported)
from diffusion.data.base import DataBundle, register_dataset
from diffusion.data.images import _bundle, _np_rng, to_nchw
from diffusion.images.holes import block_means


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


def shrunk(image: np.ndarray, s: int) -> np.ndarray:
    """`image` shrunk by s with s x s block means (the coarse pass's, `block_means`), rounded
    to uint8; rows and columns past a multiple of s dropped (the coarse pass pads them)."""
    if s == 1:
        return image
    h, w = image.shape[0] // s * s, image.shape[1] // s * s
    return np.clip(np.rint(block_means(image[:h, :w], s)), 0, 255).astype(np.uint8)


def sizes_of(names: tuple[str, ...], scales: tuple[int, ...], patch: int) -> list[np.ndarray]:
    """Each photo of `names` at each scale; ConfigError where one is smaller than a patch."""
    out = []
    for name in names:
        img = photo(name)
        for s in scales:
            small = shrunk(img, s)
            if min(small.shape) < patch:
                raise ConfigError(
                    "data.options",
                    f"scale {s} shrinks {name} ({img.shape[1]} x {img.shape[0]}) to "
                    f"{small.shape[1]} x {small.shape[0]}, smaller than a {patch} x {patch} "
                    "patch: use smaller scales or patches",
                )
            out.append(small)
    return out


@register_dataset("photos")
def build_photos(config: DataConfig, seed: int) -> DataBundle:
    """Greyscale patches of scikit-image's photos (see the module docstring)."""
    opts = config.typed_options  # diffusion.config_options.PhotosOptions
    patch, hold_names, train_names = opts.patch, opts.holdout, opts.train_photos
    train_imgs = sizes_of(train_names, opts.scales, patch)
    hold_imgs = sizes_of(hold_names, opts.scales, patch)
    holdout = to_nchw(
        patches_of(hold_imgs, patch, config.n_holdout, np.random.default_rng([seed, 6]))
    )
    fit = to_nchw(patches_of(train_imgs, patch, 2048, np.random.default_rng([seed, 7])))

    def sampler(n: int, generator: torch.Generator) -> torch.Tensor:
        return to_nchw(patches_of(train_imgs, patch, n, _np_rng(generator)))

    info = {
        "patch": patch,
        "photos": list(train_names),
        "holdout_photos": list(hold_names),
        "scales": list(opts.scales),
    }
    return _bundle(None, holdout, sampler=sampler, fit_on=fit, info=info)
