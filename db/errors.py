"""Errors the store raises. Each message says what was wrong (and, for input, what is allowed)."""

from __future__ import annotations


class StoreError(Exception):
    """Base class for the store's errors."""


class NotFound(StoreError, LookupError):
    """No such run, job, user, artifact or link (or the viewer may not see it)."""


class PermissionDenied(StoreError):
    """The viewer may see the object but not change it."""


class Conflict(StoreError):
    """The change clashes with the object's state (a name taken, a run already final...)."""


class InvalidInput(StoreError, ValueError):
    """A value the store refuses; the message names the field and what is accepted."""


class DatabaseUnavailable(StoreError):
    """The database could not be reached (or only read); `url` is the URL tried (password
    hidden)."""

    one_line = True

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"cannot reach the database at {url}: {detail}")
        self.url = url
        self.detail = detail


class LeaseLost(StoreError):
    """This worker no longer holds the job's lease (expired and taken over, or cancelled)."""


class TooManyAttempts(StoreError):
    """Sign-in refused for now: too many failures for this account or address."""

    def __init__(self, wait_s: float) -> None:
        minutes = max(1, round(wait_s / 60))
        super().__init__(
            "Too many failed sign-ins: wait "
            + (f"{int(wait_s) + 1} s" if wait_s < 120 else f"about {minutes} minutes")
            + " and try again, or ask an admin to lift the block."
        )
        self.wait_s = wait_s


class CorruptBlob(StoreError):
    """Stored bytes no longer match their sha256 (a torn write, a bad disk)."""

    one_line = True
