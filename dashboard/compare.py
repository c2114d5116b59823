"""Comparing runs: overlaid bound curves and the parameters that differ."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from dashboard import charts, tables
from dashboard.rundata import load_run_data
from db.entities import User
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
    diff = tables.differing_parameters(runs)
    if diff.empty:
        st.caption("These runs have identical configurations (apart from nothing at all).")
    else:
        st.markdown("**Parameters that differ**")
        st.dataframe(diff, width="stretch")
