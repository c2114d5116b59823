"""How much memory a run needs, estimated from its config before anything is allocated.

Torch-free, so that the config's validation (diffusion.config), the form, the CLI and the
worker can all call it. The estimate adds the largest allocations of the engine:

- the temporal basis table, (T x J) float64 then float32 (readout.TemporalBasis), and the
  learned schedule's own basis;
- the readout's weights, J per output per data value for the dense networks, with their
  gradients, the optimizer's two moments and the weight average (float32);
- the network outputs before the temporal contraction, (examples x values x outputs x J),
  for a training batch (with gradients) and for one evaluation chunk (32,768 (example, t)
  pairs and 2**19 values at most, diffusion.evaluation.bound);
- hidden activations of a batch and of an evaluation chunk.

It is an estimate (within a small factor), meant to refuse what cannot fit (diffusion.T =
100000 with J = T needs a 80 GB basis table alone) with the numbers, not to plan tightly.
`memory_problem(cfg, available)` compares it with a device's memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diffusion import settings

EVAL_CHUNK = (
    32_768  # (example, t) pairs per evaluation chunk (diffusion.evaluation.bound.evaluate_bound)
)
MAX_ELEMENTS = (
    2**19
)  # and at most this many values per chunk (diffusion.evaluation.bound.MAX_ELEMENTS)
UNKNOWN_DIMS = 4096  # values per example when only the data file can tell
MAX_RUN_BYTES = 96 * 1024**3  # no single device of a lab holds more (DIFFLAB_MAX_RUN_GB)
GIB = 1024**3


@dataclass(frozen=True)
class MemoryEstimate:
    parts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def describe(self) -> str:
        big = sorted(self.parts.items(), key=lambda kv: -kv[1])[:3]
        return f"about {gib(self.total)} (" + ", ".join(f"{k} {gib(v)}" for k, v in big) + ")"


def gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB / 10 else f"{n / 1024**2:.0f} MiB"


def _widths(net: Any) -> tuple[int, int]:
    """(sum of hidden widths, width of the layer that feeds the readout)."""
    if net.kind == "mlp":
        return sum(net.hidden), net.hidden[-1]
    if net.kind == "heartbeat":
        return 150, 50
    if net.kind == "rbf":
        return net.n_rbf, net.n_rbf
    if net.kind == "unet":  # activations kept per pixel: about 8 tensors per level's width
        o = net.options_dict
        ch = int(o.get("channels", 32))
        return 8 * ch * sum(o.get("mults") or (1, 2, 2)) * int(o.get("res_blocks", 1)), ch
    return 4 * 64, 64  # conv: channels per pixel, a few scales


def estimate(cfg: Any) -> MemoryEstimate:
    """The estimate for a RunConfig (diffusion.config) in bytes, by part."""
    T = int(cfg.diffusion.T)
    J = int(cfg.diffusion.readout_J)
    dims = int(cfg.data.dims or UNKNOWN_DIMS)
    outputs = 2 if cfg.diffusion.kind == "gaussian" else 1
    hidden_sum, last = _widths(cfg.network)
    batch = int(cfg.train.batch_size)
    parts = {"temporal basis": T * J * 12}
    if getattr(cfg.diffusion, "schedule", "") == "learned":
        parts["schedule basis"] = T * int(cfg.diffusion.learned_schedule_J) * 12
    dense = cfg.network.kind not in ("conv", "unet")
    if cfg.network.kind == "unet" and cfg.network.options_dict.get("readout", "direct") == "direct":
        J = 1  # a time embedding, no readout over the basis
    per_value = outputs * J * 4  # float32 outputs before the contraction over J
    weights = (last * dims if dense else last) * outputs * J * 4
    parts["readout weights, gradients, optimizer, average"] = weights * 5
    per_example = dims * per_value + (hidden_sum * (dims if not dense else 1)) * 4
    parts["training batch"] = batch * per_example * 3  # forward, backward, the KL terms
    pairs = min(
        EVAL_CHUNK, max(1, MAX_ELEMENTS // dims), int(cfg.train.eval_examples) * max(1, T - 1)
    )
    parts["evaluation chunk"] = pairs * per_example
    return MemoryEstimate(parts)


def max_run_bytes() -> int:
    gb = settings.max_run_gb()
    return int(gb * GIB) if gb is not None else MAX_RUN_BYTES


def memory_problem(cfg: Any, available: int | None = None, where: str = "") -> str | None:
    """A message when the run cannot fit in `available` bytes (default: the largest device
    any lab has, `max_run_bytes()`); None when it fits."""
    limit = available if available is not None else max_run_bytes()
    est = estimate(cfg)
    if est.total <= limit:
        return None
    place = where or "any device of this lab"
    return (
        f"this run needs {est.describe()}, more than {place} has ({gib(limit)}); "
        "lower T (or the readout's J), the batch size or the network"
    )
