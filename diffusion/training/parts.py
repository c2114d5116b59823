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

    The probabilities are refreshed every `REFRESH` steps, not every step: a step only keeps
    its draws t and their KL_t (two list appends, no tensor operation), and a refresh sums
    KL_t^2 and counts per t over the steps since the last one (two bincounts over their
    concatenation, on the KL's device), folds the mean into the running mean (0.9 old + 0.1
    new where t was drawn; the first draw of a t sets it) and recomputes p. The dozen small
    tensor operations of a refresh, and the two bincounts, are a few percent of a toy
    network's step when paid each step (issue 14); spread over ten steps they are a
    fraction of one."""

    REFRESH = 10

    def __init__(self, T: int) -> None:
        self.sq = torch.zeros(T - 1, dtype=torch.float64)
        self.count = torch.zeros(T - 1, dtype=torch.long)
        self.pending_t: list[torch.Tensor] = []  # each step's t and KL_t since the last refresh
        self.pending_kl: list[torch.Tensor] = []
        self._clear_acc()
        self._probs: torch.Tensor | None = None  # None: uniform (some t not seen yet)
        self._on_device: tuple[torch.Tensor, torch.Tensor] | None = None  # (_probs, its copy)

    @property
    def pending(self) -> int:
        """Steps added since the last refresh."""
        return self.acc_steps + len(self.pending_t)

    def probs(self, device: torch.device | None = None) -> torch.Tensor | None:
        """(T - 1,) float64 p(t = 2..T) for the next draw, or None: draw t uniformly. On
        `device` (the CPU by default), copied there once per refresh, not once per step."""
        if self._probs is None or device is None or device == self._probs.device:
            return self._probs
        if self._on_device is None or self._on_device[0] is not self._probs:
            self._on_device = (self._probs, self._probs.to(device))
        return self._on_device[1]

    def update(self, t: torch.Tensor, kl: torch.Tensor) -> None:
        """Add one step's draws t (B,) and their KL_t (B,) nats; refresh every REFRESH."""
        self.pending_t.append(t)
        self.pending_kl.append(kl.detach())
        if self.pending >= self.REFRESH:
            self.refresh()

    def _clear_acc(self) -> None:
        """Sums restored from an older checkpoint, and the steps they stand for: none."""
        n = len(self.sq)
        self.acc_sq = torch.zeros(n, dtype=torch.float64)
        self.acc_n = torch.zeros(n, dtype=torch.long)
        self.acc_steps = 0

    def refresh(self) -> None:
        """Fold the pending steps (sum of KL_t^2 and count per t, in draw order, with any
        restored sums) into the running mean of KL_t^2 and recompute p."""
        if not self.pending:
            return
        total, n = self.acc_sq, self.acc_n
        if self.pending_t:
            idx = torch.cat(self.pending_t) - 2
            kl = torch.cat(self.pending_kl).double()
            total = total + torch.bincount(idx, weights=kl.square(), minlength=len(n)).cpu()
            n = n + torch.bincount(idx, minlength=len(n)).cpu()
        self.pending_t, self.pending_kl = [], []
        self._clear_acc()
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
        """The running mean, counts and the pending steps' draws (t and KL_t as they came, so
        that a resumed run sums them in the same order as one that never stopped)."""
        state = {"sq": self.sq.clone(), "count": self.count.clone(), "pending": self.pending}
        if self.pending_t:
            state["pending_t"] = torch.cat(self.pending_t).cpu()
            state["pending_kl"] = torch.cat(self.pending_kl).cpu()
            state["pending_sizes"] = [len(t) for t in self.pending_t]
        if self.acc_steps:
            state["acc_sq"], state["acc_n"] = self.acc_sq.clone(), self.acc_n.clone()
            state["acc_steps"] = self.acc_steps
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restores a state. Older checkpoints kept the pending steps as summed accumulators
        (`acc_sq`, `acc_n`: added at the next refresh) or had none pending (refreshed each
        step)."""
        self.sq, self.count = state["sq"].cpu().clone(), state["count"].cpu().clone()
        self.pending_t, self.pending_kl = [], []
        if "pending_t" in state:
            sizes = [int(n) for n in state["pending_sizes"]]
            self.pending_t = list(state["pending_t"].clone().split(sizes))
            self.pending_kl = list(state["pending_kl"].clone().split(sizes))
        self._clear_acc()
        if "acc_sq" in state:  # an older checkpoint's `pending` counted the steps in its sums
            self.acc_sq = state["acc_sq"].cpu().double().clone()
            self.acc_n = state["acc_n"].cpu().long().clone()
            self.acc_steps = int(state.get("acc_steps", state.get("pending", 0)))
        self._set_probs()
