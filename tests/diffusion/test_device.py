"""Device choice: cuda when present, else cpu; mps refused with a reason (float64 engine)."""

import pytest
import torch

from diffusion.config import ConfigError
from diffusion.device import pick_device
from diffusion.presets import load_config


def test_auto_picks_cuda_when_present_else_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto").type == expected
    assert pick_device(None).type == expected


def test_unavailable_or_unknown_devices_are_refused() -> None:
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            pick_device("cuda:1")
    with pytest.raises(ConfigError, match="float64"):
        pick_device("mps")
    with pytest.raises(ConfigError, match="auto, cpu or cuda"):
        pick_device("tpu")


def test_config_refuses_mps_before_any_work() -> None:
    with pytest.raises(ConfigError, match="float64") as info:
        load_config("swissroll-smoke", ["train.device=mps"])
    assert "device" in info.value.field
