"""The database path alone: statements/s through `Session` against the raw driver on the same
data, and (when the `databases` package is installed) through the path Modula had before
(`databases` 0.9: a statement compiled on every call, a new SQLite connection per session).

Operations, each on SQLite and (with a server URL) PostgreSQL:

- ``select``: one row by key (`SELECT id, slug, title, created_at FROM routes WHERE id = ?`), a
  new SQLAlchemy statement per call as request code builds it, on a held session;
- ``insert``: one row with RETURNING, autocommit, on a held session;
- ``session+select``: borrow a session, run the select, give it back (what a request pays).

The raw rows use the same SQL text with aiosqlite's one-hop `execute_fetchall` / asyncpg's
`fetch` on one connection. Rounds alternate between the paths and the best of three counts, so
the ratios compare like with like; absolute numbers drift with the machine.

Run from the repository root with the venv active::

    python tests/bench/bench_db_path.py
    python tests/bench/bench_db_path.py --postgres-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: modula_testing

import aiosqlite  # noqa: E402
import asyncpg  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from modula.db.connection import Database  # noqa: E402
from modula.db.core_tables import routes  # noqa: E402
from modula_testing import create_test_database, drop_test_database, migrated_session  # noqa: E402

try:
    import databases  # the path before; no longer a dependency
except ImportError:
    databases = None

ROWS = 1000
SELECT_SQL = {"sqlite": "SELECT routes.id, routes.slug, routes.title, routes.created_at FROM routes WHERE routes.id = ?",
              "postgresql": "SELECT routes.id, routes.slug, routes.title, routes.created_at FROM routes WHERE routes.id = $1"}
INSERT_SQL = {"sqlite": "INSERT INTO routes (slug, title, created_at, updated_at) VALUES (?, ?, ?, ?) RETURNING id",
              "postgresql": "INSERT INTO routes (slug, title, created_at, updated_at) VALUES ($1, $2, $3, $4) RETURNING id"}

Op = Callable[[int], Awaitable[None]]


def select_statement(key: int):
    return sa.select(routes.c.id, routes.c.slug, routes.c.title, routes.c.created_at).where(routes.c.id == key)


def insert_statement(n: int):
    now = dt.datetime.now(dt.timezone.utc)
    return routes.insert().values(slug=f"i{n}-{uuid.uuid4().hex[:6]}", title="T", created_at=now, updated_at=now).returning(routes.c.id)


class Raw:
    """The driver alone, one connection, SQL text written out."""

    def __init__(self, url: str, dialect: str) -> None:
        self.url, self.dialect = url, dialect

    @contextlib.asynccontextmanager
    async def opened(self):
        if self.dialect == "sqlite":
            connection = await aiosqlite.connect(make_url(self.url).database, isolation_level=None)
            await connection.execute("PRAGMA synchronous = NORMAL")
            try:
                yield self._sqlite_ops(connection)
            finally:
                await connection.close()
        else:
            connection = await asyncpg.connect(self.url)
            try:
                yield self._pg_ops(connection)
            finally:
                await connection.close()

    def _sqlite_ops(self, connection) -> dict[str, Op]:
        async def select(n: int) -> None:
            rows = await connection.execute_fetchall(SELECT_SQL["sqlite"], (1 + n % ROWS,))
            assert len(rows) == 1

        async def insert(n: int) -> None:
            now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(" ")
            await connection.execute_fetchall(INSERT_SQL["sqlite"], (f"r{n}-{uuid.uuid4().hex[:6]}", "T", now, now))

        return {"select": select, "insert": insert, "session+select": select}

    def _pg_ops(self, connection) -> dict[str, Op]:
        async def select(n: int) -> None:
            assert len(await connection.fetch(SELECT_SQL["postgresql"], 1 + n % ROWS)) == 1

        async def insert(n: int) -> None:
            now = dt.datetime.now(dt.timezone.utc)
            await connection.fetch(INSERT_SQL["postgresql"], f"r{n}-{uuid.uuid4().hex[:6]}", "T", now, now)

        return {"select": select, "insert": insert, "session+select": select}


class Now:
    """Modula's Session, as requests use it."""

    def __init__(self, url: str, dialect: str) -> None:
        self.url = url

    @contextlib.asynccontextmanager
    async def opened(self):
        database = Database(self.url)
        await database.connect()
        try:
            async with database.session() as session:
                async def select(n: int) -> None:
                    assert len(await session.fetch_all(select_statement(1 + n % ROWS))) == 1

                async def insert(n: int) -> None:
                    await session.fetch_all(insert_statement(n))

                async def session_select(n: int) -> None:
                    async with database.session() as own:
                        assert len(await own.fetch_all(select_statement(1 + n % ROWS))) == 1

                yield {"select": select, "insert": insert, "session+select": session_select}
        finally:
            await database.disconnect()


class Before:
    """The path of Modula's Session on `databases` 0.9, reduced to what each call did."""

    def __init__(self, url: str, dialect: str) -> None:
        parsed = make_url(url)
        self.url = parsed.set(drivername=parsed.get_backend_name()).render_as_string(hide_password=False)
        self.dialect = dialect

    @contextlib.asynccontextmanager
    async def _connection(self, db):
        connection = db.connection()
        async with connection:
            if self.dialect == "sqlite":
                raw = connection.raw_connection
                await raw.execute("PRAGMA foreign_keys = ON")
                await raw.execute("PRAGMA busy_timeout = 10000")
                await raw.execute("PRAGMA synchronous = NORMAL")
            yield connection

    @contextlib.asynccontextmanager
    async def opened(self):
        db = databases.Database(self.url)
        await db.connect()
        try:
            async with self._connection(db) as connection:
                async def select(n: int) -> None:
                    rows = [dict(r._mapping) for r in await connection.fetch_all(select_statement(1 + n % ROWS))]
                    assert len(rows) == 1

                async def insert(n: int) -> None:
                    [dict(r._mapping) for r in await connection.fetch_all(insert_statement(n))]

                async def session_select(n: int) -> None:
                    async with self._connection(db) as own:
                        rows = [dict(r._mapping) for r in await own.fetch_all(select_statement(1 + n % ROWS))]
                        assert len(rows) == 1

                yield {"select": select, "insert": insert, "session+select": session_select}
        finally:
            await db.disconnect()


async def rate(op: Op, seconds: float) -> float:
    """Operations per second, run back to back for about `seconds`."""
    for n in range(20):  # warm up: compile, prepare, fill caches
        await op(n)
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for n in range(done, done + 50):
            await op(n)
        done += 50
    return done / elapsed


async def measure(url: str, dialect: str, seconds: float) -> dict[str, dict[str, float]]:
    paths = {"raw driver": Raw(url, dialect), "Session (now)": Now(url, dialect)}
    if databases is not None:
        paths["databases 0.9 (before)"] = Before(url, dialect)
    best: dict[str, dict[str, float]] = {name: {} for name in paths}
    for _ in range(3):
        for name, path in paths.items():
            async with path.opened() as ops:
                for op_name, op in ops.items():
                    best[name][op_name] = max(best[name].get(op_name, 0.0), await rate(op, seconds))
    return best


def report(dialect: str, best: dict[str, dict[str, float]]) -> None:
    raw = best["raw driver"]
    print(f"\n{dialect}: statements/s (best of 3 rounds) and ratio to the raw driver")
    print(f"  {'path':<24}" + "".join(f"{op:>24}" for op in raw))
    for name, rates in best.items():
        print(f"  {name:<24}" + "".join(f"{rates[op]:>14,.0f} ({rates[op] / raw[op]:4.2f}x)" for op in raw))
    if "databases 0.9 (before)" in best:
        before, now = best["databases 0.9 (before)"], best["Session (now)"]
        print("  now / before: " + ", ".join(f"{op} {now[op] / before[op]:.1f}x" for op in raw))


async def seed(url: str) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    async with migrated_session(url) as session, session.transaction():
        for start in range(0, ROWS, 250):
            await session.insert_rows(routes, [{"slug": f"s{i}", "title": f"Route {i}", "created_at": now, "updated_at": now}
                                               for i in range(start, min(start + 250, ROWS))])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default=os.environ.get("MODULA_TEST_POSTGRES_URL"))
    parser.add_argument("--seconds", type=float, default=0.7, help="per path, operation and round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        await seed(url)
        report("SQLite", await measure(url, "sqlite", args.seconds))
    if args.postgres_url:
        name = f"modula_bench_{uuid.uuid4().hex[:8]}"
        url = await create_test_database(args.postgres_url, name)
        try:
            await seed(url)
            report("PostgreSQL", await measure(url, "postgresql", args.seconds))
        finally:
            await drop_test_database(args.postgres_url, name)


if __name__ == "__main__":
    asyncio.run(main())
