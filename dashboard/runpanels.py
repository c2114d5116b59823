"""The parts of the run page: the header, live bound charts, samples and trajectories
(files, notes and sharing are in dashboard.runfiles).

Live parts are fragments that rerun on a timer while the run is active, so the rest of the
page (and the user's zoom, kept by each figure's `uirevision`) is left alone.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard import charts
from dashboard.posterior import from_levels, model_levels
from dashboard.rundata import (
    gallery_artifacts,
    latest_array,
    load_array,
    load_run_data,
    sample_kind,
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
    """Bound curves with the paper's number, the KL profile, the schedule, the variance."""

    @st.fragment(run_every=live_every(run))
    def _bound() -> None:
        current = store.get_run(run.id, viewer=viewer)
        data = load_run_data(store, current, viewer)
        fig = charts.bound_curves(
            data.series,
            paper_k_bits=data.paper_k_bits,
            true_ll_bits=data.true_ll_bits,
            unit=data.unit,
        )
        if data.paper_gain_bits is not None and "k_minus_lnull_bits" in data.series:
            charts.reference_line(fig, data.paper_gain_bits, "paper K - L_null", "#9467bd", "dash")
        st.plotly_chart(fig, key="run_bound", width="stretch")
        left, right = st.columns(2)
        with left:
            st.plotly_chart(
                charts.kl_profile(data.vectors.get("kl_profile_bits", []), unit=data.unit),
                key="run_kl",
                width="stretch",
            )
            v = data.vectors
            st.plotly_chart(
                charts.reverse_variance(
                    v.get("reverse_var", []), v.get("reverse_var_lower"), v.get("reverse_var_upper")
                ),
                key="run_var",
                width="stretch",
            )
        with right:
            st.plotly_chart(
                charts.beta_schedule(
                    data.vectors.get("beta", []), data.vectors.get("beta_baseline")
                ),
                key="run_beta",
                width="stretch",
            )
            if data.loss:
                st.plotly_chart(
                    charts.training_loss(data.loss, unit=data.unit),
                    key="run_loss",
                    width="stretch",
                )

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
    arr = load_array(store, art, viewer)
    if arr is None:
        st.warning("This gallery could not be read.")
    elif kind == "points":
        st.plotly_chart(
            charts.point_cloud(
                arr[:, :2],
                title=f"Samples at step {art.step}, over the training data",
                reference=latest_array(store, run, viewer, "data_sample"),
            ),
            key="run_cloud",
            width="stretch",
        )
    else:
        st.plotly_chart(
            charts.sequences(arr, title=f"Samples at step {art.step}"),
            key="run_seq",
            width="stretch",
        )


def trajectory_view(store: Store, viewer: Viewer, run: Run, kind: str) -> None:
    traj = latest_array(store, run, viewer, "trajectory")
    if traj is None:
        return
    T = int((run.config.get("diffusion") or {}).get("T") or traj.shape[0] - 1)
    labels = trajectory_labels(T, traj.shape[0])
    st.markdown(f"**Reverse trajectory, from noise (t = {T}, left) to data (t = 0, right)**")
    if kind == "points" and traj.ndim == 3:
        st.plotly_chart(
            charts.trajectory_animation(traj, steps=labels), key="run_traj", width="stretch"
        )
    elif kind == "images" and traj.ndim >= 4:
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


def trajectory_labels(T: int, frames: int) -> list[int]:
    """The t of each stored snapshot: evenly spaced from T down to 0, as the engine keeps
    them (diffusion.chains.sampling.sample_chain, 11 snapshots by default)."""
    if frames < 2:
        return [0]
    return [int(round(T - i * T / (frames - 1))) for i in range(frames)]


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
