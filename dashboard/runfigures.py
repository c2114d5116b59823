"""The run page's figures, built once per version of what they draw and kept in Streamlit's
resource cache.

Building a Plotly figure is the slow part of the run page (reading 50,000 logged steps and
validating each figure's template costs about a second); a finished run's figures never
change, and a live run's change only when a new point is logged. So:

- the bound panel's figures are keyed on the store, the run id, the run's config and the
  *version* of its metrics: the (name, step, wall time) of the last point of every series,
  which changes whenever any point is logged (or a resumed run rewrites a step);
- a gallery's or trajectory's figure is keyed on the artifact's content hash.

The figures are kept as objects (`st.cache_resource`), not pickled copies (`st.cache_data`):
`st.plotly_chart` takes a Figure as it is, while a dict or an unpickled figure is validated
again, which costs as much as building it. Nothing mutates a cached figure: the page only
hands it to `st.plotly_chart`, which serialises a copy.

Rights: the cache key never holds the viewer, so each cached function is called only after
the viewer has proved, through the store and with their own identity, that they may see what
the key names (`bound_version` reads the run's latest metrics as the viewer; the artifacts
come from the store's listing for the viewer). The cached body reads with that same viewer,
and anyone else who reaches it has passed the same check for the same run or content, so a
cached figure never shows anyone something they could not read themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from dashboard import charts
from dashboard.rundata import load_array, load_run_data, trajectory_labels
from db.access import Viewer
from db.entities import Artifact, Run
from db.store import Store

# Per cached function; the least recently used go first. An entry is 0.5-0.75 MiB (the bound
# panel of the seeded team store's runs, the 50,000-step run the largest, measured with
# tracemalloc), so 64 entries bound each cache to ~50 MiB. (It was 256: up to ~190 MiB, most
# of it stale versions of a live run, which leaves one entry per logged point.)
CACHE_ENTRIES = 64
CACHE_SECONDS = 3600  # a live run's stale versions are gone within the hour at the latest


@dataclass(frozen=True)
class BoundFigures:
    """The bound panel's figures (loss None where the run logged no training loss)."""

    bound: go.Figure
    kl: go.Figure
    beta: go.Figure
    variance: go.Figure
    loss: go.Figure | None


def bound_version(store: Store, run: Run, viewer: Viewer) -> tuple:
    """What the bound panel draws, as a key: the last point of every series. Reading it is
    the viewer's proof that they may see this run's metrics (the store checks)."""
    latest = store.latest_metrics(run.id, viewer=viewer)
    return tuple(sorted((name, p.step, p.wall_time) for name, p in latest.items()))


def bound_figures(store: Store, run: Run, viewer: Viewer) -> BoundFigures:
    """The bound, KL profile, schedule, variance and loss figures of `run`, cached."""
    version = bound_version(store, run, viewer)
    config = json.dumps(run.config, sort_keys=True, default=str)
    return _bound_figures(
        store.url, run.id, config, version, _store=store, _run=run, _viewer=viewer
    )


@st.cache_resource(max_entries=CACHE_ENTRIES, ttl=CACHE_SECONDS, show_spinner=False)
def _bound_figures(
    url: str, run_id: str, config: str, version: tuple, *, _store: Store, _run: Run, _viewer: Viewer
) -> BoundFigures:
    data = load_run_data(_store, _run, _viewer)
    fig = charts.bound_curves(
        data.series,
        paper_k_bits=data.paper_k_bits,
        true_ll_bits=data.true_ll_bits,
        unit=data.unit,
    )
    if data.paper_gain_bits is not None and "k_minus_lnull_bits" in data.series:
        charts.reference_line(fig, data.paper_gain_bits, "paper K - L_null", "#9467bd", "dash")
    v = data.vectors
    return BoundFigures(
        bound=fig,
        kl=charts.kl_profile(v.get("kl_profile_bits", []), unit=data.unit),
        beta=charts.beta_schedule(v.get("beta", []), v.get("beta_baseline")),
        variance=charts.reverse_variance(
            v.get("reverse_var", []), v.get("reverse_var_lower"), v.get("reverse_var_upper")
        ),
        loss=charts.training_loss(data.loss, unit=data.unit) if data.loss else None,
    )


def cloud_figure(
    store: Store, viewer: Viewer, art: Artifact, reference: Artifact | None
) -> go.Figure | None:
    """A 2-D gallery over the training data (None if the gallery cannot be read). `art` and
    `reference` come from the store's listing for `viewer`."""
    return _cloud_figure(
        art.sha256,
        reference.sha256 if reference else None,
        art.step,
        _store=store,
        _viewer=viewer,
        _art=art,
        _ref=reference,
    )


@st.cache_resource(max_entries=CACHE_ENTRIES, ttl=CACHE_SECONDS, show_spinner=False)
def _cloud_figure(
    sha: str, ref_sha: str | None, step: int | None, *, _store, _viewer, _art, _ref
) -> go.Figure | None:
    arr = load_array(_store, _art, _viewer)
    if arr is None:
        return None
    ref = load_array(_store, _ref, _viewer) if _ref is not None else None
    return charts.point_cloud(
        arr[:, :2], title=f"Samples at step {step}, over the training data", reference=ref
    )


def sequences_figure(store: Store, viewer: Viewer, art: Artifact) -> go.Figure | None:
    return _sequences_figure(art.sha256, art.step, _store=store, _viewer=viewer, _art=art)


@st.cache_resource(max_entries=CACHE_ENTRIES, ttl=CACHE_SECONDS, show_spinner=False)
def _sequences_figure(sha: str, step: int | None, *, _store, _viewer, _art) -> go.Figure | None:
    arr = load_array(_store, _art, _viewer)
    if arr is None:
        return None
    return charts.sequences(arr, title=f"Samples at step {step}")


def trajectory_figure(
    store: Store, viewer: Viewer, art: Artifact, T: int | None
) -> go.Figure | None:
    """The animated reverse trajectory of a stored S x N x 2 array, its frames labelled by t
    (None if it cannot be read or is not 2-D points)."""
    return _trajectory_figure(art.sha256, T, _store=store, _viewer=viewer, _art=art)


@st.cache_resource(max_entries=CACHE_ENTRIES, ttl=CACHE_SECONDS, show_spinner=False)
def _trajectory_figure(sha: str, T: int | None, *, _store, _viewer, _art) -> go.Figure | None:
    traj = load_array(_store, _art, _viewer)
    if traj is None or traj.ndim != 3:
        return None
    labels = trajectory_labels(int(T or traj.shape[0] - 1), traj.shape[0])
    return charts.trajectory_animation(np.asarray(traj), steps=labels)
