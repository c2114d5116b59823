"""Dead leaves images, generated on the fly (Sohl-Dickstein et al. 2015, section 3.2, Table 2).

The dead leaves model (Matheron; Lee, Mumford and Huang 2001) stacks occluding disks of
uniformly random grey level. Radii follow a power law, density proportional to r^-3 between
`r_min` and `r_max` (model.md section 11), which makes the images scale invariant. Disks are
laid front to back: each new disk shows only where no earlier (nearer) disk has landed,
and drawing stops once every pixel is covered. The grey levels are quantized to 8 bits.

All the parameters are in `DeadLeavesParams`, recorded with a run's config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class DeadLeavesParams:
    """Parameters of the generator. Lengths in pixels.

    size: image side (square images, greyscale); r_min, r_max: radius range of the r^-3
    law; max_disks: safety cap per image (after it, still uncovered pixels take the level
    of one more disk drawn behind everything).
    """

    size: int = 32
    r_min: float = 1.0
    r_max: float = 32.0
    max_disks: int = 20_000

    def __post_init__(self) -> None:
        if self.size < 2:
            raise ValueError(f"dead leaves size must be >= 2 pixels, got {self.size}")
        if not 0 < self.r_min < self.r_max:
            raise ValueError(f"need 0 < r_min < r_max, got {self.r_min}, {self.r_max}")

    def to_dict(self) -> dict:
        return asdict(self)


def sample_radii(n: int, r_min: float, r_max: float, rng: np.random.Generator) -> np.ndarray:
    """n radii with density proportional to r^-3 on [r_min, r_max], by the inverse CDF.

    F(r) = (r_min^-2 - r^-2) / (r_min^-2 - r_max^-2), so r = (r_min^-2 - u (r_min^-2 -
    r_max^-2))^-1/2 for u ~ U(0, 1).
    """
    a, b = r_min**-2.0, r_max**-2.0
    u = rng.random(n)
    return (a - u * (a - b)) ** -0.5


def _visible_radii(n: int, params: DeadLeavesParams, rng: np.random.Generator) -> np.ndarray:
    """Radii of disks that can touch the image: r^-3 law reweighted by (size + 2r)^2.

    Disks whose centres are uniform over the plane at a constant rate land in the box
    [-r, size + r]^2 (where they can touch the frame) at a rate proportional to
    (size + 2r)^2; drawing the radius from that reweighted law (by rejection) and the
    centre uniformly in its box gives the same images as the full plane, far faster.
    """
    out = np.empty(0)
    top = (params.size + 2 * params.r_max) ** 2
    while out.size < n:
        r = sample_radii(4 * n + 16, params.r_min, params.r_max, rng)
        keep = rng.random(r.size) * top <= (params.size + 2 * r) ** 2
        out = np.concatenate([out, r[keep]])
    return out[:n]


def dead_leaves(
    n: int,
    params: DeadLeavesParams,
    rng: np.random.Generator,
    chunk: int = 32,
    max_elements: int = 1 << 22,
) -> np.ndarray:
    """Generate n dead leaves images, uint8 (n, size, size).

    Vectorized over images and over chunks of disks: for each chunk, the first disk (in
    front-to-back order) covering each still uncovered pixel gives that pixel its level.
    Only images with uncovered pixels draw further disks. Each chunk's disks are drawn for
    every image at once (so the images do not depend on `max_elements`) and tested against
    the pixels a block of images at a time, at most `max_elements` (disk, pixel) pairs per
    block: memory stays bounded at any size (all at once, 20,000 images of 64 x 64 would
    need about 20 GB).
    """
    s = params.size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float64) + 0.5  # pixel centres
    value = np.zeros((n, s, s))
    covered = np.zeros((n, s, s), dtype=bool)
    block = max(1, max_elements // (chunk * s * s))
    drawn = 0
    todo = np.arange(n)
    while todo.size and drawn < params.max_disks:
        m = todo.size
        r = _visible_radii(m * chunk, params, rng).reshape(m, chunk, 1, 1)
        cy = -r + rng.random((m, chunk, 1, 1)) * (s + 2 * r)
        cx = -r + rng.random((m, chunk, 1, 1)) * (s + 2 * r)
        grey = rng.random((m, chunk))
        for lo in range(0, m, block):
            sl, idx = slice(lo, lo + block), todo[lo : lo + block]
            hit = (yy - cy[sl]) ** 2 + (xx - cx[sl]) ** 2 <= r[sl] ** 2  # (b, chunk, s, s)
            any_hit = hit.any(axis=1)
            first = hit.argmax(axis=1)  # (b, s, s): index of the nearest covering disk
            b = len(idx)
            level = np.take_along_axis(grey[sl], first.reshape(b, -1), axis=1)
            new = any_hit & ~covered[idx]
            v = value[idx]
            v[new] = level.reshape(b, s, s)[new]
            value[idx], covered[idx] = v, covered[idx] | any_hit
        drawn += chunk
        todo = todo[~covered[todo].reshape(m, -1).all(axis=1)]
    if todo.size:  # the cap was reached: a background disk behind everything
        back = rng.random((n, 1, 1)) * np.ones((1, s, s))
        value[~covered] = back[~covered]
    return np.minimum(np.floor(value * 256.0), 255).astype(np.uint8)
