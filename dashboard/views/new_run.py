"""New run: pick a preset (or open "New run from this run"), set the fields, check them, and
queue the training.

No st.form: Enter in a field only commits that field; nothing is queued but by the button.
The same config queued again within a minute asks first."""

from __future__ import annotations

import streamlit as st

from dashboard import forms
from dashboard.actions import ActionError, submit_run
from dashboard.form_fields import JS_SAFE_INT
from dashboard.safe_text import md_text
from dashboard.services import get_store, query_param, require_user, team_mode
from dashboard.uploads import UPLOAD_TYPES, prepare_image_folder
from dashboard.widgets import field_error
from db.errors import StoreError
from db.media import MediaError
from db.session import utcnow

ERRORS = "new_run_errors"
KIND_FIELDS = {"data.name": "data", "network.kind": "network"}  # their options follow them
CREATED = "new_run_created"
BASE = "new_run_base"  # the config of the run the form was opened from, or None
FROM = "new_run_from"
DUPLICATE = "new_run_duplicate"  # (run id, config) of a same-config run queued just now
user = require_user()


def fmt_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def _kinds() -> tuple[str, str]:
    return st.session_state.get("f:data.name", "swissroll"), st.session_state.get(
        "f:network.kind", "mlp"
    )


def field(errors: dict, path: str, where=st) -> None:
    """One config field's widget, as the schema declares it, with its error under it."""
    spec = forms.spec(path, *_kinds())
    label, key, help_ = forms.label(path), f"f:{path}", spec.help or None
    if spec.widget == "choice":  # the schema's choices that have a label (not "mps", "vector")
        labels = forms.CHOICE_LABELS.get(path, {})
        choices = [c for c in spec.choices if not labels or c in labels]
        section = KIND_FIELDS.get(path)
        where.selectbox(
            label,
            choices,
            key=key,
            format_func=lambda c: labels.get(c, c),
            help=help_,
            on_change=on_kind_change if section else None,
            args=(section,) if section else None,
        )
    elif spec.widget == "names":
        where.multiselect(label, list(spec.choices), key=key, help=help_)
    elif spec.widget == "bool":
        where.checkbox(label, key=key, help=help_)
    elif spec.widget == "int":
        hi = None if spec.hi is None else min(int(spec.hi), JS_SAFE_INT)
        where.number_input(label, min_value=spec.lo, max_value=hi, step=1, key=key, help=help_)
    elif spec.widget == "float":
        step = abs(spec.default) / 10 if spec.default else 0.1
        where.number_input(label, format="%g", step=step, key=key, help=help_)
    else:
        where.text_input(label, key=key, help=help_)
    field_error(errors, path, label)


def load_preset() -> None:
    """Fill the form from the chosen preset."""
    for key, value in forms.defaults_for(st.session_state.preset).items():
        st.session_state[f"f:{key}"] = value
    st.session_state[ERRORS] = {}
    st.session_state[BASE] = None


def load_run(run_id: str) -> None:
    """Fill the form from a run's config ("New run from this run")."""
    from diffusion.config import ConfigError, RunConfig

    try:
        run = get_store().get_run(run_id, viewer=user)
        cfg = RunConfig.from_dict(run.config)
    except (StoreError, ConfigError) as exc:
        st.session_state[ERRORS] = {"submit": f"Could not open run {run_id}: {exc}"}
        return
    for key, value in forms.values_for(cfg, f"{run.name} (copy)").items():
        st.session_state[f"f:{key}"] = value
    if run.preset in forms.preset_names():
        st.session_state.preset = run.preset
    # A new run trains from step 0, so its lr schedule spans its own steps, not the length
    # that "Continue training" kept for the run it came from (TrainConfig.lr_steps).
    st.session_state[BASE] = {**run.config, "train": {**run.config["train"], "lr_steps": 0}}
    st.session_state[FROM] = run_id
    st.session_state[ERRORS] = {}


def on_kind_change(section: str) -> None:
    """A new data set or network: its option fields start from a preset's, or the schema's."""
    kind = st.session_state.get("f:data.name" if section == "data" else "f:network.kind")
    for key, value in forms.option_defaults(section, kind).items():
        st.session_state[f"f:{key}"] = value


def on_submit(confirm: bool = False) -> None:
    """Validate every field, and queue the run only when all are right."""
    values = {key: st.session_state.get(f"f:{key}") for key in forms.form_fields(*_kinds())}
    preset = st.session_state.get("preset")
    data_options = None
    st.session_state[CREATED] = None
    if values["data.name"] == "images":
        try:
            data_options = prepare_image_folder(st.session_state.get("f:upload"), user)
        except MediaError as exc:
            st.session_state[ERRORS] = {"upload": str(exc)}
            return
    base = st.session_state.get(BASE)
    result = forms.validate_form(values, preset, data_options, base=base)
    st.session_state[ERRORS] = dict(result.errors)
    if not result.ok:
        return
    pending = st.session_state.pop(DUPLICATE, None)
    config = result.config.to_dict()
    if not (confirm and pending is not None and pending[1] == config):
        runs = get_store().list_runs(viewer=user, limit=50)
        twin = forms.recent_duplicate(runs, config, user.id, utcnow())
        if twin is not None:
            st.session_state[DUPLICATE] = (twin.id, config)
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
source = query_param("from")
if source and st.session_state.get(FROM) != source:
    load_run(source)
errors: dict[str, str] = st.session_state.get(ERRORS) or {}

st.title("New run")
st.caption(
    "Start from a preset (the rows of Table 1 of Sohl-Dickstein et al. 2015, or a quick "
    "'-smoke' check), change what you like, and queue it. Nothing is queued until every "
    "field is valid."
)
top_left, top_middle, top_right = st.columns(3)
top_left.selectbox(
    "Preset",
    forms.preset_names(),
    key="preset",
    on_change=load_preset,
    help="Choosing a preset fills in every field below.",
)
with top_middle:
    field(errors, "data.name")
with top_right:
    field(errors, "network.kind")
if card := forms.preset_card(st.session_state.get("preset")):
    with st.expander(f"The preset {st.session_state.preset}: network, tuning, what it reaches"):
        st.markdown("\n".join(f"- {md_text(line)}" for line in card))
if st.session_state.get("f:data.name") == "images":
    st.file_uploader(
        "Your images: a zip of a folder, or several image files (checked by content; at least two)",
        type=UPLOAD_TYPES,
        accept_multiple_files=True,
        key="f:upload",
    )
    field_error(errors, "upload", "Upload")

data_kind, network_kind = _kinds()
if st.session_state.get(BASE) is not None:
    st.info(
        f"Filled from run `{st.session_state.get(FROM)}`: fields not on this form keep that "
        "run's values. Choosing a preset starts over from the preset.",
        icon=":material/content_copy:",
    )
with st.container(border=True):
    left, middle, right = st.columns(3)
    with left:
        st.subheader("Run")
        field(errors, "name")
        if team_mode():
            st.radio("Who can see it", ["private", "team"], key="f:visibility", horizontal=True)
        st.subheader("Data options")
        for path in forms.option_paths("data", data_kind):
            field(errors, path)
    with middle:
        st.subheader("Model")
        for path in forms.FORM_FIELDS:
            if path.startswith("diffusion.") or path == "network.hidden":
                field(errors, path)
        for path in forms.option_paths("network", network_kind):
            field(errors, path)
    with right:
        st.subheader("Training")
        for path in forms.FORM_FIELDS:
            if path.startswith("train."):
                field(errors, path)
        estimate = forms.eval_estimate(
            {k: st.session_state.get(f"f:{k}") for k in forms.FORM_FIELDS}
        )
        if estimate is not None:
            pairs, seconds = estimate
            st.caption(
                f"Each evaluation: {pairs:,} (example, t) network calls, about "
                f"{fmt_duration(seconds)} on one CPU thread (much less on a GPU). The whole "
                "test set is a separate job on the run page."
            )
st.button("Queue the run", type="primary", on_click=on_submit, key="new_run_submit")
if twin := st.session_state.get(DUPLICATE):
    st.warning(
        f"You queued run `{twin[0]}` with exactly this config less than a minute ago. "
        "Queue another one anyway?",
        icon=":material/content_copy:",
    )
    st.button(
        "Yes, queue it again", on_click=on_submit, kwargs={"confirm": True}, key="new_run_again"
    )

if errors:
    if "submit" in errors:
        st.error(md_text(errors["submit"]))
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
