"""Training building blocks: the model from its seed, the learning-rate schedule, the optimizer,
the fixed evaluation subsets, gallery events and the importance sampler of t (used by
diffusion.training.train, which re-exports them)."""

from __future__ import annotations

import math

import torch

from diffusion.chains.sampling import sample_chain
from diffusion.config import RunConfig
from diffusion.data import DataBundle
from diffusion.data.display import data_levels, gallery_kind, to_data_array, trajectory_array
from diffusion.model import DiffusionModel
from diffusion.training.events import GalleryEvent


def build_model(config: RunConfig, bundle: DataBundle, device: torch.device) -> DiffusionModel:
    """The model with its initial weights drawn from the run's seed (caller's RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed)
        model = DiffusionModel(config, bundle.shape, bundle.kind)
        if getattr(model.net, "centres_from_data", False):  # RBF units placed on the data
            gen = torch.Generator().manual_seed(config.train.seed + 5)  # run.json seeds
            n = max(4096, 8 * model.net.centres.shape[0])
            model.net.init_from_data(bundle.scaler.to_model(bundle.draw_train(n, gen), gen))
    return model.to(device)


def schedule_steps(config: RunConfig) -> int:
    """The steps the lr schedule (and schedule_warmup) span: train.lr_steps, else train.steps.
    A continued run keeps its original length here while train.steps grows."""
    tc = config.train
    return max(1, tc.lr_steps or tc.steps)


def lr_at(config: RunConfig, step: int, frac: float | None = None) -> float:
    """Learning rate at `step`: constant, cosine or exponential decay from lr to lr_final over
    `schedule_steps(config)` steps, and lr_final after them (a continued run: the lr goes on
    from its last value, no jump at the join).

    `frac` (the fraction of a wall-clock budget spent) replaces step / schedule steps when
    given, so the schedule fits a time budget instead of being cut off by it."""
    tc = config.train
    frac = min(1.0, step / schedule_steps(config) if frac is None else frac)
    if tc.lr_schedule == "cosine":
        return tc.lr_final + (tc.lr - tc.lr_final) * 0.5 * (1 + math.cos(math.pi * frac))
    if tc.lr_schedule == "exponential":
        return tc.lr * (tc.lr_final / tc.lr) ** frac
    return tc.lr


def make_optimizer(config: RunConfig, model: DiffusionModel) -> torch.optim.Optimizer:
    tc = config.train
    sched_params = list(model.schedule.parameters())
    ids = {id(p) for p in sched_params}
    groups = [
        {
            "params": [p for p in model.parameters() if id(p) not in ids],
            "lr": tc.lr,
            "base_lr": tc.lr,
        }
    ]
    if sched_params:
        s_lr = tc.schedule_lr or tc.lr
        groups.append({"params": sched_params, "lr": s_lr, "base_lr": s_lr, "schedule": True})
    # foreach: one multi-tensor update per group instead of a Python loop over the parameters
    # (PyTorch picks it on CUDA only; on the CPU it gives the same numbers, faster)
    if tc.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=tc.lr, foreach=True)
    return torch.optim.Adam(groups, lr=tc.lr, foreach=True)


def eval_tensors(
    config: RunConfig, bundle: DataBundle, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed model-space evaluation subsets (train, holdout), at most eval_examples each."""
    n = config.train.eval_examples
    gen = torch.Generator().manual_seed(config.train.seed + 4)
    x_train = bundle.train[:n] if bundle.train is not None else bundle.draw_train(n, gen)
    x_train = bundle.scaler.to_model(x_train, gen)
    x_hold = bundle.scaler.to_model(bundle.holdout[:n], gen)
    return x_train.to(device), x_hold.to(device)


def gallery_event(
    step: int, model: DiffusionModel, bundle: DataBundle, n: int, seed: int, device: torch.device
) -> GalleryEvent:
    """Samples (and a trajectory of snapshots) in data space."""
    gen = torch.Generator().manual_seed(seed)
    chain = sample_chain(model, n, gen, device, return_trajectory=True)
    samples = to_data_array(bundle, chain.x0)
    traj = trajectory_array(bundle.scaler, chain.trajectory)
    kind = gallery_kind(bundle)
    reference = None
    if kind == "points":  # training data to draw under the samples (up to 1,000 points)
        x = bundle.train if bundle.train is not None else bundle.draw_train(1000, gen)
        reference = torch.as_tensor(x[:1000]).detach().double().cpu().numpy()
    return GalleryEvent(step, samples, kind, traj, data_levels(bundle), reference)


class TSampler:
    """Importance sampling of t = 2..T: p(t) proportional to the running RMS of KL_t, mixed
    with 10% uniform (after Nichol & Dhariwal 2021, section 3.3). Uniform until every t has
    been seen. The training estimate of K stays unbiased
    (diffusion.evaluation.bound.train_terms): each step's KL is divided by the p(t) it was
    drawn with.

    The probabilities are refreshed every `REFRESH` steps, not every step: a step only adds
    its KL_t^2 and counts into two accumulators (two bincounts, on the KL's device), and a
    refresh folds the mean KL_t^2 of those steps into the running mean (0.9 old + 0.1 new
    where t was drawn; the first draw of a t sets it) and recomputes p. The dozen small
    tensor operations of a refresh are a few percent of a toy network's step when paid each
    step (issue 14); spread over ten steps they are a fraction of one."""

    REFRESH = 10

    def __init__(self, T: int) -> None:
        self.sq = torch.zeros(T - 1, dtype=torch.float64)
        self.count = torch.zeros(T - 1, dtype=torch.long)
        self.acc_sq: torch.Tensor | None = None  # since the last refresh (on the KL's device)
        self.acc_n: torch.Tensor | None = None
        self.pending = 0  # steps added since the last refresh
        self._probs: torch.Tensor | None = None  # None: uniform (some t not seen yet)

    def probs(self) -> torch.Tensor | None:
        """(T - 1,) float64 p(t = 2..T) for the next draw, or None: draw t uniformly."""
        return self._probs

    def update(self, t: torch.Tensor, kl: torch.Tensor) -> None:
        """Add one step's draws t (B,) and their KL_t (B,) nats; refresh every REFRESH."""
        idx, n = t - 2, len(self.sq)
        sq = torch.bincount(idx, weights=kl.detach().double().square(), minlength=n)
        counts = torch.bincount(idx, minlength=n)
        if self.acc_sq is None:
            self.acc_sq, self.acc_n = sq, counts
        else:  # `to`: accumulators restored from a checkpoint are on the CPU
            self.acc_sq = self.acc_sq.to(sq.device).add_(sq)
            self.acc_n = self.acc_n.to(counts.device).add_(counts)
        self.pending += 1
        if self.pending >= self.REFRESH:
            self.refresh()

    def refresh(self) -> None:
        """Fold the accumulated steps into the running mean of KL_t^2 and recompute p."""
        if self.acc_sq is None:
            return
        total, n = self.acc_sq.cpu(), self.acc_n.cpu()
        self.acc_sq = self.acc_n = None
        self.pending = 0
        mean = total / n.clamp(min=1)  # the mean where drawn (the rest is kept below)
        new = torch.where(self.count == 0, mean, 0.9 * self.sq + 0.1 * mean)
        self.sq = torch.where(n > 0, new, self.sq)  # elementwise, no boolean indexing
        self.count += n
        self._set_probs()

    def _set_probs(self) -> None:
        """p(t) from the running mean of KL_t^2, once every t has been drawn."""
        if not bool((self.count > 0).all()):
            self._probs = None
            return
        p = self.sq.sqrt() + 1e-12
        self._probs = 0.9 * p / p.sum() + 0.1 / len(p)

    def state_dict(self) -> dict:
        state = {"sq": self.sq.clone(), "count": self.count.clone(), "pending": self.pending}
        if self.acc_sq is not None:
            state["acc_sq"], state["acc_n"] = self.acc_sq.cpu(), self.acc_n.cpu()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restores a state; one saved before accumulators existed (refreshed each step) has
        none pending."""
        self.sq, self.count = state["sq"].cpu().clone(), state["count"].cpu().clone()
        self.pending = int(state.get("pending", 0))
        self.acc_sq = state["acc_sq"].clone() if "acc_sq" in state else None
        self.acc_n = state["acc_n"].clone() if "acc_n" in state else None
        self._set_probs()
