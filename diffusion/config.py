"""The run configuration: one typed, frozen, JSON-serializable record per run.

Standard library only (no torch): the dashboard, the database and the worker import it.
Every value is validated on construction; a bad value raises `ConfigError`, whose `field`
is the dotted name ("diffusion.T") and whose message says what is allowed.

Stored names (data sets, network kinds, schedules, optimizers) are a contract: add, never
rename. Data sets and networks are implemented elsewhere (diffusion.data, diffusion.nets)
and registered there under the names listed here, so that validation needs no torch.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from diffusion.config_checks import (  # noqa: F401  (ConfigError, freeze_options: re-exported)
    ConfigError,
    Options,
    _choice,
    _coerce_floats,
    _float,
    _int,
    _OptionsMixin,
    _thaw,
    freeze_options,
)

DATASET_NAMES = (
    "swissroll",
    "heartbeat",
    "vector",
    "deadleaves",
    "texture",
    "digits",
    "mnist",
    "cifar10",
    "images",
    "photos",
)
NETWORK_KINDS = ("rbf", "mlp", "heartbeat", "conv")
DIFFUSION_KINDS = ("gaussian", "binomial")
SCHEDULES = ("baseline", "learned", "linear", "cosine", "geometric", "logsnr")
FIXED_SCHEDULES = tuple(name for name in SCHEDULES if name != "learned")
COVARIANCES = ("diagonal", "full")
BASIS_SPACINGS = ("linear", "log")
MAX_FULL_COVARIANCE_D = 16
OPTIMIZERS = ("adam", "rmsprop")
LR_SCHEDULES = ("constant", "cosine", "exponential")
T_SAMPLING = ("uniform", "importance")
ACTIVATIONS = ("tanh", "relu", "sigmoid", "softplus", "silu", "leaky_relu")
# "mps" is reserved (stored names are never removed) but refused for now: the engine's math
# runs in float64, which Apple's MPS backend does not have (docs/model-notes.md).
DEVICES = ("auto", "cpu", "cuda", "mps")


# ---------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class DataConfig(_OptionsMixin):
    """Which data set, how much of it, and its own options (e.g. {"sigma": 0.25}).

    `options` are data-set-specific; the builder registered under `name` validates them.
    """

    name: str = "swissroll"
    options: Options = ()
    n_train: int = 10_000
    n_holdout: int = 2_000

    def __post_init__(self) -> None:
        _choice("name", self.name, DATASET_NAMES)
        object.__setattr__(self, "options", freeze_options("options", self.options))
        _int("n_train", self.n_train, 0, 100_000_000)
        _int("n_holdout", self.n_holdout, 1, 100_000_000)


@dataclass(frozen=True)
class DiffusionConfig:
    """The forward process: Gaussian or binomial, T steps, the schedule (model.md 3, 5, 7).

    beta1: the fixed first step (caps the model's sharpness, model.md section 5).
    beta_max: cap of the Gaussian baseline schedule 1/(T-t+1) (the official code ends at 0.5).
    m: binomial equilibrium rate pi = Bernoulli(m).
    J: temporal basis size (model.md section 6); 0 or T = one readout per step.
    schedule_J: basis size of the learned schedule's coefficients (0 = the readout's J).
    learned_from: the fixed schedule a learned schedule starts from and perturbs.
    basis: spacing of the J temporal bumps, "linear" in t (the paper's) or "log" (finer at small
        t; diffusion.readout.TemporalBasis). The learned schedule's basis uses it too.
    covariance: the Gaussian reverse kernel's covariance: "diagonal" (the paper's) or "full"
        (a unit lower-triangular correlation factor on top of the paper's variances; vector
        data of at most 16 dimensions; docs/model-notes.md).
    """

    kind: str = "gaussian"
    T: int = 40
    schedule: str = "baseline"
    beta1: float = 1e-3
    beta_max: float = 0.5
    m: float = 0.5
    J: int = 0
    schedule_J: int = 0
    learned_from: str = "baseline"
    covariance: str = "diagonal"
    basis: str = "linear"

    def __post_init__(self) -> None:
        _choice("kind", self.kind, DIFFUSION_KINDS)
        _int("T", self.T, 2, 100_000)
        _choice("schedule", self.schedule, SCHEDULES)
        _float("beta1", self.beta1, 0.0, 0.5, open_lo=True)
        _float("beta_max", self.beta_max, 0.0, 1.0, open_lo=True)
        _float("m", self.m, 0.0, 1.0, open_lo=True, open_hi=True)
        _int("J", self.J, 0, self.T)
        _int("schedule_J", self.schedule_J, 0, self.T)
        _choice("learned_from", self.learned_from, FIXED_SCHEDULES)
        _choice("covariance", self.covariance, COVARIANCES)
        _choice("basis", self.basis, BASIS_SPACINGS)
        _coerce_floats(self)
        if self.kind == "binomial" and self.schedule != "baseline":
            raise ConfigError(
                "schedule",
                "binomial diffusion supports only 'baseline' "
                f"(the paper's 1/(T-t+1)); got {self.schedule!r}",
            )
        if self.kind == "binomial" and self.covariance != "diagonal":
            raise ConfigError(
                "covariance", "binomial diffusion has no covariance; leave it 'diagonal'"
            )

    @property
    def readout_J(self) -> int:
        """Number of temporal basis functions actually used (J = 0 means T)."""
        return self.T if self.J == 0 else self.J

    @property
    def learned_schedule_J(self) -> int:
        """Basis size of the learned schedule (schedule_J = 0 means the readout's)."""
        return self.schedule_J or self.readout_J


@dataclass(frozen=True)
class NetworkConfig(_OptionsMixin):
    """The network that outputs the reverse-kernel perturbations (model.md section 10).

    kind: "rbf" (normalized radial-basis net, `n_rbf` units; options local_linear, width,
    dense), "mlp" (general; options film, t_input, x_skip), "heartbeat" (sigmoid MLP
    20-50-50-50; options width, film, t_input, x_skip), "conv" (multi-scale convolutional,
    see diffusion.nets.conv).
    `hidden` are the hidden widths; `options` carries kind-specific settings.
    """

    kind: str = "mlp"
    hidden: tuple[int, ...] = (128, 128)
    activation: str = "tanh"
    n_rbf: int = 16
    options: Options = ()

    def __post_init__(self) -> None:
        _choice("kind", self.kind, NETWORK_KINDS)
        hidden = self.hidden
        if isinstance(hidden, int) and not isinstance(hidden, bool):
            hidden = (hidden,)
        if not isinstance(hidden, (list, tuple)):
            raise ConfigError("hidden", f"must be a list of positive integers, got {hidden!r}")
        for h in hidden:
            _int("hidden", h, 1, 65_536)
        object.__setattr__(self, "hidden", tuple(hidden))
        _choice("activation", self.activation, ACTIVATIONS)
        _int("n_rbf", self.n_rbf, 1, 65_536)
        object.__setattr__(self, "options", freeze_options("options", self.options))


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, evaluation, galleries and checkpoints.

    lr decays to lr_final by `lr_schedule` ("constant" ignores lr_final). schedule_lr is the
    learning rate of the learned beta coefficients (0 = same as lr); they stay frozen for the
    first `schedule_warmup` fraction of the steps, while the network learns (trained together
    from the start, the schedule shrinks the steps the untrained network is bad at to nothing).
    t_sampling: "uniform" t, or "importance" (p(t) proportional to the running RMS of the KL
    terms; still unbiased). ema = 0 disables the weight average; grad_clip = 0 disables
    clipping. eval_every / gallery_every = 0 evaluate only at the end.
    """

    steps: int = 2_000
    batch_size: int = 256
    optimizer: str = "adam"
    lr: float = 1e-3
    lr_final: float = 1e-4
    lr_schedule: str = "cosine"
    schedule_lr: float = 0.0
    schedule_warmup: float = 0.0
    t_sampling: str = "uniform"
    ema: float = 0.999
    grad_clip: float = 1.0
    log_every: int = 50
    eval_every: int = 1_000
    eval_examples: int = 1_000
    gallery_every: int = 0
    gallery_size: int = 256
    checkpoint_every_s: float = 60.0
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        _int("steps", self.steps, 1, 100_000_000)
        _int("batch_size", self.batch_size, 1, 1_000_000)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _float("lr", self.lr, 0.0, 10.0, open_lo=True)
        _float("lr_final", self.lr_final, 0.0, 10.0, open_lo=True)
        _choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _float("schedule_lr", self.schedule_lr, 0.0, 10.0)
        _float("schedule_warmup", self.schedule_warmup, 0.0, 1.0, open_hi=True)
        _choice("t_sampling", self.t_sampling, T_SAMPLING)
        _float("ema", self.ema, 0.0, 1.0, open_hi=True)
        _float("grad_clip", self.grad_clip, 0.0, 1e9)
        _int("log_every", self.log_every, 1, 100_000_000)
        _int("eval_every", self.eval_every, 0, 100_000_000)
        _int("eval_examples", self.eval_examples, 1, 100_000_000)
        _int("gallery_every", self.gallery_every, 0, 100_000_000)
        _int("gallery_size", self.gallery_size, 1, 100_000)
        _float("checkpoint_every_s", self.checkpoint_every_s, 0.0, 1e9)
        _int("seed", self.seed, 0, 2**63 - 1)
        _choice("device", self.device, DEVICES)
        if self.device == "mps":
            raise ConfigError(
                "device",
                "mps is not supported yet: the engine computes in float64, which Apple's MPS "
                "backend lacks; use auto, cpu or cuda",
            )
        _coerce_floats(self)


_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "diffusion": DiffusionConfig,
    "network": NetworkConfig,
    "train": TrainConfig,
}


def _section_from_dict(prefix: str, cls: type, raw: Any) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(prefix, f"must be an object, got {type(raw).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(
            f"{prefix}.{unknown[0]}", f"unknown field; allowed: {', '.join(sorted(names))}"
        )
    try:
        return cls(**dict(raw))
    except ConfigError as exc:
        raise exc.prefixed(prefix) from None
    except TypeError as exc:  # pragma: no cover - defensive
        raise ConfigError(prefix, str(exc)) from None


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run. Frozen, validated, JSON round-trips exactly."""

    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or len(self.name) > 200:
            raise ConfigError("name", "must be a non-empty string of at most 200 characters")
        for key, cls in _SECTIONS.items():
            if not isinstance(getattr(self, key), cls):
                raise ConfigError(key, f"must be a {cls.__name__}")
        binary = self.data.name == "heartbeat" or self.data.option("binary") is True
        if self.diffusion.kind == "binomial" and not binary:
            raise ConfigError(
                "diffusion.kind",
                "binomial diffusion needs binary data "
                "(heartbeat, or a data set with options.binary=true)",
            )

    # -- (de)serialization
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        for key in _SECTIONS:
            section = getattr(self, key)
            d = {}
            for f in dataclasses.fields(section):
                value = getattr(section, f.name)
                d[f.name] = section.options_dict if f.name == "options" else _thaw(value)
            out[key] = d
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RunConfig:
        if not isinstance(raw, Mapping):
            raise ConfigError("config", "must be a JSON object")
        allowed = {"name", *_SECTIONS}
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise ConfigError(unknown[0], f"unknown field; allowed: {', '.join(sorted(allowed))}")
        kwargs: dict[str, Any] = {}
        if "name" in raw:
            kwargs["name"] = raw["name"]
        for key, section_cls in _SECTIONS.items():
            if key in raw:
                kwargs[key] = _section_from_dict(key, section_cls, raw[key])
        return cls(**kwargs)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError("config", f"is not valid JSON: {exc}") from None
        return cls.from_dict(raw)

    def with_overrides(self, overrides: Iterable[str]) -> RunConfig:
        """Apply "section.field=value" strings, e.g. "train.steps=200", "data.options.sigma=0.02".

        Values are parsed as JSON when they parse ("200", "0.5", "[64,64]", "true"), else kept
        as strings; "64,64" is accepted for list fields.
        """
        raw = self.to_dict()
        for item in overrides:
            key, sep, text = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ConfigError("override", f"expected key=value, got {item!r}")
            _set_path(raw, key, _parse_value(text.strip()))
        return RunConfig.from_dict(raw)


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if "," in text:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            return [json.loads(p) for p in parts]
        except json.JSONDecodeError:
            return parts
    return text


def _set_path(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    if parts == ["name"]:
        raw["name"] = value if isinstance(value, str) else str(value)
        return
    if len(parts) < 2 or parts[0] not in _SECTIONS:
        raise ConfigError(
            key, f"unknown field; use one of {', '.join(_SECTIONS)} followed by .field (or 'name')"
        )
    section = raw[parts[0]]
    if parts[1] == "options" and len(parts) == 3:
        if "options" not in section:
            raise ConfigError(key, f"section {parts[0]} has no options")
        section["options"] = {**section["options"], parts[2]: value}
        return
    if len(parts) != 2:
        raise ConfigError(key, "expected section.field or section.options.key")
    if parts[1] not in section:
        raise ConfigError(key, f"unknown field; allowed: {', '.join(sorted(section))}")
    if parts[1] == "hidden" and isinstance(value, int):
        value = [value]
    section[parts[1]] = value
