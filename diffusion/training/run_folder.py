"""What a run's folder holds besides its checkpoint (diffusion.training.checkpoint): the
config it was started with (`config.json`), checked when the run resumes, and the run record
(`run.json`): the scaler that maps results back to the data, the seeds and the versions."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from diffusion.config import ConfigError, RunConfig
from diffusion.data import DataBundle

RUN_RECORD = "run.json"
CONFIG = "config.json"


def write_config(out_dir: Path, config: RunConfig) -> None:
    (out_dir / CONFIG).write_text(config.to_json())


def check_same_run(out_dir: Path, config: RunConfig) -> None:
    """Refuse a folder that holds another run (only train.steps may change on resuming, and
    the learning-rate schedule keeps its length)."""
    path = out_dir / CONFIG
    if not path.exists():
        return
    try:
        old = RunConfig.from_json(path.read_text()).to_dict()
    except (ConfigError, OSError) as exc:
        raise ConfigError("config", f"{path} is corrupt or unreadable ({exc})") from None
    new = config.to_dict()
    old_steps = old["train"].pop("steps")
    new["train"].pop("steps")
    old_lr_steps, new_lr_steps = old["train"].pop("lr_steps"), new["train"].pop("lr_steps")
    if old != new:
        raise ConfigError(
            "config",
            f"{out_dir} holds a different run; use another --out "
            "(only train.steps may change when resuming)",
        )
    if new_lr_steps not in (old_lr_steps, old_lr_steps or old_steps):
        raise ConfigError(
            "train.lr_steps",
            f"a continued run keeps its lr schedule's length ({old_lr_steps or old_steps} "
            f"steps), not {new_lr_steps}",
        )


def write_run_record(
    out_dir: Path, config: RunConfig, bundle: DataBundle, device: torch.device
) -> None:
    """run.json: what maps results back to the data (scaler), the seeds and the versions."""
    seed = config.train.seed
    record = {
        "seed": seed,
        "seeds": {
            "data": seed,
            "init": seed,
            "train_stream": seed + 1,
            "eval": seed + 2,
            "gallery": seed + 3,
            "eval_subsets": seed + 4,
            "data_centres": seed + 5,  # RBF centres on the data (network option centres)
            "compile_probe": seed + 6,  # the batch a compiled step is checked on
        },
        "scaler": bundle.scaler.to_dict(),
        "shape": list(bundle.shape),
        "kind": bundle.kind,
        "unit": bundle.unit,
        "unit_divisor": bundle.unit_divisor,
        "true_ll_bits": bundle.true_ll_bits,
        "paper_k_bits": bundle.paper_k_bits,
        "data_info": bundle.info,
        "device": str(device),
        "torch": torch.__version__,
    }
    (out_dir / RUN_RECORD).write_text(json.dumps(record, indent=2))
