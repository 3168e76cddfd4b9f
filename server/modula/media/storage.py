"""Where media bytes live: one small interface, `MediaStorage`, and the backend a setting picks.

Bytes are named by their sha-256 (hex) in every backend, so the same upload is stored once. An
upload is first staged as a file on local disk (in the backend's `staging_dir`), hashed as it
streams in; `store` then makes the backend hold it. A backend is `transactional` when `store` and
`discard` happen inside the session's transaction (the database backend): a rollback or a crash
then undoes them. The others write at once; bytes that no row names, and staged files, left by an upload a crash cut
short are removed by `cms.media.sweep_orphans`, run when a server starts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from modula.config import Settings
    from modula.db.connection import Database, Session

BACKENDS = ("database", "filesystem", "s3")


@dataclass(frozen=True)
class Blob:
    """Bytes staged on local disk, with the hash and size read while they were written."""

    path: Path
    digest: str
    size: int


class MediaStorage(Protocol):
    name: str
    transactional: bool
    staging_dir: Path

    async def store(self, session: Session, blob: Blob) -> None:
        """Hold the blob's bytes under its digest; nothing to do when they are held already."""

    def read(self, database: Database, digest: str, start: int, end: int) -> AsyncIterator[bytes]:
        """The bytes from offset `start` up to, not including, `end`, a piece at a time (a slow
        client holds no database connection between two pieces)."""

    async def discard(self, session: Session, digest: str) -> None:
        """Forget the bytes (the caller has made sure no row names them)."""

    async def digests(self, session: Session, older_than: float) -> list[str]:
        """The digests held whose bytes were stored more than `older_than` seconds ago."""


def storage_from_settings(settings: Settings) -> MediaStorage:
    """The backend `settings.media_storage` names; a ValueError names the choices otherwise."""
    if settings.media_storage == "database":
        from modula.media.database_storage import DatabaseStorage

        return DatabaseStorage(settings.upload_dir)
    if settings.media_storage == "filesystem":
        from modula.media.filesystem_storage import FilesystemStorage

        return FilesystemStorage(settings.media_dir)
    if settings.media_storage == "s3":
        from modula.media.s3_storage import S3Storage

        if not settings.s3_bucket:
            raise ValueError("the s3 media storage needs a bucket: set MODULA_S3_BUCKET")
        return S3Storage(settings.s3_bucket, prefix=settings.s3_prefix, endpoint_url=settings.s3_endpoint_url,
                         region=settings.s3_region, access_key_id=settings.s3_access_key_id,
                         secret_access_key=settings.s3_secret_access_key, staging_dir=settings.upload_dir)
    raise ValueError(f"unknown media storage {settings.media_storage!r} (MODULA_MEDIA_STORAGE): "
                     f"choose one of {', '.join(BACKENDS)}")


def remove_stale_files(folder: Path, older_than: float, now: float) -> None:
    """Delete the plain files directly in `folder` last written more than `older_than` seconds ago."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        try:
            if path.is_file() and now - path.stat().st_mtime > older_than:
                path.unlink()
        except FileNotFoundError:  # another process cleaned it first
            pass
