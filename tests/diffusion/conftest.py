"""Fixtures for the engine tests."""

from __future__ import annotations

import pytest
import torch

from diffusion.device import flush_denormals

flush_denormals()  # the float mode every run has (pick_device): the tests check what runs
torch.set_num_threads(1)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)
