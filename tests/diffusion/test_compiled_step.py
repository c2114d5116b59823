"""train.compile (diffusion.training.compiled): the compiled training step trains the model the
eager step trains, and a step that cannot be compiled trains eagerly with a warning.

Broken versions these catch: a compiled step that draws its own x^t (or ignores the drawn
noise), weights the KL term differently or drops the edge terms (its losses part from the
eager ones at the first step); a checker that accepts any compiled result (`_mismatch` lets
a wrong estimate or gradient through); a compile failure that stops the run instead of
falling back (the full-covariance run below ends with an error instead of DONE).
"""

from __future__ import annotations

import pytest
import torch
from test_train_trajectory import CONFIGS as TRAJECTORY_CONFIGS

from diffusion.presets import PRESETS
from diffusion.training.compiled import RTOL, _mismatch
from diffusion.training.events import WarningEvent
from diffusion.training.train import _Trainer, train

STEPS = 12
# the small configs of the fast-step test (learned schedule, importance-sampled t, EMA,
# Gaussian kernel; binomial with RMSprop), compiled
CONFIGS = {
    name: TRAJECTORY_CONFIGS[name].with_overrides([f"train.steps={STEPS}", "train.compile=true"])
    for name in ("swissroll", "heartbeat")
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_compiled_step_trains_like_the_eager_step(tmp_path, name):
    config = CONFIGS[name]
    events: list = []
    compiled = _Trainer(config, tmp_path / "c", torch.device("cpu"), events.append, None)
    eager = _Trainer(config, tmp_path / "e", torch.device("cpu"), None, None)
    compiled.prepare()
    assert compiled.terms is not None, f"{name}: not compiled: {events}"
    assert compiled.compile_s > 0
    for step in range(STEPS):
        a, b = compiled.train_step(), eager.train_step()
        compiled.step += 1
        eager.step += 1
        assert a == pytest.approx(b, rel=1e-4), f"{name}: loss differs at step {step}"
    for (key, a), b in zip(
        compiled.model.state_dict().items(), eager.model.state_dict().values(), strict=True
    ):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5), f"{name}: {key} after {STEPS} steps"


def test_a_step_that_cannot_compile_trains_eagerly_with_a_warning(tmp_path):
    """The full-covariance kernel's step branches on a tensor's value, which a whole-graph
    compile refuses: the run says so and trains."""
    config = PRESETS["swissroll-thin"].with_overrides(
        [
            "data.n_train=200",
            "data.n_holdout=20",
            "train.batch_size=16",
            "train.steps=3",
            "network.n_rbf=8",
            "network.options.dense=[8]",
            "train.eval_examples=8",
            "train.gallery_size=4",
            "train.compile=true",
        ]
    )
    events: list = []
    result = train(config, tmp_path, on_event=events.append, device="cpu")
    assert result.status == "done" and result.step == 3
    warnings = [e.message for e in events if isinstance(e, WarningEvent)]
    assert len(warnings) == 1 and "training runs eagerly" in warnings[0], warnings


def test_the_check_refuses_a_compiled_step_that_disagrees():
    tol = RTOL["fp32"]
    k = torch.tensor([-3.0, -5.0], dtype=torch.float64)
    grads = [torch.tensor([1.0, -2.0]), torch.tensor([0.5])]
    assert _mismatch(k, k.clone(), grads, [g.clone() for g in grads], tol) is None
    near = [g * (1 + tol / 10) for g in grads]
    assert _mismatch(k * (1 + tol / 10), k, near, grads, tol) is None
    assert "bound estimate" in _mismatch(k + 0.1, k, grads, grads, tol)
    wrong = [grads[0], grads[1] * 2]
    assert "parameter 1" in _mismatch(k, k, wrong, grads, tol)
    nan = torch.tensor([float("nan"), -5.0], dtype=torch.float64)
    assert _mismatch(nan, k, grads, grads, tol) is not None


def test_the_check_reads_rounding_noise_against_the_model_s_gradients():
    """A parameter whose true gradient is zero (a convolution's bias before a group norm of one
    channel per group: the UNet's) holds rounding noise of about 1e-8 that any two orders of
    summation give differently; measured against itself it differs by 100 %, against the
    model's largest gradient entry (1.0) by 1e-8. Broken version caught: each gradient against
    its own scale alone (a trained UNet then never compiles)."""
    tol = RTOL["fp32"]
    k = torch.tensor([-3.0, -5.0], dtype=torch.float64)
    eager = [torch.tensor([1.0, -0.5]), torch.tensor([1e-8, -2e-8])]
    compiled = [eager[0] * (1 + tol / 10), torch.tensor([-1e-8, 1e-8])]
    assert _mismatch(k, k, compiled, eager, tol) is None
    # a gradient that is wrong at the model's scale is still refused
    assert "parameter 1" in _mismatch(k, k, [eager[0], torch.tensor([0.1, 0.0])], eager, tol)


def test_bf16_steps_are_checked_at_bf16_s_precision():
    """A compiled bf16 step differs from the eager bf16 step by bf16 roundings (percents of a
    gradient); in fp32 the same difference is a wrong step. Broken versions caught: the fp32
    tolerance for bf16 (every bf16 step falls back to eager) and no tolerance at all."""
    k = torch.tensor([-3.0, -5.0], dtype=torch.float64)
    eager = [torch.tensor([1.0, -0.5]), torch.tensor([0.25])]
    moved = [g * 1.01 for g in eager]  # 1 %: a few roundings of bf16's 8-bit mantissa
    assert _mismatch(k, k, moved, eager, RTOL["bf16"]) is None
    assert _mismatch(k, k, moved, eager, RTOL["fp32"]) is not None
    assert _mismatch(k, k, [g * 1.2 for g in eager], eager, RTOL["bf16"]) is not None


# ----------------------------------------------------------- chains (diffusion.nets.compiled)
def _pair(name: str):
    """The same untrained model twice: once with train.compile, once without."""
    from diffusion.training.parts import build_model  # noqa: PLC0415

    compiled = CONFIGS[name]
    eager = compiled.with_overrides(["train.compile=false"])
    tr = _Trainer(compiled, None, torch.device("cpu"), None, None)  # type: ignore[arg-type]
    model_e = build_model(eager, tr.bundle, torch.device("cpu"))
    model_e.load_state_dict(tr.model.state_dict())
    return tr.model, model_e


@pytest.mark.parametrize("name", list(CONFIGS))
def test_compiled_chain_kernel_is_the_eager_kernel(name, monkeypatch):
    """Every level's kernel from the compiled network (and, binomial, the compiled logit)
    against the eager kernel on the same x^t: a swapped pair of forward logits, another
    level's basis row or a dropped network output fails here."""
    from diffusion.chains.reverse import model_reverse  # noqa: PLC0415
    from diffusion.nets.compiled import CompiledCall  # noqa: PLC0415

    monkeypatch.setenv("DIFFLAB_COMPILE_CHAINS_AFTER_S", "0")  # compiled at once
    model_c, model_e = _pair(name)
    rev_c, rev_e = model_reverse(model_c), model_reverse(model_e)
    assert isinstance(rev_c.net, CompiledCall) and not isinstance(rev_e.net, CompiledCall)
    gen = torch.Generator().manual_seed(3)
    x = model_c.process.prior_sample(32, model_c.shape, gen, torch.device("cpu"))
    for t in sorted({1, 2, model_c.T // 2, model_c.T}):
        a, b = rev_c.kernel(x, t), rev_e.kernel(x, t)
        if model_c.process.kind == "binomial":
            assert torch.allclose(a.logit, b.logit, rtol=1e-5, atol=1e-5), f"level {t}"
            assert torch.allclose(a.p, b.p, atol=1e-6), f"level {t}"
        else:
            assert torch.allclose(a.mean, b.mean, rtol=1e-5, atol=1e-6), f"level {t}"
            assert torch.allclose(a.var, b.var, rtol=1e-5, atol=1e-9), f"level {t}"
    assert rev_c.net.failed is None


def test_compiled_binary_posterior_keeps_every_known_bit(monkeypatch):
    """App. C's binary product in logits: known bits (d = 0 or 1) are pinned at every step,
    also where the kernel's probability rounds to 0 or 1; an unknown bit (d = 1/2) is left
    to the kernel (the chain's free half is not a copy of the observation)."""
    from diffusion.chains.posterior_chains import binary_inpaint_chain  # noqa: PLC0415
    from diffusion.chains.reverse import model_reverse  # noqa: PLC0415

    monkeypatch.setenv("DIFFLAB_COMPILE_CHAINS_AFTER_S", "0")
    model, _ = _pair("heartbeat")
    gen = torch.Generator().manual_seed(4)
    truth = model.process.prior_sample(64, model.shape, gen, torch.device("cpu"))
    d = torch.full_like(truth, 0.5)
    known = torch.zeros_like(truth, dtype=torch.bool)
    known.view(64, -1)[:, ::2] = True
    d[known] = truth[known]
    x = binary_inpaint_chain(model_reverse(model), d, generator=gen)
    assert torch.equal(x[known], truth[known])
    assert 0.05 < (x[~known] != truth[~known]).double().mean() < 0.95


def test_a_compiled_run_stopped_and_resumed_ends_where_one_that_never_stopped_does(tmp_path):
    """The compiled step draws from the run's generator as the eager one does, and compiles
    to the same graph in the resumed process: the weights are equal bit for bit. A compiled
    step with draws of its own (or one that depended on state a checkpoint does not keep)
    fails here."""
    from diffusion.training.checkpoint import load_latest  # noqa: PLC0415

    config = CONFIGS["swissroll"].with_overrides(
        ["train.eval_every=0", "train.gallery_every=0", "train.gallery_size=8"]
    )
    train(config, tmp_path / "a", device="cpu")
    calls = {"n": 0}

    def stop_after_half() -> bool:
        calls["n"] += 1
        return calls["n"] > STEPS // 2

    first = train(config, tmp_path / "b", device="cpu", should_stop=stop_after_half)
    assert (first.status, first.step) == ("stopped", STEPS // 2)
    assert train(config, tmp_path / "b", device="cpu").step == STEPS
    a, _ = load_latest(tmp_path / "a", torch.device("cpu"))
    b, _ = load_latest(tmp_path / "b", torch.device("cpu"))
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key


@pytest.mark.parametrize("value", ["0", "off", "False"])
def test_difflab_compile_off_runs_every_step_and_chain_eagerly(monkeypatch, value):
    """DIFFLAB_COMPILE=0 overrides train.compile: no compiled step, no compiled network."""
    from diffusion.chains.reverse import model_reverse  # noqa: PLC0415

    monkeypatch.setenv("DIFFLAB_COMPILE", value)
    monkeypatch.setenv("DIFFLAB_COMPILE_CHAINS_AFTER_S", "0")
    trainer = _Trainer(CONFIGS["heartbeat"], None, torch.device("cpu"), None, None)  # type: ignore[arg-type]
    trainer.prepare()
    assert trainer.terms is None and trainer.compile_s == 0.0
    assert model_reverse(trainer.model).net is trainer.model.net
    monkeypatch.setenv("DIFFLAB_COMPILE", "1")
    assert model_reverse(trainer.model).net is not trainer.model.net


def test_chains_compile_once_they_have_run_long_enough_eagerly(monkeypatch):
    """A one-off short chain never pays a compilation: the model's chains run eagerly until
    they have spent DIFFLAB_COMPILE_CHAINS_AFTER_S in this process, then (from the next
    level on, within the same chain) call the network compiled."""
    from diffusion.chains.reverse import model_reverse  # noqa: PLC0415
    from diffusion.chains.sampling import sample_chain  # noqa: PLC0415
    from diffusion.nets.compiled import CompiledCall  # noqa: PLC0415

    monkeypatch.setenv("DIFFLAB_COMPILE_CHAINS_AFTER_S", "3600")
    model, _ = _pair("heartbeat")
    sample_chain(model, 8, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert 0 < model.chain_eager_s < 3600
    assert not isinstance(model_reverse(model).net, CompiledCall)
    monkeypatch.setenv("DIFFLAB_COMPILE_CHAINS_AFTER_S", str(model.chain_eager_s * 1.5))
    rev = model_reverse(model)
    assert not isinstance(rev.net, CompiledCall)
    x = model.process.prior_sample(8, model.shape, torch.Generator(), torch.device("cpu"))
    for t in range(model.T, 0, -1):  # the switch comes part way through this chain
        x = rev.kernel(x, t).sample(None)
    assert isinstance(rev.net, CompiledCall)
    monkeypatch.setenv("DIFFLAB_COMPILE_CHAINS_AFTER_S", "-1")
    with pytest.raises(ValueError, match="DIFFLAB_COMPILE_CHAINS_AFTER_S"):
        model.chain_net()


def test_traced_case_lookup_is_the_eager_lookup():
    """The binomial step's table lookup as torch.compile traces it (four cases per row
    chosen per element, BinomialDiffusion._traced_step_terms) gives the eager per-element
    lookup's numbers exactly, for every case at every t. Broken versions: two cases swapped
    (x^0 = 0, x^t = 1 read as x^0 = 1, x^t = 0), a row's t off by one."""
    from diffusion.processes.binomial import BinomialDiffusion

    T, B, D = 50, 400, 6
    proc = BinomialDiffusion(0.2)
    beta = torch.linspace(1e-3, 0.5, T, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, 2, (B, D), generator=gen).float()
    xt = torch.randint(0, 2, (B, D), generator=gen).double()
    t = torch.randint(2, T + 1, (B,), generator=gen)
    eager = proc.step_terms(x0, xt, t, beta)
    traced = proc._traced_step_terms(x0, xt, t, beta)
    cases = {(int(a), int(b)) for a, b in zip(x0.flatten(), xt.flatten(), strict=True)}
    assert cases == {(0, 0), (0, 1), (1, 0), (1, 1)}
    for e, c in zip(eager, traced, strict=True):
        assert e.shape == c.shape == (B, D) and torch.equal(e, c)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_compile_terms_checks_at_the_network_s_precision(precision, tmp_path, monkeypatch):
    """compile_terms hands `_mismatch` the tolerance of the precision the network runs in
    (bf16 autocast here on the CPU, as on a GPU). Broken version caught: the fp32 tolerance
    for a bf16 network, under which a compiled bf16 step is refused for its roundings."""
    import diffusion.model as model_module  # noqa: PLC0415
    import diffusion.training.compiled as compiled_module  # noqa: PLC0415

    monkeypatch.setattr(model_module, "BF16_DEVICE_TYPES", frozenset({"cuda", "cpu"}))
    seen: list[float] = []
    real = compiled_module._mismatch

    def spy(*args):
        seen.append(args[-1])
        return real(*args)

    monkeypatch.setattr(compiled_module, "_mismatch", spy)
    config = CONFIGS["swissroll"].with_overrides([f"train.precision={precision}"])
    trainer = _Trainer(config, tmp_path, torch.device("cpu"), None, None)
    trainer.prepare()
    assert seen == [RTOL[precision]]
