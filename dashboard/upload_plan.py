"""What happens to an uploaded photo before a denoising or inpainting job starts: its colour
conversion, and the size it is run at (its own size, in tiles, or resized, and why).

Torch-free: the rule of which sizes a model takes comes from its config
(`diffusion.images.sizes.config_size_rule`), the plan from `diffusion.images.sizes.plan_for`, the
same function the worker's posterior runs (`diffusion.chains.posterior.size_plan`), so the page says
before the job what the job then does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from db.media import load_image
from diffusion.chains.inpaint_methods import BIHARMONIC_NOISE
from diffusion.images.holes import holds_box
from diffusion.images.sizes import SizeError, config_size_rule, plan_for

MAX_SIDE = 1024
"""Longest side a fully convolutional model is run at on the lab's workers; larger photos
are scaled down to it (a 1024 x 1024 chain of 50 steps takes minutes on a CPU)."""


@dataclass(frozen=True)
class UploadPlan:
    """original: (H, W) as uploaded (upright); run_size: (H, W) the model is run at; action:
    "native" | "full" | "tiled" | "resized"; notes: one sentence per change or decision."""

    original: tuple[int, int]
    run_size: tuple[int, int]
    action: str
    notes: tuple[str, ...]
    pixels: np.ndarray  # uint8 at run_size, in the model's colour mode

    @property
    def headline(self) -> str:
        h, w = self.run_size
        return {
            "native": f"Run as it is, at {w} x {h}",
            "full": f"Run at full size, {w} x {h}",
            "tiled": f"Run at full size, {w} x {h}, in overlapping tiles",
            "resized": f"Resized to {w} x {h}",
        }[self.action]


def _is_grey(rgb: np.ndarray) -> bool:
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def _colour(data: bytes, mode: str) -> tuple[np.ndarray, list[str]]:
    rgb = load_image(data, "RGB")
    grey = _is_grey(rgb)
    if mode == "L":
        pixels = rgb[..., 0].copy() if grey else load_image(data, "L")
        notes = [] if grey else ["Colour converted to greyscale (the model is greyscale)."]
        return pixels, notes
    notes = ["Grey copied into the red, green and blue channels (the model is RGB)."]
    return rgb, notes if grey else []


def _resize(pixels: np.ndarray, size: tuple[int, int], crop: bool) -> np.ndarray:
    """Lanczos resize to (H, W); with `crop`, centre-crop to that aspect first."""
    img = Image.fromarray(pixels)
    h, w = size
    if crop:
        iw, ih = img.size
        if iw * h > ih * w:
            nw = max(1, round(ih * w / h))
            img = img.crop(((iw - nw) // 2, 0, (iw - nw) // 2 + nw, ih))
        elif iw * h < ih * w:
            nh = max(1, round(iw * h / w))
            img = img.crop((0, (ih - nh) // 2, iw, (ih - nh) // 2 + nh))
    return np.asarray(img.resize((w, h), Image.Resampling.LANCZOS), dtype=np.uint8)


def plan_upload(data: bytes, config: dict, n: int, mode: str) -> UploadPlan:
    """Decode an upload (checked by db.media) and decide how the model `config` runs it with
    n samples; `mode` is the model's "L" or "RGB". Raises MediaError for a bad file."""
    pixels, notes = _colour(data, mode)
    h, w = pixels.shape[:2]
    built = _built(config)
    rule = config_size_rule(config.get("network") or {}, built)
    if not rule.fully_convolutional:
        if (h, w) == built:
            return UploadPlan((h, w), (h, w), "native", tuple(notes), pixels)
        notes.append(
            f"This model takes {rule.describe()}, so your {w} x {h} image is centre-cropped "
            f"to its shape and resized to {built[1]} x {built[0]}."
        )
        return UploadPlan((h, w), built, "resized", tuple(notes), _resize(pixels, built, True))
    size, action = (h, w), None
    if max(h, w) > MAX_SIDE:
        k = MAX_SIDE / max(h, w)
        size = (max(1, round(h * k)), max(1, round(w * k)))
        notes.append(
            f"Scaled down from {w} x {h} to {size[1]} x {size[0]} (at most {MAX_SIDE} pixels "
            "on a side, to keep the job to minutes)."
        )
        pixels, action = _resize(pixels, size, False), "resized"
    try:
        plan = plan_for(rule, size, n)
    except SizeError as exc:  # cannot happen for a fully convolutional rule (a guard)
        raise ValueError(str(exc)) from None
    notes.append(f"{plan.describe()}.")
    return UploadPlan((h, w), size, action or plan.mode, tuple(notes), pixels)


def inpaint_note(known: np.ndarray, config: dict) -> str | None:
    """The sentence that says before an inpainting job that the worker will start the chain
    from the biharmonic fill (its setting "auto", `diffusion.chains.posterior_coarse`): when a
    box of the model's training size fits inside the hole; None otherwise. known: bool (H, W)
    at the size the model is run at, True = kept."""
    known = np.asarray(known, dtype=bool)
    patch = min(_built(config))
    if not holds_box(known, patch):
        return None
    return (
        f"The hole is wider than the model's {patch} x {patch} training patches, so the chain "
        "starts from a smooth fill of the hole from the pixels around it (scikit-image's "
        f"biharmonic inpainting), noised to {BIHARMONIC_NOISE:g} times the data's spread: the "
        "fill keeps the brightness of its surroundings and the model adds the detail."
    )


def _built(config: dict) -> tuple[int, int]:
    from dashboard.posterior import model_shape

    shape = model_shape(config)
    return shape.height, shape.width
