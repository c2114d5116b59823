"""benchmarks/id_driver.bits_per_dim: improved-diffusion's bound summed over t, exactly with
stride 1 and unbiased with a stride. A stand-in diffusion whose per-step term is a known
function of (image, t) makes the exact sum a closed form; improved-diffusion itself is not
needed (it lives outside the repo)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from id_driver import bits_per_dim, main  # noqa: E402


class _Diffusion:
    """term(image i, t) = x_i * (1 + 10 / (1 + t)) + (t == 0) * 3 (largest at small t, like
    the cosine schedule's terms); prior = 0.25 per image."""

    def __init__(self, T: int) -> None:
        self.num_timesteps = T

    def _prior_bpd(self, x):
        return torch.full((x.shape[0],), 0.25)

    def q_sample(self, x_start, t, noise):
        return x_start + 0 * noise

    def _vb_terms_bpd(self, model, x_start, x_t, t, clip_denoised):
        assert clip_denoised
        val = x_start.flatten(1)[:, 0] * (1.0 + 10.0 / (1.0 + t.float())) + 3.0 * (t == 0).float()
        return {"output": val}


def _exact(x: torch.Tensor, T: int) -> torch.Tensor:
    ts = torch.arange(T, dtype=torch.float64)
    return 0.25 + 3.0 + x.flatten(1)[:, 0].double() * (1 + 10 / (1 + ts)).sum()


def test_stride_one_is_the_exact_sum():
    x = torch.linspace(0.5, 2.0, 6).reshape(6, 1, 1, 1)
    mean, se, per = bits_per_dim(None, _Diffusion(37), x, stride=1, exact=0, seed=0)
    torch.testing.assert_close(per, _exact(x, 37))
    assert mean == pytest.approx(float(_exact(x, 37).mean()))


@pytest.mark.parametrize("stride,exact", [(7, 1), (10, 5), (25, 10)])
def test_stride_is_unbiased_per_image(stride, exact):
    """The mean of the strided estimate over many random offsets is the exact sum (within 4
    standard errors; dropping any one step of t = 0..9 moves it by more than that), and the
    first `exact` steps (the decoder term among them) are never skipped."""
    T = 100
    x = torch.ones(2000, 1, 1, 1)  # 2,000 images: 2,000 offsets of the same image
    mean, se, per = bits_per_dim(None, _Diffusion(T), x, stride=stride, exact=exact, seed=1)
    exact_sum = float(_exact(x[:1], T))
    assert abs(mean - exact_sum) < 4 * se + 1e-9
    assert float(per.std()) > 0  # the offsets do differ


def test_bad_stride_is_refused():
    with pytest.raises(SystemExit):
        main(["eval", "--data", "x", "--ckpt", "y", "--t-stride", "0"])
