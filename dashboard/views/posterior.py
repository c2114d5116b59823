"""Denoise and inpaint: upload an image (or pick a held-out one), pick a finished model (or,
explicitly, the checkpoint of an unfinished run), set the noise level or the mask, choose the
method and the number of samples. Before the job starts the page says what happens to the
upload (colour conversion; run at its own size, in tiles, or resized, and why); the results
(samples, their mean and their spread) show the size they were run at."""

from __future__ import annotations

import streamlit as st

from dashboard import posterior as pst
from dashboard.actions import ActionError
from dashboard.safe_text import md_text
from dashboard.services import get_store, require_user
from dashboard.upload_plan import inpaint_note, plan_upload
from dashboard.uploads import IMAGE_TYPES
from dashboard.widgets import enlarge, job_line, run_label
from db.entities import ACTIVE_STATES
from db.media import MAX_UPLOAD_BYTES, MediaError, inspect_image, to_png
from diffusion.chains.inpaint_methods import DESCRIPTIONS, GUIDANCE, MAX_GUIDANCE

JOB = "posterior_job"


def choice(label: str, options: dict[str, str], key: str) -> str:
    """A horizontal radio over the keys of `options`, each shown by its description."""
    return st.radio(label, list(options), horizontal=True, key=key, format_func=options.get)


user = require_user()
store = get_store()

st.title("Denoise and inpaint")
runs = store.list_runs(viewer=user, limit=1000)
models, unfinished = pst.image_runs(runs), pst.checkpoint_runs(runs)
if not models and not unfinished:
    st.info("No trained image model yet. Train one (digits-smoke takes seconds) on New run.")
    st.stop()

setup, preview = st.columns([2, 3])
with setup:
    use_checkpoint = st.toggle(
        "Use the checkpoint of an unfinished run",
        value=not models,
        key="pst_use_ckpt",
        disabled=not unfinished or not models,
        help="Finished models are offered by default. A run still training (or stopped) can "
        "be used at its latest checkpoint, if you choose it here.",
    )
    if use_checkpoint:
        model = st.selectbox(
            "Unfinished run (its latest checkpoint)",
            unfinished,
            format_func=lambda r: f"{run_label(r)} · checkpoint at step {r.checkpoint_step:,}",
            key="pst_ckpt_model",
        )
    else:
        model = st.selectbox("Finished model", models, format_func=run_label, key="pst_model")
    shape = pst.model_shape(model.config)
    levels = pst.model_levels(model.config)
    held_out = pst.holdout_examples(model.config)
    source = st.radio(
        "Input",
        ["Upload an image", "A held-out image"],
        horizontal=True,
        key="pst_source",
        disabled=held_out is None,
        help=None if held_out is not None else "Held-out images are offered for digits models.",
    )
    upload, pick = None, None
    if source == "A held-out image" and held_out is not None:
        pick = st.slider("Held-out image", 1, len(held_out), 1, key="pst_pick") - 1
    else:
        upload = st.file_uploader(
            "Image to work on",
            type=IMAGE_TYPES,
            key="pst_upload",
            max_upload_size=MAX_UPLOAD_BYTES // 2**20,
            help="Checked by content. What happens to its size and colour is said below "
            "before anything runs.",
        )
    n = st.slider("Number of samples", 1, 16, 4, key="pst_n")
    T = int((model.config.get("diffusion") or {}).get("T", 1000))
    choices = sorted({s for s in (10, 25, 50, 100, 250) if s < T} | {T})
    steps = st.select_slider(
        "Reverse steps",
        choices,
        value=min(choices, key=lambda s: abs(s - 50)),
        key="pst_steps",
        help=f"The chain's steps: all T = {T}, or fewer kept steps of the strided chain "
        "(faster; each step is one network evaluation over the whole image).",
    )
    image, plan, notes, name, failure = None, None, (), "", None
    try:
        if pick is not None:
            name = f"held-out-{pick + 1}.png"
            image = pst.to_display(held_out[pick], levels)
        elif upload is not None:
            name, data = upload.name, upload.getvalue()
            notes = inspect_image(data).notes
            plan = plan_upload(data, model.config, int(n), shape.mode)
            image = plan.pixels
    except (MediaError, ValueError) as exc:
        failure = str(exc)
    run = shape if image is None else pst.ImageShape(*image.shape[:2], shape.mode)
    task = st.radio("Task", ["Inpaint", "Denoise"], horizontal=True, key="pst_task")
    if task == "Denoise":
        sigma = st.slider(
            "Noise level sigma (on a 0-255 grey scale)",
            1.0,
            128.0,
            25.0,
            key="pst_sigma",
            help="The worker adds Gaussian noise of this "
            "standard deviation to the input, then samples the clean image.",
        )
        start = choice(
            "Chain",
            {
                "level": "From the matching noise level (the model's posterior)",
                "observation": "Paper (every step times N(y, sigma^2), sec. 2.5.3)",
            },
            key="pst_start",
        )
    else:
        drawable = max(run.height, run.width) <= pst.MAX_DRAW_SIDE
        mask_kind = st.selectbox(
            "Mask",
            [k for k in pst.MASKS if k != "draw" or drawable],
            format_func=pst.MASKS.get,
            key="pst_mask",
        )
        fraction, rect, mask_upload, drawn = 0.5, (0.25, 0.75, 0.25, 0.75), None, None
        if mask_kind == "random":
            fraction = st.slider("Fraction of pixels missing", 0.05, 0.95, 0.5, key="pst_frac")
        elif mask_kind == "rectangle":
            rows = st.slider(
                "Missing rows (fraction of the height)", 0.0, 1.0, (0.25, 0.75), key="pst_rows"
            )
            cols = st.slider(
                "Missing columns (fraction of the width)", 0.0, 1.0, (0.25, 0.75), key="pst_cols"
            )
            rect = (*rows, *cols)
        elif mask_kind == "draw":
            grid = st.data_editor(
                pst.drawing_grid(run),
                key="pst_draw",
                hide_index=True,
                column_config={
                    c: st.column_config.CheckboxColumn(c, width=8)
                    for c in map(str, range(run.width))
                },
            )
            drawn = grid.to_numpy(dtype=bool)
        elif mask_kind == "upload":
            file = st.file_uploader(
                "Mask image (white = keep, black = fill in)",
                type=IMAGE_TYPES,
                key="pst_mask_upload",
                max_upload_size=MAX_UPLOAD_BYTES // 2**20,
            )
            mask_upload = file.getvalue() if file else None
        method = choice("Method", DESCRIPTIONS, key="pst_method")
        if method == "guided":
            guidance = st.number_input(
                "Guidance weight",
                min_value=0.0,
                max_value=MAX_GUIDANCE,
                value=GUIDANCE,
                step=0.5,
                key="pst_guidance",
                help="How strongly each step is pulled toward reproducing the known pixels "
                "(reconstruction guidance, Ho et al. 2022); 0 only replaces them.",
            )

if failure:
    preview.error(failure)
    st.stop()
if image is None:
    preview.info("Upload an image to see it here.")
    st.stop()
try:
    if task == "Denoise":
        corrupted = pst.noisy(image, sigma)  # a preview: the worker draws its own noise
        params = {"sigma": float(sigma) * (levels - 1) / 255.0, "start": start}  # data levels
    else:
        known = pst.make_mask(
            mask_kind, run, fraction=fraction, rect=rect, upload=mask_upload, drawn=drawn
        )
        corrupted = pst.masked_view(image, known)
        params = {"method": method, **({"guidance": guidance} if method == "guided" else {})}
        hole_note = inpaint_note(known, model.config) if plan else None
except pst.MaskError as exc:
    preview.error(str(exc))
    st.stop()
headline = plan.headline if plan else f"Run as it is, at {run.width} x {run.height}"
with preview:
    a, b = st.columns(2)
    a.image(enlarge(to_png(image), 256), caption="Input (as the model sees it)", width="stretch")
    b.image(
        enlarge(to_png(corrupted), 256),
        width="stretch",
        caption="Corrupted input" + (" (a preview)" if task == "Denoise" else ""),
    )
    st.info(
        "\n".join(
            [f"**What will happen: {headline}.**"]
            + [f"- {x}" for x in (*notes, *(plan.notes if plan else ("A held-out image.",)))]
            + ([f"- {pst.WINDOW_NOTE}"] if task == "Inpaint" and plan else [])
            + ([f"- {hole_note}"] if task == "Inpaint" and hole_note else [])
        ),
        icon=":material/photo_size_select_large:",
    )
    if use_checkpoint:
        st.caption(
            f"Model: run {model.id} at its latest checkpoint (step {model.checkpoint_step:,})."
        )

if st.button(f"{task} with {n} sample(s)", type="primary", key="pst_go"):
    try:
        job = pst.submit(
            store,
            user,
            model,
            task.lower(),
            observed=pst.to_levels(image, levels),
            known=None if task == "Denoise" else known,
            params={
                **params,
                "n": int(n),
                "steps": None if int(steps) == T else int(steps),
                "size_plan": headline,
                **({"checkpoint_step": model.checkpoint_step} if use_checkpoint else {}),
            },
            name=name,
        )
        st.session_state[JOB] = job.id
    except ActionError as exc:
        st.error(md_text(exc))


def job_active() -> bool:
    job_id = st.session_state.get(JOB)
    return bool(job_id) and store.get_job(job_id, viewer=user).state in ACTIVE_STATES


@st.fragment(run_every=2 if job_active() else None)
def results() -> None:
    """The job's progress, then its results; refreshes alone until the job ends."""
    job_id = st.session_state.get(JOB)
    if not job_id:
        return
    job = store.get_job(job_id, viewer=user)
    if job.state in ACTIVE_STATES:
        st.progress(job.progress, text=md_text(job_line(job.kind, job.state, job.message)))
        st.session_state["pst_was_active"] = True
        return
    if st.session_state.pop("pst_was_active", False):
        st.rerun()  # the whole page once more, which stops the timer
    if job.state == "FAILED":
        st.error(f"The {job.kind} job failed: {job.error}")
        return
    if job.state == "CANCELLED":
        st.warning("The job was cancelled.")
        return
    pics = pst.job_pictures(store, job, user, levels)
    st.subheader("Results")
    st.caption(f":material/straighten: {pst.run_note(job)}")
    shown_pics = [
        (pics.samples, "Samples"),
        (pics.mean, "Mean of the samples" if pics.readout_mean else "Mean"),
        (pics.spread, "Spread (std)"),
    ]
    if pics.readout_mean is not None:  # denoise: E[x | y] in one read-out (model-notes.md)
        shown_pics.insert(2, (pics.readout_mean, "Posterior mean (one read-out)"))
    cols = st.columns(2 + len(shown_pics))
    cols[0].image(enlarge(to_png(image), 256), caption="Input", width="stretch")
    shown = pics.observed if task == "Denoise" and pics.observed else to_png(corrupted)
    cols[1].image(enlarge(shown, 256), caption="Corrupted input", width="stretch")
    for col, (pic, label) in zip(cols[2:], shown_pics, strict=True):
        if pic is None:
            col.caption(f"{label}: not stored")
        else:
            col.image(enlarge(pic, 256), caption=label, width="stretch")
    d = st.columns(max(1, len(pics.downloads)))
    for col, (name, (data, key)) in zip(d, pics.downloads.items(), strict=False):
        col.download_button(
            f"Download {name}", data, file_name=f"{job.id}-{key}", key=f"pst_dl_{name}"
        )


results()
