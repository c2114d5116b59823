"""The options of each data set and network kind: one typed schema per kind (pydantic).

`DataConfig.options` and `NetworkConfig.options` keep only what the user gave (that is what
is stored with a run); `data_options(name, options)` / `network_options(kind, options)`
validate them against the kind's schema below and return the typed record with defaults,
which the builders in diffusion.data and diffusion.nets read. The New run form renders its
option fields from these schemas. Torch-free. Stored option names are a contract: add,
never rename.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, Strict, ValidationError, field_validator, model_validator
from pydantic.dataclasses import dataclass

from diffusion.config_checks import Bool, ConfigError, Float, Int, Str, config_error
from diffusion.memory import memory_problem

Width = Annotated[int, Strict(), Field(ge=1, le=4096)]
_CONFIG = ConfigDict(extra="forbid")
MAX_FULL_COVARIANCE_D = 16
# T x batch x values per example beyond this is refused as too large for memory
MAX_ACTIVATIONS = 2_000_000_000
VECTOR_DATA = ("swissroll", "heartbeat", "vector")  # the rest are images
TEXTURES = ("brick", "grass", "gravel")  # scikit-image's 512 x 512 greyscale textures
TEXTURE_SIDE = 512


def _as_tuple(value: Any) -> Any:
    """One width may be given as an integer; JSON gives lists."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    return tuple(value) if isinstance(value, list) else value


# ------------------------------------------------------------------------------ data sets
@dataclass(frozen=True, config=_CONFIG)
class SwissrollOptions:
    sigma: Float = Field(
        0.25, ge=0.001, le=5.0, description="Noise added to the roll (its thickness)"
    )


@dataclass(frozen=True, config=_CONFIG)
class HeartbeatOptions:
    length: Int = Field(20, ge=2, le=10_000, description="Bits per sequence")
    period: Int = Field(5, ge=1, le=10_000, description="Bits between two beats (at most length)")

    @model_validator(mode="after")
    def _period_fits(self) -> HeartbeatOptions:
        if self.period > self.length:
            raise ConfigError(
                "period", f"must be an integer in [1, length={self.length}], got {self.period}"
            )
        return self


@dataclass(frozen=True, config=_CONFIG)
class VectorOptions:
    path: Str | None = Field(None, description="A .npy or .csv file of vectors, one per row")
    binary: Bool = Field(False, description="The values are 0/1 (for binomial diffusion)")

    @model_validator(mode="after")
    def _path_given(self) -> VectorOptions:
        if not self.path:
            raise ConfigError("path", "a .npy or .csv file path is required")
        return self


@dataclass(frozen=True, config=_CONFIG)
class DeadleavesOptions:
    size: Int = Field(32, ge=2, le=1024, description="Image side in pixels")
    r_min: Float = Field(1.0, gt=0.0, le=1e6, description="Smallest disk radius (pixels)")
    r_max: Float | None = Field(None, gt=0.0, le=1e6, description="Largest radius (default: size)")
    on_the_fly: Bool = Field(False, description="Draw fresh training images every minibatch")

    @model_validator(mode="after")
    def _radii(self) -> DeadleavesOptions:
        r_max = self.size if self.r_max is None else self.r_max
        if self.r_min >= r_max:
            raise ConfigError("r_min", f"need 0 < r_min < r_max, got {self.r_min}, {r_max}")
        return self


@dataclass(frozen=True, config=_CONFIG)
class TextureOptions:
    texture: Literal[TEXTURES] = Field("gravel", description="Which texture")  # type: ignore[valid-type]
    patch: Int = Field(32, ge=2, le=TEXTURE_SIDE // 2, description="Patch side in pixels")
    holdout_rows: Int = Field(128, ge=2, le=TEXTURE_SIDE, description="Rows at the bottom held out")

    @model_validator(mode="after")
    def _regions(self) -> TextureOptions:
        # half of the held-out rows validate, half are the test split: each holds a patch
        if not 2 * self.patch <= self.holdout_rows <= TEXTURE_SIDE - self.patch:
            raise ConfigError(
                "holdout_rows",
                f"must be in [2 x patch = {2 * self.patch}, {TEXTURE_SIDE - self.patch}] "
                f"(validation and test halves of at least a patch each, and at least "
                f"{self.patch} training rows of {TEXTURE_SIDE}), got {self.holdout_rows}",
            )
        return self


@dataclass(frozen=True, config=_CONFIG)
class NoOptions:
    pass


@dataclass(frozen=True, config=_CONFIG)
class DownloadOptions:
    root: Str | None = Field(None, description="Folder of the files (default: the data folder)")
    download: Bool = Field(True, description="Download the files when they are missing")


@dataclass(frozen=True, config=_CONFIG)
class ImagesOptions:
    path: Str | None = Field(None, description="A folder or a zip of PNG/JPEG images")
    size: Int | tuple[Int, Int] = Field(32, description="Side, or [H, W], each in 2..1024")
    mode: Literal["L", "RGB"] = Field("L", description="L: greyscale, RGB: colour")
    test_path: Str | None = Field(
        None,
        description="Another folder or zip of test images: then every image of path trains and "
        "the first n_holdout of these (name order) are held out",
    )

    @field_validator("size", mode="before")
    @classmethod
    def _size_list(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    @model_validator(mode="after")
    def _checks(self) -> ImagesOptions:
        if not self.path:
            raise ConfigError("path", "give a folder or a zip of PNG/JPEG images")
        if not all(2 <= s <= 1024 for s in self.hw):
            raise ConfigError("size", f"must be a side or [H, W] in 2..1024, got {self.size!r}")
        return self

    @property
    def hw(self) -> tuple[int, int]:
        return (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)


# scikit-image's bundled photos (no download), all at least 172 pixels on a side
PHOTOS = (
    "astronaut",
    "camera",
    "coffee",
    "chelsea",
    "rocket",
    "coins",
    "clock",
    "moon",
    "page",
    "text",
    "brick",
    "grass",
    "gravel",
    "immunohistochemistry",
    "cell",
)
DEFAULT_HOLDOUT = ("camera", "astronaut", "coffee")
PhotoNames = tuple[Literal[PHOTOS], ...]  # type: ignore[valid-type]


@dataclass(frozen=True, config=_CONFIG)
class PhotosOptions:
    patch: Int = Field(32, ge=4, le=160, description="Side of the square patches")
    holdout: PhotoNames = Field(DEFAULT_HOLDOUT, description="Photos never trained on")
    photos: PhotoNames | None = Field(None, description="Photos to train on (default: the rest)")
    scales: tuple[Annotated[int, Strict(), Field(ge=1, le=4)], ...] = Field(
        (1,),
        description="Each photo is also shrunk by these factors (block means), patches drawn "
        "from every size: the statistics that coarse-to-fine inpainting's first pass meets",
    )

    @field_validator("holdout", "photos", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else _as_tuple(value)

    @field_validator("scales", mode="before")
    @classmethod
    def _scales(cls, value: Any) -> Any:
        return _as_tuple(value)

    @model_validator(mode="after")
    def _disjoint(self) -> PhotosOptions:
        if not self.holdout or self.photos == ():
            raise ConfigError(
                "holdout" if not self.holdout else "photos", "name at least one photo"
            )
        if not self.scales or len(set(self.scales)) != len(self.scales):
            raise ConfigError("scales", "give one or more different factors, e.g. [1, 2, 4]")
        overlap = sorted(set(self.train_photos) & set(self.holdout))
        if overlap:
            raise ConfigError(
                "photos", f"{', '.join(overlap)} cannot be both trained on and held out"
            )
        return self

    @property
    def train_photos(self) -> tuple[str, ...]:
        if self.photos is not None:
            return self.photos
        return tuple(n for n in PHOTOS if n not in self.holdout)


DATA_OPTIONS: dict[str, type] = {
    "swissroll": SwissrollOptions,
    "heartbeat": HeartbeatOptions,
    "vector": VectorOptions,
    "deadleaves": DeadleavesOptions,
    "texture": TextureOptions,
    "digits": NoOptions,
    "mnist": DownloadOptions,
    "cifar10": DownloadOptions,
    "images": ImagesOptions,
    "photos": PhotosOptions,
}


def data_dims(name: str, opts: Any) -> int | None:
    """Values per example of a data set, known from its options alone (None: from its file)."""
    fixed = {"swissroll": 2, "digits": 64, "mnist": 784, "cifar10": 3072}
    if name in fixed:
        return fixed[name]
    if name == "heartbeat":
        return opts.length
    if name == "deadleaves":
        return opts.size**2
    if name in ("texture", "photos"):
        return opts.patch**2
    if name == "images":
        return math.prod(opts.hw) * (3 if opts.mode == "RGB" else 1)
    return None


# ---------------------------------------------------------------------------- networks
_T_INPUT = "Also feed the basis weights g(t) to the first layer"
_FILM = "Scale and shift every hidden layer by a function of g(t) (FiLM)"
_X_SKIP = "Feed x^t into every hidden layer after the first"


@dataclass(frozen=True, config=_CONFIG)
class MlpOptions:
    film: Bool = Field(False, description=_FILM)
    t_input: Bool = Field(False, description=_T_INPUT)
    x_skip: Bool = Field(False, description=_X_SKIP)


@dataclass(frozen=True, config=_CONFIG)
class HeartbeatNetOptions(MlpOptions):
    width: Width = Field(50, description="Units of each of the three hidden layers")


@dataclass(frozen=True, config=_CONFIG)
class RbfOptions:
    local_linear: Bool = Field(False, description="Each unit is a local linear expert")
    width: Float = Field(0.5, ge=0.0001, le=100.0, description="Initial RBF width (model units)")
    dense: tuple[Width, ...] = Field((), description="Widths of a dense pathway beside the units")
    dense_t: Bool = Field(
        False, description="Also feed the temporal basis weights g(t) to the dense pathway"
    )
    width_t: Bool = Field(
        False,
        description="Each unit's width also changes with the noise level (a log-width per unit "
        "on the temporal basis, zero at initialisation)",
    )
    centres: Literal["normal", "data"] = Field(
        "normal",
        description="Initial unit centres: normal draws N(0, I); data spreads them over a "
        "sample of the training data (farthest-point order), so every unit starts on the data",
    )

    @field_validator("dense", mode="before")
    @classmethod
    def _dense_tuple(cls, value: Any) -> Any:
        return _as_tuple(value)


@dataclass(frozen=True, config=_CONFIG)
class ConvOptions:
    conv_layers: Int = Field(4, ge=0, le=4096, description="Multi-scale convolution layers")
    conv_channels: Int = Field(20, ge=0, le=4096, description="Channels of each of them")
    kernel: Int = Field(3, ge=1, le=4096, description="Kernel side (odd)")
    scales: Int = Field(0, ge=0, le=4096, description="Scales 1, 2, 4, ... (0 = automatic)")
    dense_hidden: Int = Field(
        0, ge=0, le=4096, description="Units of the fully connected pathway (0 = none)"
    )
    dense_layers: Int = Field(2, ge=0, le=4096, description="Layers of that pathway")
    dense_out: Int = Field(2, ge=1, le=4096, description="Its features per pixel")
    upper: tuple[Width, ...] = Field((20, 20), description="Widths of the per-pixel dense layers")

    @field_validator("upper", mode="before")
    @classmethod
    def _upper_tuple(cls, value: Any) -> Any:
        return _as_tuple(value)

    @model_validator(mode="after")
    def _odd(self) -> ConvOptions:
        if self.kernel % 2 == 0:
            raise ConfigError("kernel", f"must be odd, got {self.kernel}")
        return self


@dataclass(frozen=True, config=_CONFIG)
class UnetOptions:
    channels: Int = Field(32, ge=1, le=1024, description="Channels at the first level")
    mults: tuple[Annotated[int, Strict(), Field(ge=1, le=64)], ...] = Field(
        (1, 2, 2), min_length=1, max_length=8, description="Width multipliers, one per level"
    )
    res_blocks: Int = Field(1, ge=1, le=16, description="Residual blocks per level")
    attention: tuple[Annotated[int, Strict(), Field(ge=1, le=65_536)], ...] = Field(
        (), description="Resolutions (sides in pixels) whose blocks get self-attention"
    )
    mid_attention: Bool = Field(False, description="Self-attention between the middle blocks")
    heads: Int = Field(1, ge=1, le=64, description="Attention heads (divide every width)")
    groups: Int = Field(32, ge=1, le=1024, description="Group-norm groups (capped to divide)")
    dropout: Float = Field(0.0, ge=0.0, lt=1.0, description="Dropout in the residual blocks")
    time: Literal["sinusoidal", "basis"] = Field(
        "sinusoidal", description="Time embedding: sinusoidal, or the temporal basis g(t)"
    )
    readout: Literal["direct", "basis"] = Field(
        "direct", description="Output: direct, or the paper's readout on the temporal basis"
    )
    channels_last: Bool = Field(False, description="Channels-last memory format")

    @field_validator("mults", "attention", mode="before")
    @classmethod
    def _tuples(cls, value: Any) -> Any:
        return _as_tuple(value)

    @model_validator(mode="after")
    def _heads_divide(self) -> UnetOptions:
        if self.attention or self.mid_attention:
            bad = [self.channels * m for m in self.mults if (self.channels * m) % self.heads]
            if bad:
                raise ConfigError("heads", f"must divide every width; {bad[0]} is not divisible")
        return self


NETWORK_OPTIONS: dict[str, type] = {
    "rbf": RbfOptions,
    "mlp": MlpOptions,
    "heartbeat": HeartbeatNetOptions,
    "conv": ConvOptions,
    "unet": UnetOptions,
}


# ---------------------------------------------------------------------------- validation
def validate_options(table: Mapping[str, type], kind: str, options: Mapping[str, Any]) -> Any:
    """The typed options of `kind`; ConfigError with paths "options.KEY" for every problem."""
    cls = table[kind]
    try:
        return cls(**options)
    except ValidationError as exc:
        err = config_error(exc, cls, "options")
    allowed = ", ".join(sorted(cls.__pydantic_fields__)) or "(none)"
    raise ConfigError.of(
        (
            f,
            f"unknown option for {kind}; allowed: {allowed}"
            if m.startswith("unknown field")
            else m,
        )
        for f, m in err.problems
    )


def data_options(name: str, options: Mapping[str, Any]) -> Any:
    return validate_options(DATA_OPTIONS, name, options)


def network_options(kind: str, options: Mapping[str, Any]) -> Any:
    return validate_options(NETWORK_OPTIONS, kind, options)


# ---------------------------------------------------------------- rules across sections
def run_problems(cfg: Any) -> list[tuple[str, str]]:
    """The rules that span sections: binary data for binomial diffusion, a full covariance
    only for small vectors, and what fits in memory."""
    problems = []
    binary = cfg.data.name == "heartbeat" or cfg.data.option("binary") is True
    if cfg.diffusion.kind == "binomial" and not binary:
        problems.append(
            (
                "diffusion.kind",
                "binomial diffusion needs binary data "
                "(heartbeat, or a data set with options.binary=true)",
            )
        )
    dims = cfg.data.dims
    if cfg.diffusion.kind == "gaussian" and cfg.diffusion.covariance == "full":
        what = f"{dims:,} values per example" if dims else "size known from its file"
        too_big = cfg.data.name not in VECTOR_DATA or (dims or 0) > MAX_FULL_COVARIANCE_D
        if too_big:
            kind = "vector" if cfg.data.name in VECTOR_DATA else "image"
            problems.append(
                (
                    "diffusion.covariance",
                    f"a full covariance is for vector data of at most {MAX_FULL_COVARIANCE_D} "
                    f"dimensions; {cfg.data.name} is {kind} data ({what}): use diagonal",
                )
            )
    size = cfg.diffusion.T * cfg.train.batch_size * (dims or 1)
    if size > MAX_ACTIVATIONS:
        problems.append(
            (
                "diffusion.T",
                f"T = {cfg.diffusion.T} with batch {cfg.train.batch_size} is too large for memory "
                f"({size:,} values per step of the bound); lower T or the batch size so that "
                f"T x batch x data size stays under {MAX_ACTIVATIONS:,}",
            )
        )
    elif message := memory_problem(cfg):  # the estimate (diffusion.memory), by part
        problems.append(("diffusion.T", message))
    return problems
