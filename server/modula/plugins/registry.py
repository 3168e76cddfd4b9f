"""The plugin registry in the database: each installed plugin's name, version, checksum, code and
where it came from, and the schema generation.

The database is the only shared state between server processes: a plugin's files are stored here
in the same transaction that creates its tables and bumps the generation, and every process loads
plugins from here. Changes are made under `change_lock`, so exactly one process installs at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from modula.db.connection import Session
from modula.db.core_tables import plugin_files, plugins, schema_state
from modula.db.types import utcnow
from modula.plugins.files import PluginFiles, read_folder
from modula.plugins.manifest import Manifest

# Any constant works; it only has to be the same in every process that changes plugins.
_PG_PLUGIN_LOCK = 74_211_002


def checksum(folder: Path) -> str:
    """sha256 over the manifest and every Lua file, so any code change is a new checksum."""
    return read_folder(folder).checksum


@dataclass(frozen=True)
class StoredPlugin:
    """One enabled plugin as the registry holds it at a generation."""
    id: int
    name: str
    checksum: str
    installed_generation: int
    tables_generation: int  # the generation that last created or changed its tables
    source: str
    files: PluginFiles


async def change_lock(session: Session) -> None:
    """Hold the registry's lock to the end of the current transaction: installs, upgrades and
    removals then happen one at a time across every process. On SQLite the transaction's BEGIN
    IMMEDIATE already is that lock (one writer per database file)."""
    if session.dialect == "postgresql":
        await session.fetch_all(sa.select(sa.func.pg_advisory_xact_lock(_PG_PLUGIN_LOCK)))


async def list_plugins(session: Session) -> list[dict[str, Any]]:
    return await session.fetch_all(sa.select(plugins).order_by(plugins.c.name))


async def get_plugin(session: Session, name: str) -> dict[str, Any] | None:
    return await session.fetch_one(sa.select(plugins).where(plugins.c.name == name))


async def has_files(session: Session, plugin_id: int) -> bool:
    return await session.fetch_value(sa.select(sa.func.count()).select_from(plugin_files)
                                     .where(plugin_files.c.plugin_id == plugin_id)) > 0


async def stored_files(session: Session, plugin_id: int) -> PluginFiles:
    rows = await session.fetch_all(sa.select(plugin_files.c.path, plugin_files.c.content)
                                   .where(plugin_files.c.plugin_id == plugin_id))
    return PluginFiles({row["path"]: row["content"] for row in rows})


async def record(session: Session, manifest: Manifest, files: PluginFiles, source: str, *, tables_changed: bool) -> int:
    """Insert or update the plugin's row with its files and bump the generation; call inside a
    transaction holding `change_lock`, `tables_changed` when it also created or changed tables.
    Returns the new generation."""
    now = utcnow()
    generation = await bump_generation(session)
    values = dict(version=manifest.version, checksum=files.checksum, enabled=True, updated_at=now,
                  installed_generation=generation, source=source)
    existing = await get_plugin(session, manifest.name)
    if tables_changed or existing is None:
        values["tables_generation"] = generation
    if existing is None:
        row = await session.insert(plugins, dict(name=manifest.name, created_at=now, **values))
        plugin_id = row["id"]
    else:
        plugin_id = existing["id"]
        await session.execute(plugins.update().where(plugins.c.id == plugin_id).values(**values))
        await session.execute(plugin_files.delete().where(plugin_files.c.plugin_id == plugin_id))
    await session.insert_rows(plugin_files, [{"plugin_id": plugin_id, "path": path, "content": content}
                                             for path, content in sorted(files.files.items())])
    return generation


async def set_enabled(session: Session, name: str, enabled: bool) -> int:
    await session.execute(plugins.update().where(plugins.c.name == name).values(enabled=enabled, updated_at=utcnow()))
    return await bump_generation(session)


async def forget(session: Session, name: str) -> int:
    """Delete the plugin's row and (by cascade) its files, and bump the generation."""
    await session.execute(plugins.delete().where(plugins.c.name == name))
    return await bump_generation(session)


async def snapshot(session: Session, loaded: dict[str, int]) -> tuple[int, list[StoredPlugin]]:
    """The generation and the enabled plugins in install order, as one consistent state. Files are
    read only for plugins whose installed generation differs from `loaded` (name -> installed
    generation of what the caller runs); the others come with empty files."""
    while True:
        before = await current_generation(session)
        rows = await session.fetch_all(sa.select(plugins.c.id, plugins.c.name, plugins.c.checksum,
                                                 plugins.c.installed_generation, plugins.c.tables_generation, plugins.c.source)
                                       .where(plugins.c.enabled == sa.true()).order_by(plugins.c.id))
        wanted = [row["id"] for row in rows if loaded.get(row["name"]) != row["installed_generation"]]
        contents: dict[int, dict[str, str]] = {plugin_id: {} for plugin_id in wanted}
        if wanted:
            for file in await session.fetch_all(sa.select(plugin_files).where(plugin_files.c.plugin_id.in_(wanted))):
                contents[file["plugin_id"]][file["path"]] = file["content"]
        # Every change bumps the generation in its own transaction: an unchanged number means the
        # rows and files above are exactly that generation's.
        if await current_generation(session) == before:
            return before, [StoredPlugin(row["id"], row["name"], row["checksum"], row["installed_generation"],
                                         row["tables_generation"], row["source"], PluginFiles(contents.get(row["id"], {}))) for row in rows]


async def bump_generation(session: Session) -> int:
    await session.execute(schema_state.update().where(schema_state.c.id == 1).values(generation=schema_state.c.generation + 1))
    return await current_generation(session)


async def bump_generation_from(session: Session, generation: int) -> bool:
    """Move the generation from `generation` to the next one, unless another change moved it first."""
    moved = await session.execute(schema_state.update().where(schema_state.c.id == 1, schema_state.c.generation == generation)
                                  .values(generation=generation + 1))
    return moved == 1


async def current_generation(session: Session) -> int:
    return int(await session.fetch_value(sa.select(schema_state.c.generation).where(schema_state.c.id == 1)))
