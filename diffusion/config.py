"""The run configuration: one typed, frozen, JSON-serializable record per run, and its schema.

The sections below are pydantic dataclasses: each field's type, limits, default and help text
are declared once here (the options of each data set and network kind in
diffusion.config_options), and everything else reads them: the New run form renders its
fields from them, `difflab train` / `difflab submit`, the worker and the Python API validate
with them. Torch-free: the dashboard, the database and the worker import it.

A bad config raises `ConfigError` listing every problem at once, each with its dotted field
path ("diffusion.T") and what is allowed. Cross-field rules (J <= T, binomial diffusion on
binary data, a full covariance for small vectors, memory) are the sections' validators.

Stored names (data sets, network kinds, schedules, optimizers) are a contract: add, never
rename. Data sets and networks are implemented elsewhere (diffusion.data, diffusion.nets)
and registered there under the names listed here, so that validation needs no torch.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import field
from typing import Annotated, Any, Literal

from pydantic import Field, Strict, field_validator, model_validator

from diffusion.config_checks import (  # noqa: F401  (re-exported)
    ConfigError,
    Float,
    Int,
    Options,
    OptionsMixin,
    config_error,
    freeze_options,
    parse_value,
    schema,
    set_path,
    thaw,
)
from diffusion.config_options import (  # noqa: F401  (limits re-exported)
    MAX_ACTIVATIONS,
    MAX_FULL_COVARIANCE_D,
    VECTOR_DATA,
    data_dims,
    data_options,
    network_options,
    run_problems,
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
NETWORK_KINDS = ("rbf", "mlp", "heartbeat", "conv", "unet")
DIFFUSION_KINDS = ("gaussian", "binomial")
SCHEDULES = ("baseline", "learned", "linear", "cosine", "geometric", "logsnr")
FIXED_SCHEDULES = tuple(name for name in SCHEDULES if name != "learned")
COVARIANCES = ("diagonal", "full")
BASIS_SPACINGS = ("linear", "log")
MEAN_FORMS = ("noise", "v")
OPTIMIZERS = ("adam", "rmsprop")
LR_SCHEDULES = ("constant", "cosine", "exponential")
T_SAMPLING = ("uniform", "importance")
ACTIVATIONS = ("tanh", "relu", "sigmoid", "softplus", "silu", "leaky_relu")
# "mps" is reserved (stored names are never removed) but refused for now: the engine's math
# runs in float64, which Apple's MPS backend does not have (docs/model-notes.md).
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16")

_BIG = 100_000_000


# ---------------------------------------------------------------------------- sections
@schema
class DataConfig(OptionsMixin):
    """Which data set, how much of it, and its own options (e.g. {"sigma": 0.25}).

    `options` keep what was given; `typed_options` is the kind's validated record with its
    defaults (diffusion.config_options).
    """

    name: Literal[DATASET_NAMES] = Field("swissroll", description="The data set")  # type: ignore[valid-type]
    options: Options = Field((), description="The data set's own options")
    n_train: Int = Field(10_000, ge=0, le=_BIG, description="Training examples (0: all there are)")
    n_holdout: Int = Field(
        2_000, ge=1, le=_BIG, description="Held-out examples the bound is reported on"
    )

    @field_validator("options", mode="before")
    @classmethod
    def _freeze(cls, value: Any) -> Options:
        return freeze_options("", value)

    @model_validator(mode="after")
    def _options_valid(self) -> DataConfig:
        data_options(self.name, self.options_dict)
        return self

    @property
    def typed_options(self) -> Any:
        return data_options(self.name, self.options_dict)

    @property
    def dims(self) -> int | None:
        """Values per example, when the options alone tell (None: the file's)."""
        return data_dims(self.name, self.typed_options)


@schema
class DiffusionConfig:
    """The forward process: Gaussian or binomial, T steps, the schedule (model.md 3, 5, 7)."""

    kind: Literal[DIFFUSION_KINDS] = Field(
        "gaussian", description="Gaussian, or binomial for binary data"
    )  # type: ignore[valid-type]
    T: Int = Field(40, ge=2, le=100_000, description="Steps of the forward trajectory")
    schedule: Literal[SCHEDULES] = Field(
        "baseline", description="The forward noise schedule beta_t"
    )  # type: ignore[valid-type]
    beta1: Float = Field(
        1e-3,
        gt=0.0,
        le=0.5,
        description="The fixed noise variance of the first forward step. It caps how sharp "
        "the model can be: detail finer than about sqrt(beta1) is lost (model.md section 5). "
        "Smaller is sharper, but the last reverse step is harder to learn.",
    )
    beta_max: Float = Field(
        0.5, gt=0.0, le=1.0, description="Cap of the baseline schedule 1/(T-t+1)"
    )
    m: Float = Field(0.5, gt=0.0, lt=1.0, description="Binomial equilibrium rate: Bernoulli(m)")
    J: Int = Field(
        0, ge=0, le=100_000, description="Temporal basis functions of the readout (0 = T)"
    )
    schedule_J: Int = Field(
        0, ge=0, le=100_000, description="Basis size of a learned schedule (0 = J)"
    )
    learned_from: Literal[FIXED_SCHEDULES] = Field(  # type: ignore[valid-type]
        "baseline",
        description="Used only by a learned schedule: the fixed schedule it starts from and "
        "learns a perturbation of",
    )
    covariance: Literal[COVARIANCES] = Field(  # type: ignore[valid-type]
        "diagonal",
        description="The Gaussian reverse kernel's covariance: diagonal as in the paper, or full "
        f"(vector data of at most {MAX_FULL_COVARIANCE_D} dimensions; not binomial diffusion)",
    )
    basis: Literal[BASIS_SPACINGS] = Field(  # type: ignore[valid-type]
        "linear", description="Spacing of the J temporal bumps: linear in t (paper) or log"
    )
    mean: Literal[MEAN_FORMS] = Field(  # type: ignore[valid-type]
        "noise",
        description="How the network's mean output is read (diffusion.model): noise (a scaled "
        "noise estimate; zero output keeps mu = x^t) or v (the forward posterior's mean at "
        "x0_hat = sqrt(abar_t) x^t - sqrt(1 - abar_t) y, the v-prediction of Salimans & Ho "
        "2022: zero output is the best linear estimate of unit-variance data; image UNets)",
    )

    @model_validator(mode="after")
    def _rules(self) -> DiffusionConfig:
        problems = [
            (name, f"must be in [0, {self.T}], got {value}")
            for name, value in (("J", self.J), ("schedule_J", self.schedule_J))
            if value > self.T
        ]
        if self.kind == "binomial" and self.schedule != "baseline":
            problems.append(
                (
                    "schedule",
                    "binomial diffusion supports only 'baseline' "
                    f"(the paper's 1/(T-t+1)); got {self.schedule!r}",
                )
            )
        if self.kind == "binomial" and self.mean != "noise":
            problems.append(("mean", "binomial diffusion has no Gaussian mean; leave it 'noise'"))
        if self.kind == "binomial" and self.covariance != "diagonal":
            problems.append(
                ("covariance", "binomial diffusion has no covariance; leave it 'diagonal'")
            )
        if problems:
            raise ConfigError.of(problems)
        return self

    @property
    def readout_J(self) -> int:
        """Number of temporal basis functions actually used (J = 0 means T)."""
        return self.T if self.J == 0 else self.J

    @property
    def learned_schedule_J(self) -> int:
        """Basis size of the learned schedule (schedule_J = 0 means the readout's)."""
        return self.schedule_J or self.readout_J


@schema
class NetworkConfig(OptionsMixin):
    """The network that outputs the reverse-kernel perturbations (model.md section 10).

    kind: "rbf" (normalized radial-basis net, `n_rbf` units), "mlp" (general), "heartbeat"
    (sigmoid MLP 20-50-50-50), "conv" (multi-scale convolutional, diffusion.nets.conv),
    "unet" (a UNet: residual blocks, group norm, a time embedding, optional attention;
    diffusion.nets.unet).
    `options` carries kind-specific settings (diffusion.config_options).
    """

    kind: Literal[NETWORK_KINDS] = Field("mlp", description="The network")  # type: ignore[valid-type]
    hidden: tuple[Annotated[int, Strict(), Field(ge=1, le=65_536)], ...] = Field(
        (128, 128), description="Hidden layer widths, e.g. 128, 128 (mlp)"
    )
    activation: Literal[ACTIVATIONS] = Field("tanh", description="Hidden units' nonlinearity")  # type: ignore[valid-type]
    n_rbf: Int = Field(16, ge=1, le=65_536, description="Radial-basis units (rbf)")
    options: Options = Field((), description="The network's own options")

    @field_validator("hidden", mode="before")
    @classmethod
    def _hidden_tuple(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return (value,)
        return tuple(value) if isinstance(value, list) else value

    @field_validator("options", mode="before")
    @classmethod
    def _freeze(cls, value: Any) -> Options:
        return freeze_options("", value)

    @model_validator(mode="after")
    def _options_valid(self) -> NetworkConfig:
        if self.kind == "mlp" and not self.hidden:
            raise ConfigError("hidden", "give at least one layer width, e.g. 128, 128")
        network_options(self.kind, self.options_dict)
        return self

    @property
    def typed_options(self) -> Any:
        return network_options(self.kind, self.options_dict)


@schema
class TrainConfig:
    """Optimisation, evaluation, galleries and checkpoints.

    lr decays to lr_final by `lr_schedule` ("constant" ignores lr_final) over `lr_steps`
    steps (0: over all `steps`). The learned beta coefficients stay frozen for the first
    `schedule_warmup` fraction of those steps, while the network learns. A continued run
    ("Continue training" on the run page) keeps its schedule's length in `lr_steps` while
    `steps` grows: the lr goes on from where the run stopped, along the original curve, and
    past its end stays at lr_final, so it never jumps at the join. ema = 0 disables the weight
    average; it is updated every `ema_every` steps with the decay raised to the steps since its
    last update (diffusion.training.train._Trainer.update_ema); grad_clip = 0 disables
    clipping. eval_every / gallery_every = 0 evaluate only at
    the end.
    """

    steps: Int = Field(2_000, ge=1, le=_BIG, description="Optimizer steps")
    batch_size: Int = Field(256, ge=1, le=1_000_000, description="Examples per step")
    optimizer: Literal[OPTIMIZERS] = Field("adam", description="The optimizer")  # type: ignore[valid-type]
    lr: Float = Field(1e-3, gt=0.0, le=10.0, description="Learning rate")
    lr_final: Float = Field(1e-4, gt=0.0, le=10.0, description="Learning rate at the end")
    lr_schedule: Literal[LR_SCHEDULES] = Field("cosine", description="How lr decays to lr_final")  # type: ignore[valid-type]
    lr_steps: Int = Field(
        0,
        ge=0,
        le=_BIG,
        description="Steps the lr schedule and schedule_warmup span (0 = steps); a continued "
        "run keeps its original length here and trains at lr_final past it",
    )
    schedule_lr: Float = Field(
        0.0, ge=0.0, le=10.0, description="Learning rate of a learned schedule (0 = lr)"
    )
    schedule_warmup: Float = Field(
        0.0, ge=0.0, lt=1.0, description="Fraction of steps the schedule waits"
    )
    t_sampling: Literal[T_SAMPLING] = Field(  # type: ignore[valid-type]
        "uniform", description="Uniform t, or importance (by the running RMS of the KL terms)"
    )
    ema: Float = Field(0.999, ge=0.0, lt=1.0, description="Weight average decay (0 = none)")
    ema_every: Int = Field(
        10,
        ge=1,
        le=_BIG,
        description="Steps between weight-average updates (each with the decay raised to this "
        "power); 1 = every step",
    )
    grad_clip: Float = Field(1.0, ge=0.0, le=1e9, description="Gradient norm clip (0 = none)")
    log_every: Int = Field(50, ge=1, le=_BIG, description="Steps between logged losses")
    eval_every: Int = Field(1_000, ge=0, le=_BIG, description="Steps between evaluations (0 = end)")
    eval_examples: Int = Field(1_000, ge=1, le=_BIG, description="Held-out examples per evaluation")
    eval_timesteps: Int = Field(
        0,
        ge=0,
        le=_BIG,
        description="t per example in an evaluation: 0 = every t (exact in t); k = k random t "
        "per example, an unbiased estimate (T - 1) / k times k KL terms, k / (T - 1) the work",
    )
    gallery_every: Int = Field(
        0, ge=0, le=_BIG, description="Steps between sample galleries (0 = end)"
    )
    gallery_size: Int = Field(256, ge=1, le=100_000, description="Samples per gallery")
    checkpoint_every_s: Float = Field(
        60.0, ge=0.0, le=1e9, description="Seconds between checkpoints"
    )
    seed: Int = Field(0, ge=0, le=2**63 - 1, description="Seed of every random draw")
    device: Literal[DEVICES] = Field(
        "auto", description="Where to train: auto picks the worker's GPU"
    )  # type: ignore[valid-type]
    precision: Literal[PRECISIONS] = Field(  # type: ignore[valid-type]
        "fp32",
        description="The network's arithmetic: fp32, or bf16 (autocast, CUDA only; the bound, "
        "the kernels and the schedule stay in float64)",
    )
    compile: bool = Field(
        False,
        description="Compile the training step with torch.compile (inductor): faster steps "
        "where the network is small, after a one-off compilation of seconds to a minute, "
        "checked against the eager step; trains eagerly where it cannot",
    )

    @model_validator(mode="after")
    def _no_mps(self) -> TrainConfig:
        if self.device == "mps":
            raise ConfigError(
                "device",
                "mps is not supported yet: the engine computes in float64, which Apple's MPS "
                "backend lacks; use auto, cpu or cuda",
            )
        return self


_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "diffusion": DiffusionConfig,
    "network": NetworkConfig,
    "train": TrainConfig,
}


@schema
class RunConfig:
    """Everything that defines a run. Frozen, validated, JSON round-trips exactly."""

    name: Annotated[str, Strict()] = Field("run", description="The run's name")
    data: DataConfig = field(default_factory=DataConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip() or len(value) > 200:
            raise ConfigError("", "must be a non-empty string of at most 200 characters")
        return value

    @model_validator(mode="after")
    def _rules(self) -> RunConfig:
        problems = run_problems(self)
        if problems:
            raise ConfigError.of(problems)
        return self

    # -- (de)serialization
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        for key in _SECTIONS:
            section = getattr(self, key)
            d = {}
            for f in dataclasses.fields(section):
                value = getattr(section, f.name)
                d[f.name] = section.options_dict if f.name == "options" else thaw(value)
            out[key] = d
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RunConfig:
        if not isinstance(raw, Mapping):
            raise ConfigError("config", "must be a JSON object")
        return cls(**raw)

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
            set_path(raw, key, parse_value(text.strip()), _SECTIONS)
        return RunConfig.from_dict(raw)
