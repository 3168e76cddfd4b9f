"""Migrations create exactly the tables the code queries, once, with foreign keys enforced."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid

import pytest
import sqlalchemy as sa

from modula.db.connection import Database
from modula.db.core_tables import metadata
from modula.db.errors import ForeignKeyViolation
from modula.db.migrations import migrate, schema_migrations
from modula.db.types import utcnow

POSTGRES_URL = os.environ.get("MODULA_TEST_POSTGRES_URL")  # the dialect fixture skips PostgreSQL without it


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


async def test_fields_made_before_machine_names_are_named_from_their_labels(dialect, tmp_path):
    """0010_field_names backfills existing fields: unique within each datatype, never a reserved name."""
    from modula.resources import resource_dir
    from modula_testing import create_test_database, drop_test_database

    older = tmp_path / "sql"
    shutil.copytree(resource_dir("sql"), older, ignore=lambda folder, names: [n for n in names if n.endswith(".sql") and n >= "0010"])
    if dialect == "sqlite":
        url, name = f"sqlite:///{tmp_path / 'old.db'}", None
    else:
        name = f"modula_test_{uuid.uuid4().hex[:12]}"
        url = await create_test_database(POSTGRES_URL, name)  # empty: migrated below, in two steps
    database = Database(url)
    await database.connect()
    try:
        async with database.session() as session:
            await migrate(session, sql_dir=older)
            now = dt.datetime.now(dt.timezone.utc)
            for datatype_id, labels in ((1, ["Published on", "Status", "published-on"]), (2, ["Published on"])):
                await session.execute(sa.text("INSERT INTO datatypes (id, label, type, created_at, updated_at) "
                                              "VALUES (:i, 'D', :t, :n, :n)").bindparams(i=datatype_id, t=f"d{datatype_id}", n=now))
                for position, label in enumerate(labels):
                    field_id = datatype_id * 10 + position
                    await session.execute(sa.text("INSERT INTO fields (id, label, type, required, created_at) VALUES "
                                                  "(:i, :l, 'text', false, :n)").bindparams(i=field_id, l=label, n=now))
                    await session.execute(sa.text("INSERT INTO datatypes_fields (id, datatype_id, field_id, position) "
                                                  "VALUES (:i, :d, :i, :p)").bindparams(i=field_id, d=datatype_id, p=position))
            assert "0010_field_names" in await migrate(session)
            rows = await session.fetch_all(sa.text("SELECT id, name FROM fields ORDER BY id"))
        assert {row["id"]: row["name"] for row in rows} == {10: "publishedOn", 11: "status2", 12: "publishedOn2", 20: "publishedOn"}
    finally:
        await database.disconnect()
        if name:
            await drop_test_database(POSTGRES_URL, name)


async def test_content_made_before_slugs_gets_slugs_and_paths_from_its_titles(dialect, tmp_path):
    """0016_content_paths derives each node's slug from its title-like text, free among its
    siblings, and its path from the root down."""
    from modula.resources import resource_dir
    from modula_testing import create_test_database, drop_test_database

    older = tmp_path / "sql"
    shutil.copytree(resource_dir("sql"), older, ignore=lambda folder, names: [n for n in names if n.endswith(".sql") and n >= "0016"])
    if dialect == "sqlite":
        url, name = f"sqlite:///{tmp_path / 'old.db'}", None
    else:
        name = f"modula_test_{uuid.uuid4().hex[:12]}"
        url = await create_test_database(POSTGRES_URL, name)
    database = Database(url)
    await database.connect()
    try:
        async with database.session() as session:
            await migrate(session, sql_dir=older)
            now = dt.datetime.now(dt.timezone.utc)

            async def run(sql: str, **values) -> None:
                given = {"n": now, **values}
                await session.execute(sa.text(sql).bindparams(**{k: v for k, v in given.items() if f":{k}" in sql}))

            await run("INSERT INTO routes (id, slug, title, created_at, updated_at) VALUES (1, 'blog', 'Blog', :n, :n)")
            await run("INSERT INTO datatypes (id, label, type, created_at, updated_at) VALUES (1, 'A', 'a', :n, :n)")
            for field_id, label, kind in ((1, "Body", "richtext"), (2, "Headline", "text"), (3, "Title", "text")):
                await run("INSERT INTO fields (id, label, name, type, required, created_at) VALUES (:i, :l, :m, :t, false, :n)",
                          i=field_id, l=label, m=label.lower(), t=kind)
                await run("INSERT INTO datatypes_fields (id, datatype_id, field_id, position) VALUES (:i, 1, :i, :i)", i=field_id)
            # (id, parent, position, {field: value}): two roots titled alike, a child, one without any text
            for node, parent, position, values in ((1, None, 0, {3: "Hello World", 2: "Not this"}), (2, None, 1, {3: "hello world"}),
                                                   (3, 1, 0, {2: "Ünïcode Child", 1: "<p>x</p>"}), (4, 1, 1, {1: "<p>only rich</p>"})):
                await run("INSERT INTO content_data (id, route_id, datatype_id, parent_id, position, status, created_at, updated_at)"
                          " VALUES (:i, 1, 1, :p, :o, 'published', :n, :n)", i=node, p=parent, o=position)
                for field_id, value in values.items():
                    await run("INSERT INTO content_fields (id, content_data_id, field_id, value) VALUES (:i, :c, :f, :v)",
                              i=node * 10 + field_id, c=node, f=field_id, v=value)
            assert "0016_content_paths" in await migrate(session)
            rows = await session.fetch_all(sa.text("SELECT id, slug, tree_path FROM content_data ORDER BY id"))
        assert [(r["id"], r["slug"], r["tree_path"]) for r in rows] == [
            (1, "hello-world", "hello-world"), (2, "hello-world-2", "hello-world-2"),
            (3, "unicode-child", "hello-world/unicode-child"), (4, "content", "hello-world/content")]
    finally:
        await database.disconnect()
        if name:
            await drop_test_database(POSTGRES_URL, name)
