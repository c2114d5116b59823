"""Data-set registry, the data bundle and the scaler (Sohl-Dickstein et al. 2015, section 3).

A data set is a builder registered under a name listed in `diffusion.config.DATASET_NAMES`:

    @register_dataset("swissroll")
    def build_swissroll(config: DataConfig, seed: int) -> DataBundle: ...

The config has validated the options against the data set's schema
(diffusion.config_options); the builder reads them typed, with defaults, from
`config.typed_options`, raises `diffusion.config.ConfigError` with field "data.options.KEY"
for what only the files can tell (a missing file), draws or loads the data deterministically
from `seed`, and returns a `DataBundle`. Tensors in the bundle are in DATA space (the data's
own units: coordinates, 0/1 bits, 8-bit grey levels as floats 0..255); the engine maps them
to MODEL space with `bundle.scaler.to_model` for every minibatch (fresh dequantization noise
each time) and back with `to_data` for samples.

Model space: all non-binary data are centred and scaled by ONE constant to unit variance
(paper, section 3 and the CIFAR-10 footnote). 8-bit data are first dequantized, v -> v + u with
u ~ U(0, 1), so the density is over [0, 256) in data units. The scaler is recorded with the run
so that results can be mapped back: log p_data(x) = log p_model(y) - D log(scale).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import torch

from diffusion.config import DATASET_NAMES, DataConfig
from diffusion.config_registry import Registry

DataKind = Literal["points", "sequences", "binary", "images"]


@dataclass(frozen=True)
class Scaler:
    """y = (x + u - shift) / scale, with u ~ U(0, 1) when `dequantize` (8-bit data), else u = 0.

    shift and scale are single constants (not per dimension).
    """

    shift: float = 0.0
    scale: float = 1.0
    dequantize: bool = False

    def to_model(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Data (N, *shape) -> model space (N, *shape), float32 (a new tensor). Dequantizes if
        configured."""
        if not self.dequantize and self.shift == 0.0 and self.scale == 1.0:
            return x.to(torch.float32, copy=True)  # one operation where two would give x
        x = x.to(torch.float32)
        if self.dequantize:
            u = torch.rand(x.shape, generator=generator, dtype=torch.float32)  # CPU generator
            x = x + u.to(x.device)
        return (x - self.shift) / self.scale

    def to_data(self, y: torch.Tensor) -> torch.Tensor:
        """Model space -> data space (continuous; for 8-bit data, floor and clip to get levels)."""
        x = y * self.scale + self.shift
        if self.dequantize:
            x = torch.floor(x).clamp(0, 255)
        return x

    def log_det_bits(self, dims: int) -> float:
        """D log2(scale): log2 p_data(x) = log2 p_model(y) - this (bits per example)."""
        return dims * math.log2(self.scale)

    def to_dict(self) -> dict[str, Any]:
        return {"shift": self.shift, "scale": self.scale, "dequantize": self.dequantize}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scaler:
        return cls(float(d["shift"]), float(d["scale"]), bool(d["dequantize"]))


def fit_scaler(x: torch.Tensor, *, dequantize: bool = False) -> Scaler:
    """One shift and one scale that make `x` (data space) zero-mean and unit-variance."""
    x = x.to(torch.float64)
    if dequantize:
        x = x + 0.5
    var = x.var().item() + (1.0 / 12.0 if dequantize else 0.0)
    return Scaler(
        shift=float(x.mean().item()), scale=float(math.sqrt(max(var, 1e-12))), dequantize=dequantize
    )


@dataclass(frozen=True)
class DataBundle:
    """What a data-set builder returns.

    train:   (N, *shape) data-space tensor, or None when `sampler` draws training data on the fly.
    holdout: (M, *shape) data-space tensor (the bound is reported on it).
    sampler: optional `sampler(n, generator) -> (n, *shape)` data-space tensor (e.g. dead leaves).
    scaler:  data <-> model space; identity for binary data.
    shape:   shape of one example, e.g. (2,), (20,), (C, H, W).
    kind:    "points" | "sequences" | "binary" | "images" (how samples are shown).
    unit:    label of the reported unit, e.g. "bits/example", "bits/seq", "bits/pixel".
    unit_divisor: per-example bits are divided by this to give `unit` (pixels for images,
             summed over colour channels; 1 otherwise).
    binary:  data are 0/1 (binomial diffusion).
    true_ll_bits: exact log-likelihood of the holdout data in `unit`, model space, if known.
    paper_k_bits / paper_k_minus_lnull_bits: the paper's Table 1 numbers, if any.
    info:    JSON-safe parameters recorded with the run (e.g. texture name, patch size).
    """

    holdout: torch.Tensor
    scaler: Scaler
    shape: tuple[int, ...]
    kind: DataKind
    train: torch.Tensor | None = None
    sampler: Callable[[int, torch.Generator], torch.Tensor] | None = None
    unit: str = "bits/example"
    unit_divisor: float = 1.0
    binary: bool = False
    true_ll_bits: float | None = None
    paper_k_bits: float | None = None
    paper_k_minus_lnull_bits: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def dims(self) -> int:
        """D, the number of dimensions of one example."""
        return math.prod(self.shape)

    @cached_property
    def model_bits(self) -> bool:
        """Every model-space example is exactly 0 or 1: binary data (checked when the data set
        is built) under the identity scaler. Kept: the training step reads it every step."""
        return self.binary and self.scaler == Scaler()

    def draw_train(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """A minibatch (n, *shape) of training data in data space."""
        if self.sampler is not None:
            return self.sampler(n, generator)
        assert self.train is not None
        idx = torch.randint(0, self.train.shape[0], (n,), generator=generator)
        return torch.index_select(self.train, 0, idx)  # train[idx], at a fraction of its cost


Builder = Callable[[DataConfig, int], DataBundle]
_REGISTRY: Registry[Builder] = Registry(
    "data.name",
    "data set {name} is not available in this installation; available: {names}",
    DATASET_NAMES,
    "diffusion.config.DATASET_NAMES",
)


def register_dataset(name: str) -> Callable[[Builder], Builder]:
    """Decorator: register `builder(config, seed) -> DataBundle` under `name`."""
    return _REGISTRY.register(name)


def registered_datasets() -> tuple[str, ...]:
    return _REGISTRY.names()


def build_dataset(config: DataConfig, seed: int) -> DataBundle:
    """Build the data set named by `config.name` (data space tensors, scaler, metadata)."""
    return _REGISTRY.get(config.name)(config, seed)
