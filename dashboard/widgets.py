"""Small Streamlit building blocks shared by the pages (no store access here)."""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np
import streamlit as st
from PIL import Image

from dashboard.safe_text import md_lines, md_text
from dashboard.tables import STATE_BADGES
from db.entities import Run
from db.rounding import fmt_se
from diffusion.images.imageio import png_bytes


def field_error(errors: Mapping[str, str], key: str, label: str | None = None) -> None:
    """The validation message for one form field, right under its widget."""
    if key in errors:
        st.error(f"{label or key}: {errors[key]}", icon=":material/error:")


def run_header(run: Run, *, job_line: str | None = None, last_step: int = 0) -> None:
    """Title line of a run: name, state, progress, who and where; the job's own line while
    it evaluates or after it stopped; the final bound rounded to its standard error."""
    st.title(md_text(run.name))
    cols = st.columns([2, 3, 3])
    cols[0].markdown(STATE_BADGES.get(run.state, run.state))
    total = run.total_steps or (run.config.get("train") or {}).get("steps") or 0
    step = max(run.step, last_step, run.checkpoint_step or 0)
    progress = 1.0 if run.state == "DONE" else (min(1.0, step / total) if total else 0.0)
    cols[1].progress(progress, text=f"step {step:,} of {total:,}")
    where = f"{run.host} / {run.device}" if run.host else f"requested: {run.device_request}"
    owner = md_text(run.owner)
    cols[2].caption(f"id `{run.id}` · owner {owner} · {run.visibility} · {md_text(where)}")
    if run.final_bound_bits is not None:
        cols[2].markdown(
            f"**Final bound K (holdout):** {fmt_se(run.final_bound_bits, run.final_bound_stderr)}"
            " bits"
        )
    if job_line and job_line.startswith("evaluating") and run.state == "RUNNING":
        st.info(
            f"Training done; {md_text(job_line)}. Cancel stops it and keeps the checkpoint.",
            icon=":material/hourglass_top:",
        )
    elif job_line and run.state == "CANCELLED":
        st.warning(f"Cancelled: {md_text(job_line)}.", icon=":material/stop_circle:")
    if run.state == "FAILED" and run.error:
        st.error(f"The run failed: {md_lines(run.error)}")


def run_label(run: Run) -> str:
    return f"{run.name} · {run.state.lower()} · {run.id}"


def enlarge(png: bytes, side: int = 512) -> bytes:
    """Small pictures scaled up by a whole factor with nearest-neighbour (crisp pixels)."""
    img = Image.open(io.BytesIO(png))
    factor = side // max(img.size)
    if factor < 2:
        return png
    img = img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)
    return png_bytes(np.asarray(img))


def brighten(png: bytes, levels: int) -> bytes:
    """A picture stored in the data's grey levels (0..16 for the digits) scaled to 0-255.

    Only when every value is a grey level or 255 (a grid's white padding): a picture that is
    already on a 0-255 scale is left alone.
    """
    if levels >= 256:
        return png
    raw = np.asarray(Image.open(io.BytesIO(png)))
    if not np.all((raw <= levels - 1) | (raw == 255)):
        return png
    return png_bytes(np.where(raw == 255, 255.0, raw.astype(np.float64) * (255.0 / (levels - 1))))


def job_line(kind: str, state: str, message: str | None) -> str:
    """A job's progress text: the worker's own line when it names the job ("inpaint:
    running"), else the kind and state; never both ("inpaint: running inpaint: running")."""
    message = (message or "").strip()
    if message.startswith(f"{kind}:"):
        return message
    return f"{kind}: {state.lower()}" + (f" ({message})" if message else "")
