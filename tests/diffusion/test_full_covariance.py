"""The full-covariance Gaussian reverse kernel (diffusion.covariance = "full") against
torch.distributions.MultivariateNormal, the diagonal kernel it extends, sampling moments and the
bound's brute-force Monte Carlo."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

from diffusion.config import ConfigError, DataConfig, DiffusionConfig, NetworkConfig, RunConfig
from diffusion.evaluation.bound import evaluate_bound, importance_log_likelihood
from diffusion.model import DiffusionModel
from diffusion.processes.gaussian import GaussianDiffusion
from diffusion.processes.schedules import geometric_beta


def _kernel_inputs(gen, B=40, D=3, T=6):
    beta = geometric_beta(T, beta1=1e-3)
    xt = torch.randn(B, D, generator=gen, dtype=torch.float64)
    x0 = torch.randn(B, D, generator=gen, dtype=torch.float64)
    t = torch.randint(1, T + 1, (B,), generator=gen)
    z = torch.randn(B, D, 2 + D - 1, generator=gen, dtype=torch.float64)
    return beta, xt, x0, t, z


def _mvn(proc: GaussianDiffusion, xt, t, z, beta) -> MultivariateNormal:
    mean, s = GaussianDiffusion.p_mean_var(GaussianDiffusion(), xt, t, z, beta)
    U = proc.p_factor(t, z)
    scale = s.sqrt().unsqueeze(-1) * U  # diag(sqrt(s)) U
    return MultivariateNormal(mean, scale_tril=scale)


def test_kl_log_prob_and_marginals_match_multivariate_normal(gen):
    D = 3
    proc = GaussianDiffusion("full", D)
    beta, xt, x0, t, z = _kernel_inputs(gen, D=D)
    t = t.clamp(min=2)
    p = _mvn(proc, xt, t, z, beta)
    mq, vq = proc.q_posterior(x0, xt, t, beta)
    q = MultivariateNormal(mq, covariance_matrix=torch.diag_embed(vq))
    torch.testing.assert_close(proc.kl(x0, xt, t, z, beta), kl_divergence(q, p))
    x_prev = torch.randn(40, D, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(proc.log_p_step(x_prev, xt, t, z, beta), p.log_prob(x_prev))
    _, var = proc.p_mean_var(xt, t, z, beta)
    torch.testing.assert_close(var, torch.diagonal(p.covariance_matrix, dim1=1, dim2=2))


def test_zero_correlations_and_first_step_are_the_diagonal_kernel(gen):
    D = 3
    full, diag = GaussianDiffusion("full", D), GaussianDiffusion()
    beta, xt, x0, t, z = _kernel_inputs(gen, D=D)
    z0 = z.clone()
    z0[..., 2:] = 0
    t2 = t.clamp(min=2)
    torch.testing.assert_close(full.kl(x0, xt, t2, z0, beta), diag.kl(x0, xt, t2, z0, beta))
    # rows with t = 1 ignore the correlation outputs: the fixed first step
    t1 = torch.ones_like(t)
    x_prev = torch.randn_like(xt)
    torch.testing.assert_close(
        full.log_p_step(x_prev, xt, t1, z, beta), diag.log_p_step(x_prev, xt, t1, z, beta)
    )


def test_samples_have_the_kernel_covariance(gen):
    D, n = 2, 200_000
    proc = GaussianDiffusion("full", D)
    beta = geometric_beta(5, beta1=1e-2)
    xt = torch.tensor([[0.3, -0.8]], dtype=torch.float64).expand(n, D)
    z = torch.tensor([[[0.2, 0.5, 0.0], [-0.1, -0.4, 1.5]]], dtype=torch.float64).expand(n, D, 3)
    t = torch.full((n,), 4)
    x = proc.p_sample(xt, t, z, beta, gen)
    ref = _mvn(proc, xt[:1], t[:1], z[:1], beta)
    torch.testing.assert_close(x.mean(0), ref.mean[0], atol=3e-3, rtol=0)
    cov = torch.cov(x.T)
    assert cov[0, 1] / cov.diagonal().prod().sqrt() > 0.5  # the correlation is really there
    torch.testing.assert_close(cov, ref.covariance_matrix[0], atol=3e-3 * cov.max(), rtol=2e-2)


def _model(covariance: str) -> DiffusionModel:
    cfg = RunConfig(
        data=DataConfig("swissroll"),
        diffusion=DiffusionConfig(
            "gaussian", T=6, beta1=1e-2, schedule="geometric", covariance=covariance
        ),
        network=NetworkConfig("mlp", hidden=(16,)),
    )
    torch.manual_seed(0)
    model = DiffusionModel(cfg, (2,)).double()
    with torch.no_grad():
        model.net.readout.weight.normal_(0, 0.5)
        model.net.readout.bias.normal_(0, 0.5)
    return model


def test_bound_is_the_k1_importance_estimate_and_below_large_k(gen):
    """K over every t equals the mean of log [p(x^{0..T}) / q(x^{1..T} | x^0)] over forward
    trajectories (k = 1), and the k = 64 estimate is higher (a tighter bound)."""
    model = _model("full")
    assert model.process.n_outputs == 3
    x0 = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        reps = 20_000
        exact = evaluate_bound(
            model, x0.repeat(reps, 1), torch.Generator().manual_seed(1)
        ).per_example.view(reps, 3)
        mc = importance_log_likelihood(
            model, x0.repeat(reps, 1), 1, torch.Generator().manual_seed(2)
        ).view(reps, 3)
        k64 = importance_log_likelihood(
            model, x0.repeat(200, 1), 64, torch.Generator().manual_seed(3)
        ).view(200, 3)
    se = (mc.var(0) / reps + exact.var(0) / reps).sqrt()
    assert ((mc.mean(0) - exact.mean(0)).abs() < 4 * se).all()
    assert (k64.mean(0) > exact.mean(0) + 4 * se).all()


def test_full_covariance_refused_where_it_does_not_apply():
    with pytest.raises(ConfigError, match="covariance"):
        DiffusionConfig("binomial", T=10, m=0.5, covariance="full")
    with pytest.raises(ConfigError, match="at most 16 dimensions") as info:
        RunConfig(
            data=DataConfig("digits"),
            diffusion=DiffusionConfig("gaussian", T=10, covariance="full"),
            network=NetworkConfig("conv"),
        )
    assert info.value.field == "diffusion.covariance"
    # vector data whose size only the file tells: the model refuses it once it knows the shape
    cfg = RunConfig(diffusion=DiffusionConfig("gaussian", T=10, covariance="full"))
    with pytest.raises(ConfigError, match="at most 16 dimensions"):
        DiffusionModel(cfg, (1, 8, 8))
    with pytest.raises(ConfigError, match="covariance"):
        DiffusionConfig("gaussian", T=10, covariance="spherical")


def test_full_covariance_run_trains_samples_and_refuses_strided(tmp_path):
    from diffusion.inference import load_trained
    from diffusion.presets import PRESETS
    from diffusion.training.events import GalleryEvent
    from diffusion.training.train import train

    cfg = PRESETS["swissroll-smoke"].with_overrides(
        ["diffusion.covariance=full", "train.steps=20", "train.eval_every=0", "data.n_train=300"]
    )
    events = []
    result = train(cfg, tmp_path / "run", on_event=events.append)
    gallery = [e for e in events if isinstance(e, GalleryEvent)][-1]
    assert result.status == "done" and gallery.samples.shape == (64, 2)
    trained = load_trained(tmp_path / "run", device="cpu")
    assert trained.sample(8, generator=torch.Generator().manual_seed(0)).samples.shape == (8, 2)
    with pytest.raises(ValueError, match="full-covariance"):
        trained.sample(8, steps=5)


@pytest.mark.parametrize("D", [1, 2, 5])
def test_unit_lower_inverse(gen, D):
    from diffusion.processes.gaussian import unit_lower, unit_lower_inverse

    U = unit_lower(torch.randn(7, D, max(D - 1, 0), generator=gen, dtype=torch.float64))
    torch.testing.assert_close(unit_lower_inverse(U) @ U, torch.eye(D).double().expand(7, D, D))
