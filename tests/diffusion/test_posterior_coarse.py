"""Coarse-to-fine inpainting (diffusion/chains/posterior_coarse.py, the `start` of the inpainting
chains, `inpaint(coarse=...)`) against closed forms.

The oracle of tests/diffusion/test_posterior_math.py: data x^0 ~ N(0, I) and its exact reverse
kernel N(sqrt(alpha_t) x^t, beta_t), under which every pixel is independent of the others and
every move of a chain (down by the kernel, or up by q) multiplies x by sqrt(abar_hi / abar_lo)
and adds the noise that keeps the variance at 1. A chain started at x^t0 ~ q(x^t0 | x_init)
therefore ends at N(c x_init, 1 - c^2) on the missing pixels, with c = sqrt(abar_t0) times the
product of those factors over its moves: c = abar_t0 for the paper's chain; RePaint's jumps
add their own factors. A chain that ignores the start (from pi: c = 0), starts from pure noise
(t0 = T: c = abar_T, about 0 here) or skips the forward noise (variance off) fails these.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_posterior_math import check_moments, oracle
from test_tiling import PLAIN, trained

from diffusion.chains.posterior import PosteriorInputError, inpaint
from diffusion.chains.posterior_chains import (
    chain_from,
    inpaint_paper_chain,
    inpaint_repaint_chain,
    repaint_schedule,
)
from diffusion.chains.posterior_coarse import (
    BIHARMONIC_NOISE,
    biharmonic_start,
    coarse_setting,
    downsample,
    refine_step,
    upsample,
    upsample_into,
)
from diffusion.chains.reverse import model_reverse
from diffusion.images.holes import holds_box

N = 20_000
T = 10
C_INIT = 2.0


def _known_and_mask() -> tuple[torch.Tensor, torch.Tensor]:
    known = torch.tensor([[0.7, 0.0, 0.0]], dtype=torch.float64).expand(N, 3)
    return known, torch.tensor([True, False, False])


@pytest.mark.parametrize("t0", [1, 4, 7])
def test_paper_chain_from_t0_ends_at_the_closed_form(t0: int) -> None:
    rev = oracle(T)
    known, mask = _known_and_mask()
    x_init = torch.full((N, 3), C_INIT, dtype=torch.float64)
    g = torch.Generator().manual_seed(t0)
    x = inpaint_paper_chain(rev, known, mask, generator=g, start=(x_init, t0))
    a = float(rev.alpha_bar[t0])
    assert torch.equal(x[:, 0], known[:, 0])
    check_moments(x[:, 1:], torch.full((2,), a * C_INIT, dtype=torch.float64), 1 - a * a)


def test_repaint_chain_from_t0_ends_at_the_closed_form() -> None:
    rev, t0, jump, resample = oracle(T), 6, 2, 3
    known, mask = _known_and_mask()
    x_init = torch.full((N, 3), C_INIT, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    x = inpaint_repaint_chain(
        rev, known, mask, generator=g, start=(x_init, t0), jump_length=jump, jump_n_sample=resample
    )
    abar = rev.alpha_bar
    levels = repaint_schedule(t0, jump, resample)
    assert levels[0] == max(levels) == t0  # it starts at t0 and never climbs past it
    c = math.sqrt(float(abar[t0]))
    for lo_hi in zip(levels, levels[1:], strict=False):
        c *= math.sqrt(float(abar[max(lo_hi)] / abar[min(lo_hi)]))
    assert c < 0.9 * float(abar[t0])  # the jumps matter: the paper chain's closed form differs
    assert torch.equal(x[:, 0], known[:, 0])
    check_moments(x[:, 1:], torch.full((2,), c * C_INIT, dtype=torch.float64), 1 - c * c)


def test_the_strided_chain_from_t0_keeps_steps_over_0_to_t0() -> None:
    rev = oracle(100)
    chain, top = chain_from(rev, 40, 5)
    assert chain.steps[: top + 1] == [0, 1, 11, 20, 30, 40] and chain.steps[-1] == 100
    chain, top = chain_from(rev, 3, 50)  # more steps than t0: every one
    assert chain.steps[: top + 1] == [0, 1, 2, 3]
    for bad in (0, 101, 2.5):
        with pytest.raises(ValueError, match="start step"):
            chain_from(rev, bad, None)


def test_downsample_and_upsample() -> None:
    """Block means; a coarse pixel known only when its whole block is; bilinear upsampling of
    block means of a ramp gives the ramp back inside the image; the start keeps known
    pixels and takes the coarse fill in the hole."""
    ramp = np.add.outer(np.arange(12.0), 2 * np.arange(10.0))  # (12, 10): y + 2 x
    mask = np.ones((12, 10), bool)
    mask[5, 4] = False  # one missing pixel: its block (rows 4-7, cols 4-7) goes
    small, small_mask = downsample(ramp, mask, 4)
    assert small.shape == (3, 3) and small_mask.sum() == 8 and not small_mask[1, 1]
    np.testing.assert_allclose(small[:2, :2], [[1.5 + 3, 1.5 + 11], [5.5 + 3, 5.5 + 11]])
    assert small[0, 2] == pytest.approx(1.5 + 2 * 8.75)  # columns 8, 9 and two repeats of 9
    up = upsample(small[None], 4, (12, 10))[0]
    np.testing.assert_allclose(up[2:6, 2:6], ramp[2:6, 2:6], atol=1e-12)
    start = upsample_into(np.full((2, 3, 3), 50.0), 4, ramp, mask)
    assert start.shape == (2, 12, 10) and (start[:, 5, 4] == 50).all()
    assert np.array_equal(start[:, mask], np.broadcast_to(ramp[mask], (2, mask.sum())))


@pytest.mark.parametrize("side", [16, 31, 32, 48, 64])
def test_auto_starts_from_the_biharmonic_fill_when_a_patch_fits_in_the_hole(side: int) -> None:
    """ "auto" (the worker's setting): the biharmonic start at the default t0 when a training-
    size box (32) fits inside the hole, else one pass (None)."""
    mask = np.ones((512, 512), bool)
    mask[200 : 200 + side, 100 : 100 + side] = False
    got = coarse_setting(1000, 32, mask, "auto", None, 861)
    assert holds_box(mask, 32) == (side >= 32)
    if side < 32:
        assert got is None
    else:
        assert (got.scale, got.first, got.refine_from) == (1, "biharmonic", 861)


def test_bad_settings_raise() -> None:
    mask = np.ones((100, 80), bool)
    mask[40:60, 30:50] = False
    with pytest.raises(
        PosteriorInputError, match=r"coarse=4 shrinks the 80 x 100 image to 20 x 25"
    ):
        coarse_setting(1000, 32, mask, 4, None)
    with pytest.raises(PosteriorInputError, match=r"refine_from must be a step in \[1, T=1000\]"):
        coarse_setting(1000, 32, mask, 2, 0)
    with pytest.raises(PosteriorInputError, match=r"in \[1, T=1000\]"):
        coarse_setting(1000, 32, mask, 2, 1001)
    with pytest.raises(PosteriorInputError, match="integer >= 2"):
        coarse_setting(1000, 32, mask, 1, None)
    with pytest.raises(PosteriorInputError, match="give coarse"):
        coarse_setting(1000, 32, mask, None, 400)
    assert coarse_setting(1000, 32, mask, 2, None, 860).refine_from == 860
    assert coarse_setting(1000, 32, mask, 2, 300, 860).refine_from == 300


def test_refine_step_is_where_the_noise_reaches_the_level() -> None:
    """sqrt((1 - abar) / abar) >= noise: abar <= 1 / (1 + noise^2), the first such step."""
    abar = torch.tensor([1.0, 0.95, 0.81, 0.79, 0.5, 0.49, 0.1])
    assert refine_step(abar, 0.5) == 3  # abar <= 0.8
    assert refine_step(abar, 1.0) == 4  # abar <= 0.5
    assert refine_step(abar, 10.0) == 6  # none reaches 1/101: T


def test_inpaint_refines_the_upsampled_coarse_fill() -> None:
    """Through the API (window, batches, generator): from level 1 the full-size chain takes
    one step of variance beta_1 from the upsampled coarse fill, so its samples equal the
    coarse pass's (run alone with the same generator) upsampled, to within that step; a
    coarse fill ignored, or a start from noise, misses by the spread of the model's
    samples (grey levels 0..16 here)."""
    model = trained(PLAIN)
    image = np.random.default_rng(0).uniform(0, 16, (40, 44))
    mask = np.ones((40, 44), bool)
    mask[12:30, 14:32] = False
    kw = {"steps": 6, "context": 4, "batch_size": 2}
    r = inpaint(
        model,
        image,
        mask,
        3,
        coarse=2,
        refine_from=1,
        generator=torch.Generator().manual_seed(5),
        **kw,
    )
    small, small_mask = downsample(image, mask, 2)
    first = inpaint(model, small, small_mask, 3, generator=torch.Generator().manual_seed(5), **kw)
    want = upsample_into(first.samples, 2, image, mask)
    miss = ~mask
    err = r.samples[:, miss] - want[:, miss]
    assert np.sqrt((err**2).mean()) < 0.3 and np.abs(err).max() < 1.5, err
    assert first.samples[:, ~small_mask].std() > 2  # what the other fills would miss by
    assert np.array_equal(r.samples[:, mask], np.broadcast_to(image[mask], (3, mask.sum())))
    assert "coarse-to-fine at 1/2, refined from level 1 of 20" in r.plan.reason
    assert "a tile inside it sees no known pixel" not in r.plan.reason
    assert r.steps == first.steps + 1


def test_inpaint_auto_and_the_plan_note() -> None:
    """'auto' with 8-pixel training patches: a 20 x 20 hole in 40 x 40 holds an 8 x 8 box,
    so the chain starts from the biharmonic fill, from the step whose noise is
    BIHARMONIC_NOISE (0.125) data sd (abar <= 1 / 1.015625 = 0.985: step 2 of this baseline
    schedule, abar_2 = 0.946); a 6 x 6 hole holds none and runs in one pass, as does
    coarse=None. A given scale runs the coarse pass, from REFINE_NOISE's level (0.5 sd:
    abar <= 0.8, step 5, abar_5 = 0.789)."""
    model = trained(PLAIN)
    image = np.full((40, 40), 8.0)
    big, small = np.ones((40, 40), bool), np.ones((40, 40), bool)
    big[8:28, 8:28] = False
    small[17:23, 17:23] = False
    g = torch.Generator().manual_seed(0)
    assert BIHARMONIC_NOISE == 0.125
    r = inpaint(model, image, big, 1, steps=4, coarse="auto", generator=g)
    assert "started from the biharmonic fill of the hole" in r.plan.reason
    assert "diffused forward to level 2 of 20" in r.plan.reason
    r = inpaint(model, image, big, 1, steps=4, coarse=4, generator=g)
    assert "coarse-to-fine at 1/4, refined from level 5 of 20" in r.plan.reason
    assert "shrunk to 10 x 10, where it is 5 x 5 pixels" in r.plan.reason
    for mask, coarse in ((small, "auto"), (big, None)):
        r = inpaint(model, image, mask, 1, steps=4, coarse=coarse, generator=g)
        assert "coarse-to-fine" not in r.plan.reason and "biharmonic" not in r.plan.reason
    with pytest.raises(PosteriorInputError, match="coarse=8 shrinks the 40 x 40 image to 5 x 5"):
        inpaint(model, image, big, 1, steps=4, coarse=8)
    with pytest.raises(PosteriorInputError, match="refine_from must be a step"):
        inpaint(model, image, big, 1, steps=4, coarse=2, refine_from=21)


def test_biharmonic_start_fills_a_plane_exactly_and_keeps_the_known_pixels() -> None:
    """A plane is biharmonic (its Laplacian is 0), so the fill of any hole in one is the plane
    itself, in each colour channel: a fill that ignores the pixels around the hole (a constant,
    noise) or mixes channels fails; the known pixels come back bit for bit."""
    yy, xx = np.mgrid[0:30, 0:40].astype(np.float64)
    planes = np.stack([3 + 2 * yy + xx, 200 - yy - 3 * xx, np.full_like(yy, 7.5)], axis=-1)
    mask = np.ones((30, 40), bool)
    mask[8:20, 10:30] = False
    mask[25, 2] = False  # a second hole
    for image in (planes[..., 0], planes):
        got = biharmonic_start(image, mask)
        assert got.shape == image.shape
        np.testing.assert_allclose(got, image, atol=1e-6)
        assert np.array_equal(got[mask], image[mask])


def test_inpaint_refines_the_biharmonic_fill() -> None:
    """coarse="biharmonic" from level 1: one step of variance beta_1 from scikit-image's
    biharmonic fill of the whole image, so the samples equal that fill to within the step;
    a start that ignores the fill, starts from noise, or solves on a window too small to see
    the pixels around the hole misses by the model's spread (grey levels 0..16). Its t0
    defaults to BIHARMONIC_NOISE's step, and the plan says what was done."""
    from skimage.restoration import inpaint_biharmonic

    model = trained(PLAIN)
    rng = np.random.default_rng(1)
    image = 8 + 4 * np.sin(np.add.outer(np.arange(40) / 5, np.arange(44) / 7))
    image += rng.normal(0, 0.2, image.shape)
    mask = np.ones((40, 44), bool)
    mask[12:30, 14:32] = False
    kw = {"steps": 6, "context": 0, "batch_size": 2}
    g = torch.Generator().manual_seed(5)
    r = inpaint(model, image, mask, 3, coarse="biharmonic", refine_from=1, generator=g, **kw)
    want = inpaint_biharmonic(image / 16, ~mask) * 16
    miss = ~mask
    err = r.samples[:, miss] - want[None, miss]
    assert np.sqrt((err**2).mean()) < 0.3 and np.abs(err).max() < 1.5, err
    free = inpaint(model, image, mask, 3, generator=g, **kw)
    assert np.sqrt(((free.samples[:, miss] - want[None, miss]) ** 2).mean()) > 1
    assert np.array_equal(r.samples[:, mask], np.broadcast_to(image[mask], (3, mask.sum())))
    assert "started from the biharmonic fill of the hole" in r.plan.reason
    assert "diffused forward to level 1 of 20" in r.plan.reason and r.steps == 1
    small = np.ones((40, 44), bool)
    small[20:23, 20:23] = False  # any hole: no training-size box needed
    r = inpaint(model, image, small, 1, coarse="biharmonic", generator=g, **kw)
    t0 = refine_step(model_reverse(model.model).alpha_bar, BIHARMONIC_NOISE)
    assert f"to level {t0} of 20" in r.plan.reason
    setting = coarse_setting(20, 8, small, "biharmonic", None, t0)
    assert (setting.scale, setting.first, setting.refine_from) == (1, "biharmonic", t0)
