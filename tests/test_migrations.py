"""Migrations create exactly the tables the code queries, once, with foreign keys enforced."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from modula.db.connection import Database
from modula.db.core_tables import metadata
from modula.db.errors import ForeignKeyViolation
from modula.db.migrations import migrate, schema_migrations
from modula.db.types import utcnow


async def _reflect(database: Database) -> dict[str, dict[str, bool]]:
    """Table -> column -> nullable, read from the live database."""
    async with database.session() as session:
        if database.is_sqlite:
            names = [r["name"] for r in await session.fetch_all(sa.text("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE :internal").bindparams(internal="sqlite_%"))]
            tables = {}
            for name in names:
                rows = await session.fetch_all(sa.text(f'PRAGMA table_info("{name}")'))
                tables[name] = {r["name"]: not (r["notnull"] or r["pk"]) for r in rows}
            return tables
        rows = await session.fetch_all(sa.text(
            "SELECT table_name, column_name, is_nullable FROM information_schema.columns WHERE table_schema = 'public'"
        ))
    tables: dict[str, dict[str, bool]] = {}
    for r in rows:
        tables.setdefault(r["table_name"], {})[r["column_name"]] = r["is_nullable"] == "YES"
    return tables


async def test_migrated_database_matches_the_core_metadata(app):
    live = await _reflect(app.state.database)
    for table in metadata.sorted_tables:
        expected = {c.name: bool(c.nullable) and not c.primary_key for c in table.columns}
        assert live.get(table.name) == expected, table.name


async def test_migrate_twice_applies_nothing_the_second_time(app):
    async with app.state.database.session() as session:
        assert await migrate(session) == []
        versions = [r["version"] for r in await session.fetch_all(sa.select(schema_migrations.c.version))]
    assert versions == sorted(versions) and len(versions) >= 2


async def test_builtin_roles_exist(client):
    async with client.database.session() as session:
        rows = await session.fetch_all(sa.text("SELECT name FROM roles ORDER BY id"))
    assert [r["name"] for r in rows] == ["admin", "editor", "viewer", "anonymous"]


async def test_foreign_keys_are_enforced(app):
    from modula.db.core_tables import routes

    async with app.state.database.session() as session:
        with pytest.raises(ForeignKeyViolation):
            async with session.transaction():
                await session.insert(routes, {"slug": "x", "title": "x", "site_id": 42, "created_at": utcnow(), "updated_at": utcnow()})
        assert await session.fetch_value(sa.select(sa.func.count()).select_from(routes)) == 0


async def test_sqlite_runs_in_wal_mode_with_foreign_keys_on(app):
    database = app.state.database
    if not database.is_sqlite:
        pytest.skip("SQLite settings")
    async with database.session() as session:
        assert await session.fetch_value(sa.text("PRAGMA journal_mode")) == "wal"
        assert await session.fetch_value(sa.text("PRAGMA foreign_keys")) == 1
        assert await session.fetch_value(sa.text("PRAGMA busy_timeout")) > 0
