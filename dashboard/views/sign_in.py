"""Sign in (team mode): with a password, with an invite, or as the very first admin."""

from __future__ import annotations

import streamlit as st

from dashboard.auth import accept_invite, create_first_admin, try_sign_in
from dashboard.safe_text import md_text
from dashboard.services import get_store, query_param
from db.passwords import MIN_PASSWORD

store = get_store()


def show(message: str | None) -> None:
    """The failure message, or (signed in) the lab itself."""
    if message:
        st.error(md_text(message))
    else:
        st.rerun()


st.title("Diffusion Lab")
st.caption("This lab is shared by a team: sign in to see its runs.")
invite = query_param("invite")

if store.count_users() == 0:
    st.subheader("Create the first admin account")
    with st.form("first_admin"):
        name = st.text_input("Username")
        password = st.text_input(f"Password (at least {MIN_PASSWORD} characters)", type="password")
        if st.form_submit_button("Create and sign in", type="primary"):
            message = create_first_admin(store, name, password)
            show(message)
elif invite:
    st.subheader("Accept your invite")
    with st.form("invite"):
        name = st.text_input("Choose a username")
        password = st.text_input(
            f"Choose a password (at least {MIN_PASSWORD} characters)", type="password"
        )
        if st.form_submit_button("Create my account", type="primary"):
            message = accept_invite(store, invite, name, password)
            show(message)
else:
    with st.form("sign_in"):
        name = st.text_input("Username", key="signin_user")
        password = st.text_input("Password", type="password", key="signin_password")
        if st.form_submit_button("Sign in", type="primary"):
            message = try_sign_in(store, name, password)
            show(message)
    st.caption("No account? Ask an admin for an invite link.")
