"""Images of any size: which sizes a network takes, and evaluating it over overlapping tiles.

A network built for (C, h, w) examples (`diffusion.nets.base`) may take other sizes when it is
fully convolutional. A network says so with two optional attributes:
    fully_convolutional: bool   (absent = False: the network takes only its built size)
    size_multiple: int          (absent = 1: H and W must be multiples of it, e.g. 2^levels
                                 for a UNet; other sizes are reflect-padded up and cropped)
and may set `tile_align` (default size_multiple), the grid tile corners snap to (the
multi-scale net pools by 2^(scales - 1), so tiles on that grid see the same pooling blocks),
and `norm_tile` (default 0), the side of the tiles it runs on by default: a network with
group norm (the UNet) runs on tiles of its training size (`diffusion.images.sizes.SizeRule`).

`SizedNet(net, ...)` has the network's interface, forward(xt, g) -> (B, C, H, W, K), at any H,
W the network takes: in one piece, or, where memory requires, over overlapping tiles whose
outputs are blended with a window that is zero within `margin` pixels of a tile's inner edges
and ramps linearly to one across the rest of the overlap (the weights are normalized, so they
sum to one at every pixel). The chain calls it at every reverse step, so a posterior over a
large image stays ONE chain; only the network's evaluation is split. When `margin` is at
least the network's receptive-field radius the tiled outputs equal the untiled ones exactly.

`plan_size(net, shape, (H, W), batch)` (`diffusion.images.sizes.plan_for`, torch-free) decides,
before anything runs, what happens to an image of that size: "native" (the built size),
"full" (the whole image at once), "tiled", or refuses with `SizeError` saying which sizes
the network takes.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from diffusion.images.sizes import MAX_PIXELS, OVERLAP, SizeError, SizePlan, SizeRule, plan_for


def size_rule(net: nn.Module, shape: tuple[int, ...]) -> SizeRule:
    """The `SizeRule` of a network built for example shape (C, H, W), from its attributes."""
    if len(shape) != 3:
        raise SizeError(f"not an image network (example shape {tuple(shape)})")
    multiple = int(getattr(net, "size_multiple", 1))
    return SizeRule(
        built=(int(shape[1]), int(shape[2])),
        fully_convolutional=bool(getattr(net, "fully_convolutional", False)),
        multiple=multiple,
        align=int(getattr(net, "tile_align", multiple)),
        norm_tile=int(getattr(net, "norm_tile", 0)),
    )


def plan_size(
    net: nn.Module,
    shape: tuple[int, ...],
    size: tuple[int, int],
    batch: int = 1,
    **kw: Any,
) -> SizePlan:
    """`diffusion.images.sizes.plan_for` with the rule of `net` (built for shape (C, H, W))."""
    return plan_for(size_rule(net, shape), size, batch, **kw)


def tile_starts(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Start offsets of tiles of `tile` covering [0, length), consecutive ones overlapping by
    at least `overlap` (starts snapped down to multiples of `align`; the last tile ends at
    `length`). One tile of the whole length when length <= tile."""
    if length <= tile:
        return [0]
    stride = max(align, ((tile - overlap) // align) * align)
    starts = list(range(0, length - tile, stride))
    last = length - tile
    if starts[-1] != last:
        starts.append(last)
    return starts


def edge_ramp(n: int, at_start: bool, at_end: bool, margin: int, ramp: int) -> torch.Tensor:
    """(n,) window: 0 within `margin` of an inner edge (one shared with another tile), rising
    linearly over `ramp` pixels to 1; edges on the image border get no ramp."""
    d = torch.arange(n, dtype=torch.float64)
    w = torch.ones(n, dtype=torch.float64)
    for inner, dist in ((at_start, d), (at_end, n - 1 - d)):
        if inner:
            w = torch.minimum(w, ((dist - margin + 1) / (ramp + 1)).clamp(0, 1))
    return w


class SizedNet(nn.Module):
    """A network at any size it takes: forward(xt, g) -> (B, C, H, W, K), as the network's.

    tile = None: the whole image in one evaluation (reflect-padded to `size_multiple`).
    Otherwise overlapping tiles of `tile` pixels, `overlap` apart at least, blended by
    `edge_ramp` windows (margin default overlap // 4); see the module docstring.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        tile: int | None = None,
        overlap: int = OVERLAP,
        margin: int | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.tile, self.overlap = tile, overlap
        self.margin = overlap // 4 if margin is None else margin
        self.multiple = int(getattr(net, "size_multiple", 1))
        self.align = int(getattr(net, "tile_align", self.multiple))
        if tile is not None and not 0 <= 2 * self.margin < overlap < tile:
            raise SizeError(
                f"tiles need 0 <= 2 * margin < overlap < tile; got margin {self.margin}, "
                f"overlap {overlap}, tile {tile}"
            )

    def _padded(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """The network on x, reflect-padded up to multiples of size_multiple, cropped back."""
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        return self.net(x, g)[:, :, :h, :w]

    def forward(self, xt: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        b, c, h, w = xt.shape
        if self.tile is None or (h <= self.tile and w <= self.tile):
            return self._padded(xt, g)
        ys = tile_starts(h, self.tile, self.overlap, self.align)
        xs = tile_starts(w, self.tile, self.overlap, self.align)
        out, total = None, xt.new_zeros((h, w), dtype=torch.float64)
        ramp = max(1, self.overlap - 2 * self.margin)
        for i, y0 in enumerate(ys):
            th = min(self.tile, h)
            wy = edge_ramp(th, i > 0, i < len(ys) - 1, self.margin, ramp)
            for j, x0 in enumerate(xs):
                tw = min(self.tile, w)
                wx = edge_ramp(tw, j > 0, j < len(xs) - 1, self.margin, ramp)
                z = self._padded(xt[:, :, y0 : y0 + th, x0 : x0 + tw], g)
                if out is None:
                    out = z.new_zeros((b, c, h, w, z.shape[-1]), dtype=torch.float64)
                win = (wy[:, None] * wx[None, :]).to(xt.device)
                out[:, :, y0 : y0 + th, x0 : x0 + tw] += z.double() * win[None, None, :, :, None]
                total[y0 : y0 + th, x0 : x0 + tw] += win
        if bool((total <= 0).any()):  # cannot happen with 2 * margin < overlap (a guard)
            raise RuntimeError("tiles left pixels without weight")
        return (out / total[None, None, :, :, None]).to(z.dtype)


def hole_window(mask, context: int, align: int = 1) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the box of the missing pixels (mask False) of a bool (H, W) mask,
    grown by `context` pixels on every side, corners snapped outwards to multiples of
    `align`, clipped to the image."""
    import numpy as np

    rows, cols = np.nonzero(~np.asarray(mask, dtype=bool))
    h, w = mask.shape
    if rows.size == 0:
        return 0, h, 0, w
    y0 = max(0, (int(rows.min()) - context) // align * align)
    x0 = max(0, (int(cols.min()) - context) // align * align)
    y1 = min(h, -(-(int(rows.max()) + 1 + context) // align) * align)
    x1 = min(w, -(-(int(cols.max()) + 1 + context) // align) * align)
    return y0, y1, x0, x1


def sized_net(net: nn.Module, plan: SizePlan) -> nn.Module:
    """The network to evaluate for `plan`: itself at its built size, else a `SizedNet`."""
    if plan.mode == "native":
        return net
    if plan.mode == "full":
        return SizedNet(net)
    return SizedNet(net, tile=plan.tile, overlap=int(plan.overlap or 0), margin=plan.margin)


__all__ = [
    "MAX_PIXELS",
    "SizeError",
    "SizeRule",
    "SizePlan",
    "SizedNet",
    "edge_ramp",
    "hole_window",
    "plan_size",
    "sized_net",
    "size_rule",
    "tile_starts",
]
