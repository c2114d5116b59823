"""The run page's Files and Notes tabs: one-click downloads (config, samples, checkpoint,
metrics as CSV and JSON, the HTML report), notes, tags, visibility and share links.

Buttons a viewer may not use are not shown: only the owner (or an admin) edits; through a
share link everything is read only; the private/team switch exists only in team mode.
"""

from __future__ import annotations

import datetime as dt
import json

import streamlit as st

from dashboard import charts, runpanels
from dashboard.posterior import model_levels
from dashboard.report import ReportImage, RunReport, build_report
from dashboard.rundata import gallery_artifacts, load_array, load_run_data, sample_kind
from dashboard.safe_text import md_lines, md_text
from dashboard.services import share_url, team_mode
from dashboard.widgets import brighten
from db.access import LinkViewer, Viewer, may_edit
from db.entities import Run
from db.errors import NotFound, StoreError
from db.export import metrics_csv, metrics_json
from db.rounding import fmt_se
from db.store import Store

EXPIRY = {"never": None, "1 day": 1, "7 days": 7, "30 days": 30}


def files_panel(store: Store, viewer: Viewer, run: Run) -> None:
    """Downloads, each one click (made when clicked, so the page stays fast): config, samples,
    checkpoint, metrics, the HTML report."""
    c = st.columns(3)
    c[0].download_button(
        "Config (JSON)",
        json.dumps(run.config, indent=2, sort_keys=True),
        file_name=f"{run.id}-config.json",
        mime="application/json",
        icon=":material/settings:",
        key="dl_config",
    )
    _artifact_downloads(store, viewer, run, c[1:])
    _export_downloads(store, viewer, run)
    st.caption(f"The same metrics from a shell: `difflab export {run.id} --format csv`")


def _artifact_downloads(store: Store, viewer: Viewer, run: Run, cols: list) -> None:
    """The latest sample grid and checkpoint, each a download (disabled until written)."""
    for col, kind, label in zip(
        cols, ("gallery_png", "checkpoint"), ("Samples (PNG)", "Checkpoint"), strict=True
    ):
        art = store.latest_artifact(run.id, kind, viewer=viewer)
        if art is None:
            col.button(label, disabled=True, help="Not written yet", key=f"dl_none_{kind}")
            continue
        levels = model_levels(run.config) if kind == "gallery_png" else 256
        col.download_button(
            label,
            lambda a=art, lv=levels: brighten(store.artifact_bytes(a, viewer=viewer), lv),
            file_name=f"{run.id}-{art.key}",
            mime=art.media_type,
            icon=":material/download:",
            key=f"dl_{kind}",
        )


def _export_downloads(store: Store, viewer: Viewer, run: Run) -> None:
    """Metrics (CSV, JSON) and the HTML report, each made when its button is clicked."""
    exports = (  # label, bytes made on click, file suffix, media type, icon, widget key
        (
            "Metrics (CSV)",
            lambda: metrics_csv(store, run.id, viewer=viewer),
            "metrics.csv",
            "text/csv",
            "table_view",
            "dl_metrics_csv",
        ),
        (
            "Metrics (JSON)",
            lambda: metrics_json(store, run.id, viewer=viewer),
            "metrics.json",
            "application/json",
            "data_object",
            "dl_metrics_json",
        ),
        (
            "Report (HTML)",
            lambda: report_html(store, viewer, run),
            "report.html",
            "text/html",
            "description",
            "dl_report",
        ),
    )
    for col, (label, data, suffix, mime, icon, key) in zip(st.columns(3), exports, strict=True):
        col.download_button(
            label,
            data,
            file_name=f"{run.id}-{suffix}",
            mime=mime,
            icon=f":material/{icon}:",
            key=key,
        )


def report_html(store: Store, viewer: Viewer, run: Run) -> str:
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
    else:
        for art in gallery_artifacts(store, run, viewer)[-4:]:
            png = brighten(store.artifact_bytes(art, viewer=viewer), model_levels(run.config))
            images.append(ReportImage(f"step {art.step}", png))
    summary = {
        "id": run.id,
        "state": run.state,
        "owner": run.owner,
        "steps": f"{run.step} / {run.total_steps}",
        "device": run.device or "-",
        "final bound K (holdout, bits)": fmt_se(run.final_bound_bits, run.final_bound_stderr),
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


def notes_panel(store: Store, viewer: Viewer, run: Run) -> None:
    """Notes and tags (editable by the owner), who may see the run, and share links."""
    if not may_edit(run.owner_id, viewer):
        st.markdown("**Notes**")
        st.markdown(md_lines(run.notes) if run.notes else "_No notes._")
        st.markdown("**Tags:** " + (", ".join(md_text(t) for t in run.tags) or "_none_"))
        st.caption(
            "Read only: a share link opens a run for reading."
            if isinstance(viewer, LinkViewer)
            else f"Only {md_text(run.owner)} (the owner) or an admin can change this run."
        )
    else:
        _edit_notes(store, viewer, run)
    if not isinstance(viewer, LinkViewer):
        share_panel(store, viewer, run)


def _edit_notes(store: Store, viewer: Viewer, run: Run) -> None:
    notes = st.text_area("Notes", value=run.notes, height=150, key="run_notes")
    tags = st.text_input("Tags (comma-separated)", value=", ".join(run.tags), key="run_tags")
    team = run.visibility == "team"
    if team_mode():
        team = st.toggle("Shared with the team", value=team, key="run_team")
    if st.button("Save notes and tags", type="primary", key="run_save"):
        try:
            store.set_notes(run.id, notes, viewer=viewer)
            store.set_tags(run.id, [t for t in tags.split(",") if t.strip()], viewer=viewer)
            if team_mode():
                store.set_visibility(run.id, "team" if team else "private", viewer=viewer)
            st.success("Saved.")
        except StoreError as exc:
            st.error(md_text(exc))


def share_panel(store: Store, viewer: Viewer, run: Run) -> None:
    """Make a link (with an expiry) that opens this run read-only; list and revoke links."""
    st.markdown("**Share links**")
    st.caption(
        "A share link opens this run read only (curves, samples, files) for any signed-in "
        "member who holds it, even while the run is private."
    )
    left, right = st.columns([1, 2])
    expiry = left.selectbox("Expires after", list(EXPIRY), key="run_share_expiry")
    if right.button("Make a share link", key="run_share", icon=":material/link:"):
        days = EXPIRY[expiry]
        try:
            link = store.create_share_link(
                [run.id],
                viewer=viewer,
                title=run.name,
                ttl=dt.timedelta(days=days) if days else None,
            )
            st.code(share_url(link.token), language=None)
        except (StoreError, NotFound) as exc:
            st.error(md_text(exc))
    try:
        links = store.list_share_links(run.id, viewer=viewer)
    except StoreError:
        links = []
    for link in links:
        a, b = st.columns([4, 1])
        until = f"until {link.expires_at:%Y-%m-%d %H:%M} UTC" if link.expires_at else "no expiry"
        a.caption(f"`…{link.token[-8:]}` made {link.created_at:%Y-%m-%d %H:%M} UTC, {until}")
        if b.button("Revoke", key=f"run_revoke_{link.token}", icon=":material/link_off:"):
            try:
                store.delete_share_link(link.token, viewer=viewer)
                st.rerun()
            except StoreError as exc:
                st.error(md_text(exc))


VIEWS = ("Bound", "Samples", "Files", "Notes, tags, sharing")


def run_tabs(store: Store, viewer: Viewer, run: Run, notes_label: str = VIEWS[-1]) -> str:
    """The run's four views (bound, samples, files, notes), as on the run page and behind a
    share link; `notes_label` names the last one. Only the open view is built (the others
    cost nothing until clicked: `st.tabs` tracking its state), and the open view is kept in
    the URL (`?view=Samples`), so a link or a reload opens the same view. Returns its label."""
    labels = [*VIEWS[:-1], notes_label]
    tabs = st.tabs(labels, key="view", bind="query-params")
    panels = (runpanels.bound_panel, runpanels.samples_panel, files_panel, notes_panel)
    opened = labels[0]
    for label, tab, panel in zip(labels, tabs, panels, strict=True):
        if tab.open:
            opened = label
            with tab:
                panel(store, viewer, run)
    return opened
