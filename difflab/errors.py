"""Errors that the command line prints as one line (no traceback)."""


class UserError(Exception):
    """Bad input or an unreachable service: the message says what and what is allowed."""
