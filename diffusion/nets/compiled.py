"""Functions of the chains compiled by torch.compile (inductor), `train.compile`.

The chains call the network once per level on a batch of one shape, with no gradients; the
compiled forward fuses the network's elementwise work (the RBF units, sigmoids, FiLM products)
around its matrix products, and for the binomial kernel also the conversions around it and the
kernel's logit (diffusion.chains.reverse.ModelReverse). Compiled code is cached per function
and input shape, so a chain built again for the same model (or its weight average) does not
compile again; whatever changes with the level (the temporal basis row, the schedule's numbers)
is passed as a tensor, so the levels share one compiled graph. Where compiling or running the
compiled code fails, the function runs eagerly from then on and a warning says why: the same
numbers to float32 rounding either way.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn


def compile_whole(fn: Callable) -> Callable:
    """`fn` compiled as one graph for fixed shapes: a graph break is an error (the caller
    falls back to eager), not a silent slow path. The training step compiles the same way
    (diffusion.training.compiled)."""
    return torch.compile(fn, fullgraph=True, dynamic=False)


def failure_reason(exc: BaseException) -> str:
    """A compiler failure in one line: its type and the first line of its message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


class CompiledCall:
    """`fn(*args)` through torch.compile, eager after a failure (module docstring). `fn` is
    kept as it is: the eager function (for a network, the network itself)."""

    def __init__(self, fn: Callable, what: str) -> None:
        self.fn, self.what = fn, what
        self.compiled = compile_whole(fn)
        self.failed: str | None = None

    def __call__(self, *args: torch.Tensor | nn.Module) -> torch.Tensor:
        if self.failed is None:
            try:
                return self.compiled(*args)
            except Exception as exc:  # noqa: BLE001 (any compiler failure: run eagerly)
                self.failed = failure_reason(exc)
                warnings.warn(
                    f"train.compile: {self.what} could not be compiled ({self.failed}); "
                    "it runs eagerly",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return self.fn(*args)


def compiled_forward(net: nn.Module) -> CompiledCall:
    """`net(x, g)` compiled (`CompiledCall.fn` is the network)."""
    return CompiledCall(net, "the network's forward")


def binary_logit(
    net: nn.Module, x: torch.Tensor, g_row: torch.Tensor, logits: torch.Tensor
) -> torch.Tensor:
    """The binomial reverse kernel's logit at one level (BinomialDiffusion.p_logit_at of the
    network's output): the forward logit from x^{t-1} = x^t (`logits` (2,): from 0, from 1)
    plus the network's z, for x (B, *shape) float64 at the level whose basis row is g_row
    (J,, in the network's dtype). The same expression as the eager kernel, for torch.compile."""
    g = g_row.expand(x.shape[0], -1)
    z = net(x.to(g_row.dtype), g)[..., 0].double()
    return torch.where(x > 0.5, logits[1], logits[0]) + z


def compiled_binary_logit() -> CompiledCall:
    return CompiledCall(binary_logit, "the binomial kernel")
