"""New run: pick a preset or set the fields, check them, and queue the training."""

from __future__ import annotations

import streamlit as st

from dashboard import forms
from dashboard.actions import ActionError, submit_run
from dashboard.services import get_store, require_user
from dashboard.uploads import UPLOAD_TYPES, prepare_image_folder
from dashboard.widgets import field_error
from db.media import MediaError

ERRORS = "new_run_errors"
CREATED = "new_run_created"
user = require_user()


def _choice(errors: dict, label: str, field: str, labels: dict, help: str | None = None) -> None:
    """A select box for one form field, its choices shown by their labels, with its error."""
    st.selectbox(label, list(labels), key=f"f:{field}", format_func=labels.get, help=help)
    field_error(errors, field, label)


def load_preset() -> None:
    """Fill the form from the chosen preset."""
    for key, value in forms.defaults_for(st.session_state.preset).items():
        st.session_state[f"f:{key}"] = value
    st.session_state[ERRORS] = {}


def on_submit() -> None:
    """Validate every field, and queue the run only when all are right."""
    values = {key: st.session_state.get(f"f:{key}") for key in forms.FORM_FIELDS}
    preset = st.session_state.get("preset")
    data_options = None
    st.session_state[CREATED] = None
    if values["data.name"] == "images":
        try:
            data_options = prepare_image_folder(st.session_state.get("f:upload"), user)
        except MediaError as exc:
            st.session_state[ERRORS] = {"upload": str(exc)}
            return
    result = forms.validate_form(values, preset, data_options)
    st.session_state[ERRORS] = dict(result.errors)
    if not result.ok:
        return
    try:
        run = submit_run(
            get_store(),
            result.config,
            user,
            preset=preset,
            visibility=st.session_state.get("f:visibility", "private"),
        )
    except ActionError as exc:
        st.session_state[ERRORS] = {"submit": str(exc)}
        return
    st.session_state[CREATED] = run.id


if "preset" not in st.session_state:
    names = forms.preset_names()
    st.session_state.preset = (
        "swissroll-smoke" if "swissroll-smoke" in names else (names[0] if names else None)
    )
    load_preset()
errors: dict[str, str] = st.session_state.get(ERRORS) or {}

st.title("New run")
st.caption(
    "Start from a preset (the rows of Table 1 of Sohl-Dickstein et al. 2015, or a quick "
    "'-smoke' check), change what you like, and queue it. Nothing is queued until every "
    "field is valid."
)
top_left, top_right = st.columns(2)
top_left.selectbox(
    "Preset",
    forms.preset_names(),
    key="preset",
    on_change=load_preset,
    help="Choosing a preset fills in every field below.",
)
top_right.selectbox(
    "Data set", list(forms.DATASET_LABELS), key="f:data.name", format_func=forms.DATASET_LABELS.get
)
field_error(errors, "data.name", "Data set")
if st.session_state.get("f:data.name") == "images":
    st.file_uploader(
        "Your images: a zip of a folder, or several image files (checked by content; at least two)",
        type=UPLOAD_TYPES,
        accept_multiple_files=True,
        key="f:upload",
    )
    field_error(errors, "upload", "Upload")

with st.form("new_run"):
    left, middle, right = st.columns(3)
    with left:
        st.subheader("Run")
        st.text_input("Run name", key="f:name", max_chars=200)
        field_error(errors, "name", "Run name")
        st.radio("Who can see it", ["private", "team"], key="f:visibility", horizontal=True)
    with middle:
        st.subheader("Model")
        _choice(errors, "Diffusion kind", "diffusion.kind", forms.KIND_LABELS)
        st.number_input("Steps T", min_value=2, max_value=100_000, step=1, key="f:diffusion.T")
        field_error(errors, "diffusion.T", "T")
        _choice(errors, "Schedule", "diffusion.schedule", forms.SCHEDULE_LABELS)
        _choice(
            errors,
            "Learned schedule starts from",
            "diffusion.learned_from",
            forms.LEARNED_FROM_LABELS,
            help="Used only when the schedule is 'Learned with the bound': the fixed schedule "
            "it starts from and learns a perturbation of. Ignored for the fixed schedules.",
        )
        st.number_input(
            "First step beta1",
            min_value=0.0,
            format="%.2e",
            step=1e-4,
            key="f:diffusion.beta1",
            help="The fixed noise variance of the first forward step, above 0 and at most 0.5. "
            "It caps how sharp the model can be: detail finer than about sqrt(beta1) is lost "
            "(model.md section 5). Smaller is sharper, but the last reverse step is harder to "
            "learn. Every schedule starts from it.",
        )
        field_error(errors, "diffusion.beta1", "First step beta1")
        _choice(
            errors,
            "Reverse covariance",
            "diffusion.covariance",
            forms.COVARIANCE_LABELS,
            help="The Gaussian reverse kernel's covariance: diagonal as in the paper, or full "
            f"(vector data of at most {forms.MAX_FULL_COVARIANCE_D} dimensions, e.g. the swiss "
            "roll; not images, not binomial diffusion).",
        )
        _choice(errors, "Network", "network.kind", forms.NETWORK_LABELS)
        st.text_input(
            "Hidden layer widths",
            key="f:network.hidden",
            help="Comma-separated widths, e.g. 128, 128",
        )
        field_error(errors, "network.hidden", "Hidden layer widths")
    with right:
        st.subheader("Training")
        st.number_input("Training steps", min_value=1, step=100, key="f:train.steps")
        field_error(errors, "train.steps", "Training steps")
        st.number_input("Batch size", min_value=1, step=1, key="f:train.batch_size")
        field_error(errors, "train.batch_size", "Batch size")
        st.number_input("Learning rate", min_value=0.0, format="%.5f", step=1e-4, key="f:train.lr")
        field_error(errors, "train.lr", "Learning rate")
        st.number_input("Seed", min_value=0, step=1, key="f:train.seed")
        field_error(errors, "train.seed", "Seed")
        _choice(errors, "Device", "train.device", forms.DEVICE_LABELS)
    st.form_submit_button("Queue the run", type="primary", on_click=on_submit)

if errors:
    if "submit" in errors:
        st.error(errors["submit"])
    else:
        st.error(f"Nothing was queued: {len(errors)} field(s) need attention (see above).")
if created := st.session_state.get(CREATED):
    st.success(f"Queued run `{created}`.")
    st.page_link(
        "views/run.py",
        label="Open the run page",
        icon=":material/monitoring:",
        query_params={"id": created},
    )
