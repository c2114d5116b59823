"""Where things live (data folder, database URL, artifact folder), read from the environment.

Environment variables (documented in docs/architecture.md):
  DIFFLAB_DATA_DIR      data folder (default ./.difflab): SQLite file, artifacts, run folders
  DIFFLAB_DATABASE_URL  SQLAlchemy URL (default sqlite:///<data dir>/difflab.db)
  DIFFLAB_ARTIFACT_DIR  artifact folder (default <data dir>/artifacts)
"""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """The data folder (`DIFFLAB_DATA_DIR`, default `./.difflab`), as an absolute path."""
    return Path(os.environ.get("DIFFLAB_DATA_DIR") or ".difflab").expanduser().resolve()


def database_url() -> str:
    """`DIFFLAB_DATABASE_URL`, or a SQLite file in the data folder."""
    url = os.environ.get("DIFFLAB_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{data_dir() / 'difflab.db'}"


def artifact_dir() -> Path:
    """`DIFFLAB_ARTIFACT_DIR`, or `<data dir>/artifacts`."""
    path = os.environ.get("DIFFLAB_ARTIFACT_DIR")
    return Path(path).expanduser().resolve() if path else data_dir() / "artifacts"


def redact(url: str) -> str:
    """The URL with any password replaced by `***`, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL: leave it
        return url
