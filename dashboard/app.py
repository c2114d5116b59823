"""Diffusion Lab dashboard: the entry point. It only routes (st.navigation).

Run with `streamlit run dashboard/app.py`. Without team mode the single local user is the
viewer. In team mode (DIFFLAB_TEAM_MODE=1), until someone signs in every address shows the
sign-in page (so a deep link such as /shared?token=... opens its page right after sign-in).

The page scripts live in dashboard/views/, not dashboard/pages/: a `pages/` folder beside
the entry file switches Streamlit to its older automatic page discovery, which bypasses
this router.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent
if str(ROOT.parent) not in sys.path:  # `streamlit run dashboard/app.py` from anywhere
    sys.path.insert(0, str(ROOT.parent))

from dashboard import session_cookie  # noqa: E402
from dashboard.services import current_user, show_store_error, team_mode  # noqa: E402
from dashboard.signing_key import SigningKeyError, signing_key  # noqa: E402
from db.errors import StoreError  # noqa: E402

PAGES = (  # url path, title, icon, section
    ("runs", "Runs", "table_rows", "Lab"),
    ("new_run", "New run", "add_circle", "Lab"),
    ("run", "Run", "monitoring", "Lab"),
    ("gallery", "Gallery", "photo_library", "Lab"),
    ("posterior", "Denoise and inpaint", "auto_fix_high", "Lab"),
    ("team", "Team", "group", "Team"),
    ("shared", "Shared link", "link", "Team"),
    ("status", "Status", "dns", "Team"),
)

st.set_page_config(page_title="Diffusion Lab", page_icon=":material/blur_on:", layout="wide")

try:
    if team_mode():
        signing_key()  # refuse a missing key, or one in the shared data folder, up front
    signed_out = team_mode() and current_user() is None
except StoreError as exc:  # the database is down or not migrated: say so, no traceback
    show_store_error(exc)
    st.stop()
except SigningKeyError as exc:
    st.error(f"The lab cannot sign anyone in: {exc}")
    st.stop()

if signed_out:
    sign_in = ROOT / "views" / "sign_in.py"
    navigation = st.navigation(
        [
            st.Page(sign_in, title="Sign in", url_path=path, default=path == "runs")
            for path, *_ in PAGES
        ],
        position="hidden",
    )
else:
    sections: dict[str, list[st.Page]] = {}
    for path, title, icon, section in PAGES:
        sections.setdefault(section, []).append(
            st.Page(
                ROOT / "views" / f"{path}.py",
                title=title,
                icon=f":material/{icon}:",
                url_path=path,
                default=path == "runs",
            )
        )
    navigation = st.navigation(sections)
session_cookie.flush()  # keep (or end) the sign-in across reloads
try:
    navigation.run()
except StoreError as exc:  # a store refusal no page caught: a message, never a traceback
    show_store_error(exc)
