"""The plugin registry in the database (name, version, checksum, enabled) and the schema generation.

It lives in the database, not only on disk, so several server processes sharing PostgreSQL agree
on which plugins are installed; every plugin change bumps the generation in the same transaction.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from modula.db.connection import Session
from modula.db.core_tables import plugins, schema_state
from modula.db.types import utcnow
from modula.plugins.manifest import Manifest


def checksum(folder: Path) -> str:
    """sha256 over the manifest and every Lua file, so any code change is a new checksum."""
    digest = hashlib.sha256()
    for path in sorted([folder / "plugin.json", *folder.rglob("*.lua")]):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


async def list_plugins(session: Session) -> list[dict[str, Any]]:
    return await session.fetch_all(sa.select(plugins).order_by(plugins.c.name))


async def get_plugin(session: Session, name: str) -> dict[str, Any] | None:
    return await session.fetch_one(sa.select(plugins).where(plugins.c.name == name))


async def record(session: Session, manifest: Manifest, digest: str) -> int:
    """Insert or update the plugin's row and bump the generation; call inside a transaction."""
    now = utcnow()
    existing = await get_plugin(session, manifest.name)
    if existing is None:
        await session.execute(plugins.insert().values(
            name=manifest.name, version=manifest.version, checksum=digest, enabled=True, created_at=now, updated_at=now))
    else:
        await session.execute(plugins.update().where(plugins.c.name == manifest.name).values(
            version=manifest.version, checksum=digest, enabled=True, updated_at=now))
    return await bump_generation(session)


async def set_enabled(session: Session, name: str, enabled: bool) -> int:
    await session.execute(plugins.update().where(plugins.c.name == name).values(enabled=enabled, updated_at=utcnow()))
    return await bump_generation(session)


async def forget(session: Session, name: str) -> int:
    await session.execute(plugins.delete().where(plugins.c.name == name))
    return await bump_generation(session)


async def bump_generation(session: Session) -> int:
    await session.execute(schema_state.update().where(schema_state.c.id == 1).values(generation=schema_state.c.generation + 1))
    return await current_generation(session)


async def current_generation(session: Session) -> int:
    return int(await session.fetch_value(sa.select(schema_state.c.generation).where(schema_state.c.id == 1)))
