"""The worker refuses what it cannot do as asked: a device it does not have."""

from __future__ import annotations

from db.access import SYSTEM
from db.entities import FAILED
from db.store import Store
from db.store_jobs import Lease
from diffusion.presets import PRESETS
from worker import train_runner


class Keeper:
    lost = released = cancelled = None

    def should_stop(self) -> bool:
        return False


def test_train_device_cuda_on_a_cpu_worker_is_refused_not_run_on_the_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFLAB_DATA_DIR", str(tmp_path))
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}", artifact_root=tmp_path / "a")
    store.upgrade()
    config = PRESETS["swissroll-smoke"].with_overrides(["train.device=cuda"]).to_dict()
    run, job = store.create_run(config, owner_id=store.local_user().id, device_request="cuda")
    claim = store.claim_job(job.id, job.celery_id, worker="w", host="h", device="cpu", lease_s=60)
    called = []
    monkeypatch.setattr(train_runner, "_call_engine", lambda *a, **k: called.append(a))
    state = train_runner._train(
        store, run.id, Lease(job.id, claim.job.lease_owner), Keeper(), "cpu"
    )
    failed = store.get_run(run.id, viewer=SYSTEM)
    assert state == FAILED and called == [] and failed.state == FAILED
    assert "no CUDA device" in failed.error and "refused" in failed.error
