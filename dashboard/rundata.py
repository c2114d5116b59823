"""What the run page shows, read from the store: bound series, the latest vectors, galleries.

`load_run_data` turns metric points and artifacts into one small typed record, so that the
page, the comparison and the HTML report all draw the same thing.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from db.entities import Artifact, MetricPoint, Run, User
from db.errors import NotFound
from db.store import Store

BOUND_SERIES = ("k_train_bits", "k_holdout_bits", "k_minus_lnull_bits")
VECTORS = (
    "kl_profile_bits",
    "beta",
    "beta_baseline",
    "reverse_var",
    "reverse_var_lower",
    "reverse_var_upper",
)
REFERENCES = ("paper_k_bits", "paper_k_minus_lnull_bits", "true_ll_bits", "l_null_bits")

# Sohl-Dickstein et al. 2015, Table 1: (K, K - L_null) and the unit, by data set.
PAPER_TABLE_1: dict[str, tuple[float, float, str]] = {
    "swissroll": (2.35, 6.45, "bits"),
    "heartbeat": (-2.414, 12.024, "bits/sequence"),
    "texture": (-0.55, 1.5, "bits/pixel"),
    "deadleaves": (1.489, 3.536, "bits/pixel"),
    "cifar10": (5.4, 11.895, "bits/pixel"),
}


@dataclass(frozen=True)
class RunData:
    """A run's numbers for drawing. Series are (step, value); vectors are the latest ones."""

    series: dict[str, list[tuple[int, float]]]
    vectors: dict[str, list[float]]
    paper_k_bits: float | None
    paper_gain_bits: float | None
    true_ll_bits: float | None
    unit: str
    last_eval_step: int | None
    loss: list[tuple[int, float]] = field(default_factory=list)


def _points(points: Sequence[MetricPoint]) -> list[tuple[int, float]]:
    return [(p.step, float(p.value)) for p in points if p.value is not None]


def load_run_data(store: Store, run: Run, viewer: User) -> RunData:
    """Series and latest vectors of a run (only what `viewer` may see)."""
    names = [*BOUND_SERIES, "loss_bits", *REFERENCES]
    metrics = store.metrics(run.id, viewer=viewer, names=names)
    latest = store.latest_metrics(run.id, viewer=viewer)
    vectors = {
        name: list(latest[name].vector or ())
        for name in VECTORS
        if name in latest and latest[name].vector
    }
    kind = (run.config.get("diffusion") or {}).get("kind")
    if kind == "gaussian" and vectors.get("beta") and "reverse_var_lower" not in vectors:
        vectors["reverse_var_lower"], vectors["reverse_var_upper"] = variance_limits(
            vectors["beta"]
        )
    data_name = (run.config.get("data") or {}).get("name", "")
    paper = PAPER_TABLE_1.get(data_name)

    def ref(name: str) -> float | None:
        point = latest.get(name)
        return float(point.value) if point is not None and point.value is not None else None

    evals = metrics.get("k_holdout_bits") or []
    return RunData(
        series={name: _points(metrics.get(name, [])) for name in BOUND_SERIES if metrics.get(name)},
        vectors=vectors,
        paper_k_bits=ref("paper_k_bits")
        if ref("paper_k_bits") is not None
        else (paper[0] if paper else None),
        paper_gain_bits=ref("paper_k_minus_lnull_bits")
        if ref("paper_k_minus_lnull_bits") is not None
        else (paper[1] if paper else None),
        true_ll_bits=ref("true_ll_bits"),
        unit=paper[2] if paper else "bits",
        last_eval_step=evals[-1].step if evals else None,
        loss=_points(metrics.get("loss_bits", [])),
    )


def variance_limits(beta: Sequence[float]) -> tuple[list[float], list[float]]:
    """The limits of a Gaussian reverse step's variance, per t (Sohl-Dickstein et al. 2015,
    sec. 2.6, Eq. 29-30): the forward posterior variance (1 - abar_{t-1}) beta_t / (1 - abar_t)
    below (x(0) known) and beta_t above (the data are the Gaussian itself). t = 1 has no
    lower limit (its posterior variance is 0) and is left as NaN there.
    """
    b = np.asarray(list(beta), dtype=np.float64)
    abar = np.cumprod(1.0 - b)
    prev = np.concatenate([[1.0], abar[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = (1.0 - prev) * b / (1.0 - abar)
    lower[0] = np.nan
    return lower.tolist(), b.tolist()


def gallery_artifacts(store: Store, run: Run, viewer: User) -> list[Artifact]:
    """A run's image galleries in step order (PNG grids)."""
    return store.list_artifacts(run.id, viewer=viewer, kind="gallery_png")


def load_array(store: Store, artifact: Artifact, viewer: User) -> np.ndarray | None:
    """A stored .npy artifact as an array (never pickled objects), or None if unreadable."""
    try:
        raw = store.artifact_bytes(artifact, viewer=viewer)
        return np.load(io.BytesIO(raw), allow_pickle=False)
    except (NotFound, ValueError, OSError):
        return None


def latest_array(store: Store, run: Run, viewer: User, kind: str) -> np.ndarray | None:
    art = store.latest_artifact(run.id, kind, viewer=viewer)
    if art is None or not art.media_type.endswith("npy") and not art.key.endswith(".npy"):
        return None
    return load_array(store, art, viewer)


def sample_kind(run: Run) -> str:
    """How samples of this run are drawn: 'points' (2-D), 'sequences' or 'images'."""
    name = (run.config.get("data") or {}).get("name", "")
    if name == "swissroll":
        return "points"
    if name in ("heartbeat", "vector"):
        return "sequences"
    return "images"


def trajectory_labels(T: int, frames: int) -> list[int]:
    """The t of each stored snapshot: evenly spaced from T down to 0, as the engine keeps
    them (diffusion.chains.sampling.sample_chain, 11 snapshots by default)."""
    if frames < 2:
        return [0]
    return [int(round(T - i * T / (frames - 1))) for i in range(frames)]
