"""The window an inpainting chain runs on and its size plan, and putting its output back into
the image (helpers of `diffusion.chains.posterior.inpaint`).

`inpaint_window`: the box around the missing pixels grown by the context; `window_plan`: the
size plan for the chain there, with the clause that says when tiles lie wholly inside the
hole (`blind_tiles_note`); `fill_holes`: the samples with the known pixels exactly the input.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from diffusion.chains.posterior_inputs import (
    PosteriorInputError,
    bin_centres,
    image_shape,
    size_plan,
    to_data,
)
from diffusion.images.holes import holds_box
from diffusion.images.tiling import SizePlan, hole_window
from diffusion.inference import Trained


def check_mask(mask: np.ndarray, h: int, w: int) -> None:
    from diffusion.images.imageio import ImageInputError, check_mask

    try:
        check_mask(np.asarray(mask), (h, w))
    except ImageInputError as exc:
        raise PosteriorInputError(str(exc)) from None


def window_plan(
    trained: Trained,
    known: np.ndarray,
    window: tuple[int, ...],
    shape: tuple[int, int],
    n: int,
    context: int | None,
    batch_size: int,
    tile: int | None,
    overlap: int | None,
    margin: int | None,
    blind_note: bool = True,
) -> SizePlan:
    """The size plan for the chain on `window` (y0, y1, x0, x1) of an image of `shape`;
    known: the mask inside the window (True = known). blind_note: add `_blind_tiles_note`
    (off for coarse-to-fine, whose own clause says how the middle of the hole was filled)."""
    y0, y1, x0, x1 = window
    h, w = shape
    plan = size_plan(
        trained,
        (y1 - y0, x1 - x0),
        n,
        batch_size=batch_size,
        tile=tile,
        overlap=overlap,
        margin=margin,
    )
    if (y1 - y0, x1 - x0) != (h, w):
        plan = replace(
            plan,
            reason=f"{plan.reason}; on the window around the missing pixels ({context} pixels "
            f"of context) of the {w} x {h} image",
        )
    return replace(plan, reason=plan.reason + (blind_tiles_note(known, plan) if blind_note else ""))


def patch_size(trained: Trained) -> int:
    """The side of the model's training examples (the smaller one)."""
    return int(min(image_shape(trained)[1:]))


def blind_tiles_note(mask: np.ndarray, plan: SizePlan) -> str:
    """A clause for the plan when the hole is so wide that tiles can lie wholly inside it: such
    tiles see no known pixel, so the middle of the fill follows what the model learned rather
    than this image. (The dashboard's photo model runs on 32-pixel tiles; a 64 x 64 hole holds
    such tiles.)"""
    t = plan.tile
    if plan.mode != "tiled" or t is None or not holds_box(mask, t):
        return ""
    from scipy.ndimage import distance_transform_cdt

    reach = int(distance_transform_cdt(~mask, metric="chessboard").max())
    return (
        f"; the hole is wider than the tiles ({plan.tile} x {plan.tile}): a tile inside it sees "
        f"no known pixel, so the middle of the fill (up to {reach} pixels from a known one) "
        f"follows what the model learned rather than this image; a model trained on patches "
        f"of {2 * reach + 1} pixels or more sees across it"
    )


def fill_holes(
    trained: Trained,
    image: np.ndarray,
    mask: np.ndarray,
    x: torch.Tensor,
    n: int,
    c: int,
    window: tuple[int, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """(samples, observed) in data space: the input image with the chain's output `x` in
    `window`, known pixels exactly the input."""
    y0, y1, x0, x1 = window
    observed = bin_centres(image)
    samples = np.repeat(observed[None], n, 0)
    samples[:, y0:y1, x0:x1] = to_data(trained, x)
    keep = mask if samples.ndim == 3 else np.asarray(mask)[..., None].repeat(c, -1)
    samples[:, keep] = observed[keep]  # known pixels: exactly the input, no round trip
    return samples, observed


def inpaint_window(trained: Trained, mask: np.ndarray, context: int | None) -> tuple[int, ...]:
    h, w = mask.shape
    if context is None:
        return 0, h, 0, w
    if isinstance(context, bool) or not isinstance(context, int) or context < 0:
        raise PosteriorInputError(f"context must be a number of pixels >= 0, got {context!r}")
    align = int(getattr(trained.model.net, "tile_align", 1))
    return hole_window(mask, context, align)
