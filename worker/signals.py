"""Worker life-cycle hooks: heartbeat and reconciler threads in the main process, a fresh
store in every forked child."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import signals

from diffusion import settings
from worker import runtime

log = logging.getLogger("difflab.worker")
_threads: list[runtime.Ticker] = []


@signals.worker_process_init.connect
def _child_init(**_: Any) -> None:
    runtime._store = None  # the child builds its own engine on first use
    # Import the engine (torch) now, in the background, so that a run taken over from a lost
    # worker starts training at once instead of after the import (seconds; more under load).
    # Importing torch does not initialise CUDA, so the fork rule still holds.
    threading.Thread(target=_warm_engine, name="warm-engine", daemon=True).start()


def _warm_engine() -> None:
    try:
        import torch

        import diffusion.training.train  # noqa: F401

        # the first optimizer imports torch._dynamo (seconds): do it now, not on takeover
        torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    except Exception:  # the task itself will import it again and report what is wrong
        log.exception("could not import the engine ahead of the first job")


@signals.worker_shutting_down.connect
def _shutting_down(**_: Any) -> None:
    runtime.mark_stopping(os.getpid())  # running jobs checkpoint and go back to the queue


@signals.worker_ready.connect
def _ready(sender: Any = None, **_: Any) -> None:
    name = getattr(sender, "hostname", None) or f"worker-{os.getpid()}"
    runtime.mark_stopping(os.getpid(), on=False)
    queues = settings.worker_queues()
    device = runtime.device()

    def beat(started: bool = False) -> None:
        runtime.get_store().worker_heartbeat(
            name,
            host=runtime.host(),
            device=device,
            queues=queues,
            pid=os.getpid(),
            started=started,
            device_info=runtime.device_info(device),
        )

    def reconcile() -> None:
        from worker.reconcile import reconcile as run

        run(runtime.get_store(), grace_s=runtime.reconcile_grace_s())

    beat(started=True)
    for ticker in (
        runtime.Ticker("heartbeat", 10.0, beat),
        runtime.Ticker("reconciler", runtime.reconcile_s(), reconcile),
    ):
        ticker.start()
        _threads.append(ticker)
    log.info(
        "worker %s ready: host %s, device %s, queues %s",
        name,
        runtime.host(),
        device,
        ",".join(queues),
    )


@signals.worker_shutdown.connect
def _shutdown(sender: Any = None, **_: Any) -> None:
    for ticker in _threads:
        ticker.stop()
    runtime.mark_stopping(os.getpid(), on=False)
    name = getattr(sender, "hostname", None)
    if name:
        try:
            runtime.get_store().worker_gone(name)
        except Exception:
            log.exception("could not remove worker %s from the workers table", name)
