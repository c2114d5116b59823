"""`difflab denoise | inpaint`: posterior sampling for a trained image model (no services).

  difflab denoise DIR IMAGE --sigma S -n N --out FILE [--steps S] [--add-noise]
  difflab inpaint DIR IMAGE --mask MASK.png [--method paper|repaint|guided] [--guidance W]
                  -n N --out FILE [--steps S]

IMAGE is a PNG/JPEG with the model's channel count, at the model's size or (a fully
convolutional network) any size, run at once or on tiles; the JSON line says which. --sigma
is the noise standard deviation in the file's 8-bit grey levels; IMAGE is the noisy
observation, or the clean image to corrupt first with --add-noise. MASK: white = known,
black = to fill in. FILE: .png (a row: input, samples, the samples' mean, for denoise the
posterior mean read out in one network call, spread) or .npz (arrays in data space; denoise
adds `mean_readout`). Every input is checked first; on any error nothing is written.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from difflab.errors import UserError
from diffusion.chains.inpaint_methods import (
    GUIDANCE,
    INPAINT_CONTEXT,
    INPAINT_START,
    MAX_GUIDANCE,
    METHODS,
    STARTS,
    guidance_error,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    d = _image_command(
        subparsers,
        "denoise",
        "posterior samples of a clean image given a noisy one (paper figure 3)",
    )
    d.add_argument(
        "--sigma",
        type=float,
        required=True,
        help="noise standard deviation in 8-bit grey levels (0..255)",
    )
    d.add_argument(
        "--add-noise",
        action="store_true",
        help="IMAGE is clean: add N(0, sigma^2) noise first (seeded)",
    )
    d.add_argument(
        "--start",
        choices=("observation", "prior", "level"),
        default="observation",
        help="the paper's chain from y or pi, or the plain chain from the matching noise level",
    )
    _common(d)
    d.set_defaults(func=cmd_denoise)

    i = _image_command(
        subparsers, "inpaint", "fill in the masked pixels of an image (paper figure 5, or RePaint)"
    )
    i.add_argument(
        "--mask",
        type=Path,
        required=True,
        help="PNG of the image's size: white = known, black = fill in",
    )
    i.add_argument("--method", choices=METHODS, default="paper")
    i.add_argument(
        "--guidance",
        type=float,
        default=GUIDANCE,
        help=f"guided method: the weight w, 0..{MAX_GUIDANCE:g} (default {GUIDANCE:g})",
    )
    i.add_argument("--jump-length", type=int, default=10, help="RePaint jump length")
    i.add_argument("--resample", type=int, default=5, help="RePaint resamplings per jump")
    i.add_argument(
        "--start",
        choices=STARTS,
        default=INPAINT_START,
        help="auto (the worker's): a hole wider than the model's training patches starts from "
        "its biharmonic fill, noised to an intermediate level; off: one pass from noise (the "
        "paper); biharmonic: that start for any hole",
    )
    i.add_argument(
        "--context",
        type=int,
        default=INPAINT_CONTEXT,
        help=f"pixels around the hole the chain runs on (default {INPAINT_CONTEXT}, as the worker)",
    )
    _common(i)
    i.set_defaults(func=cmd_inpaint)


def _image_command(
    subparsers: argparse._SubParsersAction, name: str, help: str
) -> argparse.ArgumentParser:
    """A subcommand on a trained run's folder and an image file (args.run_dir, args.image)."""
    p = subparsers.add_parser(name, help=help)
    p.add_argument("run_dir", type=Path)
    p.add_argument("image", type=Path)
    return p


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", type=int, default=8, help="posterior samples (default 8)")
    p.add_argument("--out", type=Path, required=True, help=".png figure or .npz arrays")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        metavar="S",
        help="strided chain of S < T steps (default: all T)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)


def _check_out(out: Path) -> None:
    if out.suffix.lower() not in (".png", ".npz"):
        raise UserError(f"--out must end in .png or .npz, got {out.name!r}")
    if out.exists() and out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name")


def _load(args: argparse.Namespace):
    from diffusion.config import ConfigError
    from diffusion.inference import load_trained

    if not args.run_dir.is_dir():
        raise UserError(f"{args.run_dir}: no such run folder")
    try:
        trained = load_trained(args.run_dir, device=args.device)
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    except (RuntimeError, OSError, KeyError, ValueError, EOFError) as exc:
        raise UserError(f"{args.run_dir}: cannot load the checkpoint ({exc})") from None
    shape = tuple(trained.model.shape)
    if trained.process.kind != "gaussian" or len(shape) != 3 or shape[0] not in (1, 3):
        raise UserError(
            f"{args.run_dir}: this needs a Gaussian diffusion model of images; "
            f"this run is {trained.process.kind} on {trained.config.data.name} "
            f"(example shape {shape})"
        )
    return trained


def _read(trained, path: Path):
    """The image file as data space (H, W[, C]) float64, after every check."""
    from diffusion.chains.posterior import image_levels
    from diffusion.images.imageio import ImageInputError, read_image_checked, to_data

    c = trained.model.shape[0]
    try:  # any size: the posterior runs it, or refuses it saying which sizes the model takes
        img = read_image_checked(path, None, c)
    except ImageInputError as exc:
        raise UserError(str(exc)) from None
    return to_data(img, image_levels(trained))


def _write(trained, result, out: Path, readout=None) -> None:
    """`readout`: denoise's posterior mean in one read-out (np.ndarray) or None."""
    import numpy as np

    from diffusion.chains.posterior import image_levels
    from diffusion.images.imageio import grid, save_png, to_uint8

    levels = image_levels(trained)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npz":
        tmp = out.with_name(f".{out.name}.tmp.npz")
        np.savez_compressed(
            tmp,
            samples=result.samples,
            mean=result.mean,
            std=result.std,
            observed=result.observed,
            mask=result.mask if result.mask is not None else np.zeros(0),
            **({"mean_readout": readout} if readout is not None else {}),
        )
        tmp.replace(out)
        return
    observed = result.observed.copy()
    if result.mask is not None:  # show the missing pixels black
        observed[~result.mask] = 0.0
    spread = result.std / max(float(result.std.max()), 1e-12) * (levels - 1e-6)
    extra = [readout] if readout is not None else []
    panels = [observed, *result.samples, result.mean, *extra, spread]
    save_png(out, grid(np.stack([to_uint8(p, levels) for p in panels]), columns=len(panels)))


def _run(args: argparse.Namespace, compute) -> int:
    import torch

    from diffusion.chains.posterior import PosteriorInputError

    _check_out(args.out)
    if args.n < 1:
        raise UserError("-n must be >= 1")
    trained = _load(args)
    if args.steps is not None and not 2 <= args.steps <= trained.model.T:
        raise UserError(f"--steps must be in [2, T={trained.model.T}], got {args.steps}")
    generator = torch.Generator().manual_seed(args.seed)
    try:
        result, readout = compute(trained, generator)
    except PosteriorInputError as exc:
        raise UserError(str(exc)) from None
    _write(trained, result, args.out, readout.mean if readout is not None else None)
    print(
        json.dumps(
            {
                "out": str(args.out),
                "n": args.n,
                "method": result.method,
                "steps": result.steps,
                "size": result.plan.describe() if result.plan is not None else None,
                **({"readout": readout.describe()} if readout is not None else {}),
            }
        )
    )
    return 0


def cmd_denoise(args: argparse.Namespace) -> int:
    import math

    from diffusion.chains.posterior import add_noise, denoise, image_levels, posterior_mean

    if not math.isfinite(args.sigma) or args.sigma <= 0:
        raise UserError(f"--sigma must be a positive number of grey levels, got {args.sigma}")

    def compute(trained, generator):
        y = _read(trained, args.image)
        sigma = args.sigma * image_levels(trained) / 256.0  # file grey levels -> data units
        if args.add_noise:
            y = add_noise(y, sigma, generator)
        result = denoise(
            trained, y, sigma, args.n, steps=args.steps, start=args.start, generator=generator
        )
        return result, posterior_mean(trained, y, sigma)  # E[x | y] in one or two read-outs

    return _run(args, compute)


def cmd_inpaint(args: argparse.Namespace) -> int:
    from diffusion.chains.posterior import inpaint
    from diffusion.images.imageio import ImageInputError, read_mask

    if args.jump_length < 1 or args.resample < 1:
        raise UserError("--jump-length and --resample must be >= 1")
    if (error := guidance_error(args.guidance)) is not None:
        raise UserError(f"--guidance: {error}")
    if args.context < 0:
        raise UserError(f"--context must be >= 0 pixels, got {args.context}")

    def compute(trained, generator):
        image = _read(trained, args.image)
        try:
            mask = read_mask(args.mask, image.shape[:2])  # the image's own size, as the worker
        except ImageInputError as exc:
            raise UserError(str(exc)) from None
        result = inpaint(
            trained,
            image,
            mask,
            args.n,
            method=args.method,
            steps=args.steps,
            jump_length=args.jump_length,
            jump_n_sample=args.resample,
            guidance=args.guidance,
            generator=generator,
            context=args.context,
            coarse=None if args.start == "off" else args.start,
        )
        return result, None

    return _run(args, compute)
