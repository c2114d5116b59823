"""The sign-in cookie and the signing key: signed, refused when tampered with, and the key is
never taken from (or left in) the shared data folder."""

from __future__ import annotations

import pytest

from dashboard import session_cookie as sc
from dashboard.signing_key import SigningKeyError, signing_key

KEY = "k" * 40


@pytest.fixture(autouse=True)
def data(tmp_path, monkeypatch):
    monkeypatch.delenv("DIFFLAB_SECRET_KEY", raising=False)
    monkeypatch.delenv("DIFFLAB_SECRET_KEY_FILE", raising=False)
    monkeypatch.delenv("DIFFLAB_ARTIFACT_DIR", raising=False)
    monkeypatch.setenv("DIFFLAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


def test_sign_roundtrip_and_tampering(monkeypatch):
    monkeypatch.setenv("DIFFLAB_SECRET_KEY", KEY)
    value = sc.sign("abc123")
    assert sc.unsign(value) == "abc123"
    token, mac = value.split(".")
    assert sc.unsign(f"abd123.{mac}") is None
    assert sc.unsign(f"{token}.{'0' * len(mac)}") is None
    for junk in (None, "", "a.b.c", "nodot", "x" * 300):
        assert sc.unsign(junk) is None
    monkeypatch.setenv("DIFFLAB_SECRET_KEY", "another lab's key, also long enough")
    assert sc.unsign(value) is None


def test_key_from_env_file_or_private_default(data, monkeypatch):
    monkeypatch.setenv("DIFFLAB_SECRET_KEY", KEY)
    assert signing_key() == KEY.encode()
    monkeypatch.setenv("DIFFLAB_SECRET_KEY", "short")
    with pytest.raises(SigningKeyError, match="at least 32"):
        signing_key()
    monkeypatch.delenv("DIFFLAB_SECRET_KEY")
    secret = data / "secrets" / "key"
    secret.parent.mkdir()
    secret.write_text("s" * 64 + "\n")
    monkeypatch.setenv("DIFFLAB_SECRET_KEY_FILE", str(secret))
    assert signing_key() == b"s" * 64
    monkeypatch.delenv("DIFFLAB_SECRET_KEY_FILE")
    first = signing_key()  # created outside the data folder, private
    default = data / "config" / "difflab" / "secret_key"
    assert default.exists() and (default.stat().st_mode & 0o777) == 0o600
    assert signing_key() == first and not (data / "data" / "secret_key").exists()


def test_key_in_the_shared_data_folder_is_refused(data, monkeypatch):
    inside = data / "data" / "keys" / "secret"
    inside.parent.mkdir(parents=True)
    inside.write_text("i" * 64)
    monkeypatch.setenv("DIFFLAB_SECRET_KEY_FILE", str(inside))
    with pytest.raises(SigningKeyError, match="inside the shared data folder.*forge"):
        signing_key()
    # an old key left in <data>/secret_key is refused even when the environment has one
    monkeypatch.delenv("DIFFLAB_SECRET_KEY_FILE")
    monkeypatch.setenv("DIFFLAB_SECRET_KEY", KEY)
    (data / "data" / "secret_key").write_text("o" * 64)
    with pytest.raises(SigningKeyError, match="every worker mounts"):
        signing_key()


def test_safe_next_stays_on_this_site():
    assert sc.safe_next("/run?id=1") == "/run?id=1"
    for bad in ("https://evil.example/", "//evil.example/x", "/\\evil", "", None, "run"):
        assert sc.safe_next(bad) == "/"
