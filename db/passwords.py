"""The rules for usernames and passwords, shared by every door that creates or changes one.

Usernames are normalised (Unicode NFKC) before they are checked, and compared by their key
(NFKC, then case-folded): "ADMIN1", "admin1" and "ａｄｍｉｎ１" are one name. Passwords have at
least MIN_PASSWORD characters, are not one repeated character or only spaces, are not the
username, and are not on the list of common passwords shipped in db/data/.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path

from db.errors import InvalidInput

LOCAL_USERNAME = "local"
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
COMMON_FILE = Path(__file__).resolve().parent / "data" / "common_passwords.txt"
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$")


def normalise_username(username: str) -> str:
    """The username as stored: NFKC-normalised, surrounding spaces removed."""
    return unicodedata.normalize("NFKC", username or "").strip()


def username_key(username: str) -> str:
    """What makes two usernames the same: NFKC, then case-folded."""
    return normalise_username(username).casefold()


def check_username(username: str) -> str:
    """The normalised username, or InvalidInput saying what is allowed."""
    name = normalise_username(username)
    if not _USERNAME.match(name) or username_key(name) == LOCAL_USERNAME:
        raise InvalidInput(
            "username: 2-64 letters, digits, _ . - (starting with a "
            f"letter or digit), not {LOCAL_USERNAME!r}"
        )
    return name


@functools.cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(
        line.strip().casefold() for line in lines if line.strip() and not line.startswith("#")
    )


def check_password(password: str, username: str = "") -> None:
    """Raise InvalidInput (saying why) unless `password` is acceptable for `username`."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"password: at most {MAX_PASSWORD} characters")
    if not password.strip() or len(set(password)) == 1:
        raise InvalidInput("password: not only spaces or one repeated character")
    folded = password.casefold()
    if folded in common_passwords() or folded.strip() in common_passwords():
        raise InvalidInput("password: this is a commonly used password; choose another")
    key = username_key(username)
    if key and folded == key:
        raise InvalidInput("password: must not be the username")
