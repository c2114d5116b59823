"""Screenshots of the dashboard denoising and inpainting a 512 x 512 photo (issue 10's proof).

A fresh single-user lab (SQLite in a temp folder, a Redis database leased as the tests lease
theirs, a real `difflab worker`, `streamlit run`) holds one finished run: the trained photos
model of `benchmarks/posterior.py --parts d` (its checkpoint, through the worker's own sink).
Headless Chromium then opens "Denoise and inpaint", uploads scikit-image's camera (held out
of that model's training), denoises it at sigma 25 and inpaints a central 64 x 64 hole (a
mask image), and saves a screenshot of each page of results.

    python benchmarks/photo_screenshots.py --run runs/posterior/photos-unet \
        [--out docs/screenshots] [--steps 10] [--samples 2]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "tests", ROOT / "tests" / "e2e"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1280, "height": 1000}
HOLE = 64
DONE_TEXT = {"Denoise": "posterior mean E[x | y]", "Inpaint": "on the window around the missing"}


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def lease_redis() -> tuple[str, object, str]:
    """A Redis database of its own (the tests' lease keys, tests/conftest.py): (url, admin,
    token)."""
    import redis

    admin = redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=2)
    token = uuid.uuid4().hex
    for db in range(15, 0, -1):
        if admin.set(f"difflab-test-lease:{db}", token, nx=True, ex=3600):
            url = f"redis://127.0.0.1:6379/{db}"
            redis.Redis.from_url(url).flushdb()
            return url, admin, token
    raise RuntimeError("every Redis database 1-15 is leased")


def register_run(data_dir: Path, run_dir: Path) -> str:
    """A DONE run holding the trained checkpoint in run_dir, as a worker would leave it."""
    import torch

    from db.store import Store
    from diffusion.config import RunConfig
    from diffusion.training.events import CheckpointEvent, StepEvent
    from worker.sink import StoreSink

    store = Store(f"sqlite:///{data_dir / 'difflab.db'}", artifact_root=data_dir / "artifacts")
    store.upgrade()
    owner = store.local_user()
    config = RunConfig.from_json((run_dir / "config.json").read_text()).to_dict()
    step = int(
        torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)["step"]
    )
    run, job = store.create_run(
        config,
        owner_id=owner.id,
        preset=config["name"],
        total_steps=step,
        device_request="cpu",
        visibility="private",
        name="photos (camera, astronaut, coffee held out)",
    )
    claim = store.claim_job(
        job.id, job.celery_id, worker="w1", host="lab", device="cpu", lease_s=600
    )
    from db.store_jobs import Lease

    lease = Lease(job.id, claim.job.lease_owner)
    sink = StoreSink(store, run.id, lease)
    sink(StepEvent(step, step, 0.0, 1e-5, 0.0, 0.0))
    sink(CheckpointEvent(step, run_dir / "checkpoint.pt"))
    sink.flush()
    store.finish_job(lease, "DONE")
    store.dispose()
    return run.id


def shoot(url: str, out: Path, steps: int, samples: int, timeout_s: float) -> None:
    from playwright.sync_api import expect, sync_playwright
    from skimage import data as skdata

    camera = np.asarray(skdata.camera(), dtype=np.uint8)
    mask = np.full(camera.shape, 255, np.uint8)
    c0, c1 = camera.shape[0] // 2 - HOLE // 2, camera.shape[1] // 2 - HOLE // 2
    mask[c0 : c0 + HOLE, c1 : c1 + HOLE] = 0
    expect.set_options(timeout=120_000)  # a busy machine
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{url}/posterior")
        expect(page.get_by_role("heading", name="Denoise and inpaint")).to_be_visible()
        page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(
            files=[{"name": "camera.png", "mimeType": "image/png", "buffer": png(camera)}]
        )
        expect(page.get_by_text("Corrupted input").first).to_be_visible()
        _set_slider(page, "Number of samples", samples)
        _select_steps(page, steps)
        for task in ("Denoise", "Inpaint"):
            page.get_by_text(task, exact=True).first.click()
            page.wait_for_timeout(1500)
            if task == "Inpaint":
                page.locator('[data-testid="stSelectbox"]').filter(has_text="Mask").click()
                page.get_by_role("option", name="Upload a mask", exact=False).click()
                page.wait_for_timeout(1000)
                page.locator('[data-testid="stFileUploader"] input[type="file"]').nth(
                    1
                ).set_input_files(
                    files=[{"name": "hole.png", "mimeType": "image/png", "buffer": png(mask)}]
                )
                page.wait_for_timeout(2000)
            page.get_by_role("button", name=f"{task} with").click()
            done = DONE_TEXT[task]  # in this job's results line (the worker's message)
            expect(page.get_by_text(done, exact=False).first).to_be_visible(
                timeout=timeout_s * 1000
            )
            page.wait_for_timeout(3000)
            heading = page.get_by_role("heading", name="Results")
            heading.evaluate("e => e.scrollIntoView({block: 'start'})")
            page.mouse.move(800, 500)
            page.mouse.wheel(0, -260)  # the settings' end above the results
            page.wait_for_timeout(2500)
            assert page.locator('[data-testid="stException"]').count() == 0
            page.screenshot(path=out / f"photo_{task.lower()}.png")
            print(f"saved {out / f'photo_{task.lower()}.png'}", flush=True)
        browser.close()


def _set_slider(page, label: str, value: int) -> None:
    """Streamlit sliders move with the arrow keys: Home, then Right (value - 1) times."""
    thumb = page.get_by_role("slider", name=label)
    thumb.focus()
    thumb.press("Home")
    for _ in range(value - 1):
        thumb.press("ArrowRight")
    page.wait_for_timeout(800)


def _select_steps(page, steps: int) -> None:
    thumb = page.get_by_role("slider", name="Reverse steps")
    thumb.focus()
    thumb.press("Home")  # the smallest choice (10)
    page.wait_for_timeout(800)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, required=True, help="a trained photos run folder")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--samples", type=int, default=2)
    p.add_argument("--timeout-s", type=float, default=1500)
    args = p.parse_args(argv)
    from e2e_helpers import start_dashboard, stop

    from difflab.launcher import spawn

    args.out.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="photo-shots-"))
    redis_url, admin, token = lease_redis()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFFLAB_")}
    env.update(
        DIFFLAB_DATA_DIR=str(data),
        DIFFLAB_REDIS_URL=redis_url,
        PYTHONPATH=str(ROOT),
        OMP_NUM_THREADS="1",
        STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
    )
    os.environ["DIFFLAB_DATA_DIR"] = str(data)
    run_id = register_run(data, args.run.resolve())
    print(f"run {run_id} registered in {data}", flush=True)
    bin_dir = Path(sys.executable).parent
    worker = spawn(
        [str(bin_dir / "difflab"), "worker", "--loglevel", "WARNING"], data / "worker.log", env,
        cwd=ROOT,
    )  # fmt: skip
    ui = None
    t0 = time.monotonic()
    try:
        ui, url = start_dashboard(0 or _free_port(), env, data / "streamlit.log")
        shoot(url, args.out, args.steps, args.samples, args.timeout_s)
    finally:
        if ui is not None:
            stop(ui)
        stop(worker)
        if admin.get(f"difflab-test-lease:{redis_url.rsplit('/', 1)[1]}") == token.encode():
            admin.delete(f"difflab-test-lease:{redis_url.rsplit('/', 1)[1]}")
        print(f"{time.monotonic() - t0:.0f} s; logs in {data}", flush=True)
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
