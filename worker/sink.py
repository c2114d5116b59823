"""The training callback: turns engine events into store writes.

Scalars are buffered and written in batches (at most every `flush_s` seconds, and always
before a gallery or a checkpoint is recorded), so that when a checkpoint at step s is in the
store, every metric point up to s is too. Every write is fenced by the job's lease.
"""

from __future__ import annotations

import io
import logging
import math
import time
from typing import Any

import numpy as np

from db.entities import MetricPoint
from db.store import Store
from db.store_jobs import Lease
from worker import render

log = logging.getLogger("difflab.worker")


class StoreSink:
    def __init__(
        self,
        store: Store,
        run_id: str,
        lease: Lease,
        *,
        flush_s: float = 1.0,
        progress_s: float = 1.0,
    ) -> None:
        self.store, self.run_id, self.lease = store, run_id, lease
        self.flush_s, self.progress_s = flush_s, progress_s
        self.buffer: list[MetricPoint] = []
        self._last_flush = self._last_progress = time.monotonic()
        self.step = 0
        self.total = 0
        self.last_checkpoint_step: int | None = None
        self.final_bound: tuple[float, float] | None = None
        self.evaluating: str | None = None  # the progress line of an evaluation under way
        self.warning = ""  # kept in the job's message (shown with the run) once said

    # The engine calls this with StepEvent, EvalEvent, GalleryEvent or CheckpointEvent.
    def __call__(self, event: Any) -> None:
        kind = type(event).__name__
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(event)
        now = time.monotonic()
        if now - self._last_flush >= self.flush_s:
            self.flush()
        if now - self._last_progress >= self.progress_s:
            self._progress()

    def flush(self) -> None:
        if self.buffer:
            points, self.buffer = self.buffer, []
            self.store.append_metrics(self.run_id, points, lease=self.lease)
        self._last_flush = time.monotonic()

    def _progress(self, checkpoint_step: int | None = None) -> None:
        self.store.update_progress(
            self.lease,
            progress=self.step / self.total if self.total else 0.0,
            step=self.step,
            total_steps=self.total or None,
            checkpoint_step=checkpoint_step,
            message=(self.evaluating or f"step {self.step}/{self.total}")
            + (f"; warning: {self.warning}" if self.warning else ""),
        )
        self._last_progress = time.monotonic()

    def _on_EvalProgressEvent(self, ev: Any) -> None:
        self.evaluating = eval_message(ev)

    def _on_StepEvent(self, ev: Any) -> None:
        self.evaluating = None
        self.step, self.total = int(ev.step), int(ev.total_steps)
        self._point("loss_bits", ev.step, ev.loss_bits)
        self._point("lr", ev.step, ev.lr)
        self._point("examples_per_s", ev.step, getattr(ev, "examples_per_s", None))

    def _point(self, name: str, step: int, value: Any, vector: Any = None) -> None:
        if value is None and vector is None:
            return
        self.buffer.append(
            MetricPoint(
                name,
                int(step),
                None if value is None else float(value),
                time.time(),
                None if vector is None else tuple(float(v) for v in np.asarray(vector).ravel()),
            )
        )

    def _on_EvalEvent(self, ev: Any) -> None:
        self.evaluating = None
        step = int(ev.step)
        self.step = max(self.step, step)
        for name in ("k_train", "k_holdout"):
            est = getattr(ev, name, None)
            if est is not None:
                self._point(f"{name}_bits", step, est.bits)
                self._point(f"{name}_stderr_bits", step, est.stderr_bits)
        for name in (
            "k_minus_lnull_bits",
            "l_null_bits",
            "bits_per_dim",
            "true_ll_bits",
            "paper_k_bits",
            "paper_k_minus_lnull_bits",
        ):
            self._point(name, step, getattr(ev, name, None))
        bounds = getattr(ev, "reverse_var_bounds", None) or {}
        for key, name in (
            ("sigma", "reverse_var"),
            ("lower", "reverse_var_lower"),
            ("upper", "reverse_var_upper"),
        ):
            if bounds.get(key):
                self._point(name, step, None, bounds[key])
        for name in ("kl_profile_bits", "beta", "beta_baseline"):
            vector = getattr(ev, name, None)
            if vector is not None and len(vector):
                self._point(name, step, None, vector)
        est = getattr(ev, "k_holdout", None)
        if est is not None and math.isfinite(float(est.bits)):
            self.final_bound = (float(est.bits), float(est.stderr_bits))
        self.flush()

    def _on_GalleryEvent(self, ev: Any) -> None:
        self.flush()
        step = int(ev.step)
        samples = np.asarray(ev.samples)
        kind = getattr(ev, "kind", "points")
        self._put("gallery", npy(samples), f"gallery-{step:09d}.npy", "application/x-npy", step)
        png = render.gallery_png(samples, kind, getattr(ev, "levels", 256))
        if png is not None:
            self._put("gallery_png", png, f"gallery-{step:09d}.png", "image/png", step)
        reference = getattr(ev, "reference", None)
        if reference is not None:
            self.store.put_artifact(
                self.run_id,
                "data_sample",
                npy(np.asarray(reference)),
                key="data-sample.npy",
                media_type="application/x-npy",
                step=step,
                lease=self.lease,
                replace_kind=True,
            )
        trajectory = getattr(ev, "trajectory", None)
        if trajectory is not None:
            self._put(
                "trajectory",
                npy(np.asarray(trajectory)),
                f"trajectory-{step:09d}.npy",
                "application/x-npy",
                step,
            )

    def _on_CheckpointEvent(self, ev: Any) -> None:
        self.flush()
        step = int(ev.step)
        with open(ev.path, "rb") as fh:
            data = fh.read()
        self.store.put_artifact(
            self.run_id,
            "checkpoint",
            data,
            key="checkpoint.pt",
            media_type="application/octet-stream",
            step=step,
            lease=self.lease,
            replace_kind=True,
            keep_previous=1,  # the last two checkpoints: a corrupt newest one falls back
        )
        self.last_checkpoint_step = step
        self.step = max(self.step, step)
        self._progress(checkpoint_step=step)

    def _on_WarningEvent(self, ev: Any) -> None:
        log.warning("run %s: %s", self.run_id, ev.message)
        self.warning = str(ev.message)
        self._progress()

    def _put(self, kind: str, data: bytes, key: str, media_type: str, step: int) -> None:
        self.store.put_artifact(
            self.run_id, kind, data, key=key, media_type=media_type, step=step, lease=self.lease
        )


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


EVALUATING = "evaluating"


def eval_message(ev: Any) -> str:
    """The progress line of an evaluation, e.g. 'evaluating at step 300 (holdout): t 12 of 20,
    examples 64 of 200, 4 s'. The dashboard recognises the first word."""
    return (
        f"{EVALUATING} at step {ev.step} ({ev.phase}): t {ev.t_done} of {ev.T}, "
        f"examples {ev.examples_done} of {ev.examples_total}, {ev.elapsed_s:.0f} s"
    )
