"""The gallery's data: sample artifacts of every visible run, as thumbnails, a page at a time.

Image runs store PNG grids with thumbnails made at write time; 2-D and sequence runs store
arrays (.npy), which are drawn here as small PNG scatter or line pictures.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from dashboard.posterior import model_levels
from dashboard.safe_text import md_text
from dashboard.widgets import brighten
from db.entities import Artifact, Run, User
from db.errors import NotFound
from db.media import make_thumbnail
from db.store import Store
from db.store_run_lists import RunFilter
from diffusion.images import imageio
from diffusion.images.imageio import png_bytes

PAGE_SIZE = 12


@dataclass(frozen=True)
class GalleryItem:
    artifact: Artifact
    run: Run

    @property
    def caption(self) -> str:
        return f"{md_text(self.run.name)} · step {self.artifact.step}"


def points_picture(points: np.ndarray, size: int = 256) -> bytes:
    """2-D points (N x 2) drawn as a square PNG scatter (diffusion.images.imageio)."""
    return png_bytes(imageio.points_picture(points, size, radius=1.0))


def sequences_picture(seqs: np.ndarray, size: int = 256, rows: int = 6) -> bytes:
    """1-D sequences (N x L) drawn as stacked lines."""
    arr = np.asarray(seqs, dtype=float).reshape(len(seqs), -1)[:rows]
    img = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    band = size / max(1, len(arr))
    for i, row in enumerate(arr):
        lo, hi = float(np.nanmin(row)), float(np.nanmax(row))
        y = (row - lo) / ((hi - lo) or 1.0)
        x = np.linspace(4, size - 4, row.size)
        pts = [
            (float(a), float(band * (i + 0.9) - b * band * 0.8)) for a, b in zip(x, y, strict=True)
        ]
        draw.line(pts, fill=(214, 39, 40), width=1)
    return png_bytes(np.asarray(img))


GALLERY_KINDS = ("gallery_png", "gallery")


def gallery_page(
    store: Store, viewer: User, where: RunFilter, page: int, page_size: int = PAGE_SIZE
) -> tuple[list[GalleryItem], bool]:
    """One page of gallery items of the runs `where` picks, newest first, and whether there
    is more (the database filters the runs; only the runs of this page are read)."""
    want = (page + 1) * page_size + 1
    arts = []
    for kind in GALLERY_KINDS:
        arts += store.gallery(viewer=viewer, kind=kind, where=where, limit=want)
    # a run with PNG grids also stores arrays; show the picture, not both
    with_png = {a.run_id for a in arts if a.kind == "gallery_png"}
    arts = [a for a in arts if a.kind == "gallery_png" or a.run_id not in with_png]
    arts.sort(key=lambda a: (a.created_at, a.id), reverse=True)
    start = page * page_size
    chunk = arts[start : start + page_size]
    ids = sorted({a.run_id for a in chunk})
    runs = {r.id: r for r in store.list_runs(viewer=viewer, ids=ids, limit=len(ids) or 1)}
    items = [GalleryItem(a, runs[a.run_id]) for a in chunk if a.run_id in runs]
    return items, len(arts) > start + page_size


def picture(store: Store, viewer: User, item: GalleryItem, *, thumbnail: bool) -> bytes | None:
    """PNG bytes of a gallery item: the stored image or thumbnail, or a drawing of the array."""
    art = item.artifact
    levels = model_levels(item.run.config)
    try:
        if art.kind == "gallery_png":
            if thumbnail and art.thumb_sha256:
                return brighten(store.artifact_bytes(art, viewer=viewer, thumbnail=True), levels)
            data = brighten(store.artifact_bytes(art, viewer=viewer), levels)
            return make_thumbnail(data, 256) if thumbnail else data
        raw = store.artifact_bytes(art, viewer=viewer)
        arr = np.load(io.BytesIO(raw), allow_pickle=False)
    except (NotFound, ValueError, OSError):
        return None
    size = 256 if thumbnail else 640
    if arr.ndim == 2 and arr.shape[1] == 2:
        return points_picture(arr, size)
    if arr.ndim == 2:
        return sequences_picture(arr, size)
    return None
