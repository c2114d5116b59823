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

What a call of compiled code costs besides its kernels (issue 14): torch.compile evaluates its
guards (every parameter's and input's metadata, the module's attributes, global state: about
25 us a call for the heartbeat network on a 2-core Xeon) and the generated code asserts every
input's size and stride (about 0.6 us each). Against a 260 us level that was 10-15 % of a
chain. Where a `CompiledCall` is called without gradients with the signature of an earlier
call of its own (each tensor's shape, stride, dtype and device; each module's identity, mode
and parameters' dtype and device), it runs the compiled code with only the guards that tell
its compiled graphs apart (`torch.compiler.set_stance(skip_guard_eval_unsafe=True)`): the
first call with a signature ran every guard and compiled for it where needed, and nothing a
guard would test differs from that call. Calls with gradients, and the training step, run
every guard. The size asserts are off in every compiled function: the guards (or, in those
calls, the signature) already ensure the sizes and strides. torch's stance is process-wide:
while one thread runs a call in that mode, compiled code another thread runs at the same
moment skips its guards too. The lab runs one job per worker process and no chains in the
dashboard; `DIFFLAB_SKIP_GUARDS=0` (diffusion.settings) turns the mode off for programs that
run compiled chains in several threads.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn
from torch._dynamo import eval_frame as _eval_frame

from diffusion.settings import skip_guards_allowed


def compile_whole(fn: Callable) -> Callable:
    """`fn` compiled as one graph for fixed shapes: a graph break is an error (the caller
    falls back to eager), not a silent slow path. The training step compiles the same way
    (diffusion.training.compiled)."""
    return torch.compile(fn, fullgraph=True, dynamic=False, options={"size_asserts": False})


def failure_reason(exc: BaseException) -> str:
    """A compiler failure in one line: its type and the first line of its message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


class CompiledCall:
    """`fn(*args)` through torch.compile, eager after a failure (module docstring). `fn` is
    kept as it is: the eager function (for a network, the network itself). `warm`: the
    no-gradient call signatures this object has run with every guard (module docstring)."""

    def __init__(self, fn: Callable, what: str) -> None:
        self.fn, self.what = fn, what
        self.compiled = compile_whole(fn)
        self.failed: str | None = None
        self.warm: set[tuple] = set()
        self.skip_guards = skip_guards_allowed()
        # per module argument: (the module, kept so that its id is not reused; its first
        # parameter)
        self.first_param: dict[int, tuple[nn.Module, torch.Tensor | None]] = {}

    def __call__(self, *args: torch.Tensor | nn.Module) -> torch.Tensor:
        if self.failed is None:
            try:
                if torch.is_grad_enabled() or not self.skip_guards:
                    return self.compiled(*args)
                key = self._signature((self.fn, *args))  # the compiled module itself too
                if key in self.warm and _default_stance():
                    with torch.compiler.set_stance("default", skip_guard_eval_unsafe=True):
                        return self.compiled(*args)
                out = self.compiled(*args)
                self.warm.add(key)
                return out
            except Exception as exc:  # noqa: BLE001 (any compiler failure: run eagerly)
                self.failed = failure_reason(exc)
                warnings.warn(
                    f"train.compile: {self.what} could not be compiled ({self.failed}); "
                    "it runs eagerly",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return self.fn(*args)

    def _signature(self, args: tuple) -> tuple:
        """What a no-gradient call's guards test that can differ between calls: each tensor's
        shape, stride, dtype and device; each module's identity, training mode and (first)
        parameter's dtype and device (`.to` changes them all); numbers and strings as they
        are; any other object by its identity; whether inference mode is on. Anything else
        (a Python constant the function reads) is taken as fixed for the object's life."""
        out: list = [torch.is_inference_mode_enabled()]
        for a in args:
            if isinstance(a, torch.Tensor):
                out.append((a.shape, a.stride(), a.dtype, a.device))
            elif isinstance(a, nn.Module):
                if id(a) not in self.first_param:
                    self.first_param[id(a)] = (a, next(iter(a.parameters()), None))
                p = self.first_param[id(a)][1]
                out.append((id(a), a.training, None if p is None else (p.dtype, p.device)))
            elif isinstance(a, (bool, int, float, str)):
                out.append(a)
            else:  # a function (fixed) or another object: itself
                out.append((type(a), id(a)))
        return tuple(out)


def _default_stance() -> bool:
    """Whether torch.compile's stance is the default one (a caller's `force_eager` or other
    stance is kept, not overridden). Read from torch's private state; False where a version
    of torch has none (every guard then runs)."""
    stance = getattr(_eval_frame, "_stance", None)
    return getattr(stance, "stance", None) == "default" and stance.backend is None


def compiled_forward(net: nn.Module) -> CompiledCall:
    """`net(x, g)` compiled (`CompiledCall.fn` is the network)."""
    return CompiledCall(net, "the network's forward")


def _kernel_logit(
    net: nn.Module, x: torch.Tensor, g_row: torch.Tensor, logits: torch.Tensor
) -> torch.Tensor:
    """The binomial reverse kernel's logit at one level (BinomialDiffusion.p_logit_at of the
    network's output): the forward logit from x^{t-1} = x^t (`logits` (2,): from 0, from 1)
    plus the network's z, for x (B, *shape) float64 at the level whose basis row is g_row
    (J,, in the network's dtype)."""
    g = g_row.expand(x.shape[0], -1)
    z = net(x.to(g_row.dtype), g)[..., 0].double()
    return torch.where(x > 0.5, logits[1], logits[0]) + z


def binary_logit(
    net: nn.Module, x: torch.Tensor, g_row: torch.Tensor, logits: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(P(x^{t-1} = 1 | x^t), its logit) at one level (`_kernel_logit` and its sigmoid): the
    same expressions as the eager kernel, for torch.compile."""
    logit = _kernel_logit(net, x, g_row, logits)
    return torch.sigmoid(logit), logit


def binary_level(
    net: nn.Module,
    x: torch.Tensor,
    g_row: torch.Tensor,
    logits: torch.Tensor,
    u: torch.Tensor,
    log_odds: torch.Tensor,
) -> torch.Tensor:
    """x^{t-1} (float64 bits) drawn at one level of a binomial chain: [u < sigmoid(l + o)] for
    the kernel's logit l (`_kernel_logit`), the log-odds o of a factorized r (the step
    multiplied by r = prod_i Bernoulli(sigmoid(o_i)), App. C; 0 where r = 1) and the level's
    U(0, 1) draws u: the kernel, the product and the draw of one level in one compiled call
    (diffusion.chains.reverse.ModelReverse.run_bits). Each eager operation between the
    network's calls cost 5-10 us in a chain, 2-4 % of a toy network's level."""
    logit = _kernel_logit(net, x, g_row, logits)
    return (u < torch.sigmoid(logit + log_odds)).to(torch.float64)


def compiled_binary_logit() -> CompiledCall:
    return CompiledCall(binary_logit, "the binomial kernel")


def compiled_binary_level() -> CompiledCall:
    return CompiledCall(binary_level, "the binomial chain's level")
