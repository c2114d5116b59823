"""Posteriors on photo-sized inputs (part d of benchmarks/posterior.py; issue 10, "Any image
size"): a fully convolutional model trained on 32 x 32 patches of scikit-image's other photos
denoises and inpaints whole photos at their own size.

Model: a preset of `NETWORKS` (default photos-unet, a 16-channel UNet; "photos" is the
paper's multi-scale conv net without the dense pathway; both fully convolutional, T = 1000)
trained on patches of scikit-image's photos with the test photos (camera, astronaut, coffee)
and the validation photos (chelsea, rocket: benchmarks/coarse_validation.py) held out, for
`budget_s` seconds on `--photo-threads` CPU threads (the chains run on one).
Test photos (greyscale, PIL "L"): camera 512 x 512, astronaut 512 x 512, coffee at its own
400 x 600.
- Inpainting a central 64 x 64 hole (the paper's chain, known pixels held): spectrum and
  histogram distances of `benchmarks/posterior.py` against scikit-image's biharmonic fill.
  Target: a lower spectrum distance, a histogram (Wasserstein) distance within 10%.
- Denoising at sigma 25 (0-255): PSNR of the posterior mean against scipy's Wiener filter
  (best window of 3, 5, 7) and scikit-image's non-local means (sigma given, fast mode).
Every chain is the strided chain with `steps` kept steps (a full T = 1000 chain on a
512 x 512 photo costs about 1.3 s per network evaluation per sample on one busy thread).

    python benchmarks/posterior.py --parts d --json [--photo-budget-min 70] [--photo-threads 2]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from diffusion.chains.inpaint_methods import BIHARMONIC, GUIDANCE
from diffusion.presets import PRESETS

TEST_PHOTOS = ("camera", "astronaut", "coffee")
# held out of training with the test photos; the inpainting chain and its settings are chosen
# on these (`tune_inpaint`), never on the test photos
VALIDATION_PHOTOS = ("chelsea", "rocket")
NETWORKS = {
    "photos": "conv (the paper's multi-scale net, no dense pathway: fully convolutional)",
    "photos-unet": "unet (16 channels, mults 1-2-2, v-preconditioned mean: fully convolutional)",
    "photos-unet-scales": "unet as photos-unet, trained on the photos at sizes 1, 1/2 and 1/4",
    "photos-unet-64": "unet as photos-unet, trained on 64 x 64 patches",
}
# batch per preset: the UNet takes smaller batches for more steps in its short budget
PHOTO_BATCH = {"photos": 64, "photos-unet": 32, "photos-unet-scales": 32, "photos-unet-64": 16}
PHOTO_OVERRIDES = (
    "train.eval_every=0",
    "train.eval_examples=16",
    "train.gallery_every=0",
    "train.gallery_size=16",
    "train.log_every=50",
    "train.checkpoint_every_s=120",
    "train.seed=0",
    "train.device=cpu",
)


def train_photos(
    out: Path, budget_s: float, steps: int, preset: str = "photos-unet", threads: int = 1
) -> dict:
    """Train `preset` in `out` for `budget_s` seconds of wall time on `threads` CPU threads,
    or resume it there; reused
    once its budget is spent (budget.json). The UNet presets follow the budget (its learning
    rate decays over the budget: `train(budget_s=...)`; `steps` only caps it); "photos" (the
    paper's net) plans its schedule for `steps` and stops at the budget. The bound is not
    evaluated here (benchmarks/table1_images.py does that for image models); the benchmark
    is the posteriors."""
    from diffusion.training.train import train

    marker = out / "budget.json"
    if marker.exists():
        return json.loads(marker.read_text())
    holdout = json.dumps([*TEST_PHOTOS, *VALIDATION_PHOTOS])
    cfg = PRESETS[preset].with_overrides(
        [
            *PHOTO_OVERRIDES,
            f"train.batch_size={PHOTO_BATCH[preset]}",
            f"train.steps={steps}",
            f"data.options.holdout={holdout}",
        ]
    )
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    t0 = time.monotonic()
    try:
        if preset == "photos":
            r = train(cfg, out, should_stop=lambda: time.monotonic() - t0 > budget_s)
        else:
            r = train(cfg, out, budget_s=budget_s, final_eval=False)
    finally:
        torch.set_num_threads(before)
    info = {
        "preset": preset,
        "status": r.status,
        "steps": r.step,
        "steps_cap": steps,
        "budget_s_this_call": budget_s,
        "threads": threads,
        "wall_seconds_this_call": time.monotonic() - t0,
        "train_seconds_total": r.info.get("train_seconds"),
    }
    marker.write_text(json.dumps(info))
    return info


def held_out_photos(trained) -> tuple[str, ...]:
    """The photos `trained` (a photos run) never trained on (its data option `holdout`)."""
    return tuple(dict(trained.config.data.options).get("holdout", TEST_PHOTOS))


def within_histogram_target(w1: float, w1_biharmonic: float) -> bool:
    """The inpainting histogram target: the fill's W1 within 10% of biharmonic's."""
    return w1 <= 1.1 * w1_biharmonic


def validation_photos(held_out: tuple[str, ...]) -> list[str]:
    """The validation photos a run with these held-out photos never trained on."""
    return [n for n in VALIDATION_PHOTOS if n in held_out]


def test_photo(name: str) -> np.ndarray:
    """The photo under test, greyscale uint8 at its own size (coffee: 400 x 600)."""
    from diffusion.data.photos import photo

    return photo(name)


def _psnr(x: np.ndarray, ref: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((x - ref) ** 2)))


def _tiles(spec: tuple[int, int, int] | None) -> dict:
    """tile, overlap, margin keyword arguments of the posteriors (None: their own plan)."""
    return {} if spec is None else dict(zip(("tile", "overlap", "margin"), spec, strict=True))


def denoise_photo(
    trained,
    img: np.ndarray,
    sigma: float,
    n: int,
    steps: int,
    seed: int,
    readout_tiles: tuple[int, int, int] | None = None,
    chain_tiles: tuple[int, int, int] | None = None,
) -> tuple[dict, tuple]:
    """PSNR (peak 255) of the posterior mean under the model (`posterior_mean`: one or two
    network calls, Tweedie), of the average of n chain samples and of one sample (the chain
    from the matching level, `steps` kept steps), Wiener and non-local means."""
    from scipy.signal import wiener
    from skimage.restoration import denoise_nl_means

    from diffusion.chains.posterior import add_noise, denoise, posterior_mean

    g = torch.Generator().manual_seed(seed)
    clean = img.astype(np.float64) + 0.5
    noisy = add_noise(img, sigma, g)
    t0 = time.monotonic()
    pm = posterior_mean(trained, noisy, sigma, **_tiles(readout_tiles))
    pm_secs = time.monotonic() - t0
    t0 = time.monotonic()
    r = denoise(
        trained,
        noisy,
        sigma,
        n,
        steps=steps,
        start="level",
        generator=g,
        batch_size=n,
        **_tiles(chain_tiles),
    )
    secs = time.monotonic() - t0
    wiener_psnr = {k: _psnr(wiener(noisy, (k, k), sigma**2), clean) for k in (3, 5, 7)}
    kbest = max(wiener_psnr, key=wiener_psnr.get)
    t1 = time.monotonic()
    nlm = 255.0 * denoise_nl_means(
        noisy / 255.0,
        h=0.8 * sigma / 255.0,
        sigma=sigma / 255.0,
        fast_mode=True,
        patch_size=7,
        patch_distance=11,
    )
    return {
        "sigma": sigma,
        "samples": n,
        "posterior_mean": pm.describe(),
        "posterior_mean_steps": list(pm.steps),
        "posterior_mean_seconds": pm_secs,
        "posterior_mean_plan": pm.plan.describe(),
        "start": "level (the chain from the step whose noise matches sigma)",
        "steps_run": r.steps,
        "plan": r.plan.describe(),
        "psnr_noisy": _psnr(noisy, clean),
        "psnr_posterior_mean": _psnr(pm.mean, clean),
        "psnr_samples_mean": _psnr(r.mean, clean),
        "psnr_posterior_sample": _psnr(r.samples[0], clean),
        "psnr_wiener": wiener_psnr[kbest],
        "wiener_window": kbest,
        "psnr_nl_means": _psnr(nlm, clean),
        "nl_means_seconds": time.monotonic() - t1,
        "posterior_mean_beats_wiener": _psnr(pm.mean, clean) > wiener_psnr[kbest],
        "mean_posterior_std": float(r.std.mean()),
        "seconds": secs,
    }, (noisy, pm.mean, r.std)


def method_spec(spec: str) -> tuple[str, dict]:
    """An inpainting chain as the benchmarks name it -> (method, keywords of `inpaint`):
    'paper', 'repaint', 'guided' (its default weight) or 'guided:W' (weight W), each
    optionally followed by '@off', '@auto' or '@S' (coarse-to-fine for this chain alone: one
    pass, the auto rule, scale S from the default start step; without it, the benchmark's
    --photo-coarse), e.g. 'guided:8@off'."""
    spec, at, coarse = spec.partition("@")
    name, _, weight = spec.partition(":")
    keywords: dict = {}
    if at:
        keywords |= coarse_spec(coarse)
    if name == "guided" and weight:
        return name, {"guidance": float(weight), **keywords}
    if weight:
        raise ValueError(f"only the guided method takes a weight ('guided:W'), got {spec!r}")
    return name, keywords


def coarse_spec(text: str) -> dict:
    """'auto' | 'off' | 'S' | 'S,T0' | 'biharmonic' | 'biharmonic,T0' -> `inpaint`'s coarse
    and refine_from (T0: a step; 'biharmonic': the chain started from the biharmonic fill)."""
    text = text.strip()
    if text in ("auto", "off"):
        return {"coarse": None if text == "off" else "auto", "refine_from": None}
    first, _, rest = text.partition(",")
    try:
        parts = [first if first == BIHARMONIC else int(first)]
        parts += [int(rest)] if rest else []
    except ValueError:
        parts = []
    if not parts:
        raise ValueError(
            f"coarse-to-fine: auto, off, S, S,T0, biharmonic or biharmonic,T0; got {text!r}"
        )
    return {"coarse": parts[0], "refine_from": parts[1] if len(parts) == 2 else None}


def inpaint_photo(
    trained,
    img: np.ndarray,
    hole: int,
    n: int,
    steps: int,
    seed: int,
    context: int,
    tiles: tuple[int, int, int] | None = None,
    methods: tuple[str, ...] = ("paper",),
    coarse: int | str | None = None,
    refine_from: int | None = None,
    at: tuple[int, int] | None = None,
) -> dict:
    """A central hole x hole square (or one with its top left corner `at` = (y, x)) filled
    by each chain of `methods` (`method_spec`) and by biharmonic inpainting: the
    distances of `benchmarks/posterior.py` (`region_distances`) to the truth. coarse,
    refine_from: coarse-to-fine (`diffusion.chains.posterior.inpaint`; None: one pass)."""
    from posterior import region_distances  # this folder is on sys.path
    from skimage.restoration import inpaint_biharmonic

    from diffusion.chains.posterior import inpaint, make_mask

    x = img.astype(np.float64) + 0.5
    if at is None:
        mask = make_mask("center", x.shape, size=hole)
    else:
        mask = np.ones(x.shape, bool)
        mask[at[0] : at[0] + hole, at[1] : at[1] + hole] = False
    miss = ~mask
    truth = x[miss].reshape(1, hole, hole)
    t1 = time.monotonic()
    bi = inpaint_biharmonic(x / 256.0, miss) * 256.0
    bi_secs = time.monotonic() - t1
    biharm = region_distances(bi[miss].reshape(1, hole, hole), truth)
    out: dict = {
        "hole": hole,
        "samples": n,
        "steps": steps,
        "context": context,
        "biharmonic": {**biharm, "seconds": bi_secs},
    }
    first_samples = {}
    for method in methods:
        name, keywords = method_spec(method)
        t0 = time.monotonic()
        r = inpaint(
            trained,
            x,
            mask,
            n,
            method=name,
            steps=steps,
            generator=torch.Generator().manual_seed(seed),
            batch_size=n,
            context=context,
            **{"coarse": coarse, "refine_from": refine_from, **keywords},
            **_tiles(tiles),
        )
        secs = time.monotonic() - t0
        fills = r.samples[:, miss].reshape(n, hole, hole)
        model = region_distances(fills, np.repeat(truth, n, 0))
        pre = "" if method == "paper" else f"{method}_"
        if name == "guided":  # the weight it ran at, the default resolved
            model["guidance"] = keywords.get("guidance", GUIDANCE)
        out.update(
            {
                method: {**model, "seconds": secs, "plan": r.plan.describe()},
                f"{pre}beats_biharmonic_on_spectrum": model["spectrum_rms_log10_ratio"]
                < biharm["spectrum_rms_log10_ratio"],
                f"{pre}histogram_within_10pct": within_histogram_target(
                    model["hist_wasserstein_grey_levels"], biharm["hist_wasserstein_grey_levels"]
                ),
                f"{pre}known_pixels_unchanged": bool(np.array_equal(r.samples[0][mask], x[mask])),
                f"{pre}mean_posterior_std_in_hole": float(r.std[miss].mean()),
            }
        )
        out.setdefault("plan", r.plan.describe())
        first_samples[method] = r.samples[0]
    return out, (first_samples, bi)


def bench_photos(
    run_dir: Path,
    budget_s: float,
    train_steps: int,
    opts: dict,
    figures: Path,
    preset: str = "photos-unet",
) -> dict:
    """Part (d): train (or reuse) the photos model, then denoise and inpaint each test photo.

    opts: samples, denoise_steps (kept steps over [0, t*]), inpaint_steps (over [0, T]),
    context (pixels around the hole the inpainting chain runs on)."""
    from diffusion.images.imageio import grid as tile_grid
    from diffusion.images.imageio import save_png
    from diffusion.inference import load_trained

    info = train_photos(run_dir, budget_s, train_steps, preset)
    trained = load_trained(run_dir, "cpu")
    held_out = held_out_photos(trained)
    ckpt = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    info = {**info, "train_seconds_total": float(ckpt["elapsed_s"])}
    out: dict = {
        "model": {
            "preset": preset,
            "network": NETWORKS.get(preset, trained.config.network.kind),
            "network_options": trained.config.network.options_dict,
            "parameters": sum(p.numel() for p in trained.model.net.parameters()),
            "patch": 32,
            "batch": trained.config.train.batch_size,
            "checkpoint_step": trained.step,
            "training": info,
            "T": trained.model.T,
            "held_out": list(held_out),
            "validation_photos": validation_photos(held_out),
        },
        "options": opts,
        "photos": {},
    }
    n = opts["samples"]
    panels = []
    for i, name in enumerate(TEST_PHOTOS):
        img = test_photo(name)
        readout_tiles, chain_tiles = opts.get("readout_tiles"), opts.get("chain_tiles")
        d, (noisy, mean, _) = denoise_photo(
            trained,
            img,
            25.0,
            opts["denoise_samples"],
            opts["denoise_steps"],
            10 + i,
            readout_tiles,
            chain_tiles,
        )
        p, (fills, bi) = inpaint_photo(
            trained,
            img,
            64,
            n,
            opts["inpaint_steps"],
            20 + i,
            opts["context"],
            chain_tiles,
            tuple(opts.get("inpaint_methods") or ("paper",)),
            opts.get("coarse"),
            opts.get("refine_from"),
        )
        out["photos"][name] = {"size_w_h": [img.shape[1], img.shape[0]], "denoise": d, "inpaint": p}
        print(json.dumps({name: out["photos"][name]}), flush=True)
        h, w = img.shape
        crop = (slice(h // 2 - 96, h // 2 + 96), slice(w // 2 - 96, w // 2 + 96))
        shown = (img + 0.5, noisy, mean, *fills.values(), bi)
        panels.append(np.stack([a[crop] for a in shown]))
    grid = np.clip(np.concatenate(panels), 0, 255.99).astype(np.uint8)
    figures.mkdir(parents=True, exist_ok=True)
    save_png(figures / "posterior_photos.png", tile_grid(grid, columns=len(shown), pad=3))
    return out


def result_rows(out: dict) -> list[dict]:
    """One row per photo and task for benchmarks/provenance.py (training seconds on the
    first row only: one model serves every row)."""
    from readme_photos import inpaint_methods  # this folder is on sys.path

    from diffusion.data.photos import PHOTOS

    train = [p for p in PHOTOS if p not in out["model"]["held_out"]]
    rows, first = [], True
    secs = out["model"]["training"].get("train_seconds_total") or 0.0
    for name, res in out["photos"].items():
        for task, seed in (("denoise", 10), ("inpaint", 20)):
            r = res[task]
            rows.append(
                {
                    "row": f"{name} {task}",
                    "size_w_h": res["size_w_h"],
                    **r,
                    "seeds": [0, seed + TEST_PHOTOS.index(name)],
                    "split": {"train_photos": train, "test_photo": name},
                    "train_seconds": secs if first else 0.0,
                    "eval_seconds": r.get("seconds")
                    or sum(r[m]["seconds"] for m in inpaint_methods(r)),
                }
            )
            first = False
    return rows
