"""Helpers shared by the tests and the benchmarks: PostgreSQL test databases here, and (from the
package, where plugin authors get them too) a running app, a GraphQL client and signed-in clients."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
from sqlalchemy.engine import make_url

from modula.db.connection import Database, Session
from modula.db.migrations import migrate
from modula.testing import (TEST_PASSWORD, GraphQLClient, admin_client, create_test_user, deliver_outbox, running_app,  # noqa: F401
                            signed_in_client, token_client)


async def create_test_database(admin_url: str, name: str, *, template: str | None = None) -> str:
    """Create PostgreSQL database `name`, empty or as a copy of database `template`; returns its URL."""
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    finally:
        await connection.close()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_test_database(admin_url: str, name: str) -> None:
    """Drop the database and the plugin login roles made for it (roles are cluster-wide)."""
    from modula.db.confinement import role_prefix
    from modula.db.names import quote_ident

    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        roles = await connection.fetch("SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)", role_prefix(name))
        for role in roles:
            await connection.execute(f"DROP ROLE IF EXISTS {quote_ident(role['rolname'])}")
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def migrated_session(url: str) -> AsyncIterator[Session]:
    """A session on the database at `url`, migrated first, for arranging or checking rows outside
    a running app; the connection closes when the block ends."""
    database = Database(url)
    await database.connect()
    try:
        async with database.session() as session:
            await migrate(session)
            yield session
    finally:
        await database.disconnect()
