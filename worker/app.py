"""The Celery app: Redis broker, JSON only, acks late, one message at a time per process.

Importing this module never imports torch (tasks import the engine inside their bodies).

Environment (read by diffusion.settings; see docs/architecture.md):
  DIFFLAB_REDIS_URL            broker URL (default redis://127.0.0.1:6379/0)
  DIFFLAB_TRAIN_TIME_LIMIT_S   hard time limit of a train job (default 72 h)
  DIFFLAB_JOB_TIME_LIMIT_S     hard time limit of a sample/denoise/inpaint/evaluate job (2 h)
The broker's visibility timeout is longer than the longest job, so Redis never hands a
running job's message to a second worker; a dead worker's job is recovered by the lease and
the reconciler (worker/reconcile.py) instead.
"""

from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from diffusion import settings

QUEUES = ("gpu", "cpu")
TRAIN_TASK = "difflab.train"
JOB_TASK = "difflab.job"
RECONCILE_TASK = "difflab.reconcile"


redis_url = settings.redis_url
TRAIN_TIME_LIMIT_S = settings.train_time_limit_s()
JOB_TIME_LIMIT_S = settings.job_time_limit_s()
VISIBILITY_TIMEOUT_S = max(TRAIN_TIME_LIMIT_S, JOB_TIME_LIMIT_S) + 3600

app = Celery("difflab", broker=redis_url(), include=["worker.tasks", "worker.signals"])
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    event_serializer="json",
    task_ignore_result=True,  # the runs table is the source of truth, not a result backend
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_concurrency=1,  # one job per process; one process per GPU
    task_queues=[Queue(q, Exchange(q, type="direct"), routing_key=q) for q in QUEUES],
    task_default_queue="cpu",
    task_create_missing_queues=False,
    broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
    task_send_sent_event=False,
    worker_cancel_long_running_tasks_on_connection_loss=False,
)
