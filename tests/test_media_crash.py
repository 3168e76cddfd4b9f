"""An upload cut short by kill -9 at the worst moment (its bytes stored, its rows not yet committed;
with several upload fields in the request, the last one's) leaves no media row, and a restart
removes whatever bytes and staged files it left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from media_fixtures import Held, backend, s3_server, storage_settings  # noqa: F401
from modula_testing import running_app

CHILD = r"""
import asyncio, io, json, os, signal, sys
from pathlib import Path
import httpx
from PIL import Image
from modula.db.connection import Session
from modula.testing import running_app, token_client

url, settings, root, fields = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
insert_rows = Session.insert_rows
calls = []

async def die(*args, **kwargs):  # the last field's media row is inserted and its bytes stored; nothing is committed
    calls.append(1)
    if len(calls) == fields:
        os.kill(os.getpid(), signal.SIGKILL)
    return await insert_rows(*args, **kwargs)

async def main():
    settings.update(media_dir=Path(settings["media_dir"]), upload_dir=Path(settings["upload_dir"]))
    async with running_app(url, plugins_dir=root / "plugins", **settings) as app:
        async with token_client(app, "admin", roles=["admin"]) as client:
            Session.insert_rows = die
            files = {}
            for n in range(fields):
                image = io.BytesIO()
                Image.new("RGB", (64, 64), (1, 2, n)).save(image, "PNG")
                files[str(n)] = (f"crash{n}.png", image.getvalue(), "image/png")
            # One field, or several of one request (all or nothing): the first ones ran to the end.
            query = "mutation(" + ", ".join(f"$f{n}: Upload!" for n in range(fields)) + ") { " + " ".join(
                f"f{n}: uploadMedia(file: $f{n}) {{ id }}" for n in range(fields)) + " }"
            operations = {"query": query, "variables": {f"f{n}": None for n in range(fields)}}
            await client.http.post("/graphql", data={"operations": json.dumps(operations),
                                                     "map": json.dumps({str(n): [f"variables.f{n}"] for n in range(fields)})},
                                   files=files)

asyncio.run(main())
"""


@pytest.mark.parametrize("fields", [1, 2])
async def test_an_upload_killed_before_its_commit_leaves_nothing_after_a_restart(database_url, tmp_path, backend,
                                                                                  storage_settings, monkeypatch, fields):
    child = subprocess.run([sys.executable, "-c", CHILD, database_url, json.dumps(storage_settings), str(tmp_path),
                            str(fields)], capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr

    media_dir, upload_dir = tmp_path / "media", tmp_path / "uploads"
    staging = media_dir / ".staging" if backend == "filesystem" else upload_dir
    left = [p for p in media_dir.rglob("*") if p.is_file()] + [p for p in upload_dir.rglob("*") if p.is_file()]
    if backend == "filesystem":
        assert any(p.parent != staging for p in left)  # the stored bytes of the upload that never committed
    assert any(p.parent == staging for p in left)  # and its staged file
    settings = {**storage_settings, "media_dir": media_dir, "upload_dir": upload_dir}
    # A restart right away leaves young files alone (another server's upload may be under way)...
    async with running_app(database_url, plugins_dir=tmp_path / "plugins", **settings) as app:
        assert await _rows(app) == {"media": 0, "media_dimensions": 0, "media_chunks": 0}
        assert all(p.exists() for p in left)
        if backend != "database":
            assert await Held(app).digests()  # the orphan (the original and its sizes) is still held
    # ...and removes them once they are older than the grace period.
    old = time.time() - 2 * 3600
    for path in left:
        os.utime(path, (old, old))
    if backend == "s3":  # an object's LastModified cannot be set back: the grace period is shortened instead
        monkeypatch.setattr("modula.cms.media.ORPHAN_GRACE_SECONDS", 0)
    async with running_app(database_url, plugins_dir=tmp_path / "plugins", **settings) as app:
        assert await _rows(app) == {"media": 0, "media_dimensions": 0, "media_chunks": 0}
        assert await Held(app).nothing()
    assert [p for p in media_dir.rglob("*") if p.is_file()] + [p for p in upload_dir.rglob("*") if p.is_file()] == []


async def _rows(app) -> dict[str, int]:
    async with app.state.database.session() as session:
        return {table: await session.fetch_value(sa.text(f"SELECT count(*) FROM {table}"))
                for table in ("media", "media_dimensions", "media_chunks")}
