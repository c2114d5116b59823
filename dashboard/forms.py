"""The New run form as data: field values in, a validated RunConfig or field-level errors out.

The form starts from a preset (the rows of Table 1 of Sohl-Dickstein et al. 2015, and tiny
"-smoke" variants for quick checks), and the user overrides the common fields and the
options of the chosen data set and network. Fields, limits, defaults and help come from the
config schema (dashboard.form_fields); validation is the schema's own (`RunConfig.from_dict`,
whose `ConfigError.problems` name every field that is wrong), the same that `difflab submit`
and the worker apply. Keys are config paths ("diffusion.T", "data.options.sigma"). Nothing
here touches Streamlit or the store.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dashboard.form_fields import (
    FieldSpec,
    field_spec,
    from_widget_value,
    option_paths,
    to_widget_value,
)
from diffusion.config import (
    FIXED_SCHEDULES,
    MAX_FULL_COVARIANCE_D,
    VECTOR_DATA,
    ConfigError,
    RunConfig,
)
from diffusion.preset_cards import card_lines
from diffusion.presets import PRESETS

DATASET_LABELS: dict[str, str] = {
    "swissroll": "Swiss roll (2-D)",
    "heartbeat": "Heartbeat (binary sequences)",
    "deadleaves": "Dead leaves (images)",
    "texture": "Textures (bark)",
    "digits": "Digits (8 x 8)",
    "mnist": "MNIST",
    "cifar10": "CIFAR-10",
    "images": "Uploaded images (folder or zip)",
    "photos": "Photo patches (scikit-image's photos)",
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
    "train.eval_examples",
    "train.eval_timesteps",
)
FIELD_LABELS = {
    "name": "Run name",
    "data.name": "Data set",
    "diffusion.kind": "Diffusion kind",
    "diffusion.T": "T",
    "diffusion.schedule": "Schedule",
    "diffusion.learned_from": "Learned schedule starts from",
    "diffusion.beta1": "First step beta1",
    "diffusion.covariance": "Reverse covariance",
    "network.kind": "Network",
    "network.hidden": "Hidden layer widths",
    "train.steps": "Training steps",
    "train.batch_size": "Batch size",
    "train.lr": "Learning rate",
    "train.seed": "Seed",
    "train.device": "Device",
    "train.eval_examples": "Examples per evaluation",
    "train.eval_timesteps": "t per example in an evaluation (0 = all)",
}
# (example, t) pairs per second of the bound's evaluation on one CPU thread, by data set (each
# preset's network): written by benchmarks/eval_speed.py, never by hand.
EVAL_RATES = json.loads((Path(__file__).parent / "eval_rates.json").read_text())
EVAL_PAIRS_PER_S: dict[str, float] = EVAL_RATES["pairs_per_s"]
EVAL_PAIRS_PER_S_IMAGES = min(  # any other image set: the slowest measured image rate
    rate for name, rate in EVAL_PAIRS_PER_S.items() if name not in VECTOR_DATA
)
DUPLICATE_WINDOW_S = 60.0
CHOICE_LABELS: dict[str, dict[str, str]] = {
    "data.name": DATASET_LABELS,
    "diffusion.kind": KIND_LABELS,
    "diffusion.schedule": SCHEDULE_LABELS,
    "diffusion.learned_from": LEARNED_FROM_LABELS,
    "diffusion.covariance": COVARIANCE_LABELS,
    "network.kind": NETWORK_LABELS,
    "train.device": DEVICE_LABELS,
}


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


def preset_card(preset: str | None) -> list[str]:
    """The preset's card: its network, how it was tuned, what it reaches ([] for custom)."""
    if not preset or preset not in PRESETS:
        return []
    return card_lines(preset, PRESETS[preset])


def base_config(preset: str | None) -> RunConfig:
    """The preset's config, or the engine's defaults for "custom"."""
    if preset and preset in PRESETS:
        return PRESETS[preset]
    return RunConfig()


def form_fields(data: str, network: str) -> tuple[str, ...]:
    """Every field on the form: the common ones, then the data set's and network's options."""
    return FORM_FIELDS + option_paths("data", data) + option_paths("network", network)


def spec(path: str, data: str, network: str) -> FieldSpec:
    return field_spec(path, data, network)


def label(path: str) -> str:
    return FIELD_LABELS.get(path, path.rsplit(".", 1)[-1].replace("_", " ").capitalize())


def _value(cfg: RunConfig, path: str) -> Any:
    parts = path.split(".")
    if len(parts) == 1:
        return getattr(cfg, path)
    section = getattr(cfg, parts[0])
    if parts[1] == "options":
        return section.option(parts[2], spec(path, cfg.data.name, cfg.network.kind).default)
    return getattr(section, parts[1])


def defaults_for(preset: str | None) -> dict[str, Any]:
    """The form's field values as the preset sets them (keys: form_fields of its kinds)."""
    cfg = base_config(preset)
    return values_for(cfg, preset or cfg.name)


def values_for(cfg: RunConfig, name: str) -> dict[str, Any]:
    """The form's field values for a config (a preset's, or a run's for "New run from this")."""
    data, network = cfg.data.name, cfg.network.kind
    values = {
        path: to_widget_value(spec(path, data, network), _value(cfg, path))
        for path in form_fields(data, network)
    }
    values["name"] = name
    return values


def eval_estimate(values: Mapping[str, Any]) -> tuple[int, float] | None:
    """(pairs, seconds on one CPU thread) of one evaluation: 2 subsets x eval_examples x
    (T - 1, or eval_timesteps if fewer) (example, t) pairs, at the rate that
    benchmarks/eval_speed.py measured for the data set's preset network."""
    try:
        T = int(values.get("diffusion.T") or 0)
        n = int(values.get("train.eval_examples") or 0)
        k = int(values.get("train.eval_timesteps") or 0)
    except (TypeError, ValueError):
        return None
    if T < 2 or n < 1:
        return None
    pairs = 2 * n * (min(k, T - 1) if k > 0 else T - 1)
    rate = EVAL_PAIRS_PER_S.get(str(values.get("data.name")), EVAL_PAIRS_PER_S_IMAGES)
    return pairs, pairs / rate


def recent_duplicate(
    runs: Sequence[Any], config: Mapping[str, Any], owner_id: int, now: dt.datetime
) -> Any | None:
    """A run of this owner with exactly this config, created in the last minute, or None."""
    for run in runs:
        age = (now - run.created_at).total_seconds()
        if run.owner_id == owner_id and 0 <= age <= DUPLICATE_WINDOW_S and run.config == config:
            return run
    return None


def option_defaults(section: str, kind: str) -> dict[str, Any]:
    """The option fields of a newly chosen data set or network: a preset's, else the schema's."""
    given: dict[str, Any] = {}
    for preset in preset_names():
        part = getattr(PRESETS[preset], section)
        if (part.name if section == "data" else part.kind) == kind:
            given = part.options_dict
            break
    data, network = (kind, "mlp") if section == "data" else ("swissroll", kind)
    out = {}
    for path in option_paths(section, kind):
        s = spec(path, data, network)
        out[path] = to_widget_value(s, given.get(s.name, s.default))
    return out


def _data_section_for(name: str, current: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the preset's data options when the data set is unchanged; else borrow a preset's."""
    if current.get("name") == name:
        return copy.deepcopy(dict(current))
    for preset in preset_names():
        cfg = PRESETS[preset]
        if cfg.data.name == name:
            return cfg.to_dict()["data"]
    return {"name": name, "options": {}}


def _set(raw: dict[str, Any], path: str, value: Any, default: Any) -> None:
    """Set a field of the config dict; an option left at the schema's default stays unwritten
    (unless the preset wrote it), so that an untouched form gives the preset's own record."""
    parts = path.split(".")
    if len(parts) == 1:
        raw[path] = value
    elif parts[1] == "options":
        options = raw[parts[0]].setdefault("options", {})
        as_default = tuple(value) if isinstance(value, list) else value
        if value is None or (as_default == default and parts[2] not in options):
            options.pop(parts[2], None)
        else:
            options[parts[2]] = value
    else:
        raw[parts[0]][parts[1]] = value


def _raw_config(
    values: Mapping[str, Any],
    preset: str | None,
    errors: dict[str, str],
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The preset's (or `base`'s) config dict with the form's values set; unparsable lists go
    to `errors`."""
    raw = copy.deepcopy(dict(base) if base is not None else base_config(preset).to_dict())
    data = str(values.get("data.name", raw["data"]["name"]))
    network = str(values.get("network.kind", raw["network"]["kind"]))
    raw["data"] = _data_section_for(data, raw["data"])
    if network != raw["network"]["kind"]:
        raw["network"]["options"] = {}  # another kind's options do not apply
    for path in form_fields(data, network):
        if path not in values or path == "data.name":
            continue
        if path == "diffusion.learned_from" and values.get("diffusion.schedule") != "learned":
            continue  # unused by a fixed schedule: the preset's value stays
        field_spec_ = spec(path, data, network)
        value, problem = from_widget_value(field_spec_, values[path])
        if problem:
            errors[path] = problem
        else:
            _set(raw, path, value, field_spec_.default)
    if isinstance(raw["name"], str):
        raw["name"] = raw["name"].strip()
    lr = raw["train"].get("lr")
    if isinstance(lr, (int, float)) and not isinstance(lr, bool):
        raw["train"]["lr_final"] = min(raw["train"].get("lr_final", lr), lr)
    return raw


def validate_form(
    values: Mapping[str, Any],
    preset: str | None = None,
    data_options: Mapping[str, Any] | None = None,
    base: Mapping[str, Any] | None = None,
) -> FormResult:
    """Turn the form's values into a RunConfig, or say which fields are wrong and why.

    `values` are keyed by config path (form_fields); `data_options` (e.g. uploaded image
    hashes) are merged into the data set's options. Every problem is reported at once.
    `base`: the config that fields not on the form come from (a run's, for "New run from
    this run"); the preset's by default.
    """
    errors: dict[str, str] = {}
    raw = _raw_config(values, preset, errors, base)
    if data_options:
        raw["data"]["options"] = {**raw["data"].get("options", {}), **data_options}
    fields = form_fields(raw["data"]["name"], raw["network"]["kind"])
    try:
        config = RunConfig.from_dict(raw)
    except ConfigError as exc:
        for field_, message in exc.problems:
            errors.setdefault(field_ if field_ in fields else _nearest_field(field_), message)
        return FormResult(None, errors, preset)
    if errors:
        return FormResult(None, errors, preset)
    return FormResult(config, {}, preset)


def _nearest_field(dotted: str) -> str:
    """A config field not on the form is reported against its section's first form field."""
    for key in FORM_FIELDS:
        if dotted.startswith(key.split(".")[0] + "."):
            return key
    return "name"
