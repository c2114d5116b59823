"""`difflab worker`: check the services, pick and announce the device, run a Celery worker.

One job at a time per process (prefork, concurrency 1 by default: one process per GPU).
"""

from __future__ import annotations

import os

from db.store import Store
from diffusion import settings
from worker import broker, runtime
from worker.app import QUEUES, redis_url


def prepare(queues: list[str]) -> tuple[Store, str]:
    """Check the broker and database (one-line errors), migrate SQLite, pick the device."""
    unknown = [q for q in queues if q not in QUEUES]
    if not queues or unknown:
        raise ValueError(f"queues must be among {','.join(QUEUES)}, not {','.join(queues)}")
    broker.check(redis_url())
    store = Store.from_env()
    store.check()
    if store.dialect == "sqlite" and not store.is_current():
        store.upgrade()
    for stray in store.artifacts.remove_stray_temps():  # partial blobs of a worker that died
        print(f"difflab worker: removed the partial file {stray}", flush=True)
    device = runtime.detect_device()
    settings.announce_worker(device, queues)  # children inherit the announced device
    return store, device


def run(queues: list[str], *, concurrency: int = 1, loglevel: str = "INFO") -> int:
    store, device = prepare(queues)
    settings.announce_concurrency(concurrency)  # torch threads per job
    name = f"difflab-{os.getpid()}@{runtime.host()}"
    # Announce the worker now, in a write transaction: a database that can only be read stops
    # the worker here with one line (DatabaseUnavailable), before it ever says "ready".
    store.worker_heartbeat(
        name, host=runtime.host(), device=device, queues=queues, pid=os.getpid(), started=True
    )
    print(
        f"difflab worker {name}: host {runtime.host()}, device {device}, "
        f"queues {','.join(queues)}, database {settings.redact(store.url)}, "
        f"broker {settings.redact(redis_url())}",
        flush=True,
    )
    store.dispose()  # no sockets shared with forked children
    from worker.app import app

    app.conf.broker_url = redis_url()
    app.worker_main(
        [
            "worker",
            "-Q",
            ",".join(queues),
            "-c",
            str(concurrency),
            "-n",
            name,
            "-P",
            "prefork",
            "--loglevel",
            loglevel,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )
    return 0
