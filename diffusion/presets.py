"""Named run configs: the rows of the paper's Table 1 and tiny "*-smoke" variants.

Standard library only (the dashboard imports it). Preset names are stored with runs: add
names, never rename. The "*-smoke" presets train in seconds on a CPU; the tests of the worker,
dashboard and launcher use them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from diffusion.config import (
    ConfigError,
    DataConfig,
    DiffusionConfig,
    NetworkConfig,
    RunConfig,
    TrainConfig,
)


def _smoke_train(eval_examples: int, gallery_size: int) -> TrainConfig:
    """60 quick steps with two evaluations: a run that finishes in seconds on a CPU."""
    return TrainConfig(
        steps=60,
        batch_size=128,
        lr=3e-3,
        lr_final=1e-3,
        log_every=10,
        ema=0.95,
        eval_every=30,
        eval_examples=eval_examples,
        gallery_every=0,
        gallery_size=gallery_size,
        checkpoint_every_s=5.0,
    )


def _swissroll(
    name: str,
    sigma: float,
    beta1: float,
    steps: int,
    covariance: str,
    dense: tuple[int, ...] = (),
    width_t: bool = False,
) -> RunConfig:
    """T = 40, a readout per step; a normalized-RBF net with local linear experts, importance-
    sampled t; the learned schedule starts from the geometric one and waits for the first half
    of training (docs/model-notes.md: "What caps K on the swiss rolls")."""
    return RunConfig(
        name=name,
        data=DataConfig("swissroll", {"sigma": sigma}, n_train=100_000, n_holdout=2_000),
        diffusion=DiffusionConfig(
            "gaussian",
            T=40,
            schedule="learned",
            beta1=beta1,
            schedule_J=10,
            learned_from="geometric",
            covariance=covariance,
        ),
        network=NetworkConfig(
            "rbf",
            hidden=(),
            n_rbf=128,
            options={
                "local_linear": True,
                "width": 0.2,
                **({"dense": dense} if dense else {}),
                **({"width_t": True} if width_t else {}),
            },
        ),
        train=TrainConfig(
            steps=steps,
            batch_size=512,
            lr=3e-3,
            lr_final=1e-4,
            schedule_lr=0.01,
            schedule_warmup=0.5,
            t_sampling="importance",
            eval_every=4_000,
            eval_examples=1_000,
            gallery_every=10_000,
            gallery_size=1_000,
            # the step's float64 work fused (diffusion.training.compiled); the full-covariance
            # kernel's step has a data-dependent branch and trains eagerly
            compile=covariance == "diagonal",
        ),
    )


def _image(
    name: str, data: str, T: int, steps: int, *, n_train: int = 10_000, options: dict | None = None
) -> RunConfig:
    return RunConfig(
        name=name,
        data=DataConfig(data, options or {}, n_train=n_train, n_holdout=500),
        diffusion=DiffusionConfig("gaussian", T=T, schedule="baseline", beta1=1e-3, J=10),
        network=NetworkConfig("conv", hidden=(), activation="tanh"),
        train=TrainConfig(
            steps=steps,
            batch_size=128,
            optimizer="rmsprop",
            lr=1e-3,
            lr_final=1e-4,
            lr_schedule="exponential",
            eval_every=2_000,
            eval_examples=200,
            # 10 random t per example (unbiased, docs/model-notes.md): 4,000 (example, t)
            # pairs, 1-3 minutes on one busy CPU thread (benchmarks/eval_speed.py); every t
            # of T = 1000 would take 2-3 hours there. "Evaluate on the whole test set" on the
            # run page, or `difflab bound`, gives the exact sum over t.
            eval_timesteps=10,
            gallery_every=2_000,
            gallery_size=36,
            # the multi-scale net's many small convolutions, poolings and up-samplings fused:
            # 2.59 times the eager bare loop's throughput on a CPU thread after 12-20 s of
            # compilation (diffusion.training.compiled; benchmarks/results/speed_engine_conv.json)
            compile=True,
        ),
    )


def _unet_image(
    name: str,
    data: str,
    *,
    options: dict | None = None,
    n_train: int = 10_000,
    channels: int = 16,
    steps: int = 20_000,
    schedule: str = "geometric",
    ema: float = 0.999,
) -> RunConfig:
    """A UNet (diffusion.nets.unet) in the paper's model: T = 1000, beta_1 = 1e-5 (fine
    enough that the last step's fixed Gaussian costs little against 8-bit bins), the
    v-preconditioned mean, importance-sampled t, Adam 2e-3 with cosine decay (fitted to a
    wall-clock budget when trained with one: diffusion.training.train.train(budget_s=...)).
    The network runs in the channels-last memory format: the same arithmetic, faster training
    steps and forwards on the CPU at batch 64 (README, "Image models";
    benchmarks/results/image_steps.json)."""
    return RunConfig(
        name=name,
        data=DataConfig(data, options or {}, n_train=n_train, n_holdout=500),
        diffusion=DiffusionConfig("gaussian", T=1000, schedule=schedule, beta1=1e-5, J=0, mean="v"),
        network=NetworkConfig(
            "unet",
            hidden=(),
            options={
                "channels": channels,
                "groups": min(channels, 32),
                "mults": [1, 2, 2],
                "channels_last": True,
            },
        ),
        train=TrainConfig(
            steps=steps,
            batch_size=64,
            optimizer="adam",
            lr=2e-3,
            lr_final=1e-5,
            lr_schedule="cosine",
            t_sampling="importance",
            eval_every=0,
            eval_examples=64,
            gallery_every=0,
            gallery_size=36,
            ema=ema,
        ),
    )


PRESETS: dict[str, RunConfig] = {
    # Table 1 rows (Sohl-Dickstein et al. 2015, section 3.1)
    # beta_1 costs 1/2 log2(1 + beta_1 / s^2) bits (s: the roll's thickness): 0.05 and 0.01 bits
    # here. The thin roll needs the full-covariance kernel to pass 2.35 bits at T = 40, and a
    # dense pathway beside the RBF units.
    "swissroll": _swissroll("swissroll", 0.25, 1e-4, 36_000, "diagonal"),
    # width_t: each RBF unit's width also depends on t (docs/model-notes.md, "Networks")
    "swissroll-thin": _swissroll(
        "swissroll-thin", 0.02, 1e-7, 32_000, "full", (128, 128), width_t=True
    ),
    "heartbeat": RunConfig(
        name="heartbeat",
        data=DataConfig("heartbeat", {}, n_train=50_000, n_holdout=1_000),
        diffusion=DiffusionConfig(
            "binomial", T=2000, schedule="baseline", beta1=1 / 2000, m=0.2, J=24, basis="log"
        ),
        # wider than the paper's 50 units, FiLM time modulation of every hidden layer, x^t
        # skips into layers 2 and 3 and log-spaced temporal bumps (docs/model-notes.md): about
        # -2.39 bits/seq in 13 minutes (ceiling of any factorized kernel -2.368); paper's net -2.79
        network=NetworkConfig(
            "heartbeat",
            hidden=(50, 50, 50),
            activation="sigmoid",
            options={"film": True, "width": 128, "x_skip": True},
        ),
        train=TrainConfig(
            steps=36_000,
            batch_size=256,
            lr=1e-2,
            lr_final=1e-4,
            t_sampling="importance",
            eval_every=8_000,
            eval_examples=200,
            gallery_every=5_000,
            gallery_size=64,
            compile=True,
        ),
    ),
    "deadleaves": _image("deadleaves", "deadleaves", 1000, 50_000),
    "bark": _image("bark", "texture", 500, 50_000),
    "digits": _image("digits", "digits", 500, 20_000, n_train=1_500),
    "mnist": _image("mnist", "mnist", 1000, 50_000, n_train=50_000),
    "cifar10": _image("cifar10", "cifar10", 1000, 100_000, n_train=45_000),
    # patches of scikit-image's photos (camera, astronaut, coffee held out): the multi-scale
    # net without a dense pathway is fully convolutional, so it denoises and inpaints photos
    # of any size (diffusion.images.tiling; benchmarks/posterior.py, part d)
    "photos": _image("photos", "photos", 1000, 50_000, options={"patch": 32}),
    # UNet presets (issue 10; docs/model-notes.md "Image networks"): dead leaves tuned on a
    # validation split (seed [1, 1]) in short runs on a loaded 2-core machine; bark takes the
    # same settings untuned. MNIST and CIFAR-10: the width chosen on their validation splits
    # at 15 minutes on one thread, 16 channels against 32 (validation K 4.607 against 4.554 and
    # 5.928 against 5.835 bits/pixel; benchmarks/results/tune_standard.json).
    "deadleaves-unet": _unet_image(
        "deadleaves-unet", "deadleaves", options={"size": 32}, n_train=20_000
    ),
    "bark-unet": _unet_image("bark-unet", "texture", options={"texture": "gravel", "patch": 32}),
    "mnist-unet": _unet_image("mnist-unet", "mnist", n_train=50_000),
    "cifar10-unet": _unet_image("cifar10-unet", "cifar10", n_train=45_000),
    # the photos model for benchmarks/posterior.py part d (fully convolutional, 32 x 32
    # patches of the photos other than camera, astronaut, coffee); trained on a wall-clock
    # budget of under an hour, so a short weight average (0.99: about the last 100 steps)
    "photos-unet": _unet_image(
        "photos-unet", "photos", options={"patch": 32}, ema=0.99, steps=100_000
    ),
    # the same network on 64 x 64 patches (structures as wide as a 64 x 64 hole; its chains
    # run on tiles of 64, its training size)
    "photos-unet-64": _unet_image(
        "photos-unet-64", "photos", options={"patch": 64}, ema=0.99, steps=100_000
    ),
    # the same, trained on the photos at full size, 1/2 and 1/4 (block means): the sizes the
    # first pass of coarse-to-fine inpainting shrinks a photo to (docs/model-notes.md)
    "photos-unet-scales": _unet_image(
        "photos-unet-scales",
        "photos",
        options={"patch": 32, "scales": (1, 2, 4)},
        ema=0.99,
        steps=100_000,
    ),
    # Tiny variants: seconds on a CPU.
    "swissroll-smoke": RunConfig(
        name="swissroll-smoke",
        data=DataConfig("swissroll", {"sigma": 0.25}, n_train=2_000, n_holdout=200),
        diffusion=DiffusionConfig("gaussian", T=10, schedule="baseline", beta1=1e-3),
        network=NetworkConfig("mlp", hidden=(32, 32), activation="tanh"),
        train=_smoke_train(eval_examples=200, gallery_size=64),
    ),
    "heartbeat-smoke": RunConfig(
        name="heartbeat-smoke",
        data=DataConfig("heartbeat", {}, n_train=1_000, n_holdout=100),
        diffusion=DiffusionConfig("binomial", T=50, schedule="baseline", beta1=1 / 50, m=0.2),
        network=NetworkConfig("heartbeat", hidden=(50, 50, 50), activation="sigmoid"),
        train=_smoke_train(eval_examples=100, gallery_size=16),
    ),
}
# The swiss-roll presets learn their schedule now; this name (stored with older runs) stays.
PRESETS["swissroll-learned"] = RunConfig.from_dict(
    {
        **PRESETS["swissroll"].to_dict(),
        "name": "swissroll-learned",
        "diffusion": {**PRESETS["swissroll"].to_dict()["diffusion"], "schedule": "learned"},
    }
)
PRESETS["digits-smoke"] = RunConfig.from_dict(
    {
        **_image("digits-smoke", "digits", 20, 30, n_train=200).to_dict(),
        "train": {
            **TrainConfig(
                steps=30,
                batch_size=32,
                log_every=10,
                eval_every=0,
                eval_examples=32,
                gallery_size=16,
                checkpoint_every_s=5.0,
            ).__dict__
        },
    }
)


def load_config(preset_or_path: str, overrides: Iterable[str] = ()) -> RunConfig:
    """A preset by name, or a JSON config file by path, with "section.field=value" overrides."""
    if preset_or_path in PRESETS:
        config = PRESETS[preset_or_path]
    else:
        path = Path(preset_or_path)
        if not path.is_file():
            raise ConfigError(
                "config",
                f"{preset_or_path!r} is neither a preset nor a file; "
                f"presets: {', '.join(sorted(PRESETS))}",
            )
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError("config", f"cannot read {path}: {exc}") from None
        config = RunConfig.from_json(text)
    overrides = list(overrides)
    return config.with_overrides(overrides) if overrides else config
