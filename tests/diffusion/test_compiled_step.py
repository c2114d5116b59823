"""train.compile (diffusion.training.compiled): the compiled training step trains the model the
eager step trains, and a step that cannot be compiled trains eagerly with a warning.

Broken versions these catch: a compiled step that draws its own x^t (or ignores the drawn
noise), weights the KL term differently or drops the edge terms (its losses part from the
eager ones at the first step); a checker that accepts any compiled result (`_mismatch` lets
a wrong estimate or gradient through); a compile failure that stops the run instead of
falling back (the full-covariance run below ends with an error instead of DONE).
"""

from __future__ import annotations

import pytest
import torch

from diffusion.presets import PRESETS
from diffusion.training.compiled import RTOL, _mismatch
from diffusion.training.events import WarningEvent
from diffusion.training.train import _Trainer, train

STEPS = 12
CONFIGS = {
    # learned schedule (frozen for the first half), importance-sampled t, EMA, Gaussian kernel
    "swissroll": PRESETS["swissroll"].with_overrides(
        [
            "data.n_train=500",
            "data.n_holdout=50",
            "train.batch_size=64",
            f"train.steps={STEPS}",
            "network.n_rbf=16",
            "train.eval_examples=16",
            "train.compile=true",
        ]
    ),
    # binomial diffusion, importance-sampled t
    "heartbeat": PRESETS["heartbeat-smoke"].with_overrides(
        [
            "data.n_train=200",
            "train.batch_size=16",
            f"train.steps={STEPS}",
            "train.t_sampling=importance",
            "train.eval_examples=16",
            "train.compile=true",
        ]
    ),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_compiled_step_trains_like_the_eager_step(tmp_path, name):
    config = CONFIGS[name]
    events: list = []
    compiled = _Trainer(config, tmp_path / "c", torch.device("cpu"), events.append, None)
    eager = _Trainer(config, tmp_path / "e", torch.device("cpu"), None, None)
    compiled.prepare()
    assert compiled.terms is not None, f"{name}: not compiled: {events}"
    assert compiled.compile_s > 0
    for step in range(STEPS):
        a, b = compiled.train_step(), eager.train_step()
        compiled.step += 1
        eager.step += 1
        assert a == pytest.approx(b, rel=1e-4), f"{name}: loss differs at step {step}"
    for (key, a), b in zip(
        compiled.model.state_dict().items(), eager.model.state_dict().values(), strict=True
    ):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5), f"{name}: {key} after {STEPS} steps"


def test_a_step_that_cannot_compile_trains_eagerly_with_a_warning(tmp_path):
    """The full-covariance kernel's step branches on a tensor's value, which a whole-graph
    compile refuses: the run says so and trains."""
    config = PRESETS["swissroll-thin"].with_overrides(
        [
            "data.n_train=200",
            "data.n_holdout=20",
            "train.batch_size=16",
            "train.steps=3",
            "network.n_rbf=8",
            "network.options.dense=[8]",
            "train.eval_examples=8",
            "train.gallery_size=4",
            "train.compile=true",
        ]
    )
    events: list = []
    result = train(config, tmp_path, on_event=events.append, device="cpu")
    assert result.status == "done" and result.step == 3
    warnings = [e.message for e in events if isinstance(e, WarningEvent)]
    assert len(warnings) == 1 and "training runs eagerly" in warnings[0], warnings


def test_the_check_refuses_a_compiled_step_that_disagrees():
    k = torch.tensor([-3.0, -5.0], dtype=torch.float64)
    grads = [torch.tensor([1.0, -2.0]), torch.tensor([0.5])]
    assert _mismatch(k, k.clone(), grads, [g.clone() for g in grads]) is None
    near = [g * (1 + RTOL / 10) for g in grads]
    assert _mismatch(k * (1 + RTOL / 10), k, near, grads) is None
    assert "bound estimate" in _mismatch(k + 0.1, k, grads, grads)
    wrong = [grads[0], grads[1] * 2]
    assert "parameter 1" in _mismatch(k, k, wrong, grads)
    nan = torch.tensor([float("nan"), -5.0], dtype=torch.float64)
    assert _mismatch(nan, k, grads, grads) is not None
