"""The test-set evaluation job scores the data set's test split, not the run's validation
holdout, and says which split it used where the data set has no test split."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from diffusion.config import DataConfig
from diffusion.data.splits import load_test_split
from worker.job_runner import evaluation_split


def _trained(data: DataConfig, holdout: torch.Tensor) -> SimpleNamespace:
    """The two attributes evaluation_split reads of a trained run."""
    return SimpleNamespace(
        config=SimpleNamespace(data=data), bundle=SimpleNamespace(holdout=holdout)
    )


def test_the_test_split_where_there_is_one():
    data = DataConfig("swissroll", {}, n_train=100, n_holdout=40)
    holdout = torch.zeros(40, 2)
    x, split, how = evaluation_split(_trained(data, holdout))
    assert split == "test" and "TEST_SEED" in how
    assert x.shape == (40, 2) and torch.equal(x, load_test_split(data, 40).x)
    assert not torch.equal(x, holdout)


def test_the_validation_holdout_named_as_such_without_one(tmp_path):
    import numpy as np

    path = tmp_path / "v.npy"
    np.save(path, np.zeros((30, 5)))
    data = DataConfig("vector", {"path": str(path)}, n_holdout=10)
    holdout = torch.ones(10, 5)
    x, split, how = evaluation_split(_trained(data, holdout))
    assert split == "validation" and "no test split" in how
    assert x is holdout
