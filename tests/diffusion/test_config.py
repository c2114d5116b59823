"""Run config: validation names the field and what is allowed; JSON round trip; presets."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from diffusion.config import (
    ConfigError,
    DataConfig,
    DiffusionConfig,
    NetworkConfig,
    RunConfig,
    TrainConfig,
)
from diffusion.presets import PRESETS, load_config


@pytest.mark.parametrize(
    ("make", "field", "allowed"),
    [
        (lambda: DiffusionConfig(T=1), "T", "[2, 100000]"),
        (lambda: DiffusionConfig(kind="poisson"), "kind", "gaussian, binomial"),
        (lambda: DiffusionConfig(schedule="sqrt"), "schedule", "baseline, learned"),
        (lambda: DiffusionConfig(beta1=float("nan")), "beta1", "finite"),
        (lambda: DiffusionConfig(kind="binomial", schedule="learned"), "schedule", "baseline"),
        (lambda: DiffusionConfig(T=10, J=11), "J", "[0, 10]"),
        (lambda: TrainConfig(steps=0), "steps", "[1,"),
        (lambda: TrainConfig(optimizer="sgd"), "optimizer", "adam, rmsprop"),
        (lambda: TrainConfig(lr=True), "lr", "number"),
        (lambda: NetworkConfig(kind="transformer"), "kind", "rbf, mlp"),
        (lambda: NetworkConfig(hidden=(0,)), "hidden", "[1, 65536]"),
        (lambda: DataConfig(name="imagenet"), "name", "swissroll, heartbeat"),
        (lambda: DataConfig(options={"x": {"nested": 1}}), "options.x", "JSON scalar"),
    ],
)
def test_bad_values_name_field_and_allowed(make, field, allowed):
    with pytest.raises(ConfigError) as info:
        make()
    assert info.value.field == field
    assert allowed in str(info.value)


def test_json_round_trip_and_unknown_keys():
    cfg = PRESETS["swissroll"]
    assert RunConfig.from_json(cfg.to_json()) == cfg
    assert json.loads(cfg.to_json())["data"]["options"] == {"sigma": 0.25}
    raw = cfg.to_dict()
    raw["train"]["stepz"] = 3
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(raw)
    assert info.value.field == "train.stepz" and "steps" in str(info.value)
    raw = cfg.to_dict()
    raw["diffusion"]["T"] = -5
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(raw)
    assert info.value.field == "diffusion.T"
    with pytest.raises(ConfigError):
        RunConfig.from_json("{not json")


def test_overrides():
    cfg = PRESETS["swissroll"].with_overrides(
        [
            "train.steps=7",
            "diffusion.schedule=learned",
            "data.options.sigma=0.02",
            "network.hidden=64,32",
            "train.lr=1e-4",
            "name=x",
        ]
    )
    assert cfg.train.steps == 7 and cfg.diffusion.schedule == "learned"
    assert cfg.data.option("sigma") == 0.02 and cfg.network.hidden == (64, 32)
    assert cfg.train.lr == 1e-4 and cfg.name == "x" and isinstance(cfg.diffusion.beta1, float)
    for bad, field in [
        ("train.nope=1", "train.nope"),
        ("steps=3", "steps"),
        ("diffusion.T=abc", "diffusion.T"),
    ]:
        with pytest.raises(ConfigError) as info:
            PRESETS["swissroll"].with_overrides([bad])
        assert info.value.field == field


def test_presets_are_valid_and_load(tmp_path):
    for name, cfg in PRESETS.items():
        assert RunConfig.from_json(cfg.to_json()) == cfg, name
    for name in ("swissroll", "swissroll-thin", "heartbeat", "swissroll-smoke", "heartbeat-smoke"):
        assert name in PRESETS
    path = tmp_path / "c.json"
    path.write_text(PRESETS["heartbeat"].to_json())
    assert load_config(str(path), ["train.steps=3"]).train.steps == 3
    with pytest.raises(ConfigError, match="neither a preset nor a file"):
        load_config("no-such-preset")


def test_config_and_presets_do_not_import_torch():
    code = (
        "import sys, diffusion.config, diffusion.presets, diffusion.training.events; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_options_are_checked_by_the_schema_and_every_problem_is_reported():
    """The issue's example: both bad options are refused at once, with their field paths."""
    with pytest.raises(ConfigError) as info:
        load_config(
            "swissroll-smoke",
            ["data.options.sigma=-1", "network.options.bogus=3", "train.steps=0"],
        )
    assert info.value.as_dict() == {
        "data.options.sigma": "must be in [0.001, 5.0], got -1",
        "network.options.bogus": "unknown option for mlp; allowed: film, t_input, x_skip",
        "train.steps": "must be in [1, 100000000], got 0",
    }
    cfg = load_config("swissroll-smoke", ["data.options.sigma=0.5", "network.options.film=true"])
    assert cfg.data.typed_options.sigma == 0.5 and cfg.network.typed_options.film is True
    assert cfg.data.typed_options == DataConfig("swissroll", {"sigma": 0.5}).typed_options


def test_stored_config_of_an_older_run_still_loads():
    """A run stored before the schema: ints where floats go, options left empty."""
    old = {
        "name": "old",
        "data": {"name": "heartbeat", "options": {}, "n_train": 100, "n_holdout": 10},
        "diffusion": {"kind": "binomial", "T": 50, "schedule": "baseline", "beta1": 0.02, "m": 0.2},
        "network": {"kind": "heartbeat", "hidden": [50, 50, 50], "activation": "sigmoid"},
        "train": {"steps": 60, "lr": 1, "checkpoint_every_s": 5},
    }
    cfg = RunConfig.from_dict(old)
    assert isinstance(cfg.train.lr, float) and isinstance(cfg.train.checkpoint_every_s, float)
    assert cfg.data.typed_options.length == 20 and cfg.network.typed_options.width == 50
    assert RunConfig.from_json(cfg.to_json()) == cfg
    assert cfg.to_dict()["data"]["options"] == {}  # defaults are not written into the record
