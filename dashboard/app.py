"""Diffusion Lab dashboard: the entry point. It only routes (st.navigation).

Run with `streamlit run dashboard/app.py`. In team mode (DIFFLAB_TEAM_MODE=1) only the
sign-in page exists until someone signs in; without it the single local user is the viewer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent
if str(ROOT.parent) not in sys.path:  # `streamlit run dashboard/app.py` from anywhere
    sys.path.insert(0, str(ROOT.parent))

from dashboard.auth import NEXT_PAGE  # noqa: E402
from dashboard.services import current_user, team_mode  # noqa: E402

st.set_page_config(page_title="Diffusion Lab", page_icon=":material/blur_on:", layout="wide")


def page(name: str, title: str, icon: str, *, default: bool = False) -> st.Page:
    return st.Page(ROOT / "pages" / f"{name}.py", title=title, icon=f":material/{icon}:",
                   url_path=name, default=default)


if team_mode() and current_user() is None:
    navigation = st.navigation([page("sign_in", "Sign in", "login", default=True)])
else:
    shared = page("shared", "Shared link", "link")
    navigation = st.navigation({
        "Lab": [
            page("runs", "Runs", "table_rows", default=True),
            page("new_run", "New run", "add_circle"),
            page("run", "Run", "monitoring"),
            page("gallery", "Gallery", "photo_library"),
            page("posterior", "Denoise and inpaint", "auto_fix_high"),
        ],
        "Team": [
            page("team", "Team", "group"),
            shared,
            page("status", "Status", "dns"),
        ],
    })
    destination = st.session_state.pop(NEXT_PAGE, None)  # a deep link opened before sign-in
    if destination and destination.get("token"):
        st.switch_page(shared, query_params={"token": destination["token"]})
navigation.run()
