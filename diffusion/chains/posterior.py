"""Posterior sampling for a trained model: denoising and inpainting images, inpainting bits
(Sohl-Dickstein et al. 2015, section 2.5, App. C, figures 3 and 5; model.md section 8).

The stable API that the CLI, the worker and the dashboard call. Images go in and out in
DATA space: float arrays (H, W) for greyscale or (H, W, C) for colour, in the data set's
grey-level units (0..255 for 8-bit sets, 0..16 for the digits); a uint8 array is read as
its bin centres v + 0.5. Noise levels (`sigma`) are standard deviations in the same grey-
level units. Masks are bool (H, W), True = known. The math runs in model space on
`diffusion.chains.posterior_chains`; every chain accepts `steps` = S < T for the strided chain.

    denoise(trained, y, sigma, n, *, steps=None, start="observation", generator=None)
    posterior_mean(trained, y, sigma)  E[x | y] under the model in one or two network calls
                                       (Tweedie, beyond the paper: `posterior_mean`)
    inpaint(trained, image, mask, n, *, method="paper" | "repaint" | "guided", steps=None,
            generator=None, coarse=None | "auto" | s | "biharmonic", refine_from=None)
                                       (guided and the starts: beyond the paper)
    binary_inpaint(trained, bits, mask, n, *, generator=None)         (binomial models)
    make_mask(kind, shape, ...), add_noise(image, sigma, generator)
each returning a `PosteriorResult(samples, mean, std, observed, mask, method, steps)`.
`trained` is a `diffusion.inference.Trained`. Input checks and the data <-> model space maps:
`diffusion.chains.posterior_inputs` (PosteriorInputError, image_levels, image_shape and size_plan
are part of this API).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Literal

import numpy as np
import torch

from diffusion.chains.inpaint_methods import GUIDANCE, METHODS, guidance_error
from diffusion.chains.posterior_chains import (
    binary_inpaint_chain,
    denoise_chain,
    inpaint_paper_chain,
    inpaint_repaint_chain,
    level_of,
)
from diffusion.chains.posterior_coarse import (
    BIHARMONIC,
    CoarseToFine,
    biharmonic_start,
    coarse_setting,
    downsample,
    refine_step,
    start_noise,
    upsample_into,
)
from diffusion.chains.posterior_guided import inpaint_guided_chain
from diffusion.chains.posterior_inputs import (
    PosteriorInputError,
    batched,
    bin_centres,
    check_gaussian,
    check_n,
    check_sigma,
    count_steps,
    count_steps_from,
    image_levels,
    image_reverse,
    image_shape,
    model_device,
    size_plan,
    to_data,
    to_model,
    to_model_batch,
)
from diffusion.chains.posterior_mean import PosteriorMean, posterior_mean
from diffusion.chains.posterior_window import (
    check_mask,
    fill_holes,
    inpaint_window,
    patch_size,
    window_plan,
)
from diffusion.chains.reverse import model_reverse
from diffusion.images.imageio import make_mask
from diffusion.images.tiling import SizePlan
from diffusion.inference import Trained

Method = Literal["paper", "repaint", "guided"]


@dataclass(frozen=True)
class PosteriorResult:
    """n posterior samples for one input, in data space.

    samples: (n, H, W[, C]) float64 (bits: (n, *shape) in {0, 1}); mean, std: per-pixel
    mean and spread over the samples; observed: the input conditioned on (the noisy image,
    or the image whose known pixels are kept); mask: bool (H, W), True = known, or None;
    method: "denoise" | "paper" | "repaint" | "binary"; steps: reverse steps run (S);
    plan: how the image's size was handled (`diffusion.images.tiling.SizePlan`; None for bits).
    """

    samples: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    observed: np.ndarray
    mask: np.ndarray | None
    method: str
    steps: int
    plan: SizePlan | None = None


# ------------------------------------------------------------------------------ helpers
def _result(
    trained: Trained,
    x: torch.Tensor,
    observed: np.ndarray,
    mask: np.ndarray | None,
    method: str,
    steps: int,
    plan: SizePlan,
) -> PosteriorResult:
    samples = to_data(trained, x)
    return PosteriorResult(
        samples=samples,
        mean=samples.mean(0),
        std=samples.std(0),
        observed=observed,
        mask=mask,
        method=method,
        steps=steps,
        plan=plan,
    )


# ---------------------------------------------------------------------------- public API
def add_noise(
    image: np.ndarray, sigma: float, generator: torch.Generator | None = None
) -> np.ndarray:
    """image (data space, or uint8 read as v + 0.5) + N(0, sigma^2) per pixel, float64."""
    x = bin_centres(image)
    eps = torch.randn(x.shape, generator=generator, dtype=torch.float64).numpy()
    return x + sigma * eps


def denoise(
    trained: Trained,
    y: np.ndarray,
    sigma: float,
    n: int,
    *,
    steps: int | None = None,
    start: Literal["observation", "prior", "level"] = "observation",
    generator: torch.Generator | None = None,
    batch_size: int = 64,
    tile: int | None = None,
    overlap: int | None = None,
    margin: int | None = None,
) -> PosteriorResult:
    """n posterior samples of the clean image given y = x + N(0, sigma^2) (figure 3).

    y: (H, W[, C]) data space; sigma: noise standard deviation in grey levels (SNR 1 on
    unit-variance data is sigma = trained.scaler.scale). Every reverse step is multiplied
    by N(y, sigma^2) in closed form; the chain starts from y ("observation") or pi. Or
    start = "level": the plain chain from the step whose noise matches sigma, started at
    sqrt(abar) y (the model's own posterior; `posterior_chains.denoise_chain`).
    Any size a fully convolutional network takes, at once or in tiles (`size_plan`; tile,
    overlap, margin force tiles); other networks take only their training size.
    """
    check_gaussian(trained)
    n = check_n(n)
    check_sigma(sigma)
    ym = to_model(trained, y, "the noisy image")
    plan = size_plan(
        trained, ym.shape[-2:], n, batch_size=batch_size, tile=tile, overlap=overlap, margin=margin
    )
    s2 = (float(sigma) / trained.scaler.scale) ** 2
    rev = image_reverse(trained, plan)
    n_steps = count_steps(trained, steps)
    if start not in ("observation", "prior", "level"):
        raise PosteriorInputError(f"start must be observation, prior or level; got {start!r}")
    if start == "level":
        t_star = level_of(rev, s2)
        n_steps = t_star if steps is None or steps >= t_star else max(2, int(steps))

    def run(k: int) -> torch.Tensor:
        return denoise_chain(
            rev, ym.expand(k, *ym.shape[1:]), s2, steps=steps, start=start, generator=generator
        )

    observed = bin_centres(y)
    x = batched(n, batch_size, run)
    return _result(trained, x, observed, None, "denoise", n_steps, plan)


def _inpaint_chain(method: Method, jump_length: int, jump_n_sample: int, guidance: float):
    """The model-space chain of an inpainting method, (rev, x_known, mask, *, steps,
    generator, start) -> x^0 (diffusion.chains.posterior_chains, posterior_guided)."""
    if method == "paper":
        return inpaint_paper_chain
    if method == "repaint":
        if jump_length < 1 or jump_n_sample < 1:
            raise PosteriorInputError("jump_length and jump_n_sample must be >= 1")
        return partial(inpaint_repaint_chain, jump_length=jump_length, jump_n_sample=jump_n_sample)
    if method == "guided":
        if (error := guidance_error(guidance)) is not None:
            raise PosteriorInputError(error)
        return partial(inpaint_guided_chain, guidance=float(guidance))
    raise PosteriorInputError(f"method must be one of {', '.join(METHODS)}; got {method!r}")


def inpaint(
    trained: Trained,
    image: np.ndarray,
    mask: np.ndarray,
    n: int,
    *,
    method: Method = "paper",
    steps: int | None = None,
    jump_length: int = 10,
    jump_n_sample: int = 5,
    guidance: float = GUIDANCE,
    generator: torch.Generator | None = None,
    batch_size: int = 64,
    tile: int | None = None,
    overlap: int | None = None,
    margin: int | None = None,
    context: int | None = None,
    coarse: int | Literal["auto", "biharmonic"] | None = None,
    refine_from: int | None = None,
) -> PosteriorResult:
    """n posterior samples of the missing pixels (mask False) given the known ones.

    image: (H, W[, C]) data space (values under missing pixels are ignored); mask: bool
    (H, W), True = known. method "paper": known pixels held at their values at every step
    (figure 5); "repaint": Lugmayr et al. 2022 with `jump_length`, `jump_n_sample`;
    "guided": reconstruction guidance of weight `guidance` with the known pixels replaced at
    each step's noise level (Ho et al. 2022; `diffusion.chains.posterior_guided`).
    Known pixels of every sample equal the input exactly. Sizes as in `denoise`.
    context: run the chain only on the box around the missing pixels grown by `context`
    pixels (`diffusion.images.tiling.hole_window`; beyond the network's receptive field the rest
    of the image cannot change the fill); None = on the whole image.
    coarse (beyond the paper; `diffusion.chains.posterior_coarse`): a scale s >= 2 fills the
    hole first on the image shrunk by s (same method, steps and context, in coarse pixels),
    then runs the chain at full size from step refine_from (t0; default: the step whose noise
    is half the data's standard deviation, `posterior_coarse.REFINE_NOISE`) started at
    q(x^t0 | the upsampled coarse fill), `steps` kept steps over [0, t0]; "biharmonic": the
    same from the biharmonic fill of the hole at full size (t0 default: the step at
    `BIHARMONIC_NOISE`); "auto" (the worker's): the biharmonic start when a training-size box
    fits inside the hole, else one pass; None: one pass from pi (the paper).
    """
    check_gaussian(trained)
    n = check_n(n)
    xm = to_model(trained, image, "the image")
    c, h, w = xm.shape[1:]
    check_mask(mask, h, w)
    setting = coarse_setting(
        trained.model.T,
        patch_size(trained),
        np.asarray(mask),
        coarse,
        refine_from,
        (
            refine_step(model_reverse(trained.model).alpha_bar, start_noise(coarse))
            if coarse is not None
            else None
        ),
    )
    y0, y1, x0, x1 = inpaint_window(trained, np.asarray(mask), context)
    win = (..., slice(y0, y1), slice(x0, x1))
    plan = window_plan(
        trained,
        np.asarray(mask)[win],
        (y0, y1, x0, x1),
        (h, w),
        n,
        context,
        batch_size,
        tile,
        overlap,
        margin,
        setting is None,
    )
    mask_t = torch.from_numpy(np.asarray(mask)).to(xm.device)[None, None][win]  # (1, 1, h, w)
    chain = _inpaint_chain(method, jump_length, jump_n_sample, guidance)
    n_steps = count_steps(trained, steps)
    starts = None
    if setting is not None:
        if setting.first == BIHARMONIC:
            first_steps, starts, note = _biharmonic_pass(
                trained, image, mask, n, setting, (y0, y1, x0, x1)
            )
        else:
            first_steps, starts, note = _coarse_pass(
                trained,
                image,
                mask,
                n,
                setting,
                (y0, y1, x0, x1),
                method,
                steps,
                jump_length=jump_length,
                jump_n_sample=jump_n_sample,
                guidance=guidance,
                generator=generator,
                batch_size=batch_size,
                context=context,
            )
        plan = replace(plan, reason=plan.reason + note)
        n_steps = first_steps + count_steps_from(trained, setting.refine_from, steps)
    rev = image_reverse(trained, plan)
    done = [0]

    def run(k: int) -> torch.Tensor:
        part = xm[win]
        start = None
        if starts is not None:
            start = (starts[done[0] : done[0] + k], setting.refine_from)
            done[0] += k
        return chain(
            rev,
            part.expand(k, *part.shape[1:]),
            mask_t,
            steps=steps,
            generator=generator,
            start=start,
        )

    x = batched(n, batch_size, run)
    samples, observed = fill_holes(trained, image, mask, x, n, c, (y0, y1, x0, x1))
    return PosteriorResult(
        samples=samples,
        mean=samples.mean(0),
        std=samples.std(0),
        observed=observed,
        mask=np.asarray(mask),
        method=method,
        steps=n_steps,
        plan=plan,
    )


def _coarse_pass(
    trained: Trained,
    image: np.ndarray,
    mask: np.ndarray,
    n: int,
    setting: CoarseToFine,
    window: tuple[int, ...],
    method: Method,
    steps: int | None,
    **kw,
) -> tuple[int, torch.Tensor, str]:
    """Coarse-to-fine's first pass (`diffusion.chains.posterior_coarse`): the hole filled on the
    image shrunk by setting.scale, by `inpaint` with the same method and keywords. Returns
    (its reverse steps, the starts of the full-size chain on `window` (n, C, h, w) model
    space, the plan's clause)."""
    y0, y1, x0, x1 = window
    observed = bin_centres(image)
    small, small_mask = downsample(observed, mask, setting.scale)
    first = inpaint(trained, small, small_mask, n, method=method, steps=steps, **kw)
    init = upsample_into(first.samples, setting.scale, observed, mask)
    starts = to_model_batch(trained, init[:, y0:y1, x0:x1])
    return first.steps, starts, setting.note(trained.model.T, small_mask, patch_size(trained))


def _biharmonic_pass(
    trained: Trained,
    image: np.ndarray,
    mask: np.ndarray,
    n: int,
    setting: CoarseToFine,
    window: tuple[int, ...],
) -> tuple[int, torch.Tensor, str]:
    """The biharmonic start (`posterior_coarse.biharmonic_start`) on `window` grown by the
    solver's reach of 2 pixels (so that it holds known pixels around every hole): no reverse
    steps, the starts (n alike, (n, C, h, w) model space), the plan's clause."""
    y0, y1, x0, x1 = window
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    g0, g1, f0, f1 = max(y0 - 2, 0), min(y1 + 2, h), max(x0 - 2, 0), min(x1 + 2, w)
    fill = biharmonic_start(bin_centres(image)[g0:g1, f0:f1], mask[g0:g1, f0:f1])
    part = fill[y0 - g0 : y1 - g0, x0 - f0 : x1 - f0]
    starts = to_model_batch(trained, np.repeat(part[None], n, axis=0))
    return 0, starts, setting.note(trained.model.T, mask, patch_size(trained))


def binary_inpaint(
    trained: Trained,
    bits: np.ndarray,
    mask: np.ndarray,
    n: int,
    *,
    generator: torch.Generator | None = None,
) -> PosteriorResult:
    """n posterior samples of the unknown bits of a binary example (binomial models), by
    the binary product at every step (App. C): e.g. the missing bins of a heartbeat.

    bits: the model's example shape (e.g. (20,)), values 0/1; mask: bool, same shape,
    True = known. Returns samples (n, *shape) in {0, 1}, mean = P(bit = 1), std.
    """
    model = trained.model
    if model.process.kind != "binomial":
        raise PosteriorInputError(
            f"binary_inpaint needs a binomial diffusion model; this one is {model.process.kind}"
        )
    n = check_n(n)
    bits_a, mask_a = np.asarray(bits), np.asarray(mask)
    if bits_a.shape != tuple(model.shape) or mask_a.shape != tuple(model.shape):
        raise PosteriorInputError(
            f"bits and mask must have the model's shape {model.shape}, "
            f"got {bits_a.shape} and {mask_a.shape}"
        )
    if not np.isin(bits_a[mask_a], (0, 1)).all():
        raise PosteriorInputError("known bits must be 0 or 1")
    if mask_a.all():
        raise PosteriorInputError("the mask hides nothing (every bit is known)")
    device = model_device(trained)
    rev = model_reverse(model)
    d = torch.where(
        torch.from_numpy(mask_a),
        torch.from_numpy(bits_a.astype(np.float64)),
        torch.tensor(0.5, dtype=torch.float64),
    ).to(device)
    x = binary_inpaint_chain(rev, d.expand(n, *d.shape), generator=generator).cpu().numpy()
    return PosteriorResult(
        samples=x,
        mean=x.mean(0),
        std=x.std(0),
        observed=bits_a.astype(np.float64),
        mask=mask_a,
        method="binary",
        steps=model.T,
    )


__all__ = [
    "PosteriorInputError",
    "PosteriorMean",
    "PosteriorResult",
    "add_noise",
    "binary_inpaint",
    "denoise",
    "image_levels",
    "image_shape",
    "inpaint",
    "make_mask",
    "posterior_mean",
    "size_plan",
]
