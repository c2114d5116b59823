"""The parts of the run page: the header, live bound charts, samples and trajectories
(files, notes and sharing are in dashboard.runfiles).

Live parts are fragments that rerun on a timer while the run is active, so the rest of the
page (and the user's zoom, kept by each figure's `uirevision`) is left alone.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard import charts, runeval, runfigures
from dashboard.posterior import from_levels, model_levels
from dashboard.rundata import (
    gallery_artifacts,
    latest_array,
    sample_kind,
    trajectory_labels,
)
from dashboard.widgets import brighten, enlarge, run_header
from db.access import Viewer
from db.entities import ACTIVE_STATES, Run
from db.errors import NotFound
from db.media import to_png
from db.store import Store

LIVE_SECONDS = 2.0


def live_every(run: Run) -> float | None:
    return LIVE_SECONDS if run.state in ACTIVE_STATES else None


def header(store: Store, viewer: Viewer, run: Run) -> None:
    @st.fragment(run_every=live_every(run))
    def _header() -> None:
        current = store.get_run(run.id, viewer=viewer)
        run_header(
            current,
            job_line=train_message(store, current),
            last_step=last_step(store, current, viewer),
        )

    _header()


def train_message(store: Store, run: Run) -> str | None:
    """The train job's progress line (e.g. the evaluation under way, or how it stopped)."""
    try:
        return store.train_job(run.id).message or None
    except NotFound:
        return None


def last_step(store: Store, run: Run, viewer: Viewer) -> int:
    """The newest step with a point on the curves (the header never says less than this)."""
    latest = store.latest_metrics(run.id, viewer=viewer)
    return max((p.step for p in latest.values()), default=0)


def bound_panel(store: Store, viewer: Viewer, run: Run) -> None:
    """Bound curves with the paper's number, the KL profile, the schedule, the variance
    (built once per new metric point: dashboard.runfigures), under the test-set evaluation
    (dashboard.runeval) once one has been started."""
    runeval.evaluation_panel(store, viewer, run)

    @st.fragment(run_every=live_every(run))
    def _bound() -> None:
        current = store.get_run(run.id, viewer=viewer)
        figs = runfigures.bound_figures(store, current, viewer)
        st.plotly_chart(figs.bound, key="run_bound", width="stretch")
        left, right = st.columns(2)
        left.plotly_chart(figs.kl, key="run_kl", width="stretch")
        left.plotly_chart(figs.variance, key="run_var", width="stretch")
        right.plotly_chart(figs.beta, key="run_beta", width="stretch")
        if figs.loss is not None:
            right.plotly_chart(figs.loss, key="run_loss", width="stretch")

    _bound()


def samples_panel(store: Store, viewer: Viewer, run: Run) -> None:
    """The gallery with a step slider, the reverse trajectory, 2-D point clouds."""

    @st.fragment(run_every=live_every(run) and 5.0)
    def _samples() -> None:
        kind = sample_kind(run)
        arts = (
            gallery_artifacts(store, run, viewer)
            if kind == "images"
            else store.list_artifacts(run.id, viewer=viewer, kind="gallery")
        )
        if not arts:
            st.info(
                "No samples yet: the first gallery is drawn at the run's first gallery step "
                "and at the end of training."
                if run.state in ACTIVE_STATES
                else f"This run ({run.state.lower()}) drew no samples."
            )
            return
        steps = [a.step or 0 for a in arts]
        index = len(arts) - 1
        if len(arts) > 1:
            step = st.select_slider(
                "Training step", options=steps, value=steps[-1], key="run_gallery_step"
            )
            index = steps.index(step)
        art = arts[index]
        if kind == "images":
            _image_samples(store, viewer, run, art)
        else:
            _array_samples(store, viewer, run, art, kind)
        trajectory_view(store, viewer, run, kind)

    _samples()


def _image_samples(store: Store, viewer: Viewer, run: Run, art) -> None:
    """One image gallery, brightened to the run's levels, and its download button."""
    picture = brighten(store.artifact_bytes(art, viewer=viewer), model_levels(run.config))
    st.image(enlarge(picture, 512), caption=f"Samples at step {art.step}", width="content")
    st.download_button(
        "Download these samples (PNG, full size)",
        picture,
        file_name=f"{run.id}-samples-{art.step}.png",
        mime="image/png",
        icon=":material/download:",
        key="run_samples_png",
    )


def _array_samples(store: Store, viewer: Viewer, run: Run, art, kind: str) -> None:
    """One gallery of points (over the training data) or sequences."""
    if kind == "points":
        ref = store.latest_artifact(run.id, "data_sample", viewer=viewer)
        fig = runfigures.cloud_figure(store, viewer, art, ref)
        key = "run_cloud"
    else:
        fig = runfigures.sequences_figure(store, viewer, art)
        key = "run_seq"
    if fig is None:
        st.warning("This gallery could not be read.")
    else:
        st.plotly_chart(fig, key=key, width="stretch")


def trajectory_view(store: Store, viewer: Viewer, run: Run, kind: str) -> None:
    T = (run.config.get("diffusion") or {}).get("T")
    if kind == "points":
        art = store.latest_artifact(run.id, "trajectory", viewer=viewer)
        fig = runfigures.trajectory_figure(store, viewer, art, T) if art else None
        if fig is not None:
            st.markdown(f"**Reverse trajectory, from noise (t = {T}) to data (t = 0)**")
            st.plotly_chart(fig, key="run_traj", width="stretch")
        return
    traj = latest_array(store, run, viewer, "trajectory")
    if traj is None:
        return
    T = int(T or traj.shape[0] - 1)
    labels = trajectory_labels(T, traj.shape[0])
    st.markdown(f"**Reverse trajectory, from noise (t = {T}, left) to data (t = 0, right)**")
    if kind == "images" and traj.ndim >= 4:
        levels = model_levels(run.config)
        if np.nanmax(traj) < levels:  # data-space values: 0..16 for the digits
            traj = from_levels(traj, levels)
        strip, shown = trajectory_strip(traj, labels)
        st.image(enlarge(to_png(strip), 900), width="content")
        st.caption("Frames at t = " + ", ".join(str(t) for t in shown))
    elif kind == "sequences" and traj.ndim == 3:
        st.plotly_chart(
            charts.sequences(traj[:, 0], title="Sample 1 from t = T (top) to t = 0 (bottom)"),
            key="run_traj_seq",
            width="stretch",
        )


def frames_of(traj: np.ndarray) -> np.ndarray:
    """Sample 0's frames as S x H x W [x 3] from S x N x C x H x W (the engine's images)
    or S x N x H x W (grey, no channel axis)."""
    arr = np.asarray(traj)[:, 0]
    if arr.ndim == 4:  # S x C x H x W -> S x H x W x C
        arr = np.moveaxis(arr, 1, -1)
        if arr.shape[-1] == 1:
            arr = arr[..., 0]
    return arr


def trajectory_strip(
    traj: np.ndarray, labels: list[int], frames: int = 11
) -> tuple[np.ndarray, list[int]]:
    """One uint8 strip of up to `frames` evenly spaced frames of sample 0, and their t."""
    arr = frames_of(traj)
    pick = np.linspace(0, arr.shape[0] - 1, min(frames, arr.shape[0])).round().astype(int)
    tiles = [np.clip(np.rint(arr[i]), 0, 255).astype(np.uint8) for i in pick]
    pad = np.full((tiles[0].shape[0], 2, *tiles[0].shape[2:]), 255, np.uint8)
    out = []
    for t in tiles:
        out += [t, pad]
    return np.concatenate(out[:-1], axis=1), [labels[i] for i in pick]
