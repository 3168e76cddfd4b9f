"""Connections held and statements compiled once: after warm-up no session or request compiles a
statement, opens a connection or starts a thread; a connection comes back clean whatever its last
user left; IN lists of any length share one compiled shape. Both dialects."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from modula.config import Settings
from modula.db.confinement import PluginGrant
from modula.db.connection import Database
from modula.db.core_tables import routes
from modula.db.errors import PluginSQLDenied, UniqueViolation
from modula.db.plugin_sql import plugin_sql
from modula.db.statements import StatementCache, dialect_for
from modula.db.types import utcnow
from modula_testing import running_app, token_client
from test_plugins import write_plugin


@contextlib.asynccontextmanager
async def connected(url: str, **options):
    database = Database(url, **options)
    await database.connect()
    try:
        yield database
    finally:
        await database.disconnect()


def counters(database: Database) -> tuple[int, int, int]:
    return database.compilations, database.connections_opened, database.threads_started


async def add_routes(database: Database, *slugs: str) -> None:
    now = utcnow()
    async with database.session() as session, session.transaction():
        await session.insert_rows(routes, [{"slug": s, "title": s.title(), "created_at": now, "updated_at": now} for s in slugs])


async def add_row(session, slug: str) -> None:
    await session.insert(routes, {"slug": slug, "title": "T", "created_at": utcnow(), "updated_at": utcnow()})


@pytest.fixture
def thread_starts(monkeypatch) -> list[threading.Thread]:
    """Every thread started from now on, whoever starts it."""
    started: list[threading.Thread] = []
    start = threading.Thread.start

    def counting_start(thread: threading.Thread) -> None:
        started.append(thread)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    return started


async def test_warmed_up_sessions_compile_nothing_open_nothing_start_no_thread(database_url, thread_starts):
    async with connected(database_url) as database:
        await add_routes(database, "a", "b", "c")

        async def unit_of_work(n: int) -> None:
            async with database.session() as session:
                found = await session.fetch_all(sa.select(routes.c.slug).where(routes.c.slug.in_(["a", "b", "c"][: 1 + n % 3]))
                                                .order_by(routes.c.slug))
                assert [row["slug"] for row in found] == ["a", "b", "c"][: 1 + n % 3]
                async with session.transaction():
                    row = await session.insert(routes, {"slug": f"n{n}", "title": "N", "created_at": utcnow(),
                                                        "updated_at": utcnow()})
                    assert await session.execute(routes.update().where(routes.c.id == row["id"]).values(title=f"T{n}")) == 1
                assert await session.fetch_value(sa.select(routes.c.title).where(routes.c.id == row["id"])) == f"T{n}"

        for n in range(2):
            await unit_of_work(n)
        before, threads_before = counters(database), len(thread_starts)
        for n in range(2, 12):
            await unit_of_work(n)
        assert counters(database) == before
        assert len(thread_starts) == threads_before


async def test_pool_is_opened_once_at_connect_with_the_configured_size(database_url, dialect):
    async with connected(database_url, pool_size=3) as database:
        assert database.connections_opened == 3
        assert database.threads_started == (3 if dialect == "sqlite" else 0)
        for _ in range(5):
            async with database.session() as session:
                assert await session.fetch_value(sa.select(sa.func.count()).select_from(routes)) == 0
        assert database.connections_opened == 3
    assert Database(database_url).pool_size == (4 if dialect == "sqlite" else 10)
    settings = Settings.from_env({"MODULA_DATABASE_POOL_SIZE": "7", "MODULA_PLUGIN_POOL_SIZE": "2"})
    assert (settings.database_pool_size, settings.plugin_pool_size) == (7, 2)
    with pytest.raises(ValueError, match="pool_size"):
        Database(database_url, pool_size=0)


async def test_in_lists_of_every_length_give_their_rows_from_one_compiled_shape(database_url):
    async with connected(database_url) as database:
        slugs = [f"s{i}" for i in range(30)]
        await add_routes(database, *slugs)
        async with database.session() as session:
            compiled_before = None
            for length in [0, 1, 2, 5, 30, 3, 1, 0]:
                wanted = slugs[:length]
                statement = sa.select(routes.c.slug).where(routes.c.slug.in_(wanted + ["missing"] * (length % 2)))
                found = await session.fetch_all(statement.order_by(routes.c.id))
                assert [row["slug"] for row in found] == wanted
                not_in = await session.fetch_value(sa.select(sa.func.count()).select_from(routes).where(routes.c.slug.not_in(wanted)))
                assert not_in == 30 - length
                if compiled_before is None:
                    compiled_before = database.compilations
            assert database.compilations == compiled_before  # the first round compiled both shapes, the rest none


ROUTE_BY_SLUG = sa.select(routes.c.id, routes.c.created_at).where(routes.c.slug == sa.bindparam("slug", type_=routes.c.slug.type))
ADD_ROUTE = routes.insert().values({name: sa.bindparam(name, type_=routes.c[name].type)
                                    for name in ("slug", "title", "created_at", "updated_at")})


async def test_templates_compile_once_and_bind_by_name_with_their_types(database_url):
    async with connected(database_url) as database:
        async with database.session() as session:
            now = utcnow()
            rows = [{"slug": f"t{i}", "title": "T", "created_at": now, "updated_at": now} for i in range(3)]
            await session.execute_many(ADD_ROUTE, rows)  # one compilation, the rows in one driver call
            compiled = database.compilations
            for i in range(3):
                row = await session.fetch_one(ROUTE_BY_SLUG, {"slug": f"t{i}"})
                assert row["created_at"] == now  # UTCDateTime's processing, as for any statement
            assert await session.fetch_one(ROUTE_BY_SLUG, {"slug": "missing"}) is None
            await session.execute_many(ADD_ROUTE, [{**rows[0], "slug": "t9"}])
            assert database.compilations == compiled + 1  # the select, once
            copy = sa.select(routes.c.id, routes.c.created_at).where(routes.c.slug == sa.bindparam("slug"))
            assert (await session.fetch_one(copy, {"slug": "t9"}))["id"] > 0  # another object: its own entry
            assert database.compilations == compiled + 2
            with pytest.raises(Exception, match="slug"):
                await session.fetch_one(ROUTE_BY_SLUG, {})  # a value left out is an error, never NULL


def test_the_shape_cache_is_bounded_and_keeps_the_recently_used():
    cache = StatementCache(dialect_for("sqlite"), size=3)
    now = utcnow()

    def multi_row_insert(rows: int):
        return routes.insert().values([{"slug": f"r{i}", "title": "t", "created_at": now, "updated_at": now} for i in range(rows)])

    for rows in range(1, 20):
        cache.prepare(multi_row_insert(rows))
        cache.prepare(sa.select(routes.c.id).where(routes.c.id.in_(list(range(rows)))))  # one shape, used every time
    assert len(cache) == 3
    compiled = cache.compilations
    sql, args, _ = cache.prepare(sa.select(routes.c.id).where(routes.c.id.in_([7, 8])))
    assert cache.compilations == compiled and args == [7, 8] and sql.count("?") == 2


async def test_a_connection_left_inside_a_transaction_is_clean_for_its_next_user(database_url):
    async with connected(database_url, pool_size=1) as database:
        # A transaction begun behind the session's back (its driver connection), then a failure.
        with pytest.raises(ZeroDivisionError):
            async with database.session() as session:
                driver = session.driver_connection
                await driver.execute("BEGIN")
                await driver.execute("INSERT INTO routes (slug, title, created_at, updated_at) "
                                     "VALUES ('leaked', 'L', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")
                1 / 0
        # And one through the API, failing inside.
        with pytest.raises(ZeroDivisionError):
            async with database.session() as session, session.transaction():
                await add_row(session, "undone")
                1 / 0
        async with database.session() as session:
            assert session.driver_connection is driver  # the one pooled connection, lent again
            async with session.transaction():  # BEGIN IMMEDIATE would fail inside a leftover transaction
                await add_row(session, "next")
            assert [row["slug"] for row in await session.fetch_all(sa.select(routes.c.slug))] == ["next"]
        assert database.connections_opened == 1


async def test_sessions_beyond_the_pool_wait_and_nested_ones_never_deadlock(database_url):
    async with connected(database_url, pool_size=2) as database:
        held = 0
        most = 0

        async def worker() -> None:
            nonlocal held, most
            async with database.session() as session:
                held += 1
                most = max(most, held)
                await session.fetch_all(sa.select(routes.c.id))
                await asyncio.sleep(0.01)
                async with database.session() as nested:  # a plugin call's own session, say
                    await nested.fetch_all(sa.select(routes.c.id))
                held -= 1

        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(6))), 10)
        assert most == 2  # the others waited for a pooled connection ...
        extra = database.connections_opened - 2
        assert 0 < extra <= 6  # ... and only nested sessions got an extra one (while both were held)
        async with database.session() as a, database.session() as b:
            assert a.driver_connection is not b.driver_connection


async def test_fetch_native_runs_driver_sql_observed_and_translated(database_url, dialect):
    async with connected(database_url) as database:
        await add_routes(database, "a", "b")
        mark = "?" if dialect == "sqlite" else "$1"
        seen: list[str] = []
        stop = database.observe(seen.append)
        try:
            async with database.session() as session:
                rows = await session.fetch_native(f"SELECT slug, id FROM routes WHERE slug > {mark} ORDER BY slug", ["a"])
                with pytest.raises(UniqueViolation):  # the migrations made the admin role
                    await session.fetch_native(f"INSERT INTO roles (name, label, created_at) VALUES ({mark}, 'x', "
                                               "CURRENT_TIMESTAMP) RETURNING id", ["admin"])
        finally:
            stop()
        assert rows == [("b", 2)] and type(rows[0]) is tuple
        assert len(seen) == 2 and seen[0].startswith("SELECT slug, id FROM routes")


async def test_the_plugin_authorizer_never_stays_on_a_pooled_connection(database_url, dialect):
    if dialect != "sqlite":
        pytest.skip("SQLite authorizer")
    async with connected(database_url, pool_size=1) as database:
        await add_routes(database, "home")
        grant = PluginGrant("shop")
        async with plugin_sql(database, grant) as sql:
            with pytest.raises(PluginSQLDenied):
                await sql.query("SELECT * FROM routes")
        async with database.session() as session:  # the same connection, lent to the host again
            assert await session.fetch_value(sa.select(sa.func.count()).select_from(routes)) == 1
            assert await session.fetch_value(sa.text("PRAGMA foreign_keys")) == 1


PDB = r"""
plugin.define_table({ name = "pdb_items", fields = {
    {name = "item_id", type = "integer", primary_key = true},
    {name = "name", type = "text", not_null = true},
    {name = "price", type = "real"},
    {name = "added", type = "datetime"},
}})
plugin.query{ name = "pdbCount", returns = "Int!", handler = function(args, ctx)
    return query_one("SELECT count(*) AS n FROM pdb_items WHERE price > ?", {args.min or 0}).n
end }
"""

REQUESTS = [
    "{ routes { id slug } }",
    "{ pdbItems(where: {price: {gt: 1}}, orderBy: [{price: ASC}], limit: 5) { itemId name price added } }",
    '{ pdbItems(where: {name: {in: ["a", "b"]}}) { itemId } }',
    "{ pdbCount }",
    'mutation { insertPdbItem(object: {name: "x", price: 2.5, added: "2024-01-01T00:00:00Z"}) { itemId } }',
]


async def test_warmed_up_requests_compile_nothing_open_nothing_start_no_thread(database_url, tmp_path: Path, thread_starts):
    write_plugin(tmp_path / "plugins", "pdb", PDB)
    async with running_app(database_url, plugins_dir=tmp_path / "plugins") as app:
        assert app.state.schemas.last_report.failures == {}
        database: Database = app.state.database
        async with token_client(app, "admin", roles=["admin"]) as client:
            for _ in range(2):
                for query in REQUESTS:
                    await client.data(query)
            before, threads_before = counters(database), len(thread_starts)
            for _ in range(3):
                for query in REQUESTS:
                    await client.data(query)
            assert counters(database) == before
            assert len(thread_starts) == threads_before
            assert len((await client.data(REQUESTS[1]))["pdbItems"]) == 5


async def test_postgres_host_connections_skip_the_reset_round_trip(database_url, dialect):
    if dialect != "postgresql":
        pytest.skip("asyncpg's reset on release")
    async with connected(database_url, pool_size=1) as database:
        async with database.session() as session:
            await session.driver_connection.execute("SET application_name = 'modula-kept'")
        async with database.session() as session:  # no RESET ALL ran in between: no round trip was spent
            assert await session.fetch_value(sa.text("SELECT current_setting('application_name')")) == "modula-kept"


async def test_a_lazy_session_takes_its_connection_at_its_first_statement(database_url):
    async with connected(database_url, pool_size=1) as database:
        async with database.session(lazy=True) as idle, database.session(lazy=True) as working:
            # `idle` runs nothing, so the pool's one connection is free for `working`.
            async with working.transaction():
                await add_row(working, "lazy")
            assert [row["slug"] for row in await working.fetch_all(sa.select(routes.c.slug))] == ["lazy"]
            with pytest.raises(RuntimeError, match="holds no connection yet"):
                idle.driver_connection
        assert database.connections_opened == 1
