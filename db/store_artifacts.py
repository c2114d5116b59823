"""Artifacts (galleries, trajectories, checkpoints, job results) and uploads.

Rows here point at bytes in the artifact store by sha256. A thumbnail is made once, when an
image is stored (with `db.media.make_thumbnail`), and stored the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db import convert
from db.access import Viewer, _System, viewable_child, viewable_run, visible_clause
from db.artifacts import ArtifactStore
from db.entities import ARTIFACT_KINDS, Artifact, Upload
from db.errors import InvalidInput, NotFound
from db.models import ArtifactRow, RunRow, UploadRow
from db.session import StoreBase, added, utcnow
from db.store_jobs import Lease, check_lease
from db.store_run_lists import RunFilter
from db.store_runs import referenced

THUMB_SIZE = 256
_KEY = re.compile(r"^[\w.+-]{1,255}$")


def make_thumbnail(data: bytes, size: int = THUMB_SIZE) -> bytes:
    """A PNG thumbnail (longest side `size`), made by the one image stack."""
    from diffusion.images.checks import make_thumbnail as thumbnail

    return thumbnail(data, size)


def _check_kind_key(kind: str, key: str) -> None:
    if kind not in ARTIFACT_KINDS:
        raise InvalidInput(f"artifact kind must be one of {ARTIFACT_KINDS}, not {kind!r}")
    if not _KEY.match(key):
        raise InvalidInput(f"artifact key {key!r}: use letters, digits and . _ + -")


def _drop_older(s: Session, run_id: str, kind: str, keep_previous: int) -> list[ArtifactRow]:
    """Delete the run's rows of `kind` but the newest `keep_previous`; returns those deleted."""
    old = list(
        s.scalars(
            select(ArtifactRow)
            .where(ArtifactRow.run_id == run_id, ArtifactRow.kind == kind)
            .order_by(ArtifactRow.step.desc(), ArtifactRow.id.desc())
        )
    )[keep_previous:]
    for row in old:
        s.delete(row)
    return old


class ArtifactsMixin(StoreBase):
    artifacts: ArtifactStore

    def put_artifact(
        self,
        run_id: str,
        kind: str,
        data: bytes,
        *,
        key: str,
        media_type: str,
        step: int | None = None,
        job_id: str | None = None,
        lease: Lease | None = None,
        replace_kind: bool = False,
        keep_previous: int = 0,
        width: int | None = None,
        height: int | None = None,
    ) -> Artifact:
        """Store bytes and their row. `replace_kind` drops the run's older rows of this kind
        but the newest `keep_previous` (and their bytes when nothing else uses them): used for
        checkpoints, of which the last two are kept."""
        _check_kind_key(kind, key)
        sha = self.artifacts.put(data)
        thumb = None
        if media_type.startswith("image/"):
            thumb = self.artifacts.put(make_thumbnail(data, THUMB_SIZE))
        orphans: list[str] = []
        with self._scope(write=True) as s:
            if lease is not None:
                check_lease(s, lease)
            if s.get(RunRow, run_id) is None:
                raise NotFound(f"no run {run_id!r}")
            old: list[ArtifactRow] = []
            if replace_kind:
                old = _drop_older(s, run_id, kind, keep_previous)
            row = ArtifactRow(
                run_id=run_id,
                job_id=job_id,
                kind=kind,
                step=step,
                key=key,
                media_type=media_type,
                size=len(data),
                sha256=sha,
                location=self.artifacts.location(sha),
                thumb_sha256=thumb,
                width=width,
                height=height,
                created_at=utcnow(),
            )
            s.add(row)
            s.flush()
            orphans = [r.sha256 for r in old if r.sha256 != sha and not referenced(s, r.sha256)]
            entity = convert.artifact(row)
        for orphan in orphans:
            self.artifacts.delete(orphan)
        return entity

    def list_artifacts(
        self,
        run_id: str,
        *,
        viewer: Viewer,
        kind: str | None = None,
        job_id: str | None = None,
    ) -> list[Artifact]:
        """A run's artifacts in (step, id) order."""
        q = select(ArtifactRow).where(ArtifactRow.run_id == run_id)
        if kind is not None:
            q = q.where(ArtifactRow.kind == kind)
        if job_id is not None:
            q = q.where(ArtifactRow.job_id == job_id)
        q = q.order_by(ArtifactRow.step, ArtifactRow.id)
        with self._scope() as s:
            viewable_run(s, run_id, viewer)
            return [convert.artifact(r) for r in s.scalars(q)]

    def latest_artifact(self, run_id: str, kind: str, *, viewer: Viewer) -> Artifact | None:
        q = (
            select(ArtifactRow)
            .where(ArtifactRow.run_id == run_id, ArtifactRow.kind == kind)
            .order_by(ArtifactRow.step.desc(), ArtifactRow.id.desc())
            .limit(1)
        )
        with self._scope() as s:
            viewable_run(s, run_id, viewer)
            row = s.scalars(q).first()
            return convert.artifact(row) if row else None

    def gallery(
        self,
        *,
        viewer: Viewer,
        kind: str = "gallery_png",
        run_ids: Sequence[str] | None = None,
        limit: int = 48,
        offset: int = 0,
        where: RunFilter | None = None,
    ) -> list[Artifact]:
        """Artifacts of one kind across the runs `viewer` may see (narrowed by `where`, a
        filter on the runs), newest first (paginated)."""
        q = (
            select(ArtifactRow)
            .join(RunRow, RunRow.id == ArtifactRow.run_id)
            .where(visible_clause(viewer), ArtifactRow.kind == kind)
        )
        if where is not None:
            q = q.where(*where.clauses())
        if run_ids is not None:
            q = q.where(ArtifactRow.run_id.in_(list(run_ids)))
        q = q.order_by(ArtifactRow.created_at.desc(), ArtifactRow.id.desc())
        with self._scope() as s:
            return [convert.artifact(r) for r in s.scalars(q.limit(limit).offset(offset))]

    def get_artifact(self, artifact_id: int, *, viewer: Viewer) -> Artifact:
        with self._scope() as s:
            row = viewable_child(s, ArtifactRow, artifact_id, viewer, f"artifact {artifact_id}")
            return convert.artifact(row)

    def artifact_bytes(
        self, artifact: Artifact | int, *, viewer: Viewer, thumbnail: bool = False
    ) -> bytes:
        """The bytes of an artifact (or of its thumbnail) that `viewer` may see."""
        art = self.get_artifact(
            artifact if isinstance(artifact, int) else artifact.id, viewer=viewer
        )
        if thumbnail:
            if art.thumb_sha256 is None:
                raise NotFound(f"artifact {art.id} has no thumbnail")
            return self.artifacts.get(art.thumb_sha256)
        return self.artifacts.get(art.sha256)

    def truncate_artifacts(
        self, run_id: str, after_step: int, *, kinds: Sequence[str], lease: Lease | None = None
    ) -> int:
        """Drop rows of these kinds with step > `after_step` (a run resuming)."""
        where = (
            ArtifactRow.run_id == run_id,
            ArtifactRow.step > after_step,
            ArtifactRow.kind.in_(list(kinds)),
        )
        with self._scope(write=True) as s:
            if lease is not None:
                check_lease(s, lease)
            shas = {
                sha
                for pair in s.execute(
                    select(ArtifactRow.sha256, ArtifactRow.thumb_sha256).where(*where)
                )
                for sha in pair
                if sha
            }
            result = s.execute(delete(ArtifactRow).where(*where))
            s.flush()
            orphans = [sha for sha in shas if not referenced(s, sha)]
        for sha in orphans:
            self.artifacts.delete(sha)
        return int(result.rowcount or 0)

    # ---- uploads -------------------------------------------------------------------------

    def add_upload(
        self,
        data: bytes,
        *,
        owner_id: int,
        original_name: str,
        media_type: str,
        width: int | None = None,
        height: int | None = None,
    ) -> Upload:
        """Store an already validated upload (db.media checks it) under its hash."""
        sha = self.artifacts.put(data)
        thumb = (
            self.artifacts.put(make_thumbnail(data, THUMB_SIZE))
            if media_type.startswith("image/")
            else None
        )
        with self._scope(write=True) as s:
            row = UploadRow(
                owner_id=owner_id,
                sha256=sha,
                original_name=original_name[:255] or "upload",
                media_type=media_type,
                size=len(data),
                width=width,
                height=height,
                thumb_sha256=thumb,
                created_at=utcnow(),
            )
            return convert.upload(added(s, row))

    def get_upload(self, upload_id: int, *, viewer: Viewer) -> Upload:
        """An upload; only its owner (or SYSTEM, or an admin) may see it."""
        with self._scope() as s:
            row = s.get(UploadRow, upload_id)
            if row is None or not (
                isinstance(viewer, _System) or viewer.is_admin or row.owner_id == viewer.id
            ):
                raise NotFound(f"no upload {upload_id}")
            return convert.upload(row)

    def upload_bytes(self, upload_id: int, *, viewer: Viewer) -> bytes:
        """The bytes of an upload `viewer` may see (the worker passes the job's owner)."""
        return self.artifacts.get(self.get_upload(upload_id, viewer=viewer).sha256)

    def list_uploads(self, *, viewer: Viewer, limit: int = 100) -> list[Upload]:
        q = select(UploadRow).order_by(UploadRow.created_at.desc()).limit(limit)
        if not isinstance(viewer, _System):
            q = q.where(UploadRow.owner_id == viewer.id)
        with self._scope() as s:
            return [convert.upload(r) for r in s.scalars(q)]
