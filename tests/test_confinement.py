"""A plugin's raw SQL reaches only its own tables (and the core tables it may read), enforced by
the database: SQLite's authorizer, a PostgreSQL login role per plugin."""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa

from modula.db.confinement import PluginGrant, drop_plugin_role, provision_plugin_role
from modula.db.connection import Database
from modula.db.errors import PluginSQLDenied, PluginSQLError, PluginSQLTimeout
from modula.db.migrations import migrate
from modula.db.plugin_sql import bind, plugin_sql, scan_sql

SHOP = PluginGrant("shop", readable=frozenset({"routes"}))
BLOG = PluginGrant("blog")
RUNAWAY = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) AS n FROM r"


def _plugin_ddl(dialect: str) -> list[str]:
    pk = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else "SERIAL PRIMARY KEY"
    return [
        f"CREATE TABLE shop_products (id {pk}, name VARCHAR(100) NOT NULL UNIQUE, price NUMERIC, "
        "route_id INTEGER REFERENCES routes(id))",
        f"CREATE TABLE shop_items (id {pk}, product_id INTEGER NOT NULL REFERENCES shop_products(id) ON DELETE CASCADE)",
        f"CREATE TABLE blog_posts (id {pk}, title VARCHAR(100) NOT NULL)",
    ]


@pytest.fixture
async def database(database_url: str):
    database = Database(database_url)
    await database.connect()
    async with database.session() as session:
        await migrate(session)
        async with session.transaction():
            for ddl in _plugin_ddl(database.dialect):
                await session.execute(sa.text(ddl))
            now = "CURRENT_TIMESTAMP"
            for sql in [
                f"INSERT INTO users (username, email, password_hash, created_at, updated_at) VALUES ('ann', 'ann@x', 'secret', {now}, {now})",
                f"INSERT INTO sessions (user_id, token_hash, expires_at, last_access_at, created_at) VALUES (1, 'h1', {now}, {now}, {now})",
                f"INSERT INTO tokens (user_id, name, token_hash, created_at) VALUES (1, 't', 'h2', {now})",
                f"INSERT INTO routes (slug, title, created_at, updated_at) VALUES ('home', 'Home', {now}, {now})",
                "INSERT INTO blog_posts (title) VALUES ('hello')",
            ]:
                await session.execute(sa.text(sql))
        await provision_plugin_role(session, SHOP, ["shop_products", "shop_items"])
        await provision_plugin_role(session, BLOG, ["blog_posts"])
    try:
        yield database
    finally:
        for key in ("plugin:shop", "plugin:blog"):
            await database.close_login_pool(key)
        async with database.session() as session:
            await drop_plugin_role(session, "shop")
            await drop_plugin_role(session, "blog")
        await database.disconnect()


async def _counts(database: Database, *tables: str) -> dict[str, int]:
    async with database.session() as session:
        return {t: await session.fetch_value(sa.text(f"SELECT count(*) FROM {t}")) for t in tables}


async def _denied(database: Database, grant: PluginGrant, sql: str, params=None) -> str:
    async with plugin_sql(database, grant) as db:
        with pytest.raises(PluginSQLDenied) as caught:
            await db.exec(sql, params)
    return caught.value.message


# --- what a plugin may do ---------------------------------------------------------------------


async def test_plugin_crud_on_its_own_tables(database):
    async with plugin_sql(database, SHOP) as db:
        first = await db.exec("INSERT INTO shop_products (name, price) VALUES (?, ?)", ["hat", 12])
        second = await db.exec("INSERT INTO shop_products (name, price) VALUES (:name, :price)", {"name": "cap", "price": 7})
        assert first == {"rows_affected": 1, "last_insert_id": 1}
        assert second == {"rows_affected": 1, "last_insert_id": 2}
        await db.exec("INSERT INTO shop_items (product_id) VALUES (?)", [1])
        updated = await db.exec("UPDATE shop_products SET price = price + 1 WHERE price > ?", [0])
        assert updated == {"rows_affected": 2, "last_insert_id": None}
        rows = await db.query("SELECT name, price FROM shop_products ORDER BY id")
        assert [(r["name"], int(r["price"])) for r in rows] == [("hat", 13), ("cap", 8)]
        joined = await db.query(
            "SELECT p.name, r.slug FROM shop_products p CROSS JOIN routes r WHERE p.id = ?", [1]
        )
        assert joined == [{"name": "hat", "slug": "home"}]
        assert await db.exec("DELETE FROM shop_products WHERE id = ?", [1]) == {"rows_affected": 1, "last_insert_id": None}
    assert await _counts(database, "shop_products", "shop_items") == {"shop_products": 1, "shop_items": 0}


async def test_recursive_ctes_subqueries_and_json_functions_work(database):
    async with plugin_sql(database, SHOP) as db:
        rows = await db.query("WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 5) SELECT sum(x) AS s FROM r")
        assert rows == [{"s": 15}]
        rows = await db.query("SELECT count(*) AS n FROM (SELECT slug FROM routes WHERE slug IN (SELECT slug FROM routes)) AS sub")
        assert rows == [{"n": 1}]
        if database.is_sqlite:
            assert await db.query("SELECT value FROM json_each(?)", ["[1,2]"]) == [{"value": 1}, {"value": 2}]


async def test_foreign_key_to_a_core_table_works_without_reading_it(database):
    grant = PluginGrant("shop")  # routes not readable
    async with database.session() as session:
        await provision_plugin_role(session, grant, ["shop_products", "shop_items"])
    async with plugin_sql(database, grant) as db:
        await db.exec("INSERT INTO shop_products (name, route_id) VALUES (?, ?)", ["hat", 1])
        with pytest.raises(PluginSQLError):
            await db.exec("INSERT INTO shop_products (name, route_id) VALUES (?, ?)", ["cap", 99])
        with pytest.raises(PluginSQLDenied):
            await db.query("SELECT slug FROM routes")
    assert await _counts(database, "shop_products") == {"shop_products": 1}


async def test_params_bind_around_percent_and_colons_in_literals(database):
    async with plugin_sql(database, SHOP) as db:
        rows = await db.query("SELECT ? AS a, '100%' AS b, ':x' AS c, 'it''s ?' AS d /* :y ? */ -- ?", ["v"])
        assert rows == [{"a": "v", "b": "100%", "c": ":x", "d": "it's ?"}]
        rows = await db.query("SELECT :x AS a, ':x %s' AS b, :x AS c", {"x": "5%"})
        assert rows == [{"a": "5%", "b": ":x %s", "c": "5%"}]
        await db.exec("INSERT INTO shop_products (name) VALUES (:n)", {"n": "50% off: :n"})
        assert await db.query("SELECT name FROM shop_products WHERE name LIKE ?", ["50%"]) == [{"name": "50% off: :n"}]
        with pytest.raises(PluginSQLError, match="2 \\? placeholders but 1"):
            await db.query("SELECT ?, ?", [1])
        with pytest.raises(PluginSQLError, match="no value given for parameter :b"):
            await db.query("SELECT :a, :b", {"a": 1})


async def test_host_session_transaction_is_shared_on_sqlite(database):
    if not database.is_sqlite:
        pytest.skip("PostgreSQL plugin SQL runs on the plugin's own connection")
    async with database.session() as session:
        with pytest.raises(RuntimeError):
            async with session.transaction():
                async with plugin_sql(database, SHOP, session=session) as db:
                    await db.exec("INSERT INTO shop_products (name) VALUES (?)", ["hat"])
                raise RuntimeError("host fails after the plugin wrote")
    assert await _counts(database, "shop_products") == {"shop_products": 0}


# --- what a plugin may not do ----------------------------------------------------------------


@pytest.mark.parametrize("table", ["users", "sessions", "tokens", "plugin_roles"])
async def test_core_tables_not_granted_are_unreadable(database, table):
    async with plugin_sql(database, SHOP) as db:
        for sql in (f"SELECT * FROM {table}", f"SELECT count(*) FROM {table}"):
            with pytest.raises(PluginSQLDenied) as caught:
                await db.query(sql)
            assert table in caught.value.message


async def test_sqlite_message_names_table_and_plugin(database):
    if not database.is_sqlite:
        pytest.skip("PostgreSQL reports its own wording")
    assert await _denied(database, SHOP, "SELECT * FROM users") == "not authorized: table users is not readable by plugin shop"


async def test_readable_core_table_can_be_read_but_not_written(database):
    before = await _counts(database, "routes")
    for sql in (
        "INSERT INTO routes (slug, title, created_at, updated_at) VALUES ('x', 'x', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        "UPDATE routes SET title = 'pwned'",
        "DELETE FROM routes",
    ):
        await _denied(database, SHOP, sql)
    async with plugin_sql(database, SHOP) as db:
        assert await db.query("SELECT title FROM routes") == [{"title": "Home"}]
    assert await _counts(database, "routes") == before


async def test_users_readable_without_password_hash(database):
    grant = PluginGrant("shop", readable=frozenset({"users"}))
    if not database.is_sqlite:
        async with database.session() as session:
            await provision_plugin_role(session, grant, ["shop_products", "shop_items"])
    async with plugin_sql(database, grant) as db:
        assert await db.query("SELECT id, username FROM users") == [{"id": 1, "username": "ann"}]
        for sql in ("SELECT password_hash FROM users", "SELECT * FROM users"):
            with pytest.raises(PluginSQLDenied, match="password_hash" if database.is_sqlite else "users"):
                await db.query(sql)


def test_secret_tables_can_never_be_granted():
    for table in ("sessions", "tokens", "plugin_roles", "blog_posts", "no_such_table"):
        with pytest.raises(ValueError):
            PluginGrant("shop", readable=frozenset({table}))
    with pytest.raises(ValueError):
        PluginGrant("Shop; DROP")


async def test_other_plugins_tables_are_out_of_reach(database):
    for sql in ("SELECT * FROM blog_posts", "INSERT INTO blog_posts (title) VALUES ('x')",
                "UPDATE blog_posts SET title = 'x'", "DELETE FROM blog_posts"):
        await _denied(database, SHOP, sql)
    await _denied(database, BLOG, "SELECT * FROM shop_products")
    assert await _counts(database, "blog_posts") == {"blog_posts": 1}


async def test_sqlite_denies_schema_pragmas_attach_functions_and_transactions(database, tmp_path):
    if not database.is_sqlite:
        pytest.skip("SQLite authorizer")
    statements = [
        f"ATTACH DATABASE '{tmp_path / 'other.db'}' AS other",
        "PRAGMA foreign_keys = OFF",
        "PRAGMA table_info(users)",
        "SELECT * FROM pragma_table_info('users')",
        "SELECT load_extension('x')",
        "CREATE TABLE shop_new (id INTEGER)",
        "CREATE TEMP TABLE shop_tmp (id INTEGER)",
        "CREATE VIEW shop_users AS SELECT * FROM users",
        "CREATE TRIGGER shop_t AFTER INSERT ON shop_products BEGIN DELETE FROM users; END",
        "DROP TABLE shop_items",
        "DROP TABLE blog_posts",
        "ALTER TABLE shop_products ADD COLUMN x INTEGER",
        "BEGIN",
        "COMMIT",
        "SAVEPOINT x",
        "SELECT name FROM sqlite_master",
        "INSERT INTO sqlite_sequence (name, seq) VALUES ('x', 1)",
    ]
    async with database.session() as session:
        tables_before = await session.fetch_all(sa.text("SELECT name FROM sqlite_master ORDER BY name"))
    for sql in statements:
        await _denied(database, SHOP, sql)
    async with database.session() as session:
        assert await session.fetch_all(sa.text("SELECT name FROM sqlite_master ORDER BY name")) == tables_before
        assert await session.fetch_value(sa.text("PRAGMA foreign_keys")) == 1


async def test_sqlite_statement_cached_by_the_host_is_authorized_again(database):
    if not database.is_sqlite:
        pytest.skip("SQLite statement cache")
    async with database.session() as session:
        raw = session.driver_connection
        host_rows = await raw.execute_fetchall("SELECT * FROM users")
        assert len(host_rows) == 1  # now prepared and cached on this very connection
        async with plugin_sql(database, SHOP, session=session) as db:
            with pytest.raises(PluginSQLDenied):
                await db.query("SELECT * FROM users")
        # and the host's own statements are not affected afterwards
        assert len(await raw.execute_fetchall("SELECT * FROM users")) == 1


async def test_postgres_role_cannot_escape(database):
    if database.is_sqlite:
        pytest.skip("PostgreSQL roles")
    async with plugin_sql(database, SHOP) as db:
        for sql in (
            "CREATE TABLE shop_new (id INTEGER)",
            "CREATE TABLE public.shop_new (id INTEGER)",
            "CREATE TEMP TABLE shop_tmp (id INTEGER)",
            "SET ROLE postgres",
            "COPY (SELECT 1) TO PROGRAM 'id'",
            "SELECT pg_read_file('/etc/passwd')",
            "DROP TABLE shop_items",
            "ALTER TABLE shop_products ADD COLUMN x INTEGER",
            "BEGIN",
            "COMMIT",
        ):
            with pytest.raises(PluginSQLError):
                await db.exec(sql)
        await db.exec("RESET ROLE")
        with pytest.raises(PluginSQLDenied):
            await db.query("SELECT * FROM users")
        assert (await db.query("SELECT session_user = current_user AS same"))[0]["same"]
    assert await _counts(database, "shop_items", "users") == {"shop_items": 0, "users": 1}


async def test_postgres_provisioning_is_idempotent_under_concurrency(database):
    if database.is_sqlite:
        pytest.skip("PostgreSQL roles")

    async def provision():
        async with database.session() as session:
            return await provision_plugin_role(session, SHOP, ["shop_products", "shop_items"])

    roles = await asyncio.gather(*(provision() for _ in range(4)))
    assert len(set(roles)) == 1 and len(roles[0]) <= 63
    async with plugin_sql(database, SHOP) as db:
        assert await db.exec("INSERT INTO shop_products (name) VALUES (?)", ["hat"]) == {"rows_affected": 1, "last_insert_id": 1}


# --- time budget and transactions -------------------------------------------------------------


async def test_runaway_query_stops_within_budget_and_the_next_statement_works(database):
    grant = PluginGrant("shop", statement_timeout_ms=500)
    async with plugin_sql(database, grant) as db:
        if not database.is_sqlite:
            await db.exec("SET statement_timeout = 0")  # the plugin tries to lift its budget
        started = time.monotonic()
        with pytest.raises(PluginSQLTimeout):
            await db.query(RUNAWAY)
        assert time.monotonic() - started < 1.5
        assert await db.query("SELECT 1 AS one") == [{"one": 1}]


async def test_runaway_query_inside_a_transaction_leaves_it_usable(database):
    grant = PluginGrant("shop", statement_timeout_ms=300)
    async with plugin_sql(database, grant) as db:
        await db.begin()
        await db.exec("INSERT INTO shop_products (name) VALUES (?)", ["hat"])
        with pytest.raises(PluginSQLTimeout):
            await db.query(RUNAWAY)
        await db.exec("INSERT INTO shop_products (name) VALUES (?)", ["cap"])
        await db.commit()
    assert await _counts(database, "shop_products") == {"shop_products": 2}


async def test_failing_statement_in_a_transaction_does_not_poison_it(database):
    async with plugin_sql(database, SHOP) as db:
        await db.begin()
        await db.exec("INSERT INTO shop_products (name) VALUES (?)", ["hat"])
        with pytest.raises(PluginSQLError):
            await db.exec("INSERT INTO shop_products (name) VALUES (?)", ["hat"])  # unique
        with pytest.raises(PluginSQLDenied):
            await db.query("SELECT * FROM users")
        with pytest.raises(PluginSQLError):
            await db.query("SELEKT nonsense")
        await db.exec("INSERT INTO shop_products (name) VALUES (?)", ["cap"])
        await db.commit()
        await db.begin()
        await db.exec("DELETE FROM shop_products")
        await db.rollback()
    async with plugin_sql(database, SHOP) as db:
        rows = await db.query("SELECT name FROM shop_products ORDER BY name")
    assert rows == [{"name": "cap"}, {"name": "hat"}]


async def test_sqlite_runaway_write_in_a_transaction_reports_the_lost_transaction(database):
    if not database.is_sqlite:
        pytest.skip("SQLite rolls back the whole transaction when a write is interrupted")
    grant = PluginGrant("shop", statement_timeout_ms=300)
    async with plugin_sql(database, grant) as db:
        await db.begin()
        await db.exec("INSERT INTO shop_products (name) VALUES (?)", ["hat"])
        with pytest.raises(PluginSQLTimeout, match="whole transaction"):
            await db.exec(f"UPDATE shop_products SET price = ({RUNAWAY})")
        with pytest.raises(PluginSQLError, match="rolled back"):
            await db.exec("INSERT INTO shop_products (name) VALUES (?)", ["cap"])
        await db.rollback()
        await db.exec("INSERT INTO shop_products (name) VALUES (?)", ["cap"])
    assert await _counts(database, "shop_products") == {"shop_products": 1}


# --- placeholder scanning (no database) -------------------------------------------------------


def _names(sql: str, dialect: str = "postgresql"):
    return [p.name for p in scan_sql(sql, dialect).placeholders]


def test_scanner_skips_literals_identifiers_comments_and_casts():
    assert _names("SELECT ?, '?', \"?\", -- ?\n ? /* ? /* ? */ ? */ ?") == [None, None, None]
    assert _names("SELECT :a::text, ':b', \":c\", $$ :d ? $$, $tag$ '?' $tag$, :e") == ["a", "e"]
    assert _names("SELECT E'it\\'s ?', 'a''?', x::int, :f") == ["f"]
    assert _names("SELECT [?], `:a`, :b", "sqlite") == ["b"]
    assert scan_sql("  /* x */ commit", "postgresql").first_word == "commit"


def test_bind_rewrites_to_numbered_parameters_on_postgres():
    assert bind("SELECT ? || '?', ?", [1, 2], "postgresql")[:2] == ("SELECT $1 || '?', $2", [1, 2])
    assert bind("SELECT :a, :b, :a", {"a": 1, "b": 2, "c": 3}, "postgresql")[:2] == ("SELECT $1, $2, $1", [1, 2])
    assert bind("SELECT :a", {"a": 1}, "sqlite")[:2] == ("SELECT :a", {"a": 1})
    for sql, params in (("SELECT $1", [1]), ("SELECT ?1", [1]), ("SELECT ?", {"a": 1}), ("SELECT :a", [1])):
        with pytest.raises(PluginSQLError):
            bind(sql, params, "postgresql")
