"""GPU check (issue 10): training and sampling throughput on CIFAR-10-sized data (3 x 32 x 32),
fp32 against bf16 autocast (the bound in float64 either way), eager against torch.compile, for
the UNet preset's network and the paper's multi-scale net. Run by benchmarks/gpu_check.sh;
`--tiny` runs the same code on the CPU at a toy size (the CI check that it works).
Writes benchmarks/results/gpu_check.json (with provenance) unless --no-write.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from provenance import start, write_results  # noqa: E402

from diffusion.chains.sampling import sample_chain  # noqa: E402
from diffusion.evaluation.bound import train_terms  # noqa: E402
from diffusion.model import DiffusionModel  # noqa: E402
from diffusion.presets import PRESETS  # noqa: E402

NETS = {"unet (cifar10-unet)": ("cifar10-unet", []), "conv (paper)": ("cifar10", [])}


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _model(preset: str, precision: str, size: int, T: int, dev: torch.device) -> DiffusionModel:
    cfg = PRESETS[preset].with_overrides(
        [f"train.precision={precision}", f"diffusion.T={T}", "diffusion.J=0", "train.device=cpu"]
    )
    torch.manual_seed(0)
    return DiffusionModel(cfg, (3, size, size), "images").to(dev)


def train_rate(model: DiffusionModel, batch: int, size: int, steps: int, dev) -> float:
    """Images per second through the bound's training step (one t per image, Adam)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    gen = torch.Generator(device=dev).manual_seed(0)
    x0 = torch.randn(batch, 3, size, size, device=dev)

    def step() -> None:
        k, _, _ = train_terms(model, x0, gen)
        loss = -k.mean() / x0[0].numel()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(dev)
    return batch * steps / (time.perf_counter() - t0)


def sample_rate(model: DiffusionModel, n: int, dev) -> float:
    """Images per second of ancestral sampling over all T steps."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        sample_chain(model, min(n, 4), gen, dev)  # warm-up
        _sync(dev)
        t0 = time.perf_counter()
        sample_chain(model, n, gen, dev)
        _sync(dev)
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="CPU, 8 x 8, T = 10: a quick check")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    run = start(argv)
    cuda = torch.cuda.is_available() and not args.tiny
    dev = torch.device("cuda" if cuda else "cpu")
    size, batch, T, steps, n_sample = (32, 128, 1000, 20, 256) if cuda else (8, 2, 10, 1, 2)
    rows = []
    for name, (preset, _) in NETS.items():
        for precision in ("fp32", "bf16") if cuda else ("fp32",):
            for compiled in (False, True) if cuda and "unet" in preset else (False,):
                t0 = time.perf_counter()
                model = _model(preset, precision, size, T, dev)
                if compiled:
                    model.net = torch.compile(model.net)
                train = train_rate(model, batch, size, steps, dev)
                took = time.perf_counter() - t0
                t1 = time.perf_counter()
                sample = sample_rate(model, n_sample, dev)
                rows.append(
                    {
                        "row": f"{name} {precision}{' compiled' if compiled else ''}",
                        "network": name,
                        "precision": precision,
                        "compiled": compiled,
                        "train_images_per_s": train,
                        "sample_images_per_s": sample,
                        "batch": batch,
                        "size": size,
                        "T": T,
                        "device": str(dev),
                        "seeds": [0],
                        "split": {},
                        "train_seconds": took,
                        "eval_seconds": time.perf_counter() - t1,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    if not args.no_write:
        write_results(
            ROOT / "benchmarks" / "results" / "gpu_check.json",
            run,
            rows,
            seeds=[0],
            split={},
            device=str(dev),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
