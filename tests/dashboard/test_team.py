"""Team mode: sign-in, first admin, invites, private vs team runs, share links."""

from __future__ import annotations

import pytest
from dashboard_helpers import app_test, make_run, open_view, texts

NOT_FOUND = "not found or not shared with you"


@pytest.fixture
def team(store, monkeypatch):
    monkeypatch.setenv("DIFFLAB_TEAM_MODE", "1")
    return store


def _sign_in(at, username: str, password: str):
    at.text_input(key="signin_user").set_value(username)
    at.text_input(key="signin_password").set_value(password)
    at.button[0].click()
    return at.run()


def test_first_admin_then_sign_in_required(team):
    at = app_test()
    assert "Create the first admin account" in texts(at)
    at.text_input[0].set_value("ada")
    at.text_input[1].set_value("short")
    at.button[0].click()
    at.run()
    assert any("at least 12" in e.value for e in at.error)
    at.text_input[1].set_value("a long enough password")
    at.button[0].click()
    at.run()
    assert not at.exception
    assert "Runs" in [t.value for t in at.title]
    assert team.user_by_name("ada").is_admin


def test_wrong_password_and_sign_in(team):
    team.create_user("bob", "bobs password 1")
    at = app_test()
    assert [t.value for t in at.title] == ["Diffusion Lab"]
    _sign_in(at, "bob", "nope nope nope")
    assert any("Wrong username or password" in e.value for e in at.error)
    _sign_in(at, "nobody", "nope nope nope")
    assert any("Wrong username or password" in e.value for e in at.error)
    _sign_in(at, "bob", "bobs password 1")
    assert "Runs" in [t.value for t in at.title]


def test_invite_flow(team):
    admin = team.create_user("ada", "ada password 1", is_admin=True)
    invite = team.create_invite(admin)
    at = app_test()
    at.query_params["invite"] = invite.token
    at.run()
    assert "Accept your invite" in texts(at)
    at.text_input[0].set_value("carol")
    at.text_input[1].set_value("carols password")
    at.button[0].click()
    at.run()
    assert "Runs" in [t.value for t in at.title]
    assert team.user_by_name("carol") is not None


def test_admin_creates_an_invite_link(team):
    team.create_user("ada", "ada password 1", is_admin=True)
    at = app_test()
    _sign_in(at, "ada", "ada password 1")
    at.switch_page("views/team.py").run()
    next(b for b in at.button if b.key == "team_invite").click()
    at.run()
    assert any("?invite=" in c.value for c in at.code)


def test_share_link_opens_read_only_even_for_private_runs(team):
    ada = team.create_user("ada", "ada password 1")
    team.create_user("bob", "bobs password 1")
    shared_run = make_run(team, ada, name="team roll", visibility="team")
    private_run = make_run(team, ada, name="ada only")
    team_link = team.create_share_link([shared_run.id], viewer=ada)
    private_link = team.create_share_link([private_run.id], viewer=ada)
    compare_link = team.create_share_link([shared_run.id, private_run.id], viewer=ada)

    at = app_test()
    _sign_in(at, "bob", "bobs password 1")
    at.switch_page("views/shared.py")
    at.query_params["token"] = team_link.token
    at.run()
    assert not at.exception
    assert "team roll" in [t.value for t in at.title]
    at.query_params["token"] = private_link.token  # holding the link opens it, read only
    at.run()
    assert not at.exception and "ada only" in [t.value for t in at.title]
    open_view(at, "Files")
    assert {"Metrics (CSV)", "Checkpoint"} <= {b.label for b in at.get("download_button")}
    open_view(at, "Notes and tags")
    assert "Notes" in texts(at)  # the view is open ...
    assert not [b for b in at.button if b.label.startswith("Save")]  # ... with nothing to edit
    assert "read only" in texts(at).lower()
    team.delete_share_link(private_link.token, viewer=ada)  # revoked: gone at once
    at.run()
    assert NOT_FOUND in texts(at).lower() and "ada only" not in [t.value for t in at.title]
    at.query_params["token"] = "x" * 32
    at.run()
    assert NOT_FOUND in texts(at).lower()
    at.query_params["token"] = compare_link.token
    at.run()
    assert not at.exception
    # without a link, the Runs page lists the team run but not the private one
    at.switch_page("views/runs.py").run()
    assert list(at.dataframe[0].value["name"]) == ["team roll"]


def test_share_link_before_sign_in_opens_after_it(team):
    ada = team.create_user("ada", "ada password 1")
    run = make_run(team, ada, name="deep linked", visibility="team")
    link = team.create_share_link([run.id], viewer=ada)
    at = app_test()
    # a browser opening /shared?token=...: the signed-out router shows sign-in at that path
    from streamlit.testing.v1 import app_test as apptest_module

    at._page_hash = apptest_module.calc_hash("shared")  # AppTest has no public URL setter
    at.query_params["token"] = link.token
    at.run()
    assert "deep linked" not in texts(at)
    _sign_in(at, "ada", "ada password 1")
    assert not at.exception
    assert "deep linked" in [t.value for t in at.title]


def test_sign_out(team):
    team.create_user("bob", "bobs password 1")
    at = app_test()
    _sign_in(at, "bob", "bobs password 1")
    at.switch_page("views/team.py").run()
    next(b for b in at.button if b.key == "team_sign_out").click()
    at.run()
    assert [t.value for t in at.title] == ["Diffusion Lab"]
    at.run()
    assert [t.value for t in at.title] == ["Diffusion Lab"]


def _session_id(at) -> int:
    from dashboard.services import SESSION_KEY

    return at.session_state[SESSION_KEY]


def test_sign_out_ends_the_session_in_the_database(team):
    team.create_user("bob", "bobs password 1")
    at = app_test()
    _sign_in(at, "bob", "bobs password 1")
    session_id = _session_id(at)
    assert team.session_active(session_id)
    at.switch_page("views/team.py").run()
    next(b for b in at.button if b.key == "team_sign_out").click()
    at.run()
    assert not team.session_active(session_id)  # a captured cookie of it is now worthless


def test_admin_signs_a_member_out_everywhere(team):
    team.create_user("ada", "ada password 1", is_admin=True)
    team.create_user("bob", "bobs password 1")
    bob = app_test()
    _sign_in(bob, "bob", "bobs password 1")
    assert "Runs" in [t.value for t in bob.title]
    ada = app_test()
    _sign_in(ada, "ada", "ada password 1")
    ada.switch_page("views/team.py").run()
    ada.selectbox(key="team_member").set_value("bob")
    next(b for b in ada.button if b.key == "team_member_sign_out").click().run()
    assert any("Ended 1 session" in s.value for s in ada.success)
    bob.run()  # bob's open tab is signed out on its next run
    assert [t.value for t in bob.title] == ["Diffusion Lab"]
