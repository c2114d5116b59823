"""A run that cannot fit is refused with the estimate before anything is allocated; a device
that is not there is refused, not replaced."""

from __future__ import annotations

import pytest

from diffusion import device as device_mod
from diffusion.config import ConfigError
from diffusion.memory import estimate
from diffusion.presets import PRESETS
from diffusion.processes.readout import TemporalBasis
from diffusion.training.train import train


def test_t_100000_is_refused_by_the_config_with_the_estimate() -> None:
    with pytest.raises(ConfigError, match=r"diffusion\.T.*needs about 1\d\d\.\d GiB.*basis"):
        PRESETS["swissroll-smoke"].with_overrides(["diffusion.T=100000"])


def test_every_preset_fits_a_16_gib_device() -> None:
    for name, preset in PRESETS.items():
        assert estimate(preset).total < 16 * 1024**3, name


def test_the_basis_part_is_what_the_readout_allocates() -> None:
    cfg = PRESETS["swissroll-smoke"].with_overrides(["diffusion.T=300", "diffusion.J=0"])
    basis = TemporalBasis(300, cfg.diffusion.readout_J)
    table = basis(__import__("torch").arange(1, 301))  # builds the cached (T, J) table
    float64_scratch = 300 * cfg.diffusion.readout_J * 8
    assert table.shape == (300, 300)
    allocated = basis._table.element_size() * basis._table.numel() + float64_scratch
    assert estimate(cfg).parts["temporal basis"] == allocated


def test_a_run_that_does_not_fit_this_device_is_refused_before_training(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(device_mod, "device_memory", lambda device: 64 * 1024)
    with pytest.raises(ConfigError, match="more than this cpu device has"):
        train(PRESETS["swissroll-smoke"], tmp_path / "run", device="cpu")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_cuda_on_a_machine_without_it_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(device_mod.torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA device"):
        device_mod.pick_device("cuda")
