"""Test splits: data that no training or tuning run reads, for final reports only.

Every data set has three disjoint parts. `DataBundle.train` (or its sampler) is what a run
trains on; `DataBundle.holdout` is the VALIDATION split (what a run evaluates while it
trains, and what trials, early stopping and preset tuning compare); `load_test_split(config)` is
the TEST split, touched only by a benchmark's final report.

- Generated data (swissroll, heartbeat, deadleaves) draw the test split from TEST_SEED.
  Training seeds are 0 .. 2**63 - 1 (`diffusion.config.TrainConfig.seed`); TEST_SEED lies
  outside that range, so no run can draw the test data as its own training or validation data.
- Images with a fixed source keep a fixed test region or subset that no builder hands to a
  run (texture: the bottom half of the held-out rows; digits: a fixed 297 of the 1,797;
  MNIST and CIFAR-10: their test files, validating on the tail of their training files),
  registered by `diffusion.data.images`.

`TestSplit.describe()` is what benchmarks record beside every number.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from diffusion.config import DataConfig
from diffusion.config_registry import Registry
from diffusion.data.base import build_dataset

TEST_SEED = 2**63 + 2015  # above every allowed training seed (max 2**63 - 1)
GENERATED = ("swissroll", "heartbeat", "deadleaves")


@dataclass(frozen=True)
class TestSplit:
    """x: data-space test examples; true_ll_bits: exact log-likelihood of x (in the data
    set's unit, model space) where known; how: how the split was drawn (recorded with results)."""

    __test__ = False  # not a pytest class

    x: torch.Tensor
    how: str
    seed: int | None = None
    true_ll_bits: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def describe(self, config: DataConfig, train_seeds: list[int] | None = None) -> dict:
        """The split as recorded with every benchmark number."""
        return {
            "train": train_description(config.name, train_seeds),
            "validation": f"DataBundle.holdout ({config.n_holdout} examples, the run's seed): "
            "evaluated during training; the only split trials and tuning compare",
            "test": self.how,
            "n_test": int(self.x.shape[0]),
            "test_seed": self.seed,
        }


def train_description(data_name: str, train_seeds: list[int] | None = None) -> str:
    """The training part of a split's record: each run draws its own data from its seed."""
    seeds = f" ({', '.join(map(str, train_seeds))})" if train_seeds else ""
    return f"{data_name} training data drawn from each run's own seed{seeds}"


TestBuilder = Callable[[DataConfig, int], TestSplit]
_TEST_BUILDERS: Registry[TestBuilder] = Registry(
    "data.name", "{name} has no test split; data sets with one: {names}"
)


def register_test_split(name: str) -> Callable[[TestBuilder], TestBuilder]:
    return _TEST_BUILDERS.register(name)


def _generated(config: DataConfig, n: int) -> TestSplit:
    """The data set's own builder run at TEST_SEED; its holdout part is the test split."""
    small_train = 1 if config.name == "deadleaves" else min(config.n_train, 1_000)
    cfg = dataclasses.replace(config, n_holdout=n, n_train=small_train)
    bundle = build_dataset(cfg, TEST_SEED)
    return TestSplit(
        bundle.holdout,
        f"{n} examples drawn at TEST_SEED = 2**63 + 2015, a seed outside the training-seed "
        "range, so no training or tuning run draws them",
        TEST_SEED,
        bundle.true_ll_bits,
    )


for _name in GENERATED:
    _TEST_BUILDERS.add(_name, _generated)


def load_test_split(config: DataConfig, n: int | None = None) -> TestSplit:
    """The test split of `config`'s data set (n examples; default: config.n_holdout)."""
    builder = _TEST_BUILDERS.get(config.name)
    n = config.n_holdout if n is None else n
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return builder(config, n)


def split_names() -> tuple[str, ...]:
    return _TEST_BUILDERS.names()
