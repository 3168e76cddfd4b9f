"""The `database` storage backend: bytes in the `media_chunks` table, in fixed-size chunks, written in
the uploading transaction and read one chunk per statement, so a file is never whole in memory and
every server process on one PostgreSQL database serves every file with no shared disk."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from modula.db import core_tables as t
from modula.db.connection import Database, Session
from modula.media.storage import Blob

# The size of every chunk but a file's last: part of the stored format (a byte's chunk is
# offset // CHUNK_SIZE), so it must not change under existing data.
CHUNK_SIZE = 1024 * 1024

_CHUNKS = t.media_chunks


class DatabaseStorage:
    name = "database"
    transactional = True

    def __init__(self, staging_dir: Path | None = None) -> None:
        self.staging_dir = Path(staging_dir) if staging_dir else Path(tempfile.gettempdir()) / "modula-uploads"
        self.staging_dir.mkdir(parents=True, exist_ok=True)

    async def store(self, session: Session, blob: Blob) -> None:
        held = sa.select(_CHUNKS.c.seq).where(_CHUNKS.c.content_hash == blob.digest, _CHUNKS.c.seq == 0)
        if await session.fetch_value(held) is not None:
            return
        insert = (postgresql.insert if session.dialect == "postgresql" else sqlite.insert)(_CHUNKS)
        # Two uploads of the same bytes at once: the second waits for the first and then adds nothing.
        insert = insert.on_conflict_do_nothing(index_elements=["content_hash", "seq"])
        with blob.path.open("rb") as source:
            seq = 0
            while True:
                data = source.read(CHUNK_SIZE)
                if not data and seq:
                    break
                await session.execute(insert.values(content_hash=blob.digest, seq=seq, data=data))
                seq += 1
                if len(data) < CHUNK_SIZE:
                    break

    async def read(self, database: Database, digest: str, start: int, end: int) -> AsyncIterator[bytes]:
        seq, skip = divmod(start, CHUNK_SIZE)
        left = end - start
        while left > 0:
            async with database.session() as session:
                data = await session.fetch_value(
                    sa.select(_CHUNKS.c.data).where(_CHUNKS.c.content_hash == digest, _CHUNKS.c.seq == seq))
            if data is None:
                raise FileNotFoundError(f"media bytes {digest} end before offset {end}")
            piece = bytes(data[skip:skip + left])
            if not piece:
                raise FileNotFoundError(f"media bytes {digest} end before offset {end}")
            yield piece
            left -= len(piece)
            seq, skip = seq + 1, 0

    async def discard(self, session: Session, digest: str) -> None:
        await session.execute(sa.delete(_CHUNKS).where(_CHUNKS.c.content_hash == digest))

    async def digests(self, session: Session, older_than: float) -> list[str]:
        # Chunks are written in the uploading transaction: any age will do.
        rows = await session.fetch_all(sa.select(_CHUNKS.c.content_hash).where(_CHUNKS.c.seq == 0))
        return [row["content_hash"] for row in rows]
