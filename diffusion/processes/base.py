"""The diffusion-process interface and the distribution of one reverse step.

`Process` is the contract that every diffusion process obeys (Gaussian:
diffusion.processes.gaussian, binomial: diffusion.processes.binomial; Sohl-Dickstein et al. 2015,
section 2 and App. B): the forward kernel q(x^t | x^{t-1}), its marginal q(x^t | x^0) and posterior
q(x^{t-1} | x^t, x^0), the prior pi, the reverse kernel p(x^{t-1} | x^t) in the paper's
parameterization (read out as z), the per-step KL and the exact edge terms of the bound (Eq. 14).
tests/diffusion/test_process_contract.py runs every process through the same checks.

A reverse step's distribution is a small object with `sample(generator)`: `Normal` (diagonal
Gaussian), `CorrelatedNormal` (full-covariance Gaussian) or `Bernoulli`. The reverse chains
(diffusion.chains.chain) draw every step through it, so each process draws its noise in one place.

Conventions: beta (T,) float64; t a (B,) long tensor in 1..T; x (B, *shape); log densities
and KL terms (B,) in nats, summed over an example's dimensions.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

import torch

from diffusion.settings import draws_on_cpu

# CPU generators' draws for work on a GPU, handed to a generator on that GPU (`drawing`): one per
# CPU generator and device, released with the CPU generator.
_ON_DEVICE: weakref.WeakKeyDictionary[torch.Generator, dict[torch.device, torch.Generator]] = (
    weakref.WeakKeyDictionary()
)


def _cuda(device: torch.device) -> torch.device:
    return device if device.index is not None else torch.device("cuda", torch.cuda.current_device())


def drawing(
    generator: torch.Generator | None, device: torch.device | str
) -> tuple[torch.Generator | None, torch.device]:
    """(generator, device) that draw the random numbers of work on `device`.

    A generator draws on its own device, so on a CPU one seed gives the same numbers every
    run. Work on a GPU with a CPU generator (the lab's seeds are CPU generators) draws from a
    generator on that GPU instead, seeded once by one 63-bit draw of the CPU generator and kept
    with it (`device_generator_state`): the noise is then drawn where it is used, not as float64
    normals on the CPU copied over at every training step and chain level (milliseconds of CPU
    time for a batch of CIFAR-10-sized images: benchmarks/results/image_steps.json, rows
    `cpu_draws`). One seed then gives the same numbers on every run on that kind of
    GPU, and other numbers than on a CPU; `DIFFLAB_DRAWS_ON_CPU=1` keeps the CPU's stream on a
    GPU (slower). No generator: the device's global one."""
    device = torch.device(device)
    if generator is None:
        return None, device
    if generator.device.type != "cpu" or device.type != "cuda":
        return generator, generator.device
    device = _cuda(device)
    per = _ON_DEVICE.setdefault(generator, {})
    if device not in per:  # the first GPU draw of this generator (the setting is read here)
        if draws_on_cpu():
            return generator, generator.device
        seed = int(torch.randint(0, 2**63 - 1, (1,), generator=generator))
        per[device] = torch.Generator(device=device).manual_seed(seed)
    return per[device], device


def device_generator_state(
    generator: torch.Generator, device: torch.device | str
) -> torch.Tensor | None:
    """The state of the GPU generator that draws for `generator` on `device` (a checkpoint
    keeps it with the CPU generator's), or None where it has none."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    found = _ON_DEVICE.get(generator, {}).get(_cuda(device))
    return None if found is None else found.get_state()


def restore_device_generator(
    generator: torch.Generator, device: torch.device | str, state: torch.Tensor
) -> None:
    """Give `generator` the GPU generator on `device` that a checkpoint saved (its draws then go
    on where they stopped, without the seeding draw of `drawing`)."""
    device = _cuda(torch.device(device))
    gen = torch.Generator(device=device)
    gen.set_state(state)
    _ON_DEVICE.setdefault(generator, {})[device] = gen


def randn(
    shape: torch.Size | tuple[int, ...], generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """Standard normal float64 noise from `generator` (drawn where `drawing` says), on `device`."""
    gen, gdev = drawing(generator, device)
    return torch.randn(shape, generator=gen, device=gdev, dtype=torch.float64).to(device)


def rand(
    shape: torch.Size | tuple[int, ...], generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """U(0, 1) float64 draws from `generator` (drawn where `drawing` says), on `device`."""
    gen, gdev = drawing(generator, device)
    return torch.rand(shape, generator=gen, device=gdev, dtype=torch.float64).to(device)


@dataclass(frozen=True)
class Normal:
    """N(mean, diag(var)); mean, var (B, *shape) float64."""

    mean: torch.Tensor
    var: torch.Tensor

    def sample(self, generator: torch.Generator | None) -> torch.Tensor:
        return self.mean + self.var.sqrt() * randn(self.mean.shape, generator, self.mean.device)


@dataclass(frozen=True)
class CorrelatedNormal:
    """N(mean, diag(s)^(1/2) U U^T diag(s)^(1/2)) over the D dimensions of each example.

    mean, s: (B, *shape) float64 with prod(shape) = D; U: (B, D, D) unit lower-triangular.
    """

    mean: torch.Tensor
    s: torch.Tensor
    U: torch.Tensor

    def sample(self, generator: torch.Generator | None) -> torch.Tensor:
        e = randn((self.mean.shape[0], self.U.shape[-1]), generator, self.mean.device)
        step = self.s.reshape(e.shape).sqrt() * (self.U @ e.unsqueeze(-1)).squeeze(-1)
        return self.mean + step.reshape(self.mean.shape)


@dataclass(frozen=True)
class Bernoulli:
    """Independent bits with P(x_i = 1) = p_i; p (B, *shape) float64. `logit`: log(p / (1 - p))
    where the maker has it (a kernel read from its logits), else None; a product with another
    Bernoulli is then a sum of logits (diffusion.chains.posterior_chains.binary_inpaint_chain)."""

    p: torch.Tensor
    logit: torch.Tensor | None = None

    def sample(self, generator: torch.Generator | None) -> torch.Tensor:
        """Bits (float64): U(0, 1) float64 draws u from `generator`, x = [u < p]. On the CPU
        `torch.bernoulli` draws and compares exactly so (the same numbers and the same
        generator state after: tests/diffusion/test_fused_chain.py) in one operation instead of
        three, which a binomial chain pays at every level."""
        if self.p.device.type == "cpu" and drawing(generator, self.p.device)[1].type == "cpu":
            try:
                return torch.bernoulli(self.p.to(torch.float64), generator=generator)
            except RuntimeError:  # torch checks 0 <= p <= 1 (the comparison took NaN as 0)
                if bool(((self.p >= 0) & (self.p <= 1)).all()):
                    raise
                raise ValueError(
                    "a Bernoulli step's probabilities are not all in [0, 1] (NaN where the "
                    "model's weights or its input are not finite)"
                ) from None
        return (rand(self.p.shape, generator, self.p.device) < self.p).to(torch.float64)


StepDist = Normal | CorrelatedNormal | Bernoulli


class PerSchedule:
    """A value derived from the schedule beta by `fn(beta)`, computed once per schedule and
    kept while `beta` is the same tensor, unchanged in place (a checkpoint loaded into a
    buffer bumps its version): once per chain or evaluation for a fixed schedule, once per
    training step for a learned one (each `model.beta()` is a new tensor, and the value's
    graph is shared by every use within the step). A leaf tensor that requires gradients is
    recomputed at every call (a caller may backward through it more than once), and a value
    computed without gradients is not reused where they are wanted. While torch.compile
    traces, a fixed schedule's value is read as it is and a learned one's computed in the
    graph."""

    def __init__(self, fn) -> None:
        self.fn = fn
        self.key: tuple | None = None
        self.value = None

    def __call__(self, beta: torch.Tensor):
        if torch.compiler.is_compiling():
            # a fixed schedule's value, computed eagerly before tracing, is read as it is (a
            # graph cannot guard on a tensor's version; the schedule does not change while a
            # compiled step trains); otherwise the graph computes it
            if not beta.requires_grad and self.value is not None and self.key[0] is beta:
                return self.value
            return self.fn(beta)
        if beta.requires_grad and beta.grad_fn is None:
            return self.fn(beta)
        grad = beta.requires_grad and torch.is_grad_enabled()
        key = self.key
        if key is None or key[0] is not beta or key[1] != beta._version or key[2] != grad:
            self.value = self.fn(beta)
            self.key = (beta, beta._version, grad)
        return self.value


class StepRows:
    """The rows of a per-schedule table gathered at steps t and shaped against x, by
    `gather(table, t, x)`: one gather per (table, t, x.dim()), reused by further calls with
    the same table and the same, unchanged t tensor (a training step's q_sample, readout, KL
    and posterior read one gather). While torch.compile traces, every call gathers (the
    compiled graph shares the one gather itself)."""

    def __init__(self, gather) -> None:
        self.gather = gather
        self.key: tuple | None = None  # (table, t, t's version, x.dim())
        self.value = None

    def __call__(self, table: torch.Tensor, t: torch.Tensor, x: torch.Tensor):
        if torch.compiler.is_compiling():
            return self.gather(table, t, x)
        key = self.key
        if (
            key is None
            or key[0] is not table
            or key[1] is not t
            or key[2] != t._version
            or key[3] != x.dim()
        ):
            self.value = self.gather(table, t, x)
            self.key = (table, t, t._version, x.dim())
        return self.value


D = TypeVar("D", Normal, Bernoulli)


def expect_step(dist: StepDist, kind: type[D], what: str) -> D:
    """`dist` if it is a `kind` step; else ValueError saying that `what` needs one."""
    if not isinstance(dist, kind):
        raise ValueError(f"{what} needs a {kind.__name__} reverse step; got {type(dist).__name__}")
    return dist


class DerivedSteps:
    """The parts of a `Process` that follow from its other parts alike for every process: L_null
    is the log density under pi, and draws from pi and from p(x^{t-1} | x^t) go through the
    step distributions of `prior` and `p_step`. Gaussian and binomial processes inherit it."""

    def log_null(self, x0: torch.Tensor) -> torch.Tensor:
        """(B,) log pi(x^0), nats: the log-likelihood under pi alone (L_null)."""
        return self.log_prior(x0)  # type: ignore[attr-defined]

    def prior_sample(
        self,
        n: int,
        shape: tuple[int, ...],
        generator: torch.Generator | None,
        device: torch.device,
    ) -> torch.Tensor:
        """(n, *shape) draws from pi."""
        return self.prior((n, *shape), device).sample(generator)  # type: ignore[attr-defined]

    def p_sample(
        self,
        xt: torch.Tensor,
        t: torch.Tensor,
        z: torch.Tensor,
        beta: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """x^{t-1} ~ p(x^{t-1} | x^t)."""
        return self.p_step(xt, t, z, beta).sample(generator)  # type: ignore[attr-defined]


@runtime_checkable
class Process(Protocol):
    """A diffusion process: forward kernel, prior pi and the paper's reverse kernel."""

    kind: str  # "gaussian" | "binomial" (a stored name)
    n_outputs: int  # readout values z per data dimension

    def q_noise(
        self, shape: torch.Size | tuple[int, ...], generator: torch.Generator | None, device
    ) -> torch.Tensor:
        """The draws behind one `q_sample` (its `noise`), from `generator`."""
        ...

    def known_bits(self, x: torch.Tensor) -> None:
        """x is exactly 0/1 by construction (binomial: its values need not be tested)."""
        ...

    def trace_hints(self, x0: torch.Tensor) -> None:
        """Test x0 eagerly for what a compiled step branches on (binomial: bits or not)."""
        ...

    def q_sample(
        self,
        x0: torch.Tensor,
        t: torch.Tensor,
        beta: torch.Tensor,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x^t ~ q(x^t | x^0), (B, *shape) float64 (`noise`: the draws of `q_noise`)."""
        ...

    def q_step_sample(
        self,
        x_prev: torch.Tensor,
        t: torch.Tensor,
        beta: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """x^t ~ q(x^t | x^{t-1})."""
        ...

    def log_q(
        self, xt: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, beta: torch.Tensor
    ) -> torch.Tensor:
        """(B,) log q(x^t | x^0), nats."""
        ...

    def log_q_step(
        self, x_prev: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, beta: torch.Tensor
    ) -> torch.Tensor:
        """(B,) log q(x^t | x^{t-1}), nats."""
        ...

    def log_q_posterior(
        self,
        x_prev: torch.Tensor,
        x0: torch.Tensor,
        xt: torch.Tensor,
        t: torch.Tensor,
        beta: torch.Tensor,
    ) -> torch.Tensor:
        """(B,) log q(x^{t-1} | x^t, x^0), nats, t >= 2."""
        ...

    def kl(
        self,
        x0: torch.Tensor,
        xt: torch.Tensor,
        t: torch.Tensor,
        z: torch.Tensor,
        beta: torch.Tensor,
    ) -> torch.Tensor:
        """(B,) KL(q(x^{t-1} | x^t, x^0) || p(x^{t-1} | x^t)), nats (Eq. 14's summand)."""
        ...

    def edge_terms(self, x0: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """(B,) E_q[log p(x^0 | x^1)] - KL(q(x^T | x^0) || pi), nats."""
        ...

    def log_null(self, x0: torch.Tensor) -> torch.Tensor:
        """(B,) log pi(x^0), nats (L_null)."""
        ...

    def log_prior(self, x: torch.Tensor) -> torch.Tensor:
        """(B,) log pi(x), nats."""
        ...

    def prior(self, shape: tuple[int, ...], device: torch.device) -> StepDist:
        """pi over examples of batch shape `shape` = (B, *example shape)."""
        ...

    def prior_sample(
        self,
        n: int,
        shape: tuple[int, ...],
        generator: torch.Generator | None,
        device: torch.device,
    ) -> torch.Tensor:
        """(n, *shape) draws from pi."""
        ...

    def p_step(
        self, xt: torch.Tensor, t: torch.Tensor, z: torch.Tensor, beta: torch.Tensor
    ) -> StepDist:
        """p(x^{t-1} | x^t) for readout z (B, *shape, n_outputs); t = 1: the fixed first step."""
        ...

    def p_sample(
        self,
        xt: torch.Tensor,
        t: torch.Tensor,
        z: torch.Tensor,
        beta: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """x^{t-1} ~ p(x^{t-1} | x^t)."""
        ...

    def log_p_step(
        self,
        x_prev: torch.Tensor,
        xt: torch.Tensor,
        t: torch.Tensor,
        z: torch.Tensor,
        beta: torch.Tensor,
    ) -> torch.Tensor:
        """(B,) log p(x^{t-1} | x^t), nats."""
        ...
