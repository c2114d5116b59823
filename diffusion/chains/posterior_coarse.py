"""Starts for inpainting holes large compared with the model's training size: coarse-to-fine
and the biharmonic start (beyond the paper; docs/model-notes.md "Coarse-to-fine inpainting").

A model trained on p x p patches, run on tiles of about that size, fills the middle of a hole
much wider than p from what it learned rather than from the image: the low frequencies of the
fill are decided at high noise levels, where a tile inside the hole sees no known pixel, so the
fill's brightness drifts to the training data's mean (a 64 x 64 hole in scikit-image's camera
with a model of 32 x 32 patches: fill mean 130 where the truth is 28). Both starts give the
chain a first estimate of the hole's low frequencies and run it from an intermediate level:

1. coarse-to-fine (coarse = a scale s): the image and its mask are shrunk by s (block means;
   a coarse pixel is known when its whole s x s block is), so the hole spans a fraction of a
   training patch, and the chosen inpainting chain fills it there (known pixels held as that
   chain holds them); that fill, upsampled (bilinear) into the hole, is the first estimate;
2. the biharmonic start (coarse = "biharmonic"): scikit-image's biharmonic fill of the hole at
   full size (smooth, with the brightness of its surroundings, and no texture) is the first
   estimate: the start of Chung et al. 2022 ("Come-Closer-Diffuse-Faster") with a classical
   estimate where theirs is a regression network's.

The chain at full size then starts at x^t0 ~ q(x^t0 | x^0 = the first estimate), the model's
own forward process at step t0, and runs from t0 down to 0 (SDEdit's start, Meng et al. 2022),
known pixels held as before. Steps above t0 are never run: the low frequencies come from the
estimate, the detail from the chain.

`CoarseToFine` is the setting (scale s or the biharmonic start, start step t0); `coarse_setting`
checks one given by the caller or picks one ("auto", the worker's: the biharmonic start at
`BIHARMONIC_NOISE` when a training-size box fits inside the hole, else one pass; chosen on
validation holes, never on the test photos). `downsample`, `upsample_into` and
`biharmonic_start` make the estimates; `diffusion.chains.posterior.inpaint` runs the passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from diffusion.chains.inpaint_methods import BIHARMONIC, BIHARMONIC_NOISE
from diffusion.chains.posterior_inputs import PosteriorInputError
from diffusion.images.holes import block_means, downsample_mask, holds_box, hole_size

REFINE_NOISE = 0.5
"""A given scale without a start step: t0 is the first step whose forward noise
reaches REFINE_NOISE times the data's standard deviation (sqrt((1 - abar) / abar) >= it;
`refine_step`): a noise level, not a share of T, since schedules differ (the photos model's
geometric schedule adds 1.5 grey levels of noise by step 400 of 1,000, 24 by step 860)."""


@dataclass(frozen=True)
class CoarseToFine:
    """scale: the factor s the image is shrunk by for the coarse pass (>= 2), or 1 for the
    biharmonic start (no coarse pass: the first estimate is the biharmonic fill at full size);
    refine_from: the step t0 (1 <= t0 <= T) the full-size chain starts from, at
    q(x^t0 | the first estimate)."""

    scale: int
    refine_from: int

    @property
    def first(self) -> str:
        """Where the first estimate comes from: BIHARMONIC, or "model" (the coarse pass)."""
        return BIHARMONIC if self.scale == 1 else "model"

    def note(self, T: int, coarse_mask: np.ndarray, patch: int) -> str:
        """The clause for the size plan (the dashboard shows it); coarse_mask: the mask of the
        shrunk image (the full-size one for the biharmonic start)."""
        if self.first == BIHARMONIC:
            return (
                f"; started from the biharmonic fill of the hole (smooth, from the pixels "
                f"around it), diffused forward to level {self.refine_from} of {T} and refined "
                f"by the chain from there"
            )
        h, w = np.asarray(coarse_mask).shape
        hh, hw = hole_size(coarse_mask)
        return (
            f"; coarse-to-fine at 1/{self.scale}, refined from level {self.refine_from} of "
            f"{T}: the hole was first filled on the image shrunk to {w} x {h}, where it is "
            f"{hw} x {hh} pixels (the model's training patches: {patch} x {patch}), and that "
            f"fill, diffused forward to level {self.refine_from}, was refined at full size"
        )


def refine_step(alpha_bar: torch.Tensor, noise: float = REFINE_NOISE) -> int:
    """The first step t >= 1 whose forward noise sqrt((1 - abar_t) / abar_t) reaches `noise`
    (in units of the data's standard deviation); T if none does. alpha_bar: (T + 1,)."""
    abar = torch.as_tensor(alpha_bar, dtype=torch.float64)
    hits = torch.nonzero((1 - abar[1:]) >= noise**2 * abar[1:])
    return int(hits[0]) + 1 if len(hits) else len(abar) - 1


def coarse_setting(
    T: int,
    patch: int,
    mask: np.ndarray,
    coarse: int | str | None,
    refine_from: int | None,
    default_t0: int | None = None,
) -> CoarseToFine | None:
    """The coarse-to-fine setting for `inpaint`'s coarse / refine_from arguments, or None
    (one pass at full size). coarse: None (off), a scale s >= 2, "biharmonic" (the biharmonic
    start, any hole) or "auto" (the biharmonic start when a patch x patch box fits inside the
    hole, else None); refine_from: the start step t0 in [1, T] (None: default_t0,
    `refine_step` of the model's schedule at `start_noise(coarse)`). PosteriorInputError for a
    scale that shrinks the image below one training patch, or t0 out of range."""
    if coarse is None:
        if refine_from is not None:
            raise PosteriorInputError(
                "refine_from is the start step of coarse-to-fine: give coarse"
            )
        return None
    h, w = np.asarray(mask).shape
    if coarse == BIHARMONIC:
        scale = 1
    elif coarse == "auto":  # the biharmonic start, on a hole wider than the training patches
        if not holds_box(mask, patch):
            return None
        scale = 1
    elif isinstance(coarse, bool) or not isinstance(coarse, int | np.integer) or coarse < 2:
        raise PosteriorInputError(
            f"coarse must be None, 'auto', {BIHARMONIC!r} or a scale (an integer >= 2), "
            f"got {coarse!r}"
        )
    else:
        scale = int(coarse)
        hc, wc = -(-h // scale), -(-w // scale)
        if min(hc, wc) < patch:
            raise PosteriorInputError(
                f"coarse={scale} shrinks the {w} x {h} image to {wc} x {hc}, smaller than the "
                f"model's {patch} x {patch} training patches; the largest scale it takes here "
                f"is {max(1, min(h, w) // patch)}"
            )
    if refine_from is None:
        t0 = int(default_t0) if default_t0 is not None else T
    elif isinstance(refine_from, bool) or not isinstance(refine_from, int | np.integer):
        raise PosteriorInputError(f"refine_from must be an integer step, got {refine_from!r}")
    elif not 1 <= refine_from <= T:
        raise PosteriorInputError(
            f"refine_from must be a step in [1, T={T}] (the level the full-size chain starts "
            f"from), got {refine_from}"
        )
    else:
        t0 = int(refine_from)
    return CoarseToFine(scale, t0)


def start_noise(coarse: int | str | None) -> float:
    """The noise level (times the data's sd) of the default t0 for a `coarse` value."""
    return BIHARMONIC_NOISE if coarse in (BIHARMONIC, "auto") else REFINE_NOISE


def downsample(image: np.ndarray, mask: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
    """(coarse image, coarse mask): `image` (H, W[, C]) float shrunk by s in block means
    (edges padded by repetition up to a multiple of s), a coarse pixel known when every pixel
    of its block is. Values under coarse missing pixels are meaningless (the chain ignores
    them)."""
    return block_means(image, s), downsample_mask(np.asarray(mask, dtype=bool), s)


def upsample(samples: np.ndarray, s: int, size: tuple[int, int]) -> np.ndarray:
    """(n, Hc, Wc[, C]) -> (n, H, W[, C]): bilinear by s (pixel centres, as torch's
    align_corners=False: block means of a linear ramp come back as the ramp inside the image),
    cropped to size = (H, W)."""
    arr = np.asarray(samples, dtype=np.float64)
    t = torch.from_numpy(arr if arr.ndim == 4 else arr[..., None]).permute(0, 3, 1, 2)
    up = torch.nn.functional.interpolate(t, scale_factor=s, mode="bilinear", align_corners=False)
    out = up.permute(0, 2, 3, 1).numpy()[:, : size[0], : size[1]]
    return out if arr.ndim == 4 else out[..., 0]


def upsample_into(
    coarse_samples: np.ndarray, s: int, observed: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """The start of the full-size chain, (n, H, W[, C]) data space: the known pixels of
    `observed`, the missing ones from the coarse fill upsampled by s."""
    mask = np.asarray(mask, dtype=bool)
    up = upsample(coarse_samples, s, mask.shape)
    keep = mask if up.ndim == 3 else mask[..., None]
    return np.where(keep, np.asarray(observed, dtype=np.float64)[None], up)


def biharmonic_start(observed: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The biharmonic start, (H, W[, C]) data space: the known pixels of `observed`, the
    missing ones filled by scikit-image's `inpaint_biharmonic` (each channel solved from the
    pixels around the hole, and clipped by it to the known pixels' range)."""
    from skimage.restoration import inpaint_biharmonic

    mask = np.asarray(mask, dtype=bool)
    x = np.asarray(observed, dtype=np.float64)
    fill = inpaint_biharmonic(x, ~mask, channel_axis=-1 if x.ndim == 3 else None)
    return np.where(mask if x.ndim == 2 else mask[..., None], x, fill)


__all__ = [
    "BIHARMONIC",
    "BIHARMONIC_NOISE",
    "REFINE_NOISE",
    "biharmonic_start",
    "CoarseToFine",
    "coarse_setting",
    "downsample",
    "refine_step",
    "start_noise",
    "upsample",
    "upsample_into",
]
