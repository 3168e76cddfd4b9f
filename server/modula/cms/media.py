"""Media items: uploaded files recorded in `media` (with their named image sizes in
`media_dimensions`), their bytes held by a `MediaStorage` backend under their sha-256.

Uploading several files is all or nothing: every file is checked (its type sniffed from its bytes,
its alt text and folder) before anything is written; then the bytes are stored and the rows
inserted in one transaction. A backend that writes outside the transaction (the filesystem) has
the bytes of a failed upload discarded at once, and those of an upload cut short by a crash
discarded by `sweep_orphans` when a server starts. Several upload fields of one multipart request are
one unit too: `upload_unit.py` runs them in one transaction and discards what they stored if any fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from modula.db import core_tables as t
from modula.db.connection import Session
from modula.db.types import utcnow
from modula.errors import ModulaError, Problems, not_found
from modula.media import images
from modula.media.sniffing import allowed, sniff
from modula.media.storage import Blob, MediaStorage, remove_stale_files

MAX_ALT = 2000
MAX_FOLDER = 255
# Bytes written by a non-transactional backend this long ago and named by no row are orphans of an
# upload that crashed before its commit (a younger one may be an upload still under way elsewhere).
ORPHAN_GRACE_SECONDS = 3600
ORDER_COLUMNS = {"id": t.media.c.id, "created_at": t.media.c.created_at, "name": t.media.c.name,
                 "size": t.media.c.size_bytes}

Row = dict[str, Any]
KEEP: Any = object()  # update_media: leave this value as it is


@dataclass(frozen=True)
class NewMedia:
    """One file to record: its (sanitised) name, its staged bytes and their first bytes, for sniffing."""

    filename: str
    blob: Blob
    head: bytes
    declared_type: str | None = None
    alt: str | None = None
    folder: str | None = None
    path: tuple[str | int, ...] = ("file",)  # the input it came from, for errors


@dataclass(frozen=True)
class MediaFilter:
    folder: str | None = None
    mime_type: str | None = None  # exact, or a family such as image/*
    uploader_id: int | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None


def media_url(media_id: int, name: str, digest: str | None, size: str | None = None) -> str:
    """Where the server serves the bytes; the hash in `v` makes the URL safe to cache for ever."""
    path = f"/media/{media_id}/" + (f"{size}/" if size else "") + quote(name)
    return f"{path}?v={digest[:16]}" if digest else path


async def upload_media(session: Session, storage: MediaStorage, items: Sequence[NewMedia], *,
                       allowed_types: tuple[str, ...], sizes: tuple[images.ImageSize, ...],
                       uploader_id: int | None, written: set[str] | None = None) -> list[Row]:
    """Record every file, or none; returns the media rows in input order. The digests stored are
    added to `written`, for a caller whose outer transaction may still roll back (upload_unit.py)."""
    problems = Problems()
    types = []
    for item in items:
        media_type = sniff(item.head)
        types.append(media_type)
        if not allowed(media_type, allowed_types):
            declared = f" (declared as {item.declared_type})" if item.declared_type else ""
            problems.add("UNSUPPORTED_MEDIA_TYPE", f"the bytes of {item.filename!r} are {media_type}{declared}, which this "
                         f"server does not accept; allowed: {', '.join(allowed_types) or 'nothing'} (MODULA_MEDIA_TYPES)",
                         item.path)
        _check_text(problems, item.alt, MAX_ALT, "alt", item.path[:-1] + ("alt",))
        _check_text(problems, item.folder, MAX_FOLDER, "folder", item.path[:-1] + ("folder",))
    problems.raise_if_any()

    made: list[Path] = []
    try:
        prepared = []
        for item, media_type in zip(items, types):
            dimensions, renditions = await asyncio.to_thread(images.render, item.blob.path, media_type, sizes,
                                                             storage.staging_dir)
            made.extend(rendition.path for rendition in renditions)
            blobs = [await asyncio.to_thread(_blob_of, rendition.path) for rendition in renditions]
            prepared.append(_Prepared(item, media_type, dimensions, list(zip(renditions, blobs))))
        return await _record(session, storage, prepared, uploader_id, set() if written is None else written)
    finally:
        for path in made:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


@dataclass(frozen=True)
class _Prepared:
    """One checked file with what was read from it, ready to store and record."""

    item: NewMedia
    media_type: str
    dimensions: tuple[int, int] | None
    renditions: list[tuple[images.Rendition, Blob]]


async def _record(session: Session, storage: MediaStorage, prepared: list[_Prepared],
                  uploader_id: int | None, written: set[str]) -> list[Row]:
    mine: set[str] = set()  # what this call stored: discarded at once if it fails
    try:
        async with session.transaction():
            rows = []
            for one in prepared:
                item, media_type, dimensions, renditions = one.item, one.media_type, one.dimensions, one.renditions
                await storage.store(session, item.blob)
                mine.add(item.blob.digest)
                row = await session.insert(t.media, {
                    "name": item.filename, "url": "", "mime_type": media_type, "size_bytes": item.blob.size,
                    "alt": item.alt, "folder": item.folder, "uploader_id": uploader_id, "created_at": utcnow(),
                    "content_hash": item.blob.digest, "width": dimensions[0] if dimensions else None,
                    "height": dimensions[1] if dimensions else None,
                })
                url = media_url(row["id"], item.filename, item.blob.digest)
                await session.execute(sa.update(t.media).where(t.media.c.id == row["id"]).values(url=url))
                row["url"] = url
                for rendition, blob in renditions:
                    await storage.store(session, blob)
                    mine.add(blob.digest)
                await session.insert_rows(t.media_dimensions, [{
                    "media_id": row["id"], "label": rendition.name, "width": rendition.width,
                    "height": rendition.height, "url": media_url(row["id"], item.filename, blob.digest, rendition.name),
                    "content_hash": blob.digest, "mime_type": rendition.mime_type, "size_bytes": blob.size,
                } for rendition, blob in renditions])
                rows.append(row)
        return rows
    except BaseException:
        if not storage.transactional:
            await discard_unreferenced(session, storage, mine)
        raise
    finally:
        written.update(mine)


def _blob_of(path: Path) -> Blob:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while piece := source.read(1024 * 1024):
            digest.update(piece)
    return Blob(path, digest.hexdigest(), path.stat().st_size)


def _check_text(problems: Problems, value: str | None, limit: int, what: str, path: tuple) -> None:
    if value is None:
        return
    if len(value) > limit:
        problems.add("INVALID_VALUE", f"{what} is {len(value)} characters long; at most {limit} are allowed", path)
    elif any(ord(c) < 32 and c not in "\t\n" for c in value) or "\x7f" in value:
        problems.add("INVALID_VALUE", f"{what} holds control characters", path)


async def media_by_ids(session: Session, ids: list[int]) -> list[Row]:
    return await session.fetch_all(sa.select(t.media).where(t.media.c.id.in_(ids)))


async def dimensions_of(session: Session, media_ids: list[int]) -> list[Row]:
    d = t.media_dimensions
    return await session.fetch_all(sa.select(d).where(d.c.media_id.in_(media_ids)).order_by(d.c.media_id, d.c.id))


async def list_media(session: Session, where: MediaFilter, *, order_by: Sequence[tuple[str, bool]] = (),
                     limit: int, offset: int) -> list[Row]:
    """Media matching every condition of `where`, in `order_by` order ((column, descending) pairs), then by id."""
    m = t.media.c
    statement = sa.select(t.media)
    if where.folder is not None:
        statement = statement.where(m.folder == where.folder)
    if where.mime_type is not None:
        family = where.mime_type[:-1] if where.mime_type.endswith("/*") else None
        statement = statement.where(m.mime_type.startswith(family, autoescape=True) if family
                                    else m.mime_type == where.mime_type)
    if where.uploader_id is not None:
        statement = statement.where(m.uploader_id == where.uploader_id)
    if where.created_after is not None:
        statement = statement.where(m.created_at >= where.created_after)
    if where.created_before is not None:
        statement = statement.where(m.created_at < where.created_before)
    orders = [ORDER_COLUMNS[column].desc() if descending else ORDER_COLUMNS[column].asc()
              for column, descending in order_by]
    return await session.fetch_all(statement.order_by(*orders, m.id).limit(limit).offset(offset))


async def update_media(session: Session, media_id: int, *, alt: Any = KEEP, folder: Any = KEEP) -> Row:
    """Change the alt text and/or folder (None clears one; a value left out keeps it)."""
    problems = Problems()
    changes = {}
    for name, value, limit in (("alt", alt, MAX_ALT), ("folder", folder, MAX_FOLDER)):
        if value is not KEEP:
            _check_text(problems, value, limit, name, (name,))
            changes[name] = value
    problems.raise_if_any()
    async with session.transaction():
        if changes:
            await session.execute(sa.update(t.media).where(t.media.c.id == media_id).values(**changes))
        row = await session.fetch_one(sa.select(t.media).where(t.media.c.id == media_id))
        if row is None:
            raise not_found("media", media_id, ("id",))
    return row


async def usages(session: Session, media_ids: list[int]) -> list[Row]:
    """Content values that name one of the media: {media_id, content_id, field_id, label}."""
    v, f = t.content_fields, t.fields
    # A media value is also stored as a number: (field_id, value_number) is indexed.
    rows = await session.fetch_all(
        sa.select(v.c.value, v.c.content_data_id, v.c.field_id, f.c.label)
        .join(f, f.c.id == v.c.field_id)
        .where(f.c.type == "media", v.c.value_number.in_([float(i) for i in media_ids]))
        .order_by(v.c.content_data_id, v.c.field_id))
    return [{"media_id": int(r["value"]), "content_id": r["content_data_id"], "field_id": r["field_id"],
             "label": r["label"]} for r in rows]


async def delete_media(session: Session, storage: MediaStorage, media_id: int, *, force: bool = False) -> list[int]:
    """Delete a media item, its sizes and (when nothing else names them) their bytes. Refused while
    content uses it, naming that content, unless `force`, which clears those values first. Returns
    the ids of the content whose values were cleared."""
    async with session.transaction():
        row = await session.fetch_one(sa.select(t.media).where(t.media.c.id == media_id))
        if row is None:
            raise not_found("media", media_id, ("id",))
        used = await usages(session, [media_id])
        if used and not force:
            named = ", ".join(f"content {u['content_id']} (field {u['label']!r})" for u in used[:10])
            more = f" and {len(used) - 10} more" if len(used) > 10 else ""
            raise ModulaError("MEDIA_IN_USE", f"media {media_id} is used by {named}{more}: remove it from that "
                              "content first, or delete with force: true to clear those values", ("id",))
        for use in used:
            await session.execute(sa.delete(t.content_fields).where(
                t.content_fields.c.content_data_id == use["content_id"], t.content_fields.c.field_id == use["field_id"]))
        if used:
            await session.execute(sa.update(t.content_data).where(
                t.content_data.c.id.in_({u["content_id"] for u in used})).values(updated_at=utcnow()))
        digests = {row["content_hash"]} | {d["content_hash"] for d in await dimensions_of(session, [media_id])}
        digests.discard(None)
        await session.execute(sa.delete(t.media).where(t.media.c.id == media_id))  # sizes cascade
        if storage.transactional:
            await discard_unreferenced(session, storage, digests)
    if not storage.transactional:
        await discard_unreferenced(session, storage, digests)
    return sorted({u["content_id"] for u in used})


async def _referenced(session: Session, digests: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(digests), 500):
        batch = digests[start:start + 500]
        for table in (t.media, t.media_dimensions):
            rows = await session.fetch_all(sa.select(table.c.content_hash).where(table.c.content_hash.in_(batch)))
            found.update(r["content_hash"] for r in rows)
    return found


async def discard_unreferenced(session: Session, storage: MediaStorage, digests: set[str]) -> None:
    """Discard the held bytes of `digests` that no media row or size names."""
    referenced = await _referenced(session, sorted(digests))
    for digest in digests - referenced:
        await storage.discard(session, digest)


async def sweep_orphans(session: Session, storage: MediaStorage, *, older_than: float | None = None) -> int:
    """Discard held bytes no row names (and staged files) older than `older_than` seconds (default
    ORPHAN_GRACE_SECONDS); returns how many blobs were discarded."""
    older_than = ORPHAN_GRACE_SECONDS if older_than is None else older_than
    await asyncio.to_thread(remove_stale_files, storage.staging_dir, older_than, time.time())
    candidates = set(await storage.digests(session, older_than))
    orphans = candidates - await _referenced(session, sorted(candidates))
    if storage.transactional and orphans:
        async with session.transaction():
            for digest in orphans:
                await storage.discard(session, digest)
    else:
        for digest in orphans:
            await storage.discard(session, digest)
    return len(orphans)


async def find_media(session: Session, media_id: int) -> Row | None:
    return await session.fetch_one(sa.select(t.media).where(t.media.c.id == media_id))


async def find_dimension(session: Session, media_id: int, label: str) -> Row | None:
    d = t.media_dimensions
    return await session.fetch_one(sa.select(d).where(d.c.media_id == media_id, d.c.label == label))


async def content_using(session: Session, media_id: int) -> list[Row]:
    """The content nodes whose values name the media item (for who may see it)."""
    ids = {u["content_id"] for u in await usages(session, [media_id])}
    if not ids:
        return []
    return await session.fetch_all(sa.select(t.content_data).where(t.content_data.c.id.in_(ids)))
