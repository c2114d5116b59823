"""Which image sizes a network takes, and what happens to an image of a given size: the torch-free
half of `diffusion.images.tiling` (the dashboard says what will happen to an upload before any job
starts, without importing torch).

A network says which sizes it takes with optional attributes (see `diffusion.images.tiling`);
`config_size_rule` reads the same rule from a run's config, for the network kinds whose rule
follows from their options (tests/diffusion/test_tiling.py pins the two together).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

MAX_PIXELS = 2_000_000
"""Pixels (batch x H x W) one network evaluation may hold before tiling: about 1 GB of
activations for the paper's multi-scale net (20 channels, float32)."""
TILE, OVERLAP = 128, 32


class SizeError(ValueError):
    """An image size the network does not take; the message says which sizes it takes."""


@dataclass(frozen=True)
class SizeRule:
    """Which image sizes a network takes. built: (H, W) it was built for. Words for people
    give sizes as width x height."""

    built: tuple[int, int]
    fully_convolutional: bool
    multiple: int = 1
    align: int = 1
    norm_tile: int = 0
    """Side of the tiles the network runs on by default (0: the whole image at once). A
    network with group norm takes its statistics over its whole input, so on a larger image
    it sees other statistics than on its training patches (the photos UNet: 25.1 dB on
    camera at sigma 25 in one piece, 29.4 dB on tiles of its 32-pixel training size,
    benchmarks/posterior_photos.py): it runs on tiles of its training size."""

    def describe(self) -> str:
        h, w = self.built
        if not self.fully_convolutional:
            return f"only {w} x {h} (the size it was trained on; it is not fully convolutional)"
        if self.multiple > 1:
            return f"any size (padded up to multiples of {self.multiple})"
        return "any size (fully convolutional)"


@dataclass(frozen=True)
class SizePlan:
    """What happens to an image of `size` = (H, W): mode "native" (the built size), "full"
    (the whole image in one evaluation), "tiled" (tiles of `tile` pixels overlapping by
    `overlap`, outputs within `margin` of a tile's inner edge unused); `reason` says why,
    in words for the person who gave the image."""

    mode: Literal["native", "full", "tiled"]
    size: tuple[int, int]
    tile: int | None
    overlap: int | None
    reason: str
    margin: int | None = None

    def describe(self) -> str:
        h, w = self.size
        what = {"native": "run as it is", "full": "run at full size", "tiled": "run in tiles"}
        return f"{w} x {h}: {what[self.mode]} ({self.reason})"


def plan_for(
    rule: SizeRule,
    size: tuple[int, int],
    batch: int = 1,
    *,
    max_pixels: int = MAX_PIXELS,
    tile: int | None = None,
    overlap: int | None = None,
    margin: int | None = None,
) -> SizePlan:
    """Decide how an image of `size` = (H, W) is run, `batch` samples at once.

    tile / overlap / margin force tiling with those sizes (margin default overlap // 4);
    otherwise tiles are used only when batch x H x W exceeds `max_pixels`. Raises SizeError
    for sizes the network does not take.
    """
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise SizeError(f"the image is empty ({h} x {w})")
    if (h, w) == rule.built and tile is None:
        return SizePlan("native", (h, w), None, None, "the size the model was trained on")
    if not rule.fully_convolutional:
        raise SizeError(
            f"this model takes {rule.describe()}; the image is {w} x {h}. Resize or crop it "
            f"to {rule.built[1]} x {rule.built[0]}, or use a fully convolutional model"
        )
    norm = rule.norm_tile
    if tile is None and norm and max(h, w) > norm:
        tile, overlap = norm, norm // 2 if overlap is None else overlap
        margin = 3 * norm // 16 if margin is None else margin
        why = (
            f"its group norm takes statistics over its whole input, so it runs on tiles of "
            f"its training size, {norm} x {norm}, as it was trained"
        )
        return SizePlan("tiled", (h, w), tile, overlap, f"{why}; one chain, tiles blended", margin)
    if tile is None and batch * h * w <= max_pixels:
        return SizePlan("full", (h, w), None, None, "the network is fully convolutional")
    tile = tile or TILE
    overlap = OVERLAP if overlap is None else overlap
    m = rule.multiple
    margin = overlap // 4 if margin is None else margin
    if tile % m or tile < 2 * m or not 0 <= 2 * margin < overlap < tile:
        raise SizeError(
            f"tiles need a side that is a multiple of {m} (at least {2 * m}) and "
            f"0 <= 2 x margin < overlap < tile; got tile {tile}, overlap {overlap}, margin {margin}"
        )
    why = (
        f"{batch} sample(s) of {w} x {h} exceed one evaluation's {max_pixels:,} pixels"
        if batch * h * w > max_pixels
        else "tiles were asked for"
    )
    return SizePlan("tiled", (h, w), tile, overlap, f"{why}; one chain, tiles blended", margin)


# Network kinds whose size rule follows from their config: kind -> (options -> rule fields).
# A kind not listed takes only its built size (the safe answer for the dashboard's plan).
def _conv_rule(options: dict[str, Any], built: tuple[int, int]) -> dict[str, Any]:
    scales = int(options.get("scales") or 0) or _auto_scales(*built)
    return {
        "fully_convolutional": not int(options.get("dense_hidden") or 0),
        "multiple": 1,
        "align": 2 ** (scales - 1),
    }


def _auto_scales(height: int, width: int, min_side: int = 4) -> int:
    n = 1  # the rule of diffusion.nets.conv.auto_scales
    while min(height, width) / 2**n >= min_side:
        n += 1
    return n


def _unet_rule(options: dict[str, Any], built: tuple[int, int]) -> dict[str, Any]:
    m = 2 ** (len(options.get("mults") or (1, 2, 2)) - 1)  # diffusion.nets.unet.UNet
    return {
        "fully_convolutional": True,
        "multiple": m,
        "align": m,
        "norm_tile": norm_tile(built, m),
    }


def norm_tile(built: tuple[int, int], multiple: int) -> int:
    """The default tile side of a group-norm network built for (H, W): its larger side,
    rounded up to the size multiple (`SizeRule.norm_tile`)."""
    side = max(int(built[0]), int(built[1]))
    return -(-side // multiple) * multiple


CONFIG_RULES = {"conv": _conv_rule, "unet": _unet_rule}


def config_size_rule(network: dict[str, Any], built: tuple[int, int]) -> SizeRule:
    """The `SizeRule` of a run's network from its config section {"kind", "options"} and
    the (H, W) it is built for."""
    rule = CONFIG_RULES.get(str(network.get("kind")))
    fields = rule(dict(network.get("options") or {}), built) if rule else {}
    return SizeRule(
        built=(int(built[0]), int(built[1])), **{"fully_convolutional": False, **fields}
    )
