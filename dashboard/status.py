"""Queue lengths for the Status page, with a readable message when Redis is down."""

from __future__ import annotations


def queue_lengths() -> tuple[dict[str, int] | None, str | None]:
    """(messages waiting per queue, None) or (None, why they could not be read)."""
    try:
        from worker.api import queue_lengths as read
        from worker.broker import BrokerUnavailable
    except ImportError as exc:  # pragma: no cover - the worker package is part of the lab
        return None, f"The queue cannot be read here ({exc})."
    try:
        return read(), None
    except (BrokerUnavailable, OSError) as exc:
        return None, f"The job queue is not reachable: {exc}"
