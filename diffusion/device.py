"""Pick the compute device: cuda, then mps, then cpu."""

from __future__ import annotations

import torch

from diffusion.config import ConfigError


def pick_device(requested: str | None = "auto") -> torch.device:
    """ "auto" -> cuda if available, else mps, else cpu; an explicit unavailable device errors."""
    requested = requested or "auto"
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if has_mps else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device", "cuda was requested but no CUDA device is available")
    if requested == "mps" and not has_mps:
        raise ConfigError("train.device", "mps was requested but is not available")
    if requested not in ("cpu", "cuda", "mps"):
        raise ConfigError("train.device", f"must be auto, cpu, cuda or mps; got {requested!r}")
    return torch.device(requested)
