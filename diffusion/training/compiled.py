"""The training step's arithmetic compiled by torch.compile (inductor), `train.compile`.

`diffusion.evaluation.bound.step_loss` (the schedule's table, x^t, the network, the KL, the
edge terms and the loss, forward and backward) is one function of the step's draws with no
data-dependent branches, so inductor takes it as one graph (`fullgraph=True`: a graph break is
an error here, not a silent slow path) and fuses the many small float64 operations around the
network into a few kernels. On the toy networks that work is most of a step (each eager
operation costs microseconds of dispatch against a network of a few milliseconds).

`compile_terms` compiles it once per process and checks the compiled function against the eager
one on a probe batch drawn from its own generator (the training stream is not touched): the
mean estimate, the KL terms and every parameter's gradient must agree to `RTOL` (`_close`,
`_mismatch`: the tolerance of the network's precision, each gradient against its own scale or,
where that is tiny, a thousandth of the largest gradient entry of the model). Where
compiling fails (no C++ compiler, an unsupported operation, a mismatch) it says why and the run
trains eagerly: the results are the same numbers to float rounding either way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from diffusion.data import DataBundle
from diffusion.evaluation.bound import step_loss
from diffusion.model import DiffusionModel
from diffusion.nets.compiled import compile_whole, failure_reason

# compiled against eager: the network's arithmetic fused in another order, which moves each
# result by some roundings of its precision (fp32: 2^-24; bf16 autocast: 2^-9, and a gradient
# sums many such products)
RTOL = {"fp32": 1e-3, "bf16": 2e-2}
# A gradient entry is compared against its tensor's largest entry, but at least against this
# fraction of the largest gradient entry of the whole model: a parameter whose true gradient is
# zero (a convolution's bias before a group norm of one channel per group) holds rounding noise
# alone, which any two orders of summation give differently.
GRAD_FLOOR = 1e-3


@dataclass(frozen=True)
class Compiled:
    """What `compile_terms` gives: `terms` (the compiled step_loss, or None: train eagerly),
    `seconds` spent compiling and checking, and `warning` (why it fell back, else None)."""

    terms: Callable | None
    seconds: float
    warning: str | None = None


def compile_terms(
    model: DiffusionModel, bundle: DataBundle, batch_size: int, device: torch.device, seed: int
) -> Compiled:
    """step_loss compiled for `model` at this batch size, checked on one probe batch."""
    started = time.monotonic()
    fn = compile_whole(step_loss)
    gen = torch.Generator().manual_seed(seed)
    x0 = bundle.scaler.to_model(bundle.draw_train(batch_size, gen), gen).to(device)
    t = torch.randint(2, model.T + 1, (batch_size,), generator=gen).to(device)
    noise = model.process.q_noise(x0.shape, gen, device)
    weight = torch.full((batch_size,), float(model.T - 1), dtype=torch.float64, device=device)
    params = [p for p in model.parameters() if p.requires_grad]
    # eager first: it fills the per-schedule caches that the graph reads (a fixed schedule)
    k_e, grads_e = _value_and_grads(step_loss, model, params, x0, t, noise, weight)
    model.process.trace_hints(x0)
    try:
        k_c, grads_c = _value_and_grads(fn, model, params, x0, t, noise, weight)
    except Exception as exc:  # noqa: BLE001 (any failure of the compiler means: run eagerly)
        return Compiled(None, time.monotonic() - started, _why(failure_reason(exc)))
    rtol = RTOL["bf16" if model.bf16_autocast(x0) else "fp32"]
    mismatch = _mismatch(k_c[0], k_e[0], grads_c, grads_e, rtol)
    if mismatch is None and not _close(k_c[1], k_e[1], rtol):
        mismatch = "the compiled step's KL terms differ from the eager ones"
    if mismatch:
        return Compiled(None, time.monotonic() - started, _why(mismatch))
    return Compiled(fn, time.monotonic() - started)


def _value_and_grads(fn, model, params, x0, t, noise, weight):
    """((mean estimate, KL_t (B,)), the loss's gradient per parameter)."""
    loss, k_mean, kl = fn(model, x0, t, noise, weight)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return (k_mean.detach(), kl.detach()), [  # zeros for a parameter the step does not reach
        torch.zeros_like(p) if g is None else g for g, p in zip(grads, params, strict=True)
    ]


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float, floor: float = 0.0) -> bool:
    """Within `rtol` of the larger of the two's scale, or of `floor` where that is larger
    (elementwise rounding noise is relative to the tensor's size, not to each entry: a
    near-zero gradient entry may differ more)."""
    scale = max(torch.maximum(a.abs().max(), b.abs().max()).item(), floor, 1e-30)
    return bool(torch.isfinite(a).all()) and (a - b).abs().max().item() <= rtol * scale


def _mismatch(k_c, k_e, grads_c, grads_e, rtol: float) -> str | None:
    """Why the compiled step's estimate or gradients are not the eager ones (None: they are)."""
    if not _close(k_c, k_e, rtol):
        diff = (k_c - k_e).abs().max().item()
        return f"the compiled step's bound estimate differs from the eager one by {diff:.3g} nats"
    top = max((g.abs().max().item() for g in grads_e), default=0.0)
    for i, (gc, ge) in enumerate(zip(grads_c, grads_e, strict=True)):
        if not _close(gc.double(), ge.double(), rtol, GRAD_FLOOR * top):
            return f"the compiled step's gradient of parameter {i} differs from the eager one"
    return None


def _why(reason: str) -> str:
    return (
        f"train.compile: torch.compile could not compile the training step ({reason}); "
        "training runs eagerly"
    )
