"""Helpers for the dashboard tests: runs as a worker leaves them, and AppTest shortcuts."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
from lab_seed import claimed_run
from PIL import Image

from db.access import SYSTEM
from db.entities import MetricPoint, Run, User
from db.store import Store
from diffusion.presets import PRESETS

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


def png_bytes(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def make_run(
    store: Store,
    owner: User,
    preset: str = "swissroll-smoke",
    *,
    state: str = "DONE",
    visibility: str = "private",
    name: str | None = None,
    evals: int = 3,
) -> Run:
    """A run as a worker would leave it: metrics, galleries, a checkpoint, a final state."""
    config = PRESETS[preset].to_dict()
    run, lease = claimed_run(
        store,
        owner,
        config,
        preset,
        state,
        host="testhost",
        name=name or preset,
        visibility=visibility,
    )
    if lease is None:
        return run
    T = config["diffusion"]["T"]
    points = []
    for i in range(1, evals + 1):
        step = i * 10
        points += [
            MetricPoint("k_train_bits", step, -2.0 + 0.5 * i, time.time()),
            MetricPoint("k_holdout_bits", step, -2.1 + 0.5 * i, time.time()),
            MetricPoint("k_minus_lnull_bits", step, 1.0 + 0.5 * i, time.time()),
            MetricPoint("loss_bits", step, 3.0 - 0.4 * i, time.time()),
            MetricPoint(
                "kl_profile_bits",
                step,
                None,
                time.time(),
                tuple(float(x) for x in np.linspace(0.5, 0.01, T)),
            ),
            MetricPoint(
                "beta", step, None, time.time(), tuple(float(x) for x in np.linspace(1e-3, 0.3, T))
            ),
            MetricPoint(
                "beta_baseline",
                step,
                None,
                time.time(),
                tuple(1.0 / (T - t + 1) for t in range(1, T + 1)),
            ),
        ]
    store.append_metrics(run.id, points, lease=lease)
    rng = np.random.default_rng(0)
    data_name = config["data"]["name"]

    def put(kind: str, data: bytes, key: str, media_type: str = "application/x-npy") -> None:
        store.put_artifact(run.id, kind, data, key=key, media_type=media_type, step=30, lease=lease)

    if data_name == "swissroll":
        put("gallery", npy(rng.normal(size=(64, 2))), "gallery-000000030.npy")
        put("data_sample", npy(rng.normal(size=(100, 2))), "data-sample.npy")
        traj = rng.normal(size=(5, 64, 2))
    else:
        grid = rng.integers(0, 256, (34, 34), dtype=np.uint8)
        put("gallery_png", png_bytes(grid), "gallery-000000030.png", "image/png")
        traj = rng.uniform(0, 16, size=(5, 4, 8, 8))  # digits: grey levels 0..16
    put("trajectory", npy(traj), "trajectory-000000030.npy")
    store.put_artifact(
        run.id,
        "checkpoint",
        b"not really a checkpoint",
        key="checkpoint.pt",
        media_type="application/octet-stream",
        step=30,
        lease=lease,
        replace_kind=True,
    )
    store.update_progress(lease, progress=0.5, step=30, checkpoint_step=30)
    if state == "RUNNING":
        return store.get_run(run.id, viewer=SYSTEM)
    store.finish_job(
        lease,
        state,
        error="CUDA out of memory (a test failure)" if state == "FAILED" else None,
        final_bound=(-0.6, 0.05) if state == "DONE" else None,
    )
    return store.get_run(run.id, viewer=SYSTEM)


def app_test(page: str | None = None, *, query: dict | None = None, timeout: float = 30):
    """An AppTest of the dashboard, run once, optionally switched to a page."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=timeout)
    at.run()
    if page is not None:
        at.switch_page(f"views/{page}.py")
        if query:
            at.query_params.update(query)
        at.run()
    return at


def open_view(at, label: str):
    """Click the run page's `label` view (tab); only the open view is built."""
    at.session_state["view"] = label
    return at.run()


def texts(at) -> str:
    """Everything the page says, as one string (for assertions on messages)."""
    parts = []
    for kind in (
        "markdown",
        "caption",
        "error",
        "warning",
        "info",
        "success",
        "title",
        "subheader",
        "code",
    ):
        for el in getattr(at, kind):
            parts.append(str(el.value))
    return "\n".join(parts)
