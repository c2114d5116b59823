"""End-to-end fixtures: a real Redis queue (a database leased by the shared `redis_url`
fixture), a real `difflab worker`, `streamlit run` on a free port, team mode with two users,
and headless Debian Chromium via Playwright.

Screenshots (1280 x 800) go to `screenshots/` at the repository root (gitignored).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_helpers import start_dashboard, stop

from difflab.launcher import spawn

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "screenshots"
PASSWORDS = {"ada": "ada password 1", "bob": "bobs password 1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pytest_collection_modifyitems(config, items):
    reason = None
    if not Path(CHROMIUM).exists():
        reason = f"needs Chromium at {CHROMIUM} (apt-get install chromium)"
    for item in items:
        if "tests/e2e" in str(item.fspath).replace(os.sep, "/") and reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class Lab:
    url: str
    data_dir: Path
    env: dict[str, str]
    logs: Path

    def store(self):
        from db.store import Store

        return Store(self.env["DIFFLAB_DATABASE_URL"], artifact_root=self.data_dir / "artifacts")


@pytest.fixture
def lab(tmp_path: Path, redis_url: str) -> Iterator[Lab]:
    data = tmp_path / "lab"
    data.mkdir()
    logs = data / "logs"
    logs.mkdir()
    env = {
        **os.environ,
        "DIFFLAB_DATA_DIR": str(data),
        "DIFFLAB_DATABASE_URL": f"sqlite:///{data / 'difflab.db'}",
        "DIFFLAB_ARTIFACT_DIR": str(data / "artifacts"),
        "DIFFLAB_REDIS_URL": redis_url,
        "DIFFLAB_TEAM_MODE": "1",
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        "DIFFLAB_SECRET_KEY": "e2e signing key, long enough to be accepted",
    }
    lab = Lab("", data, env, logs)
    saved = {k: os.environ.get(k) for k in env if k.startswith("DIFFLAB_")}
    os.environ.update({k: v for k, v in env.items() if k.startswith("DIFFLAB_")})
    store = lab.store()
    store.upgrade()
    store.create_user("ada", PASSWORDS["ada"], is_admin=True)
    store.create_user("bob", PASSWORDS["bob"])
    store.engine.dispose()

    bin_dir = Path(sys.executable).parent
    worker_argv = [str(bin_dir / "difflab"), "worker", "--loglevel", "WARNING"]
    worker = spawn(worker_argv, logs / "worker.log", env, cwd=ROOT)
    ui = None
    try:
        ui, lab.url = start_dashboard(_free_port(), env, logs / "streamlit.log")
        yield lab
    finally:
        if ui is not None:
            stop(ui)
        stop(worker)
        for name in ("worker.log", "streamlit.log"):  # kept for a failing run's report
            shutil.copy(logs / name, data / f"last-{name}")
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture
def shots() -> Path:
    SHOTS.mkdir(exist_ok=True)
    return SHOTS
