"""The parts of the run page: live bound charts, samples, files, notes and tags.

Live parts are fragments that rerun on a timer while the run is active, so the rest of the
page (and the user's zoom, kept by each figure's `uirevision`) is left alone.
"""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

from dashboard import charts
from dashboard.posterior import from_levels, model_levels
from dashboard.report import ReportImage, RunReport, build_report
from dashboard.rundata import (
    gallery_artifacts,
    latest_array,
    load_array,
    load_run_data,
    sample_kind,
)
from dashboard.safe_text import md_text
from dashboard.services import share_url
from dashboard.widgets import brighten, enlarge, run_header
from db.entities import ACTIVE_STATES, Run, User
from db.errors import NotFound, StoreError
from db.media import to_png
from db.store import Store

LIVE_SECONDS = 2.0


def live_every(run: Run) -> float | None:
    return LIVE_SECONDS if run.state in ACTIVE_STATES else None


def header(store: Store, viewer: User, run: Run) -> None:
    @st.fragment(run_every=live_every(run))
    def _header() -> None:
        run_header(store.get_run(run.id, viewer=viewer))

    _header()


def bound_panel(store: Store, viewer: User, run: Run) -> None:
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
                    charts.bound_curves(
                        {"training loss (-K, minibatch)": data.loss},
                        unit=data.unit,
                        revision="loss",
                    ),
                    key="run_loss",
                    width="stretch",
                )

    _bound()


def samples_panel(store: Store, viewer: User, run: Run) -> None:
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
            st.info("No samples yet: the first gallery appears after the first gallery step.")
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
            picture = brighten(store.artifact_bytes(art, viewer=viewer), model_levels(run.config))
            st.image(enlarge(picture, 512), caption=f"Samples at step {art.step}", width="content")
        else:
            arr = load_array(store, art, viewer)
            if arr is None:
                st.warning("This gallery could not be read.")
            elif kind == "points":
                st.plotly_chart(
                    charts.point_cloud(arr[:, :2], title=f"Samples at step {art.step}"),
                    key="run_cloud",
                    width="stretch",
                )
            else:
                st.plotly_chart(
                    charts.sequences(arr, title=f"Samples at step {art.step}"),
                    key="run_seq",
                    width="stretch",
                )
        trajectory_view(store, viewer, run, kind)

    _samples()


def trajectory_view(store: Store, viewer: User, run: Run, kind: str) -> None:
    traj = latest_array(store, run, viewer, "trajectory")
    if traj is None:
        return
    st.markdown("**Reverse trajectory, from noise (left) to data (right)**")
    if kind == "points" and traj.ndim == 3:
        st.plotly_chart(charts.trajectory_animation(traj), key="run_traj", width="stretch")
    elif traj.ndim >= 3:
        levels = model_levels(run.config)
        if np.nanmax(traj) < levels:  # data-space values: 0..16 for the digits
            traj = from_levels(traj, levels)
        st.image(enlarge(to_png(trajectory_strip(traj)), 900), width="content")


def trajectory_strip(traj: np.ndarray, frames: int = 10) -> np.ndarray:
    """S x N x H x W [x C] -> one uint8 strip of `frames` evenly spaced frames of sample 0."""
    arr = traj[:, 0] if traj.ndim >= 4 else traj
    pick = np.linspace(0, arr.shape[0] - 1, min(frames, arr.shape[0])).round().astype(int)
    tiles = [arr[i] for i in pick]
    tiles = [np.clip(t, 0, 255).astype(np.uint8) if t.dtype != np.uint8 else t for t in tiles]
    pad = np.full((tiles[0].shape[0], 2, *tiles[0].shape[2:]), 255, np.uint8)
    out = []
    for t in tiles:
        out += [t, pad]
    return np.concatenate(out[:-1], axis=1)


def files_panel(store: Store, viewer: User, run: Run) -> None:
    """Downloads: samples, checkpoint, config, and the self-contained HTML report."""
    c = st.columns(4)
    c[0].download_button(
        "Config (JSON)",
        json.dumps(run.config, indent=2, sort_keys=True),
        file_name=f"{run.id}-config.json",
        mime="application/json",
        icon=":material/settings:",
    )
    for col, kind, label in (
        (c[1], "gallery_png", "Samples (PNG)"),
        (c[2], "checkpoint", "Checkpoint"),
    ):
        art = store.latest_artifact(run.id, kind, viewer=viewer)
        if kind == "gallery_png" and art is None:
            art = store.latest_artifact(run.id, "gallery", viewer=viewer)
        if art is None:
            col.button(label, disabled=True, help="Not written yet", key=f"dl_none_{kind}")
            continue
        col.download_button(
            label,
            lambda a=art: store.artifact_bytes(a, viewer=viewer),
            file_name=f"{run.id}-{art.key}",
            mime=art.media_type,
            icon=":material/download:",
            key=f"dl_{kind}",
        )
    c[3].download_button(
        "Report (HTML)",
        lambda: report_html(store, viewer, run),
        file_name=f"{run.id}-report.html",
        mime="text/html",
        icon=":material/description:",
        key="dl_report",
    )


def report_html(store: Store, viewer: User, run: Run) -> str:
    data = load_run_data(store, run, viewer)
    figures = [
        (
            "Bound",
            charts.bound_curves(
                data.series,
                paper_k_bits=data.paper_k_bits,
                true_ll_bits=data.true_ll_bits,
                unit=data.unit,
            ),
        )
    ]
    if data.vectors.get("kl_profile_bits"):
        figures.append(("Per-step KL", charts.kl_profile(data.vectors["kl_profile_bits"])))
    if data.vectors.get("beta"):
        figures.append(
            (
                "Schedule",
                charts.beta_schedule(data.vectors["beta"], data.vectors.get("beta_baseline")),
            )
        )
    images = []
    if sample_kind(run) == "points":
        art = store.latest_artifact(run.id, "gallery", viewer=viewer)
        arr = load_array(store, art, viewer) if art else None
        if arr is not None:
            figures.append(("Samples", charts.point_cloud(arr[:, :2])))
    for art in gallery_artifacts(store, run, viewer)[-4:]:
        png = brighten(store.artifact_bytes(art, viewer=viewer), model_levels(run.config))
        images.append(ReportImage(f"step {art.step}", png))
    summary = {
        "id": run.id,
        "state": run.state,
        "owner": run.owner,
        "steps": f"{run.step} / {run.total_steps}",
        "device": run.device or "-",
        "final bound (bits)": run.final_bound_bits if run.final_bound_bits is not None else "-",
    }
    return build_report(
        RunReport(
            title=run.name,
            summary=summary,
            config=run.config,
            figures=figures,
            images=images,
            notes=run.notes,
            tags=run.tags,
        )
    )


def notes_panel(store: Store, viewer: User, run: Run) -> None:
    """Notes, tags, who may see the run, and a share link."""
    notes = st.text_area("Notes", value=run.notes, height=150, key="run_notes")
    tags = st.text_input("Tags (comma-separated)", value=", ".join(run.tags), key="run_tags")
    team = st.toggle("Shared with the team", value=run.visibility == "team", key="run_team")
    save, share = st.columns(2)
    if save.button("Save notes, tags and sharing", type="primary", key="run_save"):
        try:
            store.set_notes(run.id, notes, viewer=viewer)
            store.set_tags(run.id, [t for t in tags.split(",") if t.strip()], viewer=viewer)
            store.set_visibility(run.id, "team" if team else "private", viewer=viewer)
            st.success("Saved.")
        except StoreError as exc:
            st.error(md_text(exc))
    if share.button("Make a share link", key="run_share", icon=":material/link:"):
        try:
            link = store.create_share_link([run.id], viewer=viewer, title=run.name)
            st.code(share_url(link.token), language=None)
            st.caption(
                "It opens this run for anyone allowed to see it (you, or the team when "
                "the run is shared with the team)."
            )
        except (StoreError, NotFound) as exc:
            st.error(md_text(exc))
