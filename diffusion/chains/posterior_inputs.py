"""The inputs of the image posteriors (diffusion.chains.posterior): checked, then mapped to the
model's space.

Data-space images (H, W[, C]) in grey levels <-> model-space tensors (B, C, H, W) float64;
the sample count, the kept steps and the model kind checked with a `PosteriorInputError`
that says what is allowed; the size plan (diffusion.images.tiling) and the reverse process that
evaluates the network at that size.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from diffusion.chains.reverse import ModelReverse, gaussian_reverse
from diffusion.chains.strided import kept_steps
from diffusion.data.display import grey_levels
from diffusion.images.tiling import MAX_PIXELS, SizeError, SizePlan, plan_size, sized_net
from diffusion.inference import Trained


class PosteriorInputError(ValueError):
    """Bad input to a posterior (shape, noise level, mask, model kind); says what is allowed."""


def image_levels(trained: Trained) -> int:
    """Number of grey levels of the model's data (17 for the digits, else 256)."""
    return grey_levels(trained.config.data.name)


def image_shape(trained: Trained) -> tuple[int, int, int]:
    """(C, H, W) of an image model's examples; PosteriorInputError for other models."""
    shape = tuple(trained.model.shape)
    if len(shape) != 3:
        raise PosteriorInputError(f"this model is not an image model (example shape {shape})")
    return shape  # type: ignore[return-value]


def check_gaussian(trained: Trained) -> None:
    kind = trained.model.process.kind
    if kind != "gaussian":
        raise PosteriorInputError(
            f"denoising and image inpainting need a Gaussian diffusion model; this one is "
            f"{kind} (use binary_inpaint for binomial models)"
        )


def to_model(trained: Trained, image: np.ndarray, what: str) -> torch.Tensor:
    """Data-space image (H, W[, C]) -> model-space tensor (1, C, H, W) float64.

    Any H, W here: whether the network takes that size is `size_plan`'s question."""
    c = image_shape(trained)[0]
    arr = np.asarray(image)
    if arr.ndim == 3 and c == 1 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim != (2 if c == 1 else 3) or (c > 1 and arr.shape[2] != c) or 0 in arr.shape:
        want = "greyscale, (H, W)" if c == 1 else f"{c} channels, (H, W, {c})"
        raise PosteriorInputError(f"{what} has shape {arr.shape}; this model takes {want}")
    h, w = arr.shape[:2]
    x = bin_centres(arr)
    if not np.isfinite(x).all():
        raise PosteriorInputError(f"{what} contains NaN or infinite values")
    t = torch.from_numpy(x if c == 1 else x.transpose(2, 0, 1)).reshape(1, c, h, w)
    s = trained.scaler
    return ((t - s.shift) / s.scale).to(model_device(trained))


def size_plan(
    trained: Trained,
    size: tuple[int, int],
    n: int = 1,
    *,
    batch_size: int = 64,
    tile: int | None = None,
    overlap: int | None = None,
    margin: int | None = None,
    max_pixels: int = MAX_PIXELS,
) -> SizePlan:
    """What a posterior does with an image of `size` = (H, W), n samples
    (`diffusion.images.tiling`):
    "native", "full" or "tiled", with the reason; PosteriorInputError (saying which sizes
    the model takes) when its network takes only its training size."""
    model = trained.model
    image_shape(trained)
    try:
        return plan_size(
            model.net,
            model.shape,
            size,
            min(check_n(n), batch_size),
            tile=tile,
            overlap=overlap,
            margin=margin,
            max_pixels=max_pixels,
        )
    except SizeError as exc:
        raise PosteriorInputError(str(exc)) from None


def image_reverse(trained: Trained, plan: SizePlan) -> ModelReverse:
    model = trained.model
    return gaussian_reverse(model, net=sized_net(model.net, plan))


def to_data(trained: Trained, x: torch.Tensor) -> np.ndarray:
    """Model-space (n, C, H, W) -> data space (n, H, W[, C]) float64, clipped to the levels."""
    s = trained.scaler
    arr = (x.detach().double().cpu() * s.scale + s.shift).numpy()
    arr = np.clip(arr, 0.0, image_levels(trained) - 1e-6)
    return arr[:, 0] if arr.shape[1] == 1 else arr.transpose(0, 2, 3, 1)


def model_device(trained: Trained) -> torch.device:
    return torch.device(trained.device)


def check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= 10_000:
        raise PosteriorInputError(
            f"n (samples per input) must be an integer in [1, 10000], got {n!r}"
        )
    return int(n)


def bin_centres(image: np.ndarray) -> np.ndarray:
    """An image as float64 data space: a quantized (uint8) input maps to its bin centres
    v + 0.5, anything else is taken as it is."""
    arr = np.asarray(image)
    return arr.astype(np.float64) + (0.5 if arr.dtype == np.uint8 else 0.0)


def check_sigma(sigma: float) -> float:
    """The noise standard deviation (grey levels) as a float; PosteriorInputError unless it
    is a finite positive number."""
    if (
        isinstance(sigma, bool)
        or not isinstance(sigma, int | float)
        or not math.isfinite(sigma)
        or sigma <= 0
    ):
        raise PosteriorInputError(f"sigma must be a positive number (grey levels), got {sigma!r}")
    return float(sigma)


def count_steps(trained: Trained, steps: int | None) -> int:
    T = trained.model.T
    try:
        return len(kept_steps(T, steps)) - 1
    except ValueError as exc:
        raise PosteriorInputError(str(exc)) from None


def count_steps_from(trained: Trained, t0: int, steps: int | None) -> int:
    """Reverse steps of a chain started at step t0 (`posterior_chains.chain_from`): `steps`
    kept steps over [0, t0], every one when steps is None or >= t0."""
    return t0 if steps is None or steps >= t0 else max(2, int(steps))


def to_model_batch(trained: Trained, images: np.ndarray) -> torch.Tensor:
    """Data-space images (n, H, W[, C]) float -> model space (n, C, H, W) float64."""
    arr = np.asarray(images, dtype=np.float64)
    t = torch.from_numpy(arr[:, None] if arr.ndim == 3 else arr.transpose(0, 3, 1, 2).copy())
    s = trained.scaler
    return ((t - s.shift) / s.scale).to(model_device(trained))


def batched(n: int, batch: int, run: Callable[[int], torch.Tensor]) -> torch.Tensor:
    """run(k) for batches of k <= `batch` examples, n in all, concatenated."""
    outs, done = [], 0
    while done < n:
        k = min(batch, n - done)
        outs.append(run(k))
        done += k
    return torch.cat(outs)
