"""The `filesystem` storage backend: a folder of content-addressed files (`ab/cd/abcd…`, the sha-256
in hex). A file reaches its name by a rename from the folder's `.staging/`, on the same disk,
after its bytes are on disk: a crash never leaves half a file under a served name."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from modula.db.connection import Database, Session
from modula.media.storage import Blob

READ_SIZE = 1024 * 1024


class FilesystemStorage:
    name = "filesystem"
    transactional = False

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.staging_dir = self.root / ".staging"
        self.staging_dir.mkdir(parents=True, exist_ok=True)

    def path_of(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a sha-256 digest: {digest!r}")
        return self.root / digest[:2] / digest[2:4] / digest

    async def store(self, session: Session, blob: Blob) -> None:
        await asyncio.to_thread(self._store, blob)

    def _store(self, blob: Blob) -> None:
        final = self.path_of(blob.digest)
        if final.exists():
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        part = self.staging_dir / f"{uuid.uuid4().hex}.part"
        try:
            os.link(blob.path, part)  # staged on this disk already: no copy
        except OSError:
            shutil.copyfile(blob.path, part)
        with part.open("rb") as written:
            os.fsync(written.fileno())
        os.replace(part, final)
        directory = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a power cut
        finally:
            os.close(directory)

    async def read(self, database: Database, digest: str, start: int, end: int) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self.path_of(digest), "rb") as source:
            await source.seek(start)
            left = end - start
            while left > 0:
                piece = await source.read(min(READ_SIZE, left))
                if not piece:
                    raise FileNotFoundError(f"media bytes {digest} end before offset {end}")
                yield piece
                left -= len(piece)

    async def discard(self, session: Session, digest: str) -> None:
        try:
            await asyncio.to_thread(self.path_of(digest).unlink)
        except FileNotFoundError:
            pass

    async def digests(self, session: Session, older_than: float) -> list[str]:
        return await asyncio.to_thread(self._digests, older_than)

    def _digests(self, older_than: float) -> list[str]:
        now = time.time()
        found = []
        for path in self.root.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*"):
            try:
                if now - path.stat().st_mtime > older_than:
                    found.append(path.name)
            except FileNotFoundError:
                pass
        return found
