"""The sign-in cookie: signed, expiring, refused when tampered with."""

from __future__ import annotations

import pytest

from dashboard import session_cookie as sc


@pytest.fixture(autouse=True)
def data(tmp_path, monkeypatch):
    monkeypatch.delenv("DIFFLAB_SECRET_KEY", raising=False)
    monkeypatch.setenv("DIFFLAB_DATA_DIR", str(tmp_path))
    return tmp_path


def test_roundtrip_and_secret_file(data):
    token = sc.make_token(7)
    assert sc.read_token(token) == 7
    key = data / "secret_key"
    assert key.exists() and (key.stat().st_mode & 0o777) == 0o600


def test_tampered_expired_and_garbage_tokens_are_refused():
    token = sc.make_token(7, now=1000.0)
    user, expiry, sig = token.split(".")
    assert sc.read_token(f"8.{expiry}.{sig}", now=1000.0) is None
    assert sc.read_token(f"{user}.{int(expiry) + 99}.{sig}", now=1000.0) is None
    assert sc.read_token(token, now=1000.0 + sc.MAX_AGE_S + 1) is None
    for junk in (None, "", "a.b.c", "1.2", "1.2.3.4"):
        assert sc.read_token(junk) is None


def test_another_lab_secret_does_not_verify(monkeypatch):
    token = sc.make_token(3)
    monkeypatch.setenv("DIFFLAB_SECRET_KEY", "a different lab")
    assert sc.read_token(token) is None
