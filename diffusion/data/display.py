"""Model-space samples shown in the data's own terms: grey levels, gallery kind, arrays.

Used by training galleries (diffusion.training.train) and by a trained run's samples
(diffusion.inference); the dashboard and the worker render what these return.
"""

from __future__ import annotations

import numpy as np
import torch

from diffusion.data.base import DataBundle, Scaler


def grey_levels(data_name: str) -> int:
    """Grey levels of an image data set, from its name alone (nothing is built): 17 for the
    digits (scikit-learn's 0..16), 256 for every 8-bit set. Image bundles record it in
    info["levels"] (diffusion.data.images)."""
    return 17 if data_name == "digits" else 256


def data_levels(bundle: DataBundle) -> int:
    """Grey levels of image data: 17 for the digits, 256 for 8-bit sets."""
    return int(bundle.info.get("levels", 256))


def shown_as(kind: str) -> str:
    """How samples of data of this kind are shown: "points", "sequences" or "images"."""
    return {"binary": "sequences", "sequences": "sequences", "images": "images"}.get(kind, "points")


def gallery_kind(bundle: DataBundle) -> str:
    return shown_as(bundle.kind)


def samples_to_data(x_model: torch.Tensor, scaler: Scaler, kind: str, levels: int) -> np.ndarray:
    """Model-space samples -> data-space numpy: images uint8 N x H x W [x C] in [0, levels),
    binary 0/1 uint8, else float. Needs only what a checkpoint records (no data set)."""
    x = scaler.to_data(x_model.float().cpu())
    if kind == "images":
        x = x.clamp(0, levels - 1).round().to(torch.uint8)
        if x.dim() == 4:  # (N, C, H, W) -> (N, H, W, C), squeeze grey
            x = x.permute(0, 2, 3, 1)
            if x.shape[-1] == 1:
                x = x[..., 0]
        return x.numpy()
    if kind == "binary":
        return x.round().to(torch.uint8).numpy()
    return x.numpy()


def to_data_array(bundle: DataBundle, x_model: torch.Tensor) -> np.ndarray:
    return samples_to_data(x_model, bundle.scaler, bundle.kind, data_levels(bundle))


def trajectory_array(scaler: Scaler, frames: torch.Tensor | None) -> np.ndarray | None:
    """(k, n, *shape) model-space snapshots -> data space (continuous, unrounded), or None."""
    if frames is None:
        return None
    return np.stack([scaler.to_data(f.float()).numpy() for f in frames])
