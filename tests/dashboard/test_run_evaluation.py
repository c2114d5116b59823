"""The test-set evaluation on the run page: its state while the job runs, then its numbers
(K, K - L_null, bits/dim, examples, split), each rounded to its standard error."""

from __future__ import annotations

import json

from dashboard_helpers import app_test, texts
from lab_seed import KINDS, seed_run

import worker.api as api
from db.store_jobs import Lease

RESULT = {  # what worker.job_runner._evaluate writes
    "k": 1,
    "bits": -1.234567,
    "stderr_bits": 0.0143,  # two figures: 0.014
    "unit": "bits/pixel",
    "examples": 1000,
    "k_minus_lnull_bits": 2.765432,
    "bits_per_dim": 4.87654,
    "bits_per_dim_stderr": 0.00333,
    "checkpoint_step": 60,
    "split": "test",
    "split_how": "1000 examples drawn at TEST_SEED",
}


def _cells(line: str) -> list[str]:
    """The cells of one Markdown table line, unescaped."""
    return [c.strip().replace("\\", "") for c in line.strip().strip("|").split("|")]


def test_running_then_finished_evaluation_is_shown(store, tmp_path, queue):
    user = store.local_user()
    run = seed_run(store, user, KINDS[3], "DONE", tmp_path)
    at = app_test("run", query={"id": run.id})
    assert "Test-set evaluation" not in texts(at)  # none started yet
    job = api.submit_job(store, "evaluate", run.id, {"k": 1}, user)
    claim = store.claim_job(job.id, job.celery_id, worker="w", host="h", device="cpu", lease_s=60)
    lease = Lease(job.id, claim.job.lease_owner)
    store.update_progress(
        lease, progress=0.4, message="evaluating the test set: t 5 of 40, examples 100 of 1000"
    )
    at = app_test("run", query={"id": run.id})
    assert not at.exception
    shown = texts(at)
    assert "Test-set evaluation" in shown and "examples 100 of 1000" in shown
    assert not [m for m in at.markdown if m.value.startswith("| K |")]
    store.put_artifact(
        run.id,
        "evaluation",
        json.dumps(RESULT).encode(),
        key=f"{job.id}-evaluation.json",
        media_type="application/json",
        job_id=job.id,
        lease=lease,
    )
    store.finish_job(lease, "DONE", message="K = -1.235 ± 0.021 bits/pixel")
    at = app_test("run", query={"id": run.id})
    assert not at.exception
    tables = [m.value for m in at.markdown if m.value.startswith("| K |")]
    assert tables, texts(at)
    header, _, row = tables[0].splitlines()
    shown = dict(zip(_cells(header), _cells(row), strict=True))
    assert shown == {
        "K": "-1.235 ± 0.014 bits/pixel",
        "K - L_null": "2.765 ± 0.014 bits/pixel",
        "bits/dim": "4.877 ± 0.003",
        "examples": "1,000",
        "split": "test",
    }
    assert "examples 100 of 1000" not in texts(at)
    assert "examples drawn at TEST" in texts(at)  # how the split was drawn
