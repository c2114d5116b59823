"""Comparing runs: overlaid bound curves and the parameters that differ."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from dashboard import charts, tables
from dashboard.posterior import model_levels
from dashboard.rundata import gallery_artifacts, load_array, load_run_data, sample_kind
from dashboard.safe_text import md_text
from dashboard.widgets import brighten, enlarge
from db.entities import Run, User
from db.errors import NotFound
from db.store import Store

METRICS = {
    "k_holdout_bits": "K (holdout)",
    "k_train_bits": "K (train)",
    "k_minus_lnull_bits": "K - L_null (holdout)",
}


def show_comparison(store: Store, viewer: User, run_ids: Sequence[str], *, key: str) -> None:
    """Overlaid curves of one bound series, and a table of the config fields that differ."""
    runs = []
    for run_id in run_ids:
        try:
            runs.append(store.get_run(run_id, viewer=viewer))
        except NotFound:
            continue
    if len(runs) < 2:
        st.info("Select at least two runs you may see to compare them.")
        return
    st.subheader(f"Comparing {len(runs)} runs")
    metric = st.segmented_control(
        "Curve",
        list(METRICS),
        format_func=METRICS.get,
        default="k_holdout_bits",
        key=f"{key}_metric",
    )
    metric = metric or "k_holdout_bits"
    data = [(f"{r.name} ({r.id[:6]})", load_run_data(store, r, viewer)) for r in runs]
    curves = [(label, d.series.get(metric, [])) for label, d in data]
    unit = data[0][1].unit
    st.plotly_chart(
        charts.compare_curves(curves, metric_label=METRICS[metric], unit=unit),
        key=f"{key}_chart",
        width="stretch",
    )
    samples_side_by_side(store, viewer, runs[:4], key)
    diff = tables.differing_parameters(runs)
    if diff.empty:
        st.caption("These runs have identical configurations (apart from nothing at all).")
    else:
        st.markdown("**Parameters that differ**")
        st.dataframe(diff, width="stretch")


def samples_side_by_side(store: Store, viewer: User, runs: Sequence[Run], key: str) -> None:
    """The latest samples of each run (up to four), in columns, at the same size."""
    st.markdown("**Latest samples**")
    cols = st.columns(len(runs))
    for i, (col, run) in enumerate(zip(cols, runs, strict=True)):
        with col:
            st.caption(md_text(f"{run.name} ({run.id[:6]})"))
            kind = sample_kind(run)
            if kind == "images":
                arts = gallery_artifacts(store, run, viewer)
                if arts:
                    png = brighten(
                        store.artifact_bytes(arts[-1], viewer=viewer), model_levels(run.config)
                    )
                    st.image(enlarge(png, 256), caption=f"step {arts[-1].step}", width="stretch")
                    continue
            else:
                arts = store.list_artifacts(run.id, viewer=viewer, kind="gallery")
                arr = load_array(store, arts[-1], viewer) if arts else None
                if arr is not None:
                    fig = (
                        charts.point_cloud(arr[:, :2], title=f"step {arts[-1].step}")
                        if kind == "points"
                        else charts.sequences(arr, title=f"step {arts[-1].step}")
                    )
                    fig.update_layout(height=300, showlegend=False)
                    st.plotly_chart(fig, key=f"{key}_samples_{i}", width="stretch")
                    continue
            st.caption("No samples yet.")
