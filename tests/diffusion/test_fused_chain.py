"""A compiled binomial model's chain draws each level in one compiled call
(diffusion.chains.reverse.ModelReverse.run_bits, diffusion.nets.compiled.binary_level), and
compiled calls skip guards they have already run (diffusion.nets.compiled.CompiledCall).

The fused chain is checked against the same chain moved level by level (kernel, product
with r, `Bernoulli.sample`): the same bits at every level, the same generator state after,
for plain sampling, a trajectory and the binary posterior, with levels' draws made in
chunks that do not divide the chain. Broken versions these catch: draws made in another
order or a chunk's draws used twice (the bits differ after the first chunk), a level's
basis row or forward logits off by one, the observation's log-odds dropped (the posterior's
bits differ), a generator left at another state (the next draw differs), a skipped guard
that lets a call of another shape or with gradients run a graph compiled for others.
"""

from __future__ import annotations

import pytest
import torch

from diffusion.chains.chain import Reverse
from diffusion.chains.posterior_chains import binary_inpaint_chain
from diffusion.chains.reverse import ModelReverse, model_reverse
from diffusion.chains.sampling import sample_chain
from diffusion.data import build_dataset
from diffusion.nets.compiled import CompiledCall
from diffusion.presets import PRESETS
from diffusion.processes.base import Bernoulli
from diffusion.training.parts import build_model

N = 8


@pytest.fixture(scope="module")
def model():
    config = PRESETS["heartbeat-smoke"].with_overrides(["diffusion.T=40", "train.compile=true"])
    bundle = build_dataset(config.data, 0)
    m = build_model(config, bundle, torch.device("cpu")).eval()
    with torch.no_grad():  # weights away from their initial values: a kernel with structure
        for p in m.net.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) / 4)
    return m


@pytest.fixture(autouse=True)
def compiled_at_once(monkeypatch):
    monkeypatch.setenv("DIFFLAB_COMPILE_CHAINS_AFTER_S", "0")
    monkeypatch.setattr(ModelReverse, "FUSED_DRAWS", 3 * N * 20)  # 3 levels a chunk: 39 = 13 x 3


def level_by_level(monkeypatch):
    monkeypatch.setattr(ModelReverse, "run_bits", Reverse.run_bits)


def test_fused_sampling_draws_the_level_by_level_chain(model, monkeypatch):
    assert isinstance(model_reverse(model).net, CompiledCall)
    fused = sample_chain(model, N, torch.Generator().manual_seed(1), return_trajectory=True)
    gen_f = torch.Generator().manual_seed(1)
    x_f = sample_chain(model, N, gen_f).x0
    with monkeypatch.context() as m:
        level_by_level(m)
        plain = sample_chain(model, N, torch.Generator().manual_seed(1), return_trajectory=True)
        gen_p = torch.Generator().manual_seed(1)
        x_p = sample_chain(model, N, gen_p).x0
    assert torch.equal(fused.x0, plain.x0) and torch.equal(x_f, x_p)
    assert torch.equal(fused.trajectory, plain.trajectory)
    assert fused.trajectory_steps == plain.trajectory_steps
    assert torch.equal(gen_f.get_state(), gen_p.get_state())
    assert 0.05 < float(fused.trajectory.mean()) < 0.95  # bits, not a constant


def test_fused_posterior_draws_the_level_by_level_chain_and_keeps_known_bits(model, monkeypatch):
    gen = torch.Generator().manual_seed(2)
    truth = model.process.prior_sample(N, model.shape, gen, torch.device("cpu"))
    d = torch.full_like(truth, 0.5)
    known = torch.zeros_like(truth, dtype=torch.bool)
    known[:, ::3] = True
    d[known] = truth[known]
    d[0, 1] = 0.9  # a soft observation: neither pinned nor ignored
    gen_f = torch.Generator().manual_seed(3)
    x_f = binary_inpaint_chain(model_reverse(model), d, generator=gen_f)
    with monkeypatch.context() as m:
        level_by_level(m)
        gen_p = torch.Generator().manual_seed(3)
        x_p = binary_inpaint_chain(model_reverse(model), d, generator=gen_p)
    assert torch.equal(x_f, x_p) and torch.equal(gen_f.get_state(), gen_p.get_state())
    assert torch.equal(x_f[known], truth[known])


def test_bernoulli_draws_are_uniform_draws_below_p():
    """Bernoulli.sample's one-operation draw (torch.bernoulli on the CPU) is [u < p] for the
    U(0, 1) float64 draws u of the same generator, ties included, and leaves it where those
    draws do; probabilities outside [0, 1] are refused with a message."""
    gen = torch.Generator().manual_seed(0)
    p = torch.rand(300, 7, generator=gen, dtype=torch.float64)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    u = torch.rand(p.shape, generator=g1, dtype=torch.float64)
    g3 = torch.Generator().manual_seed(5)
    assert torch.equal(Bernoulli(p).sample(g2), (u < p).double())
    assert torch.equal(Bernoulli(u.clone()).sample(g3), torch.zeros_like(u))  # u < u: never
    assert torch.equal(g1.get_state(), g2.get_state())
    with pytest.raises(ValueError, match=r"not all in \[0, 1\]"):
        Bernoulli(torch.tensor([0.5, float("nan")], dtype=torch.float64)).sample(gen)


def test_a_warm_compiled_call_still_tells_shapes_and_gradients_apart():
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh())
    call = CompiledCall(net, "a test network")
    x8, x5 = torch.randn(8, 4), torch.randn(5, 4)
    with torch.no_grad():
        for _ in range(3):  # the second and third calls skip the guards already run
            assert torch.allclose(call(x8), net(x8), atol=1e-6)
        assert torch.allclose(call(x5), net(x5), atol=1e-6)  # another shape: compiled for it
        assert torch.allclose(call(x8), net(x8), atol=1e-6)
        net.double()  # the module's dtype changed: a new signature
        assert torch.allclose(call(x8.double()), net(x8.double()), atol=1e-12)
    assert len(call.warm) == 3
    net.float()
    x = torch.randn(8, 4, requires_grad=True)
    call(x).sum().backward()  # with gradients: every guard runs, the graph has a backward
    x_e = x.detach().clone().requires_grad_()
    net(x_e).sum().backward()
    assert torch.allclose(x.grad, x_e.grad, atol=1e-6)
    calls = []
    hook = net.register_forward_pre_hook(lambda module, args: calls.append(1))
    with torch.no_grad(), torch.compiler.set_stance("force_eager"):
        call(x8)  # a caller's stance is kept: eager, the hook sees the call
    hook.remove()
    assert calls == [1] and call.failed is None


def test_guards_are_all_evaluated_where_skipping_is_turned_off(monkeypatch):
    """DIFFLAB_SKIP_GUARDS=0 (a program running compiled chains in several threads): no call
    signature is taken as warm, so every call evaluates every guard."""
    monkeypatch.setenv("DIFFLAB_SKIP_GUARDS", "0")
    net = torch.nn.Linear(4, 3)
    call = CompiledCall(net, "a test network")
    x = torch.randn(8, 4)
    with torch.no_grad():
        for _ in range(2):
            assert torch.allclose(call(x), net(x), atol=1e-6)
    assert call.warm == set() and call.failed is None
