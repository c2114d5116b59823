"""The diffusion model: network + temporal readout + schedule + forward process, as one module.

`DiffusionModel(config, shape, data_kind)` is an nn.Module whose parameters are the network's
and, for a learned schedule, the schedule coefficients. The math lives elsewhere: the kernels in
diffusion.processes.gaussian and diffusion.processes.binomial (both a
`diffusion.processes.base.Process`), K in diffusion.evaluation.bound, and the reverse chain in
diffusion.chains.chain (diffusion.chains.reverse.model_reverse is this model's).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from diffusion.config import MAX_FULL_COVARIANCE_D, ConfigError, RunConfig
from diffusion.nets import NetSpec, build_network
from diffusion.nets.compiled import CompiledCall, compiled_forward
from diffusion.processes.base import Process
from diffusion.processes.binomial import BinomialDiffusion
from diffusion.processes.fused import binomial_kl_from_output, gaussian_kl_from_output
from diffusion.processes.gaussian import GaussianDiffusion
from diffusion.processes.readout import TemporalBasis
from diffusion.processes.schedules import Schedule
from diffusion.settings import compile_allowed, compile_chains_after_s

# Device types on which train.precision = "bf16" autocasts the network. CUDA alone: on a CPU
# without bf16 matrix units autocast is slower than fp32, and a bf16 run must not change its
# numbers by moving to a CPU worker. The tests add "cpu" to run the autocast path on a CPU.
BF16_DEVICE_TYPES: frozenset[str] = frozenset({"cuda"})


def make_process(config: RunConfig, shape: tuple[int, ...] = (1,)) -> Process:
    if config.diffusion.kind == "binomial":
        return BinomialDiffusion(config.diffusion.m)
    D = math.prod(shape)
    if config.diffusion.covariance == "full" and (len(shape) != 1 or D > MAX_FULL_COVARIANCE_D):
        raise ConfigError(
            "diffusion.covariance",
            f"'full' is for vector data of at most {MAX_FULL_COVARIANCE_D} dimensions; "
            f"this data has shape {tuple(shape)}: use 'diagonal'",
        )
    return GaussianDiffusion(config.diffusion.covariance, D)


class DiffusionModel(nn.Module):
    """Reverse chain p(x^{t-1} | x^t) of Sohl-Dickstein et al. 2015 (section 2.2)."""

    def __init__(
        self, config: RunConfig, shape: tuple[int, ...], data_kind: str = "points"
    ) -> None:
        super().__init__()
        self.config = config
        self.shape = tuple(shape)
        self.dims = math.prod(self.shape)  # D, dimensions of one example
        self.data_kind = data_kind
        self.T = config.diffusion.T
        self.process = make_process(config, self.shape)
        self.basis = TemporalBasis(self.T, config.diffusion.readout_J, config.diffusion.basis)
        self.schedule = Schedule(config.diffusion, self.basis)
        spec = NetSpec(
            self.shape, self.process.n_outputs, self.basis.J, data_kind, one_hot=self.basis.one_hot
        )
        self.net = build_network(config.network, spec)
        self.chain_eager_s = 0.0  # chain seconds run eagerly in this process (chain_net)

    def beta(self) -> torch.Tensor:
        """(T,) float64 forward schedule beta_1..T."""
        return self.schedule()

    def readout(
        self,
        xt: torch.Tensor,
        t: torch.Tensor,
        beta: torch.Tensor | None = None,
        net: nn.Module | None = None,
    ) -> torch.Tensor:
        """z: (B, *shape, n_outputs) float64, the reverse-kernel perturbations at steps t (B,).

        The network's raw outputs y (read out on the temporal basis, App. D.2.1) are used as
        they are for binomial diffusion (z = y) and for zS. For the Gaussian mean they are
        preconditioned (docs/model-notes.md): zM = x^t + beta_t yM / (Sigma sqrt(1 - abar_t)),
        so that the paper's mu = (x^t - zM)(1 - Sigma) + zM equals
        x^t + beta_t yM / sqrt(1 - abar_t): yM is O(1) (a scaled noise estimate) at every t,
        and mean and variance are learned independently. With diffusion.mean = "v", mu is the
        forward posterior's mean at x0_hat = sqrt(abar_t) x^t - sqrt(1 - abar_t) yM.
        `net` evaluates in place of self.net (a wrapper with its interface, e.g.
        `diffusion.images.tiling.SizedNet` for images of another size).
        """
        y = self.net_output(xt, t, net)
        if self.process.kind != "gaussian":
            return y
        beta = self.beta() if beta is None else beta
        # the schedule's numbers at t: one gather from the process's table, shared with the
        # q_sample, KL and kernel of the same step (GaussianDiffusion.coefficients)
        c = self.process.coefficients(beta, t, xt)
        var = torch.sigmoid(y[..., 1] + c.log_beta - c.log1m_beta)
        x = xt.double()
        if self.config.diffusion.mean == "v":  # mu = q-posterior mean at x0_hat (config docs)
            x0_hat = c.sqrt_abar * x - c.sqrt_1m_abar * y[..., 0]
            mu = c.c0 * x0_hat + c.ct * x
            z_m = (mu - x * (1 - var)) / var  # the paper's form: mu = (x - zM)(1 - var) + zM
        else:
            z_m = x + c.beta * y[..., 0] / (var * c.sqrt_1m_abar)
        return torch.cat([z_m.unsqueeze(-1), y[..., 1:]], dim=-1)

    def net_output(
        self, xt: torch.Tensor, t: torch.Tensor | int, net: nn.Module | None = None
    ) -> torch.Tensor:
        """y: (B, *shape, n_outputs) float64, the network's raw outputs read out at steps t
        (B,) (before `readout`'s preconditioning of the Gaussian mean); t an int: every row
        at that step (a chain's level: the basis row once, no per-row lookup)."""
        dtype = self._net_dtype()
        g = self.basis.rows_at(t, xt.shape[0]) if isinstance(t, int) else self.basis(t)
        g = g.to(device=xt.device, dtype=dtype)
        if self.bf16_autocast(xt):  # bf16 autocast of the network alone (entered only when on)
            with torch.autocast(xt.device.type, dtype=torch.bfloat16):
                y = (self.net if net is None else net)(xt.to(dtype), g)
        else:
            y = (self.net if net is None else net)(xt.to(dtype), g)
        return y.double()  # the kernels and the bound stay in float64

    def chains_compile_after_s(self) -> float | None:
        """Seconds of eager chain work in this process after which this model's chains call
        its network compiled (`compile_chains_after_s`); None where they never do
        (train.compile off, or DIFFLAB_COMPILE=0). A compilation costs seconds, which pays in
        a worker or a long chain and not in a one-off chain of under a second."""
        if not (self.config.train.compile and compile_allowed()):
            return None
        return compile_chains_after_s()

    def chain_net(self) -> nn.Module | CompiledCall:
        """The network as the chains call it: compiled (diffusion.nets.compiled) once this
        model's chains have run `chains_compile_after_s` seconds eagerly (`chain_eager_s`,
        which diffusion.chains.reverse.ModelReverse adds to), else the network itself."""
        after = self.chains_compile_after_s()
        if after is not None and self.chain_eager_s >= after:
            return compiled_forward(self.net)
        return self.net

    def _net_dtype(self) -> torch.dtype:
        """The network's parameter dtype (float32 for a network without parameters). The
        first parameter is looked up once per network (walking the modules costs tens of
        microseconds a call); its dtype is read each time (`.to()` converts in place)."""
        if getattr(self, "_first_param", (None,))[0] is not self.net:
            self._first_param = (self.net, next(self.net.parameters(), None))
        param = self._first_param[1]
        return param.dtype if param is not None else torch.float32

    def bf16_autocast(self, xt: torch.Tensor) -> bool:
        """Whether the network runs under bf16 autocast: on CUDA (`BF16_DEVICE_TYPES`) when
        train.precision is bf16 (in fp32 no autocast context is entered at all: it costs a
        step's time for nothing)."""
        return self.config.train.precision == "bf16" and xt.device.type in BF16_DEVICE_TYPES

    def kl_terms(
        self,
        x0: torch.Tensor,
        t: torch.Tensor,
        generator: torch.Generator | None,
        beta: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B,) KL(q(x^{t-1}|x^t,x^0) || p(x^{t-1}|x^t)) nats at x^t ~ q(x^t|x^0), t >= 2.

        The paper's diagonal Gaussian kernel and the binomial kernel read the KL straight
        from the network's outputs (diffusion.processes.fused: the same numbers to float64
        rounding); the full-covariance kernel reads out z and calls `process.kl`. `noise`:
        the draws of `process.q_noise` behind x^t (else drawn here from `generator`)."""
        beta = self.beta() if beta is None else beta
        proc = self.process
        xt = proc.q_sample(x0, t, beta, generator, noise)
        if isinstance(proc, GaussianDiffusion) and not proc.full:
            y = self.net_output(xt, t)
            rows = proc.coefficient_rows(beta, t, xt)
            v_mean = self.config.diffusion.mean == "v"
            return gaussian_kl_from_output(y, xt, x0.double(), rows, v_mean)
        if isinstance(proc, BinomialDiffusion) and not beta.requires_grad:
            z = self.net_output(xt, t)[..., 0]
            q, neg_ent, base = proc.step_terms(x0, xt, t, beta)
            return binomial_kl_from_output(z, base, q, neg_ent)
        return proc.kl(x0, xt, t, self.readout(xt, t, beta), beta)
