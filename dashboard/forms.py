"""The New run form as data: field values in, a validated RunConfig or field-level errors out.

The form starts from a preset (the rows of Table 1 of Sohl-Dickstein et al. 2015, and tiny
"-smoke" variants for quick checks), and the user overrides the common fields. Validation
is the engine's schema (`RunConfig.from_dict`, whose `ConfigError.problems` name every
field that is wrong), plus the parsing of what a person types (numbers, lists). Nothing here
touches Streamlit or the store.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from diffusion.config import (
    FIXED_SCHEDULES,
    MAX_FULL_COVARIANCE_D,
    ConfigError,
    RunConfig,
)

try:  # the presets module is torch-free; fall back to none while it is being written
    from diffusion.presets import PRESETS
except ImportError:  # pragma: no cover - only while diffusion.presets is absent
    PRESETS: dict[str, RunConfig] = {}

DATASET_LABELS: dict[str, str] = {
    "swissroll": "Swiss roll (2-D)",
    "heartbeat": "Heartbeat (binary sequences)",
    "deadleaves": "Dead leaves (images)",
    "texture": "Textures (bark)",
    "digits": "Digits (8 x 8)",
    "mnist": "MNIST",
    "cifar10": "CIFAR-10",
    "images": "Uploaded images (folder or zip)",
}
KIND_LABELS = {"gaussian": "Gaussian", "binomial": "Binomial"}
SCHEDULE_LABELS = {
    "baseline": "Fixed 1/(T-t+1) (paper)",
    "learned": "Learned with the bound",
    "linear": "Fixed linear",
    "cosine": "Fixed cosine",
    "geometric": "Fixed geometric (noise variance grows by a constant factor)",
    "logsnr": "Fixed linear log SNR",
}
# The fixed schedules a learned one can start from (every schedule but "learned")
LEARNED_FROM_LABELS = {name: SCHEDULE_LABELS.get(name, name) for name in FIXED_SCHEDULES}
COVARIANCE_LABELS = {
    "diagonal": "Diagonal (paper)",
    "full": f"Full (vector data up to {MAX_FULL_COVARIANCE_D} dims)",
}
NETWORK_LABELS = {
    "mlp": "MLP",
    "rbf": "Radial basis (swiss roll)",
    "heartbeat": "Heartbeat MLP (20-50-50-50)",
    "conv": "Multi-scale convolutional",
}
DEVICE_LABELS = {
    "auto": "Auto (GPU if the worker has one)",
    "cpu": "CPU",
    "cuda": "CUDA GPU",
}

FORM_FIELDS = (
    "name",
    "data.name",
    "diffusion.kind",
    "diffusion.T",
    "diffusion.schedule",
    "diffusion.learned_from",
    "diffusion.beta1",
    "diffusion.covariance",
    "network.kind",
    "network.hidden",
    "train.steps",
    "train.batch_size",
    "train.lr",
    "train.seed",
    "train.device",
)


@dataclass(frozen=True)
class FormResult:
    """The outcome of validating the form: a config, or messages keyed by form field."""

    config: RunConfig | None
    errors: dict[str, str] = field(default_factory=dict)
    preset: str | None = None

    @property
    def ok(self) -> bool:
        return self.config is not None and not self.errors


def preset_names() -> list[str]:
    """Table 1 presets first, then the rest, smoke presets last."""
    names = list(PRESETS)
    return sorted(names, key=lambda n: (n.endswith("-smoke"), n))


def base_config(preset: str | None) -> RunConfig:
    """The preset's config, or the engine's defaults for "custom"."""
    if preset and preset in PRESETS:
        return PRESETS[preset]
    return RunConfig()


def defaults_for(preset: str | None) -> dict[str, Any]:
    """The form's field values as the preset sets them (keys: FORM_FIELDS)."""
    cfg = base_config(preset)
    return {
        "name": preset or cfg.name,
        "data.name": cfg.data.name,
        "diffusion.kind": cfg.diffusion.kind,
        "diffusion.T": cfg.diffusion.T,
        "diffusion.schedule": cfg.diffusion.schedule,
        "diffusion.learned_from": cfg.diffusion.learned_from,
        "diffusion.beta1": cfg.diffusion.beta1,
        "diffusion.covariance": cfg.diffusion.covariance,
        "network.kind": cfg.network.kind,
        "network.hidden": ", ".join(str(h) for h in cfg.network.hidden),
        "train.steps": cfg.train.steps,
        "train.batch_size": cfg.train.batch_size,
        "train.lr": cfg.train.lr,
        "train.seed": cfg.train.seed,
        "train.device": cfg.train.device,
    }


def _data_section_for(name: str, current: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the preset's data options when the data set is unchanged; else borrow a preset's."""
    if current.get("name") == name:
        return dict(current)
    for preset in preset_names():
        cfg = PRESETS[preset]
        if cfg.data.name == name:
            return cfg.to_dict()["data"]
    return {"name": name}


def _parse_int(key: str, value: Any, errors: dict[str, str]) -> int | None:
    if isinstance(value, bool):
        errors[key] = "must be a whole number"
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        errors[key] = f"must be a whole number, got {value!r}"
        return None


def _parse_float(key: str, value: Any, errors: dict[str, str]) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        errors[key] = f"must be a number, got {value!r}"
        return None
    if not math.isfinite(out):
        errors[key] = f"must be a finite number, got {value!r}"
        return None
    return out


# Network kinds whose layer sizes come from elsewhere (rbf: n_rbf; conv: its own channels)
_NETS_WITHOUT_HIDDEN = ("rbf", "conv")


def _parse_hidden(value: Any, network: Any, errors: dict[str, str]) -> list[int] | None:
    text = str(value).replace(" ", "")
    if not text:
        if network in _NETS_WITHOUT_HIDDEN:
            return []
        errors["network.hidden"] = "give at least one layer width, e.g. 128, 128"
        return None
    try:
        widths = [int(part) for part in text.split(",") if part]
    except ValueError:
        errors["network.hidden"] = f"must be whole numbers separated by commas, got {value!r}"
        return None
    if not widths or any(w < 1 for w in widths):
        errors["network.hidden"] = "layer widths must be positive whole numbers, e.g. 128, 128"
        return None
    return widths


def validate_form(
    values: Mapping[str, Any],
    preset: str | None = None,
    data_options: Mapping[str, Any] | None = None,
) -> FormResult:
    """Turn the form's values into a RunConfig, or say which field is wrong and why.

    `values` holds FORM_FIELDS; `data_options` (e.g. uploaded image hashes) are merged into
    the data set's options.
    """
    errors: dict[str, str] = {}
    raw = copy.deepcopy(base_config(preset).to_dict())
    name = str(values.get("name", "")).strip()
    if not name:
        errors["name"] = "give the run a name (at most 200 characters)"
    raw["name"] = name or "run"
    raw["data"] = _data_section_for(str(values.get("data.name")), raw["data"])
    if data_options:
        raw["data"]["options"] = {**raw["data"].get("options", {}), **data_options}
    raw["diffusion"]["kind"] = values.get("diffusion.kind")
    raw["diffusion"]["schedule"] = values.get("diffusion.schedule")
    if raw["diffusion"]["schedule"] == "learned":  # otherwise the preset's value, unused
        raw["diffusion"]["learned_from"] = values.get("diffusion.learned_from")
    raw["diffusion"]["covariance"] = values.get("diffusion.covariance")
    raw["network"]["kind"] = values.get("network.kind")
    raw["train"]["device"] = values.get("train.device")
    for key in ("diffusion.T", "train.steps", "train.batch_size", "train.seed"):
        parsed = _parse_int(key, values.get(key), errors)
        if parsed is not None:
            section, name_ = key.split(".")
            raw[section][name_] = parsed
    beta1 = _parse_float("diffusion.beta1", values.get("diffusion.beta1"), errors)
    if beta1 is not None:
        raw["diffusion"]["beta1"] = beta1
    lr = _parse_float("train.lr", values.get("train.lr"), errors)
    if lr is not None:
        raw["train"]["lr"] = lr
        raw["train"]["lr_final"] = min(raw["train"].get("lr_final", lr), lr)
    hidden = _parse_hidden(values.get("network.hidden", ""), values.get("network.kind"), errors)
    if hidden is not None:
        raw["network"]["hidden"] = hidden
    if errors:
        return FormResult(None, errors, preset)
    try:
        config = RunConfig.from_dict(raw)
    except ConfigError as exc:
        for field_, message in exc.problems:
            key = field_ if field_ in FORM_FIELDS else _nearest_field(field_)
            errors.setdefault(key, message)
        return FormResult(None, errors, preset)
    return FormResult(config, {}, preset)


def _nearest_field(dotted: str) -> str:
    """A config field not on the form is reported against its section's first form field."""
    for key in FORM_FIELDS:
        if dotted.startswith(key.split(".")[0] + "."):
            return key
    return "name"
