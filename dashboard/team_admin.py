"""The Team page's forms: change your password, and (admins) manage members' sessions,
removal and sign-in blocks."""

from __future__ import annotations

import streamlit as st

from dashboard.safe_text import md_text
from dashboard.services import sign_out
from db.entities import User
from db.errors import StoreError
from db.passwords import MIN_PASSWORD
from db.store import Store


def password_form(store: Store, user: User) -> None:
    with st.expander("Change my password"), st.form("team_password", clear_on_submit=True):
        current = st.text_input("Current password", type="password", key="pw_current")
        new = st.text_input(
            f"New password (at least {MIN_PASSWORD} characters)", type="password", key="pw_new"
        )
        if st.form_submit_button("Change password"):
            try:
                if store.authenticate(user.username, current) is None:
                    st.error("The current password is wrong.")
                    return
                store.set_password(user.id, new)
            except StoreError as exc:
                st.error(md_text(exc))
                return
            sign_out()  # every session ended: sign in again with the new password
            st.rerun()


def members(store: Store, user: User) -> None:
    people = [u for u in store.list_users() if not u.is_local]
    st.dataframe(
        [
            {
                "username": u.username,
                "admin": u.is_admin,
                "since": u.created_at.strftime("%Y-%m-%d"),
                "sessions": store.active_sessions(u.id),
            }
            for u in people
        ],
        hide_index=True,
    )
    if not user.is_admin:
        return
    others = {u.username: u for u in people if u.id != user.id}
    blocks = [key for key, _, until in store.blocked_accounts() if until is not None]
    if not others and not blocks:
        return
    with st.expander("Manage members"):
        if others:
            name = st.selectbox("Member", list(others), key="team_member")
            target = others[name]
            a, b = st.columns(2)
            if a.button("Sign out everywhere", key="team_member_sign_out"):
                count = store.revoke_user_sessions(target.id, by=user)
                st.success(f"Ended {count} session(s) of {md_text(name)}.")
            if b.button("Remove from the team", key="team_member_remove"):
                store.remove_user(user, target.id)
                st.success(f"{md_text(name)} was removed; their runs are kept.")
        if blocks:
            st.caption("Blocked after failed sign-ins: " + ", ".join(blocks))
            if st.button("Lift every sign-in block", key="team_lift_blocks"):
                store.lift_sign_in_block(user)
                st.success("Sign-in blocks lifted.")
