"""The image-level posterior API (diffusion/chains/posterior.py) and strided sampling of a model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from diffusion.chains.posterior import (
    PosteriorInputError,
    add_noise,
    binary_inpaint,
    denoise,
    inpaint,
    make_mask,
)
from diffusion.chains.sampling import sample_chain
from diffusion.chains.strided import kept_steps
from diffusion.data import Scaler
from diffusion.images.imageio import ImageInputError
from diffusion.inference import Trained
from diffusion.model import DiffusionModel
from diffusion.presets import PRESETS


def trained_for(preset: str, shape: tuple[int, ...], kind: str, scaler: Scaler) -> Trained:
    config = PRESETS[preset]
    torch.manual_seed(0)
    model = DiffusionModel(config, shape, kind)
    with torch.no_grad():  # a non-trivial (untrained but perturbed) reverse kernel
        for p in model.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.eval()
    return Trained(config, model, scaler, torch.device("cpu"), 0, Path("."))


@pytest.fixture(scope="module")
def digits() -> Trained:
    return trained_for("digits-smoke", (1, 8, 8), "images", Scaler(5.4, 6.0, True))


@pytest.fixture(scope="module")
def heartbeat() -> Trained:
    return trained_for("heartbeat-smoke", (20,), "binary", Scaler())


IMAGE = (np.arange(64).reshape(8, 8) % 17).astype(np.float64)


def test_denoise_shapes_and_spread(digits: Trained) -> None:
    g = torch.Generator().manual_seed(0)
    y = add_noise(IMAGE, 3.0, g)
    r = denoise(digits, y, 3.0, 5, generator=g)
    assert r.samples.shape == (5, 8, 8) and r.mean.shape == (8, 8) and r.std.shape == (8, 8)
    assert r.method == "denoise" and r.steps == digits.model.T
    assert (r.std > 0).mean() > 0.9  # (pixels pinned at 0 by clipping have none)
    assert np.all((r.samples >= 0) & (r.samples < 17))
    assert np.array_equal(r.observed, y)
    r2 = denoise(digits, y, 3.0, 3, steps=5, generator=g, start="prior")
    assert r2.steps == 5 and r2.samples.shape == (3, 8, 8)


@pytest.mark.parametrize("method", ["paper", "repaint", "guided"])
def test_inpaint_keeps_known_pixels_bit_for_bit(digits: Trained, method: str) -> None:
    mask = make_mask("center", (8, 8), size=4)
    image = IMAGE + 0.123456789  # not representable after a scale round trip
    r = inpaint(
        digits,
        image,
        mask,
        4,
        method=method,
        jump_length=3,
        jump_n_sample=2,
        generator=torch.Generator().manual_seed(1),
    )
    assert r.samples.shape == (4, 8, 8)
    assert np.array_equal(r.samples[:, mask], np.broadcast_to(image[mask], (4, mask.sum())))
    assert np.all(r.std[~mask] > 0) and np.all(r.std[mask] == 0)


def test_bad_inputs_raise(digits: Trained, heartbeat: Trained) -> None:
    mask = make_mask("left", (8, 8))
    cases = [
        lambda: denoise(digits, IMAGE[None], 1.0, 2),  # (other sizes: test_tiling.py)
        lambda: denoise(digits, IMAGE[:0], 1.0, 2),
        lambda: denoise(digits, np.stack([IMAGE] * 3, -1), 1.0, 2),
        lambda: denoise(digits, IMAGE, 0.0, 2),
        lambda: denoise(digits, IMAGE, float("nan"), 2),
        lambda: denoise(digits, IMAGE * np.nan, 1.0, 2),
        lambda: denoise(digits, IMAGE, 1.0, 0),
        lambda: denoise(digits, IMAGE, 1.0, 2, steps=1),
        lambda: inpaint(digits, IMAGE, mask[:4], 2),
        lambda: inpaint(digits, IMAGE, np.ones((8, 8), bool), 2),
        lambda: inpaint(digits, IMAGE, mask.astype(int), 2),
        lambda: inpaint(digits, IMAGE, mask, 2, method="magic"),
        lambda: inpaint(digits, IMAGE, mask, 2, method="guided", guidance=-1.0),
        lambda: inpaint(digits, IMAGE, mask, 2, method="guided", guidance=float("nan")),
        lambda: inpaint(digits, IMAGE, mask, 2, method="guided", guidance=1e6),
        lambda: inpaint(digits, IMAGE, mask, 2, method="guided", guidance="2"),
        lambda: denoise(heartbeat, np.zeros(20), 1.0, 2),
        lambda: binary_inpaint(digits, IMAGE, mask, 2),
    ]
    for case in cases:
        with pytest.raises(PosteriorInputError):
            case()


def test_binary_inpaint_heartbeat(heartbeat: Trained) -> None:
    bits = np.zeros(20)
    bits[2::5] = 1
    mask = np.zeros(20, bool)
    mask[:10] = True
    r = binary_inpaint(heartbeat, bits, mask, 6, generator=torch.Generator().manual_seed(2))
    assert r.samples.shape == (6, 20) and set(np.unique(r.samples)) <= {0.0, 1.0}
    assert np.array_equal(r.samples[:, :10], np.broadcast_to(bits[:10], (6, 10)))
    with pytest.raises(PosteriorInputError, match="hides nothing"):
        binary_inpaint(heartbeat, bits, np.ones(20, bool), 2)
    with pytest.raises(PosteriorInputError, match="0 or 1"):
        binary_inpaint(heartbeat, bits + 0.5, mask, 2)


def test_masks() -> None:
    c = make_mask("center", (10, 12), size=4)
    assert (~c).sum() == 16 and not c[3:7, 4:8].any()
    assert (~make_mask("left", (4, 6))).sum() == 12
    r = make_mask("random", (50, 50), fraction=0.3, seed=0)
    assert abs((~r).mean() - 0.3) < 0.05
    assert np.array_equal(r, make_mask("random", (50, 50), fraction=0.3, seed=0))
    with pytest.raises(ImageInputError, match="mask kind"):
        make_mask("star", (8, 8))


def written_out_chain(model: DiffusionModel, n: int, gen: torch.Generator) -> torch.Tensor:
    """Ancestral sampling as section 2.2 writes it: x^T ~ pi, then x^{t-1} ~ p(. | x^t)."""
    beta = model.beta().detach()
    x = model.process.prior_sample(n, model.shape, gen, torch.device("cpu"))
    with torch.no_grad():
        for step in range(model.T, 0, -1):
            t = torch.full((n,), step, dtype=torch.long)
            x = model.process.p_sample(x, t, model.readout(x, t, beta), beta, gen)
    return x


def test_chain_with_all_steps_is_ancestral_sampling(digits: Trained, heartbeat: Trained) -> None:
    """The chain is the written-out loop: bit for bit for the binomial kernel, to float64
    rounding for the Gaussian one (the chain forms the mean straight from the network's
    outputs, the loop through zM and back; diffusion.chains.reverse.ModelReverse)."""
    for trained in (digits, heartbeat):
        model = trained.model
        a = written_out_chain(model, 3, torch.Generator().manual_seed(5))
        b = sample_chain(model, 3, torch.Generator().manual_seed(5)).x0
        c = sample_chain(model, 3, torch.Generator().manual_seed(5), steps=model.T).x0
        if model.process.kind == "binomial":
            assert torch.equal(a, b)
        else:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
        assert torch.equal(b, c)
    s = digits.sample(4, generator=torch.Generator().manual_seed(6), steps=5)
    assert s.samples.shape == (4, 8, 8) and s.x0.shape == (4, 1, 8, 8)
    t = digits.sample(
        2, generator=torch.Generator().manual_seed(6), steps=5, return_trajectory=True
    )
    assert t.trajectory_steps == tuple(reversed(kept_steps(digits.model.T, 5)))
    with pytest.raises(ValueError, match="Gaussian"):
        heartbeat.sample(2, steps=5)


def test_rgb_images() -> None:
    rgb = trained_for("digits-smoke", (3, 6, 6), "images", Scaler(120.0, 60.0, True))
    image = np.random.default_rng(0).integers(0, 256, (6, 6, 3)).astype(np.uint8)
    mask = make_mask("center", (6, 6), size=2)
    r = inpaint(rgb, image, mask, 2, generator=torch.Generator().manual_seed(0))
    assert r.samples.shape == (2, 6, 6, 3)
    assert np.array_equal(r.samples[:, mask], np.broadcast_to(image[mask] + 0.5, (2, 32, 3)))
    d = denoise(rgb, image, 10.0, 2, steps=4, generator=torch.Generator().manual_seed(0))
    assert d.samples.shape == (2, 6, 6, 3) and d.mean.shape == (6, 6, 3)
    with pytest.raises(PosteriorInputError, match="3 channels"):
        denoise(rgb, image[..., 0], 10.0, 2)
