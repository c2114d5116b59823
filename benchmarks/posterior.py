"""Posteriors on a CPU budget: denoising, inpainting and strided sampling (Sohl-Dickstein et
al. 2015, section 2.5, figures 3 and 5; model.md sections 8 and 11).

(a) digits denoised at SNR 1 (noise variance = data variance, as in figure 3): PSNR of the
    noisy input, of the posterior mean, and of scipy's Wiener filter (best window of 3, 5).
(b) texture inpainting of a held-out central square (the table-1 "bark" model, gravel
    texture, patches from the held-out bottom rows): known pixels unchanged; histogram
    (Wasserstein-1, total variation) and power spectrum (RMS log10 ratio of the mean spectra)
    distances of the filled region to the truth, for the paper's method, RePaint (Lugmayr et
    al. 2022) and scikit-image's biharmonic inpainting.
(c) strided sampling on the digits model: the bound K_S of the S-step chain and sample
    statistics against S.
Figures in docs/figures/ (posterior_denoise.png like figure 3, posterior_inpaint.png like
figure 5).

(d) photo-sized inputs (benchmarks/posterior_photos.py): a fully convolutional model trained
    on patches of scikit-image's other photos denoises (sigma 25) and inpaints (64 x 64 hole)
    camera, astronaut and coffee at their own sizes, against Wiener, non-local means and
    biharmonic inpainting.

    python benchmarks/posterior.py --json [--digits-budget-min 8] [--bark-run DIR]
    python benchmarks/posterior.py --parts d --json [--photo-steps 50] [--photo-samples 4]
        [--photo-coarse auto]   (coarse-to-fine inpainting, docs/model-notes.md)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "benchmarks"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import provenance  # noqa: E402
import torch  # noqa: E402
from posterior_inpaint import (  # noqa: E402, F401 (region_distances: benchmarks/posterior_photos)
    bench_inpaint,
    held_out_test_images,
    region_distances,
    upscale,
)
from posterior_photos import NETWORKS  # noqa: E402
from table1_images import COMMON  # noqa: E402  (this folder is on sys.path)

from diffusion.data.splits import load_test_split  # noqa: E402
from diffusion.evaluation.bound import strided_bound  # noqa: E402
from diffusion.images.imageio import grid, save_png  # noqa: E402
from diffusion.inference import load_trained  # noqa: E402
from diffusion.presets import PRESETS  # noqa: E402

FIGURES = ROOT / "docs" / "figures"
# The image rows' network and optimizer settings (benchmarks/table1_images.py), on digits.
DIGITS_OVERRIDES = ("diffusion.T=500", "data.n_holdout=300", *COMMON)


def psnr(x: np.ndarray, ref: np.ndarray, peak: float) -> float:
    """Mean over images of 10 log10(peak^2 / MSE), x and ref (N, H, W)."""
    mse = ((x - ref) ** 2).reshape(len(x), -1).mean(1)
    return float(np.mean(10 * np.log10(peak**2 / mse)))


def train_digits(out: Path, budget_s: float, steps: int = 6000, quick: bool = False):
    from diffusion.training.train import TrainResult, load_final_eval, train

    final = load_final_eval(out)
    if final is not None:  # trained before (within its budget): reuse it
        return TrainResult("done", final.step, final.k_holdout, final, {})
    # quick: tiny, and eager (compiling takes longer than the whole run)
    tiny = ["diffusion.T=20", "train.batch_size=8", "train.eval_examples=8", "train.compile=false"]
    tiny = tiny if quick else []
    cfg = PRESETS["digits"].with_overrides([*DIGITS_OVERRIDES, *tiny, f"train.steps={steps}"])
    t0 = time.monotonic()
    r = train(cfg, out, should_stop=lambda: time.monotonic() - t0 > budget_s)
    if r.status == "stopped":
        cfg = cfg.with_overrides([f"train.steps={max(r.step, 1)}"])
        r = train(cfg, out)
    return r


# ------------------------------------------------------------------------------ (a)
def bench_denoise(trained, n_images: int, n_samples: int, seed: int) -> dict:
    """All images and samples in one batched chain (the same math as `posterior.denoise`,
    which runs one image at a time); clean digits at their bin centres."""
    from scipy.signal import wiener

    from diffusion.chains.posterior_chains import denoise_chain
    from diffusion.chains.reverse import gaussian_reverse

    g = torch.Generator().manual_seed(seed)
    levels = 17
    clean = held_out_test_images(trained, n_images)  # bin centres
    sigma = trained.scaler.scale  # SNR 1: noise variance = data variance
    noisy = clean + sigma * torch.randn(clean.shape, generator=g, dtype=torch.float64).numpy()
    sc = trained.scaler
    ym = torch.from_numpy((noisy - sc.shift) / sc.scale)[:, None]  # (N, 1, 8, 8)
    ym = ym.repeat_interleave(n_samples, 0)
    rev = gaussian_reverse(trained.model)
    out = {
        "images": n_images,
        "samples_per_image": n_samples,
        "sigma_grey_levels": sigma,
        "snr": 1.0,
        "T": trained.model.T,
        "peak": levels,
        "psnr_noisy": psnr(noisy, clean, levels),
    }
    fig = {}
    for start in ("observation", "prior"):
        t0 = time.monotonic()
        x = denoise_chain(rev, ym, (sigma / sc.scale) ** 2, start=start, generator=g)
        xs = np.clip(x[:, 0].numpy() * sc.scale + sc.shift, 0, levels - 1e-6)
        xs = xs.reshape(n_images, n_samples, *clean.shape[1:])
        mean = xs.mean(1)
        out[f"psnr_posterior_mean_start_{start}"] = psnr(mean, clean, levels)
        out[f"psnr_posterior_sample_start_{start}"] = psnr(xs[:, 0], clean, levels)
        out[f"seconds_start_{start}"] = time.monotonic() - t0
        fig[start] = (xs[:, 0], mean)
    out["psnr_posterior_mean"] = out["psnr_posterior_mean_start_observation"]
    wiener_best = {}
    for k in (3, 5):
        w = np.stack([wiener(y, (k, k), sigma**2) for y in noisy])
        wiener_best[k] = (psnr(w, clean, levels), w)
    kbest = max(wiener_best, key=lambda k: wiener_best[k][0])
    out["psnr_wiener"], out["wiener_window"] = wiener_best[kbest][0], kbest
    out["posterior_mean_beats_wiener"] = out["psnr_posterior_mean"] > out["psnr_wiener"]
    sample, mean = fig["observation"]
    rows = [clean[:8], noisy[:8], sample[:8], mean[:8], wiener_best[kbest][1][:8]]
    img = np.clip(np.floor(np.concatenate(rows) * 256 / levels), 0, 255).astype(np.uint8)
    save_png(FIGURES / "posterior_denoise.png", grid(upscale(img, 6), columns=8, pad=2))
    return out


# ------------------------------------------------------------------------------ (c)
def bench_strided(
    trained, step_list: list[int], n_eval: int, n_samples: int, seed: int
) -> list[dict]:
    bundle = trained.bundle
    g = torch.Generator().manual_seed(seed)
    test = load_test_split(trained.config.data, n_eval).x
    x = trained.scaler.to_model(test, g).double()
    d = bundle.unit_divisor
    l_null = float(trained.model.process.log_null(x).mean() / math.log(2) / d)
    data = test.double().numpy() + 0.5
    rows = []
    for S in step_list:
        k = strided_bound(trained.model, x, S, torch.Generator().manual_seed(seed + 1))
        bits = k / math.log(2) / d
        t0 = time.monotonic()
        s = trained.sample(n_samples, generator=torch.Generator().manual_seed(seed + 2), steps=S).x0
        secs = time.monotonic() - t0
        sd = (s * trained.scaler.scale + trained.scaler.shift).numpy()
        rows.append(
            {
                "S": S,
                "K_bits_per_pixel": float(bits.mean()),
                "K_stderr": float(bits.std() / math.sqrt(len(bits))),
                "K_minus_Lnull": float(bits.mean()) - l_null,
                "sample_mean": float(sd.mean()),
                "sample_std": float(sd.std()),
                "data_mean": float(data.mean()),
                "data_std": float(data.std()),
                "seconds_per_sample": secs / n_samples,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    global FIGURES
    run = provenance.start(argv)
    args = _parser().parse_args(argv)
    torch.set_num_threads(1)
    runs = args.runs or (
        Path(tempfile.mkdtemp(prefix="posterior-quick-")) if args.quick else ROOT / "runs"
    )
    if args.quick:
        FIGURES = runs / "figures"
    FIGURES.mkdir(parents=True, exist_ok=True)
    parts = set(args.parts.split(","))
    out: dict = {"budget": "1 CPU thread on a shared 2-core machine"}
    rows: list[dict] = []
    if parts & {"a", "c"}:
        _digits_parts(args, parts, runs, out, rows)
    if "b" in parts:
        _bark_part(args, runs, out, rows)
    if "d" in parts:
        _photos_part(args, runs, out, run)
    if args.results is not None:
        splits = {r["part"]: r["split"] for r in rows}
        seeds = sorted({s for r in rows for s in r["seeds"]})
        provenance.write_results(args.results, run, rows, seeds=seeds, split=splits)
    print(json.dumps(out, indent=2) if args.json else out)
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=None, help="default runs/ (--quick: a temp dir)")
    p.add_argument(
        "--bark-run",
        type=Path,
        default=None,
        help="trained texture run (default: RUNS/table1/bark-seed0)",
    )
    p.add_argument("--digits-budget-min", type=float, default=8.0)
    p.add_argument("--parts", default="a,b,c", help="a, b, c (digits, bark), d (photos)")
    p.add_argument(
        "--photo-preset",
        default="photos-unet",
        help="(d) one of " + ", ".join(NETWORKS),
    )
    p.add_argument("--photo-budget-min", type=float, default=45.0, help="(d) training budget")
    p.add_argument(
        "--photo-train-steps",
        type=int,
        default=100_000,
        help="(d) step cap (photos: the lr schedule length)",
    )
    p.add_argument(
        "--photo-threads",
        type=int,
        default=1,
        help="(d) CPU threads for training the photos model (the chains run on one)",
    )
    p.add_argument(
        "--photo-train-only",
        action="store_true",
        help="(d) train (or resume) the photos model in RUNS/posterior/PRESET and stop",
    )
    p.add_argument("--photo-denoise-steps", type=int, default=10, help="(d) kept steps, [0, t*]")
    p.add_argument("--photo-inpaint-steps", type=int, default=50, help="(d) kept steps, [0, T]")
    p.add_argument("--photo-samples", type=int, default=4, help="(d) inpainting samples")
    p.add_argument("--photo-denoise-samples", type=int, default=2, help="(d) denoising samples")
    p.add_argument("--photo-context", type=int, default=64, help="(d) pixels around the hole")
    p.add_argument(
        "--photo-inpaint-methods",
        default="paper,repaint",
        help="(d) inpainting chains: paper, repaint (Lugmayr et al. 2022, jumps of 10, 5 "
        "resamplings), guided or guided:W (reconstruction guidance, weight W), comma-separated",
    )
    p.add_argument(
        "--photo-readout-tiles",
        default="32,16,6",
        help="(d) tile,overlap,margin of the posterior-mean read-out ('' = the size plan's)",
    )
    p.add_argument(
        "--photo-chain-tiles",
        default="64,24,8",
        help="(d) tile,overlap,margin of the chains ('' = the size plan's)",
    )
    p.add_argument(
        "--photo-coarse",
        default="auto",
        help="(d) coarse-to-fine inpainting (diffusion.chains.posterior_coarse): auto (when a "
        "training-size box fits in the hole), off, S (scale) or S,T0 (scale, start step)",
    )
    p.add_argument("--out", type=Path, default=None, help="(d) results file (default: results/)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny models trained here, tiny sizes, figures to a temp dir (a smoke test)",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--results", type=Path, default=None, help="write parts + provenance here")
    return p


def _digits_parts(args, parts: set[str], runs: Path, out: dict, rows: list[dict]) -> None:
    """Parts (a) denoising and (c) strided bounds, on the digits model (trained here)."""
    t0 = time.monotonic()
    steps = 30 if args.quick else 6000
    r = train_digits(runs / "posterior" / "digits", args.digits_budget_min * 60, steps, args.quick)
    digits = load_trained(runs / "posterior" / "digits", "cpu")
    train_s = time.monotonic() - t0
    out["digits_model"] = {
        "steps": r.step,
        "train_seconds": train_s,
        "K_bits_per_pixel": r.k_holdout.bits if r.k_holdout else None,
        "T": digits.model.T,
    }
    seed = digits.config.train.seed

    def split(n: int) -> dict:  # the test examples a part used, as recorded with its numbers
        return load_test_split(digits.config.data, n).describe(digits.config.data, [seed])

    if "a" in parts:
        t1 = time.monotonic()
        n_images = 8 if args.quick else 64
        out["a_denoise"] = bench_denoise(digits, n_images, 4 if args.quick else 16, 0)
        rows.append(
            _row(
                "a_denoise", out["a_denoise"], split(n_images), seed, train_s, time.monotonic() - t1
            )
        )
    if "c" in parts:
        t1 = time.monotonic()
        T = digits.model.T
        steps = [T, 100, 50, 20, 10, 5] if not args.quick else [T, 5]
        n_eval = 32 if args.quick else 200
        out["c_strided"] = bench_strided(
            digits, [s for s in steps if s <= T], n_eval, 16 if args.quick else 200, 0
        )
        rows.append(
            _row("c_strided", out["c_strided"], split(n_eval), seed, train_s, time.monotonic() - t1)
        )


def _bark_part(args, runs: Path, out: dict, rows: list[dict]) -> None:
    """Part (b): inpainting with the bark texture run."""
    t0 = time.monotonic()
    bark_run = args.bark_run or runs / "table1" / "bark-seed1"
    if args.quick and not bark_run.exists():
        import table1_images

        table1_images.run_row("bark", runs / "table1", 60.0, [1], quick=True)
    bark = load_trained(bark_run, "cpu")
    train_s = time.monotonic() - t0
    t1 = time.monotonic()
    n_patches = 4 if args.quick else 16
    out["b_inpaint"] = bench_inpaint(
        bark, n_patches, 2 if args.quick else 4, 0, 2 if args.quick else 5, FIGURES
    )
    split = load_test_split(bark.config.data, n_patches).describe(
        bark.config.data, [bark.config.train.seed]
    )
    rows.append(
        _row(
            "b_inpaint",
            out["b_inpaint"],
            split,
            bark.config.train.seed,
            train_s,
            time.monotonic() - t1,
        )
    )


def _say_threads(out: dict, training: dict) -> None:
    """The budget line names the threads the photos model trained on, as its training record
    says (a reused model keeps the count it was trained with)."""
    out["budget"] += f"; the photos model trained on {training.get('threads', 1)} thread(s)"


def _photos_part(args, runs: Path, out: dict, run) -> None:
    """Part (d): photos at their own size (benchmarks/posterior_photos.py)."""
    from posterior_photos import bench_photos, train_photos  # this folder is on sys.path

    run_dir = runs / "posterior" / args.photo_preset
    if args.photo_train_only:
        training = out["d_photos_training"] = train_photos(
            run_dir,
            args.photo_budget_min * 60,
            args.photo_train_steps,
            args.photo_preset,
            args.photo_threads,
        )
        _say_threads(out, training)
        return
    opts = {
        "samples": args.photo_samples,
        "denoise_samples": args.photo_denoise_samples,
        "denoise_steps": args.photo_denoise_steps,
        "inpaint_steps": args.photo_inpaint_steps,
        "context": args.photo_context,
        "inpaint_methods": args.photo_inpaint_methods.split(","),
        "readout_tiles": _triple(args.photo_readout_tiles),
        "chain_tiles": _triple(args.photo_chain_tiles),
        **_coarse(args.photo_coarse),
    }
    out["d_photos"] = bench_photos(
        run_dir,
        args.photo_budget_min * 60,
        args.photo_train_steps,
        opts,
        FIGURES,
        args.photo_preset,
    )
    _say_threads(out, out["d_photos"]["model"]["training"])
    from posterior_photos import result_rows

    provenance.write_results(
        args.out or provenance.RESULTS / "posterior_photos.json",
        run,
        result_rows(out["d_photos"]),
        seeds=[0, 10, 11, 12, 20, 21, 22],
        split={
            "model": f"{args.photo_preset} preset, "
            + "/".join(out["d_photos"]["model"]["held_out"])
            + " held out (the last two for choosing the chain: coarse_validation.py)"
        },
        extra={"model": out["d_photos"]["model"], "options": out["d_photos"]["options"]},
    )


def _coarse(text: str) -> dict:
    """--photo-coarse: 'auto' | 'off' | 'S' | 'S,T0' -> inpaint's coarse, refine_from."""
    from posterior_photos import coarse_spec  # this folder is on sys.path

    try:
        return coarse_spec(text)
    except ValueError as e:
        raise SystemExit(f"--photo-coarse: {e}") from None


def _triple(text: str) -> list[int] | None:
    """'32,16,6' -> [32, 16, 6]; '' -> None."""
    return [int(v) for v in text.split(",")] if text.strip() else None


def _row(part: str, numbers, split: dict, seed: int, train_s: float, eval_s: float) -> dict:
    """One part's numbers as a results row (benchmarks/provenance.py); `seed`: the model's
    training seed."""
    return {
        "part": part,
        "numbers": numbers,
        "seeds": [seed],
        "split": split,
        "train_seconds": round(train_s, 1),
        "eval_seconds": round(eval_s, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
