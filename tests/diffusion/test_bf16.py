"""bf16 mixed precision (`train.precision = "bf16"`): autocast of the network alone, the
readout, kernels and bound in float64, the weights and their gradients in float32.

The lab autocasts on CUDA only (`diffusion.model.BF16_DEVICE_TYPES`); these tests add "cpu" to
that set so the same code path runs here, and check the default too: a bf16 run on a CPU
computes exactly what an fp32 run does.

Broken versions these catch (the first, second and fourth run as mutants against this file):
- the autocast context names a fixed device type ("cuda") instead of the input's: on a CPU
  tensor it does nothing, the network runs in float32 (the conv output dtype test fails);
- the network's output handed on in bf16 (`return y` without `.double()`): the readout's dtype
  test fails;
- the model cast to bf16 (`model.to(torch.bfloat16)`) in place of autocast: the weights and
  gradients are no longer float32;
- bf16 switched on for CPU runs by default: the default-gate test sees a changed estimate.
"""

from __future__ import annotations

import pytest
import torch

import diffusion.model as model_module
from diffusion.evaluation.bound import step_draws, step_terms
from diffusion.model import DiffusionModel
from diffusion.presets import PRESETS

SIZE, T, B = 8, 10, 4
NETS = ("cifar10-unet", "cifar10")  # the UNet and the paper's multi-scale conv net


def _pair(preset: str) -> tuple[DiffusionModel, DiffusionModel]:
    """An fp32 and a bf16 model with the same weights (perturbed from the initial ones, whose
    zeroed output layer would make every output 0 in either precision)."""
    models = []
    for precision in ("fp32", "bf16"):
        cfg = PRESETS[preset].with_overrides(
            [f"train.precision={precision}", f"diffusion.T={T}", "diffusion.J=0"]
        )
        torch.manual_seed(0)
        models.append(DiffusionModel(cfg, (3, SIZE, SIZE), "images"))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in models[0].net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    models[1].load_state_dict(models[0].state_dict())
    return models[0], models[1]


def _draws(model: DiffusionModel):
    gen = torch.Generator().manual_seed(3)
    x0 = torch.randn(B, 3, SIZE, SIZE, generator=gen, dtype=torch.float64)
    t, noise, weight = step_draws(model, x0, gen)
    return x0, t, noise, weight


def _conv_dtypes(model: DiffusionModel) -> list[torch.dtype]:
    """The output dtype of every Conv2d of the network, recorded on the next forward."""
    seen: list[torch.dtype] = []
    for m in model.net.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(lambda mod, args, out: seen.append(out.dtype))
    return seen


@pytest.fixture
def bf16_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_module, "BF16_DEVICE_TYPES", frozenset({"cuda", "cpu"}))


@pytest.mark.parametrize("preset", NETS)
def test_bf16_autocasts_the_network_alone(preset: str, bf16_on_cpu: None) -> None:
    fp32, bf16 = _pair(preset)
    x0, t, noise, weight = _draws(fp32)
    convs = _conv_dtypes(bf16)
    k16, kl16 = step_terms(bf16, x0, t, noise, weight)
    assert convs and set(convs) == {torch.bfloat16}  # the network ran under autocast
    xt = torch.randn(B, 3, SIZE, SIZE, dtype=torch.float64)
    assert bf16.net_output(xt, t).dtype == torch.float64  # read out in float64
    assert k16.dtype == kl16.dtype == torch.float64
    k32, _ = step_terms(fp32, x0, t, noise, weight)
    # bf16 keeps 8 bits of mantissa (relative rounding 2^-9 per operation): the estimate moves,
    # by a few percent of its size at most
    rel = ((k16 - k32).abs().max() / k32.abs().max()).detach()
    assert 0 < float(rel) < 3e-2


@pytest.mark.parametrize("preset", NETS)
def test_bf16_keeps_float32_weights_and_gradients(preset: str, bf16_on_cpu: None) -> None:
    fp32, bf16 = _pair(preset)
    x0, t, noise, weight = _draws(fp32)
    k16, _ = step_terms(bf16, x0, t, noise, weight)
    (-k16.mean()).backward()
    k32, _ = step_terms(fp32, x0, t, noise, weight)
    (-k32.mean()).backward()
    for name, p16 in bf16.net.named_parameters():
        assert p16.dtype == torch.float32 and p16.grad is not None, name
        assert p16.grad.dtype == torch.float32, name
    g16 = torch.cat([p.grad.flatten() for p in bf16.net.parameters()])
    g32 = torch.cat([p.grad.flatten() for p in fp32.net.parameters()])
    cos = torch.nn.functional.cosine_similarity(g16.double(), g32.double(), dim=0)
    assert float(cos) > 0.99  # the same descent direction to bf16 rounding


@pytest.mark.parametrize("preset", NETS)
def test_bf16_is_fp32_where_autocast_is_off(preset: str) -> None:
    """The default gate: on a CPU a bf16 run computes what an fp32 run does, exactly."""
    fp32, bf16 = _pair(preset)
    x0, t, noise, weight = _draws(fp32)
    convs = _conv_dtypes(bf16)
    k16, _ = step_terms(bf16, x0, t, noise, weight)
    k32, _ = step_terms(fp32, x0, t, noise, weight)
    assert set(convs) == {torch.float32}
    assert torch.equal(k16, k32)
