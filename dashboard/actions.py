"""What the dashboard asks of the lab: submit, cancel, re-run, delete, start a posterior job.

Every action goes through `worker.api` (commit the row, then enqueue), never a Celery task
body, and never trains or samples here. Errors come back as `ActionError` with a message for
the user: the store's own messages, or a plain "the queue is not reachable".
"""

from __future__ import annotations

from typing import Any

from db.entities import Job, Run, User
from db.errors import StoreError
from db.store import Store
from diffusion.config import ConfigError, RunConfig


class ActionError(Exception):
    """An action failed; the message is meant for the user."""


def _api() -> Any:
    import worker.api as api  # imported late: the page must render even if Redis is down

    return api


def _wrap(exc: Exception) -> ActionError:
    if isinstance(exc, StoreError):
        return ActionError(str(exc))
    return ActionError(
        f"The job queue could not be reached ({exc}). Start Redis and a worker "
        "(`difflab up` does both), then try again."
    )


def submit_run(
    store: Store,
    config: RunConfig,
    owner: User,
    *,
    preset: str | None = None,
    visibility: str = "private",
    tags: tuple[str, ...] = (),
) -> Run:
    """Create the run (QUEUED) and enqueue its training."""
    try:
        return _api().submit_run(
            store, config, owner, preset=preset, visibility=visibility, tags=tags
        )
    except ConfigError as exc:
        raise ActionError(str(exc)) from None
    except (StoreError, OSError, ConnectionError, TimeoutError) as exc:
        raise _wrap(exc) from None


def cancel_run(store: Store, run_id: str, viewer: User) -> Run:
    try:
        return _api().cancel(store, run_id, viewer=viewer)
    except (StoreError, OSError, ConnectionError, TimeoutError) as exc:
        raise _wrap(exc) from None


def rerun(store: Store, run_id: str, viewer: User) -> Run:
    """A new run with the same config (and a link to its parent)."""
    try:
        return _api().rerun(store, run_id, owner=viewer)
    except (StoreError, OSError, ConnectionError, TimeoutError) as exc:
        raise _wrap(exc) from None


def continue_run(store: Store, run_id: str, extra_steps: int, viewer: User) -> Run:
    """Train a done or cancelled run `extra_steps` more steps from its checkpoint."""
    try:
        return _api().continue_run(store, run_id, extra_steps, viewer=viewer)
    except (StoreError, OSError, ConnectionError, TimeoutError) as exc:
        raise _wrap(exc) from None


def delete_run(store: Store, run_id: str, viewer: User) -> None:
    try:
        _api().delete_run(store, run_id, viewer=viewer)
    except StoreError as exc:
        raise ActionError(str(exc)) from None


def submit_posterior(
    store: Store, kind: str, run_id: str, params: dict[str, Any], viewer: User
) -> Job:
    """A denoise or inpaint job against a trained run's checkpoint."""
    try:
        return _api().submit_job(store, kind, run_id, params, viewer)
    except (StoreError, OSError, ConnectionError, TimeoutError) as exc:
        raise _wrap(exc) from None


def check_queue() -> None:
    """Raise ActionError unless the queue answers (checked before anything is written)."""
    try:
        _api().check_queue()
    except (OSError, ConnectionError, TimeoutError) as exc:
        raise _wrap(exc) from None
