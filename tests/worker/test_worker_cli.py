"""The CLI's contract without a worker: bad configs refused before anything is queued,
unreachable services named in one line, `db upgrade`, cancel of a queued run, the
reconciler's view of the broker."""

from __future__ import annotations

import json

import pytest
import redis
from worker_lab import Lab

from db.access import SYSTEM
from db.entities import CANCELLED, QUEUED

pytestmark = pytest.mark.services


def test_bad_config_is_refused_naming_the_field(lab: Lab) -> None:
    result = lab.cli("submit", "swissroll-smoke", "--set", "train.steps=-5", check=False)
    assert result.returncode == 2
    assert "train.steps" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = lab.cli("submit", "no-such-preset", check=False)
    assert result.returncode == 2 and "preset" in result.stderr
    result = lab.cli("submit", "swissroll-smoke", "--set", "train.bogus=1", check=False)
    assert result.returncode == 2 and "train.bogus" in result.stderr
    assert lab.store.list_runs(viewer=SYSTEM) == []
    assert redis.Redis.from_url(lab.redis_url).dbsize() == 0


def test_unreachable_services_give_one_line(lab: Lab, free_port: int) -> None:
    bad_redis = f"redis://127.0.0.1:{free_port}/0"
    result = lab.cli("submit", "swissroll-smoke", env={"DIFFLAB_REDIS_URL": bad_redis}, check=False)
    assert result.returncode == 2 and bad_redis in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = lab.cli("worker", env={"DIFFLAB_REDIS_URL": bad_redis}, check=False)
    assert result.returncode == 2 and bad_redis in result.stderr
    bad_db = f"postgresql+psycopg://postgres@127.0.0.1:{free_port}/nowhere"
    for args in (["runs"], ["db", "upgrade"], ["submit", "swissroll-smoke"]):
        result = lab.cli(*args, env={"DIFFLAB_DATABASE_URL": bad_db}, check=False)
        assert result.returncode == 2, result.stderr
        assert f"127.0.0.1:{free_port}/nowhere" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert lab.store.list_runs(viewer=SYSTEM) == []


def test_submit_runs_show_cancel_json(lab: Lab) -> None:
    run_id = lab.submit("train.steps=20")
    listed = json.loads(lab.cli("runs", "--json").stdout)
    assert [r["id"] for r in listed] == [run_id] and listed[0]["state"] == QUEUED
    shown = json.loads(lab.cli("show", run_id, "--json").stdout)
    assert shown["state"] == QUEUED and shown["config"]["train"]["steps"] == 20
    assert shown["preset"] == "swissroll-smoke" and shown["latest"] == {}
    assert CANCELLED in lab.cli("cancel", run_id).stdout
    assert lab.run(run_id).state == CANCELLED
    missing = lab.cli("show", "nosuchrun", check=False)
    assert missing.returncode == 2 and "nosuchrun" in missing.stderr
    assert "newest schema" in lab.cli("db", "upgrade").stdout


@pytest.mark.usefixtures("lab")
def test_db_upgrade_on_postgresql(lab: Lab, postgres_url: str) -> None:
    env = {"DIFFLAB_DATABASE_URL": postgres_url}
    assert "newest schema" in lab.cli("db", "upgrade", env=env).stdout
    run_id = lab.cli("submit", "swissroll-smoke", env=env).stdout.strip()
    assert run_id in lab.cli("runs", env=env).stdout


def test_worker_on_a_read_only_database_stops_with_one_line(lab: Lab) -> None:
    """A database the worker can only read (SQLite opened `mode=ro`, which refuses writes even
    for root): the worker exits at start-up with one line naming the database, never "ready"."""
    from diffusion.settings import data_dir

    db_file = data_dir() / "difflab.db"
    assert db_file.exists()
    ro_url = f"sqlite:///file:{db_file}?mode=ro&uri=true"
    result = lab.cli("worker", env={"DIFFLAB_DATABASE_URL": ro_url}, check=False, timeout=60)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(db_file) in lines[0] and "can only be read" in lines[0], lines[0]
    assert "ready" not in result.stdout + result.stderr and "Traceback" not in result.stderr
    assert lab.store.workers(online_within_s=None) == []  # nothing was announced
