"""Part (b) of benchmarks/posterior.py: inpainting on texture patches (paper and RePaint
chains against scikit-image's biharmonic fill; histogram and spectrum distances), and the
shared helpers (test images, upscaling). Figures go to the `figures` folder the caller gives."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from diffusion.chains.posterior import inpaint, make_mask
from diffusion.data.splits import load_test_split
from diffusion.images.imageio import grid, save_png


def held_out_test_images(trained, n: int) -> np.ndarray:
    """(n, H, W) float64 grey levels at their bin centres from the run's TEST split (never
    trained, validated or tuned on; diffusion/data/splits.py)."""
    return load_test_split(trained.config.data, n).x[:, 0].double().numpy() + 0.5


def upscale(images: np.ndarray, k: int) -> np.ndarray:
    return images.repeat(k, axis=-2).repeat(k, axis=-1)


def spectrum(x: np.ndarray) -> np.ndarray:
    """Mean power spectrum of (N, h, w) regions (mean removed, Hann window)."""
    win = np.outer(np.hanning(x.shape[1]), np.hanning(x.shape[2]))
    f = np.fft.fft2((x - x.mean((1, 2), keepdims=True)) * win)
    return (np.abs(f) ** 2).mean(0)


def region_distances(fill: np.ndarray, truth: np.ndarray) -> dict:
    from scipy.stats import wasserstein_distance

    bins = np.linspace(0, 256, 33)
    h1 = np.histogram(fill, bins)[0] / fill.size
    h2 = np.histogram(truth, bins)[0] / truth.size
    s1, s2 = spectrum(fill), spectrum(truth)
    return {
        "hist_wasserstein_grey_levels": float(wasserstein_distance(fill.ravel(), truth.ravel())),
        "hist_total_variation": float(0.5 * np.abs(h1 - h2).sum()),
        "spectrum_rms_log10_ratio": float(
            np.sqrt(np.mean(np.log10((s1 + 1e-9) / (s2 + 1e-9)) ** 2))
        ),
        "rmse_to_truth": float(np.sqrt(((fill - truth) ** 2).mean())),
    }


def bench_inpaint(
    trained, n_patches: int, n_samples: int, seed: int, resample: int, figures: Path
) -> dict:
    """All patches and samples in one batched chain per method (the math of
    `posterior.inpaint`); known pixels checked through `posterior.inpaint` on one patch."""

    from diffusion.chains.posterior_chains import inpaint_paper_chain, inpaint_repaint_chain
    from diffusion.chains.reverse import gaussian_reverse

    g = torch.Generator().manual_seed(seed)
    hold = held_out_test_images(trained, n_patches)
    h, q = hold.shape[1], hold.shape[1] // 2
    mask = make_mask("center", (h, h), size=q)
    miss = ~mask
    sc = trained.scaler
    xm = torch.from_numpy((hold - sc.shift) / sc.scale)[:, None].repeat_interleave(n_samples, 0)
    mask_t = torch.from_numpy(mask)[None, None]
    rev = gaussian_reverse(trained.model)
    truth = np.repeat(hold[:, miss].reshape(-1, 1, q, q), n_samples, 1).reshape(-1, q, q)
    results, fills = {}, {}
    for method in ("paper", "repaint"):
        t0 = time.monotonic()
        if method == "paper":
            x = inpaint_paper_chain(rev, xm, mask_t, generator=g)
        else:
            x = inpaint_repaint_chain(
                rev, xm, mask_t, jump_length=10, jump_n_sample=resample, generator=g
            )
        xs = np.clip(x[:, 0].numpy() * sc.scale + sc.shift, 0, 256 - 1e-6)
        xs = xs.reshape(n_patches, n_samples, h, h)
        fills[method] = xs[:, 0]
        known = _api_known_unchanged(trained, hold[0], mask, method, g)
        results[method] = {
            **region_distances(xs[:, :, miss].reshape(-1, q, q), truth),
            "known_pixels_unchanged": known,
            "seconds": time.monotonic() - t0,
        }
    fills["biharmonic"], results["biharmonic"] = _biharmonic(hold, mask, q)
    _inpaint_figure(hold, miss, fills, n_patches, figures)
    large = (
        figure5_large(trained, seed, figures) if trained.bundle.info.get("holdout_rows") else None
    )
    return {
        "patches": n_patches,
        "samples_per_patch": n_samples,
        "patch": h,
        "large_figure": large,
        "hole": q,
        "T": trained.model.T,
        "repaint_jump_length": 10,
        "repaint_resample": resample,
        "texture": trained.bundle.info.get("texture"),
        "methods": results,
    }


def _biharmonic(hold: np.ndarray, mask: np.ndarray, q: int) -> tuple[np.ndarray, dict]:
    """scikit-image's biharmonic fill of the holes and its numbers (the baseline)."""
    from skimage.restoration import inpaint_biharmonic

    miss = ~mask
    t0 = time.monotonic()
    bi = np.stack([inpaint_biharmonic(x / 256.0, miss) * 256.0 for x in hold])
    return bi, {
        **region_distances(bi[:, miss].reshape(-1, q, q), hold[:, miss].reshape(-1, q, q)),
        "known_pixels_unchanged": bool(np.allclose(bi[:, mask], hold[:, mask])),
        "seconds": time.monotonic() - t0,
    }


def _api_known_unchanged(trained, image: np.ndarray, mask: np.ndarray, method: str, g) -> bool:
    """Known pixels through the public API (`posterior.inpaint`, 10 steps, one sample)."""
    api = inpaint(
        trained,
        image,
        mask,
        1,
        method=method,
        steps=10,
        jump_length=3,
        jump_n_sample=2,
        generator=g,
    )  # known pixels through the public API
    return bool(np.array_equal(api.samples[0][mask], image[mask]))


def _inpaint_figure(
    hold: np.ndarray, miss: np.ndarray, fills: dict, n_patches: int, figures: Path
) -> None:
    """Rows: truth, masked input, paper, RePaint and biharmonic fills (up to 6 patches)."""
    masked = hold.copy()
    masked[:, miss] = 0
    k = min(6, n_patches)
    rows = [hold[:k], masked[:k], fills["paper"][:k], fills["repaint"][:k], fills["biharmonic"][:k]]
    img = np.clip(np.floor(np.concatenate(rows)), 0, 255).astype(np.uint8)
    save_png(figures / "posterior_inpaint.png", grid(upscale(img, 6), columns=k, pad=2))


def figure5_large(trained, seed: int, figures: Path, side: int = 48) -> dict:
    """Figure 5's layout at a larger size: a side x side crop of the held-out region with
    its central half hidden, filled by the patch-trained model (the conv net without the
    dense pathway is fully convolutional, so it runs on any image size)."""
    from skimage.restoration import inpaint_biharmonic

    from diffusion.chains.posterior_chains import inpaint_paper_chain
    from diffusion.chains.reverse import gaussian_reverse
    from diffusion.data.images import texture_image

    if trained.model.net.dense is not None:
        return {"skipped": "the network has a dense pathway (fixed image size)"}
    info = trained.bundle.info
    img = texture_image(info["texture"]).astype(np.float64) + 0.5
    top = info.get("test_rows", info["holdout_rows"])[0] + 8  # the test band
    crop = img[top : top + side, 200 : 200 + side]
    mask = make_mask("center", (side, side), size=side // 2)
    s = trained.scaler
    x = (
        torch.from_numpy((crop - s.shift) / s.scale)
        .reshape(1, 1, side, side)
        .expand(2, 1, side, side)
    )
    t0 = time.monotonic()
    out = inpaint_paper_chain(
        gaussian_reverse(trained.model),
        x,
        torch.from_numpy(mask)[None, None],
        generator=torch.Generator().manual_seed(seed),
    )
    fill = out[:, 0].numpy() * s.scale + s.shift
    secs = time.monotonic() - t0
    bi = inpaint_biharmonic(crop / 256.0, ~mask) * 256.0
    masked = crop.copy()
    masked[~mask] = 0
    panels = np.stack([crop, masked, fill[0], fill[1], bi])
    img8 = np.clip(np.floor(panels), 0, 255).astype(np.uint8)
    save_png(figures / "posterior_inpaint_large.png", grid(upscale(img8, 3), columns=5, pad=3))
    return {
        "side": side,
        "hole": side // 2,
        "seconds": secs,
        **{
            f"paper_{k}": v
            for k, v in region_distances(
                fill[:, ~mask].reshape(-1, side // 2, side // 2),
                np.repeat(crop[~mask].reshape(1, side // 2, side // 2), 2, 0),
            ).items()
        },
        **{
            f"biharmonic_{k}": v
            for k, v in region_distances(
                bi[~mask].reshape(1, side // 2, side // 2),
                crop[~mask].reshape(1, side // 2, side // 2),
            ).items()
        },
    }
