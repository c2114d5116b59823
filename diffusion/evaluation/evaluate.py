"""Turn bound evaluations into reported numbers: K, K - L_null, bits/dim, the KL profile
(Sohl-Dickstein et al. 2015, Table 1 conventions; model.md section 4)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from diffusion.data.base import DataBundle
from diffusion.evaluation.bound import (
    LN2,
    BoundTerms,
    estimate,
    evaluate_bound,
    importance_log_likelihood,
)
from diffusion.model import DiffusionModel
from diffusion.training.events import BoundEstimate, EvalEvent


@dataclass(frozen=True)
class BoundReport:
    """K (k = 1) or the k-trajectory importance-sampled estimate, in bits per unit.

    l_null_bits: mean log2 pi(x^0) per unit; k_minus_lnull_bits = k.bits - l_null_bits.
    bits_per_dim: 8-bit images only: -log2 p(x) / D of the dequantized data in [0, 256) units.
    """

    k: BoundEstimate
    k_minus_lnull_bits: float
    l_null_bits: float
    n_examples: int
    n_trajectories: int
    bits_per_dim: float | None = None
    terms: BoundTerms | None = None


def bound_report(
    model: DiffusionModel,
    bundle: DataBundle,
    x_model: torch.Tensor,
    generator: torch.Generator | None,
    k: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
    t_per_example: int = 0,
) -> BoundReport:
    """Evaluate K over every t (k = 1) or the importance-sampled estimate (k > 1) on x_model.

    on_progress(t_done, examples_done), k = 1 only: see
    `diffusion.evaluation.bound.evaluate_bound`."""
    div = bundle.unit_divisor
    terms = None
    if k == 1:
        terms = evaluate_bound(
            model, x_model, generator, on_progress=on_progress, t_per_example=t_per_example
        )
        per_example, log_null = terms.per_example, terms.log_null
    else:
        per_example = importance_log_likelihood(model, x_model, k, generator)
        log_null = model.process.log_null(x_model)
    est = estimate(per_example, bundle.unit, div)
    l_null = float(log_null.mean() / LN2 / div)
    bpd = None
    if bundle.scaler.dequantize:
        D = bundle.dims
        bits_example = float(per_example.mean() / LN2)
        bpd = -(bits_example - bundle.scaler.log_det_bits(D)) / D
    return BoundReport(est, est.bits - l_null, l_null, int(x_model.shape[0]), k, bpd, terms)


def make_eval_event(
    step: int,
    model: DiffusionModel,
    bundle: DataBundle,
    x_train: torch.Tensor,
    x_holdout: torch.Tensor,
    seed: int,
    on_progress: Callable[[str, int, int], None] | None = None,
    t_per_example: int = 0,
) -> EvalEvent:
    """K on train and holdout subsets (fixed evaluation noise from `seed`), KL profile, beta.

    on_progress(phase, t_done, examples_done), phase "train" then "holdout", after each block
    of the work; it may raise (e.g. `EvaluationCancelled`) to stop the evaluation."""
    gen = torch.Generator().manual_seed(seed)

    def phase(name: str) -> Callable[[int, int], None] | None:
        if on_progress is None:
            return None
        return lambda t_done, done: on_progress(name, t_done, done)

    train = bound_report(
        model, bundle, x_train, gen, on_progress=phase("train"), t_per_example=t_per_example
    )
    hold = bound_report(
        model, bundle, x_holdout, gen, on_progress=phase("holdout"), t_per_example=t_per_example
    )
    terms = hold.terms
    assert terms is not None
    div = bundle.unit_divisor
    beta = model.beta().detach().cpu()
    bounds = None
    if terms.sigma_mean is not None and terms.posterior_var is not None:
        bounds = {
            "sigma": terms.sigma_mean.cpu().tolist(),
            "lower": terms.posterior_var.cpu().tolist(),
            "upper": beta.tolist(),
        }
    return EvalEvent(
        step=step,
        k_train=train.k,
        k_holdout=hold.k,
        k_minus_lnull_bits=hold.k_minus_lnull_bits,
        l_null_bits=hold.l_null_bits,
        true_ll_bits=bundle.true_ll_bits,
        paper_k_bits=bundle.paper_k_bits,
        kl_profile_bits=(terms.kl_profile.cpu() / LN2 / div).tolist(),
        beta=beta.tolist(),
        beta_baseline=model.schedule.baseline.cpu().tolist(),
        unit=bundle.unit,
        reverse_var_bounds=bounds,
        bits_per_dim=hold.bits_per_dim,
        paper_k_minus_lnull_bits=bundle.paper_k_minus_lnull_bits,
    )
