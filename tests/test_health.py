"""The probes a deployment asks: /health/live answers while the process runs; /health/ready says
ready only while the database answers, every migration is applied, the schema served is at the
database's generation and (on PostgreSQL, when listening) the LISTEN connection is up."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from modula.db.core_tables import schema_state
from modula.db.migrations import schema_migrations
from modula_testing import GraphQLClient, drop_test_database, running_app


async def probe(app, path: str) -> tuple[int, dict]:
    async with GraphQLClient.for_app(app) as client:
        response = await client.http.get(path)
    return response.status_code, response.json()


async def bump_generation_elsewhere(app) -> int:
    """Another process's change, which this app (not following) has not taken in."""
    async with app.state.database.session() as session, session.transaction():
        await session.execute(schema_state.update().values(generation=schema_state.c.generation + 1))
        return await session.fetch_value(sa.select(schema_state.c.generation))


async def test_ready_and_live_report_the_generation(database_url, tmp_path):
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app:
        served = app.state.live_schema.current.generation
        assert await probe(app, "/health/live") == (200, {"status": "live", "schemaGeneration": served})
        status, body = await probe(app, "/health/ready")
    assert status == 200
    assert body == {"status": "ready", "schemaGeneration": served, "databaseGeneration": served,
                    "checks": {"database": "ok", "migrations": "ok", "schema": "ok"}}


async def test_a_server_behind_the_database_generation_is_unready_until_it_follows(database_url, tmp_path):
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app:
        served = app.state.live_schema.current.generation
        moved = await bump_generation_elsewhere(app)
        status, body = await probe(app, "/health/ready")
        assert status == 503 and body["status"] == "unready"
        assert body["checks"]["schema"] == f"serving generation {served}, the database is at {moved}"
        assert (await probe(app, "/health/live"))[0] == 200

        await app.state.schemas.poll()
        status, body = await probe(app, "/health/ready")
    assert status == 200 and body["schemaGeneration"] == moved


async def test_a_migration_not_applied_makes_the_server_unready(database_url, tmp_path):
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app:
        async with app.state.database.session() as session:
            await session.execute(schema_migrations.delete().where(schema_migrations.c.version == "0011_plugin_files"))
        status, body = await probe(app, "/health/ready")
    assert status == 503 and body["checks"]["migrations"] == "not applied: 0011_plugin_files"


async def test_ready_turns_unready_when_the_database_goes_away(database_url, dialect, tmp_path):
    if dialect == "sqlite":
        pytest.skip("an SQLite file cannot stop answering while the process holds it open")
    async with running_app(database_url, plugins_dir=tmp_path / "plugins", listen=True) as app:
        started = time.monotonic()
        while (await probe(app, "/health/ready"))[0] != 200:  # until the LISTEN connection is up
            assert time.monotonic() - started < 10
            await asyncio.sleep(0.02)

        await drop_test_database(os.environ["MODULA_TEST_POSTGRES_URL"], make_url(database_url).database)  # its connections are ended
        status, body = await probe(app, "/health/ready")
        assert (await probe(app, "/health/live"))[0] == 200
    assert status == 503 and body["checks"]["database"].startswith("unreachable: ")
