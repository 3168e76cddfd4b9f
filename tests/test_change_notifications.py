"""Changes pushed on PostgreSQL: a server hears of a plugin change or a revoked token made by
another server through LISTEN/NOTIFY, with its poll turned off (an hour), and a lost LISTEN
connection comes back and catches up with what committed meanwhile. SQLite has no NOTIFY:
processes there follow by the poll (tests/test_live_schema.py, tests/test_viewer_cache.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg
import pytest
import sqlalchemy as sa

from modula.auth.tokens import create_token
from modula.auth.viewer_cache import current_auth_generation
from modula.db.core_tables import schema_state
from modula_testing import GraphQLClient, admin_client, create_test_user, running_app
from test_plugins import write_plugin

GREETER = "plugin.query{{name = 'greeting', returns = 'String', handler = function() return '{word}' end}}\n"
LOAD = 'mutation { loadPlugin(name: "greeter") { schemaGeneration } }'


@pytest.fixture
def postgres_url(database_url, dialect):
    if dialect == "sqlite":
        pytest.skip("SQLite has no NOTIFY: processes follow by the poll")
    return database_url


@contextlib.asynccontextmanager
async def two_listening_servers(database_url, tmp_path):
    """Two server processes' apps on one database that LISTEN and never poll by themselves."""
    folder = tmp_path / "plugins"
    folder.mkdir(exist_ok=True)
    settings = dict(plugins_dir=folder, listen=True, follow_interval=3600.0, viewer_cache=True)
    async with running_app(database_url, **settings) as a, running_app(database_url, **settings) as b:
        for app in (a, b):
            await eventually(lambda app=app: app.state.listener.connected, "the LISTEN connection did not open")
        yield a, b


async def eventually(check, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


def generation(app) -> int:
    return app.state.live_schema.current.generation


async def test_a_plugin_loaded_in_one_server_is_served_by_another_without_a_poll(postgres_url, tmp_path):
    async with two_listening_servers(postgres_url, tmp_path) as (a, b), admin_client(a) as admin:
        write_plugin(tmp_path / "plugins", "greeter", GREETER.format(word="pushed"))
        loaded = (await admin.data(LOAD))["loadPlugin"]

        await eventually(lambda: generation(b) == loaded["schemaGeneration"], "B did not follow the load")
        assert "greeting" in b.state.live_schema.current.schema.as_str()
        assert a.state.live_schema.current.schema.as_str() == b.state.live_schema.current.schema.as_str()


async def test_a_token_revoked_in_one_server_is_refused_by_another_without_a_poll(postgres_url, tmp_path):
    async with two_listening_servers(postgres_url, tmp_path) as (a, b), admin_client(a) as admin:
        user = await create_test_user(a, "robot", roles=["viewer"], password=None)
        async with a.state.database.session() as session:
            secret, token = await create_token(session, user["id"], name="tests")
            auth_now = await current_auth_generation(session)
        # B hears of the user made above, and forgets what it had cached, before the token is used.
        await eventually(lambda: b.state.schemas.viewers.generation == auth_now, "B did not hear of the new user")
        async with GraphQLClient.for_app(b) as robot_b:
            robot_b.use_token(secret)
            assert (await robot_b.http.post("/graphql", json={"query": "{ __typename }"})).status_code == 200
            assert b.state.schemas.viewers.tokens  # cached: B would not look at the database again

            await admin.data("mutation($id: Int!) { revokeApiToken(id: $id) }", {"id": token["id"]})

            async def refused() -> bool:
                return (await robot_b.http.post("/graphql", json={"query": "{ __typename }"})).status_code == 401

            deadline = time.monotonic() + 10
            while not await refused():
                assert time.monotonic() < deadline, "B still accepts the revoked token"
                await asyncio.sleep(0.01)


async def test_a_lost_listen_connection_reconnects_and_catches_up_with_what_it_missed(postgres_url, tmp_path):
    async with two_listening_servers(postgres_url, tmp_path) as (a, b):
        listener = b.state.listener
        async with a.state.database.session() as session:
            await session.fetch_all(sa.select(sa.func.pg_terminate_backend(listener.server_pid)))
            await eventually(lambda: not listener.connected, "the connection was not cut")
            # Committed while B is not listening: only the resynchronisation can tell B.
            async with session.transaction():
                await session.execute(schema_state.update().values(generation=schema_state.c.generation + 1))
            moved = await session.fetch_value(sa.select(schema_state.c.generation))

        await eventually(lambda: generation(b) == moved, "B did not catch up after reconnecting")
        # A NOTIFY can reach the new connection before its last LISTEN is made and counted.
        await eventually(lambda: listener.connected and listener.connects == 2, "B did not reconnect once")
        assert listener.connected and listener.connects == 2 and generation(b) == moved


async def test_every_bump_of_either_generation_notifies_in_its_transaction(postgres_url, tmp_path):
    """The triggers, seen from a plain LISTEN connection: one notification per committed bump,
    none for a rolled back one."""
    heard: list[tuple[str, str]] = []
    listener = await asyncpg.connect(postgres_url)
    try:
        for channel in ("modula_schema", "modula_auth"):
            await listener.add_listener(channel, lambda _c, _p, channel, payload: heard.append((channel, payload)))
        async with running_app(postgres_url, plugins_dir=tmp_path / "plugins") as app, admin_client(app) as admin:
            await drain(listener, heard)  # the admin's creation above moved the auth generation
            async with app.state.database.session() as session:
                with contextlib.suppress(RuntimeError):
                    async with session.transaction():
                        await session.execute(schema_state.update().values(generation=schema_state.c.generation + 1))
                        raise RuntimeError("rolled back")
                async with session.transaction():
                    await session.execute(schema_state.update().values(generation=schema_state.c.generation + 1))
                schema_now = await session.fetch_value(sa.select(schema_state.c.generation))
            await admin.data('mutation { revokePermission(role: "viewer", resource: "route", action: "read") }')
            async with app.state.database.session() as session:
                auth_now = await session.fetch_value(sa.text("SELECT generation FROM auth_state"))
            seen = await drain(listener, heard)
    finally:
        await listener.close()
    assert seen == [("modula_schema", str(schema_now)), ("modula_auth", str(auth_now))]


async def drain(connection, heard: list) -> list:
    """What `heard` got up to now, emptied: NOTIFY a marker, which is delivered after every
    notification committed before it, and wait for it."""
    await connection.execute("NOTIFY modula_schema, 'marker'")
    await eventually(lambda: ("modula_schema", "marker") in heard, "the marker did not come back")
    seen = heard[:heard.index(("modula_schema", "marker"))]
    heard.clear()
    return seen
