"""benchmarks/images_common.bits_per_dim: the head to head's estimator of test bits/dim."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from images_common import bits_per_dim  # noqa: E402

from diffusion.config import DataConfig, DiffusionConfig, NetworkConfig, RunConfig  # noqa: E402
from diffusion.data import Scaler  # noqa: E402
from diffusion.evaluation.evaluate import bound_report  # noqa: E402
from diffusion.model import DiffusionModel  # noqa: E402


class _Bundle:  # what bound_report reads of a data bundle
    def __init__(self, scaler: Scaler) -> None:
        self.scaler, self.unit, self.unit_divisor, self.dims = scaler, "bits/pixel", 16.0, 16


def _model() -> DiffusionModel:
    cfg = RunConfig(
        data=DataConfig("deadleaves", {"size": 4}),
        diffusion=DiffusionConfig("gaussian", T=20, schedule="cosine", beta1=1e-4, mean="v"),
        network=NetworkConfig(
            "unet", hidden=(), options={"channels": 4, "groups": 2, "mults": [1]}
        ),
    )
    torch.manual_seed(0)
    model = DiffusionModel(cfg, (1, 4, 4), "images")
    with torch.no_grad():  # a network that is not zero, so every t contributes differently
        for p in model.net.parameters():
            p.add_(0.05 * torch.randn(p.shape))
    return model.eval()


def test_exact_and_strided_estimates_agree_with_the_engine():
    model = _model()
    scaler = Scaler(shift=120.0, scale=60.0, dequantize=True)
    x = torch.randint(0, 256, (300, 1, 4, 4), generator=torch.Generator().manual_seed(3)).float()
    ref = bound_report(
        model,
        _Bundle(scaler),
        scaler.to_model(x, torch.Generator().manual_seed(4)),
        torch.Generator().manual_seed(5),
    ).bits_per_dim
    exact, se, per = bits_per_dim(model, scaler, x, 1, seed=0)
    assert per.shape == (300,) and abs(exact - ref) < 4 * se
    # strided, the first steps exact or not: unbiased (mean over seeds within its error)
    for stride, first in ((4, 0), (4, 3)):
        runs = torch.tensor([bits_per_dim(model, scaler, x, stride, s, first)[0] for s in range(6)])
        err = 4 * (runs.std() / 6**0.5) + 4 * se
        assert abs(float(runs.mean()) - exact) < err, (stride, first, runs, exact)


def test_step_time_ratio_is_the_median_of_adjacent_pairs(monkeypatch) -> None:
    """A load change partway through hits a lab step and the bare step after it alike: the
    ratio is the median of the pairs' ratios (1 here), not the ratio of the two medians (the
    lab's median lands on the slow steps: 1/3). Broken version caught: bare_s / lab_s."""
    import images_steps

    # clock readings: warm-up runs untimed, then (start, end) of lab, then of bare, per pair
    durations = [(1, 1), (1, 1), (3, 1), (3, 3), (3, 3)]  # (lab, bare): load rises midway
    # pair 3 is odd on purpose (lab slowed, bare not): a lone outlier the median ignores
    clock = []
    t = 0.0
    for lab, bare in durations:
        clock += [t, t + lab]
        t += lab
        clock += [t, t + bare]
        t += bare
    ticks = iter(clock)
    monkeypatch.setattr(images_steps.time, "perf_counter", lambda: next(ticks))
    lab_s, bare_s, ratio = images_steps.time_pair(lambda: None, lambda: None, reps=5)
    assert (lab_s, bare_s) == (3, 1)
    assert ratio == 1.0


def test_compile_rows_break_even_and_the_readme_block(monkeypatch) -> None:
    """The break-even of a compiled step is compile seconds / (1 - 1 / speed-up): at a
    speed-up of 1.25 a second of training takes 0.8 s compiled, so 200 s of training saves the
    40 s of compiling; a step that compiles slower never pays. Broken versions caught:
    compile_s / (speed-up - 1) (160 s), and a README block that shows seconds as minutes."""
    import images_steps
    import provenance
    import pytest
    import readme_steps

    class Trainer:
        config = type("C", (), {"train": type("T", (), {"batch_size": 64, "seed": 0})})()
        terms = object()

        def start_clock(self) -> None:
            pass

        def prepare(self) -> None:
            pass

        def train_step(self) -> None:
            pass

    monkeypatch.setattr(images_steps, "_trainer", lambda preset, overrides: Trainer())
    ticks = iter([0.0, 40.0] + [0.0] * 1000)
    monkeypatch.setattr(images_steps.time, "perf_counter", lambda: next(ticks))
    pairs = iter([(0.8, 1.0, 1.25), (1.1, 1.0, 1 / 1.1)])
    monkeypatch.setattr(images_steps, "time_pair", lambda a, b, reps: next(pairs))
    rows = images_steps.compile_rows(reps=3)
    assert rows[0]["compile_s"] == 40.0 and rows[0]["break_even_s"] == pytest.approx(200.0)
    assert rows[1]["break_even_s"] is None
    monkeypatch.undo()
    rows += images_steps.draw_rows(reps=1, batches=(4,))
    doc = {
        "_file": "image_steps.json",
        "provenance": provenance.build(provenance.start([]), rows, seeds=[0], split={})[
            "provenance"
        ],
        "rows": rows,
    }
    text = readme_steps.render_image_steps(doc)
    assert "| 40.0 | 1.000 | 0.800 | 1.250 | 3.3 |" in text  # 200 s = 3.3 min
    assert "| never |" in text
    assert f"| 4 x 3 x 32 x 32 | {rows[-1]['draw_s'] * 1e3:.2f} |" in text  # milliseconds
