"""Team: who you are, your password and sessions, the members (admins manage them), invites,
and how sharing works."""

from __future__ import annotations

import streamlit as st

from dashboard import team_admin
from dashboard.safe_text import md_text
from dashboard.services import get_store, require_user, share_url, sign_out, team_mode
from db.errors import StoreError

user = require_user()
store = get_store()

st.title("Team")
if not team_mode():
    st.info(
        "This lab runs on one machine for one local user: there is no sign-in, and every "
        "run is yours. Start it with DIFFLAB_TEAM_MODE=1 (and a shared database) to work "
        "as a team."
    )
    st.stop()

left, mid, right = st.columns([3, 1, 1])
left.markdown("Signed in as **" + md_text(user.username) + "**")
if user.is_admin:
    left.caption("admin")
if mid.button("Sign out", icon=":material/logout:", key="team_sign_out"):
    sign_out()
    st.rerun()
if right.button("Sign out everywhere", key="team_sign_out_all"):
    sign_out(everywhere=True)
    st.rerun()

team_admin.password_form(store, user)

st.subheader("Members")
team_admin.members(store, user)

st.subheader("Sharing")
st.markdown(
    "A run is **private** (only you and admins) or **shared with the team**; set it "
    "under *Notes and tags* on its run page. A share link opens a run or a comparison "
    "for anyone allowed to see it, and says *not found* to everyone else."
)

if user.is_admin:
    st.subheader("Invite someone")
    make_admin = st.checkbox("The new member is an admin too", key="team_invite_admin")
    if st.button("Create an invite link", type="primary", key="team_invite"):
        try:
            invite = store.create_invite(user, is_admin=make_admin)
            link = share_url("x").replace("/shared?token=x", f"/?invite={invite.token}")
            st.code(link, language=None)
            st.caption(f"Valid until {invite.expires_at:%Y-%m-%d %H:%M} UTC, for one account.")
        except StoreError as exc:
            st.error(md_text(exc))
