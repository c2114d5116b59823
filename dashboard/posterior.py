"""Denoising and inpainting requests: the model's image shape, the input, the mask, the
corrupted view, and the job's results as pictures. No sampling happens here (the worker does).

Mask convention (that of diffusion.chains.posterior_chains): True / 255 = pixel known (kept),
False / 0 = pixel missing (to be filled in by the model).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from dashboard.actions import check_queue, submit_posterior
from db.entities import Artifact, Job, Run, User
from db.errors import NotFound
from db.media import MediaError, load_image, to_png
from db.store import Store
from diffusion.images import imageio
from diffusion.images.imageio import ImageInputError

IMAGE_DATASETS = ("deadleaves", "texture", "digits", "mnist", "cifar10", "images", "photos")
MASKS = {
    "centre": "Centre square",
    "left": "Left half",
    "random": "Random pixels",
    "rectangle": "A rectangle",
    "draw": "Draw it: tick the missing pixels",
    "upload": "Upload a mask image",
}


MAX_DRAW_SIDE = 64  # the tick-box grid is offered for images up to this side
WINDOW_NOTE = (
    "Inpainting runs the chain on the missing pixels and 64 pixels around them (farther "
    "pixels cannot change the fill); the rest of the image is kept exactly."
)


class MaskError(ValueError):
    """A mask that cannot be used; the message says why and what is accepted."""


@dataclass(frozen=True)
class ImageShape:
    height: int
    width: int
    mode: str  # "L" or "RGB"


def model_shape(config: dict) -> ImageShape:
    """The image size and colour mode a trained run works on, from its config."""
    data = config.get("data") or {}
    name, options = data.get("name"), data.get("options") or {}
    if name == "digits":
        return ImageShape(8, 8, "L")
    if name == "mnist":
        return ImageShape(28, 28, "L")
    if name == "cifar10":
        return ImageShape(32, 32, "RGB")
    size = options.get("size") or options.get("patch") or 32
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    return ImageShape(h, w, "RGB" if options.get("mode") == "RGB" else "L")


def image_runs(runs: list[Run]) -> list[Run]:
    """Finished image models: the ones offered for denoising and inpainting."""
    return [r for r in runs if _is_image(r) and r.state == "DONE"]


def checkpoint_runs(runs: list[Run]) -> list[Run]:
    """Image runs not finished (training, or stopped) that have a checkpoint: offered only
    when the person asks for a checkpoint of an unfinished run."""
    return [r for r in runs if _is_image(r) and r.state != "DONE" and r.checkpoint_step is not None]


def _is_image(run: Run) -> bool:
    return (run.config.get("data") or {}).get("name") in IMAGE_DATASETS


def model_levels(config: dict) -> int:
    """Grey levels of a run's data: 17 for the digits (0..16), else 256 (0..255)."""
    return 17 if (config.get("data") or {}).get("name") == "digits" else 256


def to_levels(image: np.ndarray, levels: int) -> np.ndarray:
    """A 0-255 picture in the data's grey levels (uint8 0..levels-1), as the model reads it."""
    if levels == 256:
        return image
    return np.rint(image.astype(np.float64) * (levels - 1) / 255.0).astype(np.uint8)


def from_levels(arr: np.ndarray, levels: int) -> np.ndarray:
    """Data-space values (0..levels-1) scaled to 0-255 for viewing (float)."""
    arr = np.asarray(arr, dtype=np.float64)
    return arr if levels == 256 else arr * (255.0 / (levels - 1))


def to_display(image: np.ndarray, levels: int) -> np.ndarray:
    """Data-level uint8 pixels as a 0-255 uint8 picture (inverse of `to_levels`)."""
    return np.clip(np.rint(from_levels(image, levels)), 0, 255).astype(np.uint8)


def holdout_examples(config: dict, count: int = 12) -> np.ndarray | None:
    """The first held-out images of a digits run (uint8, grey levels 0..16), else None.

    Mirrors the split of `diffusion.data.images.build_digits` (scikit-learn's digits less the
    fixed test split, `digits_split`: the first 297 of a permutation by default_rng([2**63 +
    2015, 3]); the rest permuted by default_rng([train.seed, 3]), the first n_holdout held
    out) without importing the engine; tests/dashboard pins the two together.
    """
    data = config.get("data") or {}
    if data.get("name") != "digits":
        return None
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.uint8)
    test_order = np.random.default_rng([2**63 + 2015, 3]).permutation(len(images))
    images = images[np.sort(test_order[297:])]  # without the test split
    seed = int((config.get("train") or {}).get("seed", 0))
    order = np.random.default_rng([seed, 3]).permutation(len(images))
    n_hold = min(int(data.get("n_holdout", 1)), len(images) // 2)
    return images[order[: min(count, n_hold)]]


def make_mask(
    kind: str,
    shape: ImageShape,
    *,
    fraction: float = 0.5,
    seed: int = 0,
    rect: tuple[float, float, float, float] = (0.25, 0.75, 0.25, 0.75),
    upload: bytes | None = None,
    drawn: np.ndarray | None = None,
) -> np.ndarray:
    """A boolean H x W mask, True where the pixel is known.

    centre, left, random, rectangle: the engine's masks (diffusion.images.imageio.make_mask);
    draw: `drawn` (H x W, True = missing) as ticked on the page; upload: a mask image,
    white = known.
    """
    h, w = shape.height, shape.width
    if kind == "draw":
        if drawn is None or np.shape(drawn) != (h, w):
            raise MaskError(f"Tick the missing pixels on the {h} x {w} grid.")
        known = ~np.asarray(drawn, dtype=bool)
    elif kind == "upload":
        if not upload:
            raise MaskError("Upload a mask image (white = keep, black = fill in).")
        try:
            m = load_image(upload, "L")
        except MediaError as exc:
            raise MaskError(f"The mask: {exc}") from None
        if m.shape != (h, w):
            m = np.asarray(Image.fromarray(m).resize((w, h), Image.Resampling.NEAREST))
        known = m >= 128
    elif kind in MASKS:
        try:
            known = imageio.make_mask(kind, (h, w), fraction=fraction, seed=seed, rect=rect)
        except ImageInputError as exc:
            raise MaskError(str(exc)) from None
    else:
        raise MaskError(f"Unknown mask {kind!r}; choose one of {', '.join(MASKS.values())}.")
    check_mask(known)
    return known


def check_mask(known: np.ndarray) -> None:
    """Refuse masks that leave nothing to fill in or nothing to condition on."""
    try:
        imageio.check_mask(np.asarray(known, dtype=bool), np.shape(known), name="The mask")
    except ImageInputError as exc:
        raise MaskError(str(exc)) from None


def noisy(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """The observation y = x + sigma * N(0, 1) in [0, 255] pixel units, rounded to uint8."""
    rng = np.random.default_rng(seed)
    y = image.astype(np.float64) + sigma * rng.standard_normal(image.shape)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def masked_view(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """The image with its missing pixels drawn as a grey checkerboard."""
    out = image.copy()
    yy, xx = np.indices(known.shape)
    checker = np.where((yy // 2 + xx // 2) % 2 == 0, 160, 110).astype(np.uint8)
    if out.ndim == 3:
        checker = np.repeat(checker[..., None], out.shape[2], axis=2)
        out[~known] = checker[~known]
    else:
        out[~known] = checker[~known]
    return out


grid = imageio.grid  # one grid builder (skimage.util.montage)


def submit(
    store: Store,
    user: User,
    model: Run,
    kind: str,
    *,
    observed: np.ndarray,
    known: np.ndarray | None,
    params: dict,
    name: str,
) -> Job:
    """Store the input image (and the mask: 255 = known) as uploads, then queue the job.

    `observed` is the clean image in the data's grey levels (`to_levels`); for denoising the
    worker adds N(0, sigma^2) itself (params["sigma"] in the same grey levels) and stores the
    noisy image it drew as `posterior_input`.
    """
    check_queue()  # no upload rows are left behind when the job cannot be queued
    h, w = observed.shape[:2]
    image = store.add_upload(
        to_png(observed),
        owner_id=user.id,
        original_name=name,
        media_type="image/png",
        width=w,
        height=h,
    )
    params = {**params, "upload_id": image.id, "seed": int(params.get("seed", 0))}
    if known is not None:
        mask = store.add_upload(
            to_png(known.astype(np.uint8) * 255),
            owner_id=user.id,
            original_name="mask.png",
            media_type="image/png",
            width=w,
            height=h,
        )
        params["mask_upload_id"] = mask.id
    return submit_posterior(store, kind, model.id, params, user)


@dataclass(frozen=True)
class PosteriorPictures:
    """PNG bytes (0-255 for viewing) of a finished job's results; None when missing.

    `observed` is the image the model conditioned on, as the worker stored it (for
    denoising: the noisy image it drew).
    """

    samples: bytes | None
    mean: bytes | None
    spread: bytes | None
    observed: bytes | None
    downloads: dict[str, tuple[bytes, str]]
    readout_mean: bytes | None = None  # denoise: E[x | y] under the model in one read-out


def _decode(store: Store, art: Artifact, viewer: User) -> np.ndarray | None:
    raw = store.artifact_bytes(art, viewer=viewer)
    try:
        if art.media_type.startswith("image/"):
            return np.asarray(Image.open(io.BytesIO(raw)))
        return np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError):
        return None


def _picture(arr: np.ndarray | None, levels: int, *, stretch: bool = False) -> bytes | None:
    """A data-space array (an image, or a stack of them) as a PNG for viewing."""
    if arr is None or arr.size == 0:
        return None
    arr = np.asarray(arr, dtype=np.float64)
    if stretch:  # a standard deviation: its own range
        top = float(np.nanmax(arr))
        arr = arr * (255.0 / top) if top > 0 else arr
    elif float(np.nanmax(arr)) < levels:  # data-space values (else already 0-255)
        arr = from_levels(arr, levels)
    if arr.ndim == 4 or (arr.ndim == 3 and arr.shape[-1] not in (1, 3)):
        arr = grid(arr)
    return to_png(np.clip(np.rint(arr), 0, 255).astype(np.uint8))


def job_pictures(store: Store, job: Job, viewer: User, levels: int = 256) -> PosteriorPictures:
    """The samples, mean, spread and observed input a posterior job stored, for viewing.

    Arrays (.npy) are preferred to PNGs (they keep the data's values); data-space values in
    `levels` grey levels (17 for the digits) are scaled to 0-255.
    """
    try:
        arts = store.list_artifacts(job.run_id, viewer=viewer, job_id=job.id)
    except NotFound:
        arts = []
    best: dict[str, Artifact] = {}
    for art in arts:  # an array beats a PNG of the same kind
        if art.kind not in best or best[art.kind].media_type.startswith("image/"):
            best[art.kind] = art
    downloads = {
        name: (store.artifact_bytes(a, viewer=viewer), a.key)
        for name, a in (
            (n, best.get(k))
            for n, k in (
                ("samples", "posterior_samples"),
                ("mean", "posterior_mean"),
                ("spread", "posterior_std"),
                ("posterior mean", "posterior_mean_readout"),
            )
        )
        if a is not None
    }

    def pic(kind: str, *, stretch: bool = False) -> bytes | None:
        art = best.get(kind)
        return _picture(_decode(store, art, viewer), levels, stretch=stretch) if art else None

    return PosteriorPictures(
        pic("posterior_samples"),
        pic("posterior_mean"),
        pic("posterior_std", stretch=True),
        pic("posterior_input"),
        downloads,
        pic("posterior_mean_readout"),
    )


def run_note(job: Job) -> str:
    """The size a job was run at and how (as planned on the page), and the worker's word."""
    parts = [job.params.get("size_plan"), job.message]
    return " · ".join(str(p) for p in parts if p) or "Run at the model's own size."


def drawing_grid(shape: ImageShape) -> pd.DataFrame:
    """The grid to tick missing pixels on, starting from the centre square."""
    missing = ~make_mask("centre", shape)
    return pd.DataFrame(missing, columns=[str(c) for c in range(shape.width)])
