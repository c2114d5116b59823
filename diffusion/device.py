"""Pick the compute device: cuda, else cpu.

Apple's mps is not picked: the engine's math runs in float64, which the MPS backend lacks
(docs/model-notes.md). Asking for it explicitly is an error that says so.
"""

from __future__ import annotations

import torch

from diffusion.config import ConfigError


def pick_device(requested: str | None = "auto") -> torch.device:
    """ "auto" -> cuda if available, else cpu; an explicit unavailable device errors.

    "cuda:N" picks one GPU of several (a worker per GPU).
    """
    requested = requested or "auto"
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("train.device", "cuda was requested but no CUDA device is available")
        return torch.device(requested)
    if requested == "mps":
        raise ConfigError(
            "train.device",
            "mps is not supported yet: the engine computes in float64, which Apple's MPS "
            "backend lacks; use cpu or cuda",
        )
    if requested != "cpu":
        raise ConfigError("train.device", f"must be auto, cpu or cuda; got {requested!r}")
    return torch.device("cpu")
