"""The one module that talks to `databases`: connect, hold a connection per unit of work, run
statements and transactions on it.

Why the shape: `databases` opens a new SQLite connection for every query made outside a held
connection, starts SQLite transactions with a deferred BEGIN (two concurrent read-then-write
transactions then fail with "database is locked"), and raw INSERTs return no id on PostgreSQL.
So every unit of work holds one `Session`, write transactions on SQLite are serialised in the
process and begin IMMEDIATE (the busy timeout covers other processes), and inserts use
RETURNING.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import databases
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from modula.db.errors import DatabaseError, translate

StatementObserver = Callable[[str], None]

SQLITE_BUSY_TIMEOUT_MS = 10_000


def dialect_of(url: str) -> str:
    """'sqlite' or 'postgresql' for a database URL; anything else is refused."""
    backend = make_url(url).get_backend_name()
    if backend in ("postgres", "postgresql"):
        return "postgresql"
    if backend == "sqlite":
        return "sqlite"
    raise ValueError(f"unsupported database URL scheme {backend!r}: use sqlite:/// or postgresql://")


def _driver_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgres":
        parsed = parsed.set(drivername="postgresql")
    # databases picks its backend from the scheme; a "+driver" suffix would confuse it.
    return parsed.set(drivername=parsed.get_backend_name()).render_as_string(hide_password=False)


class Database:
    """A configured database: dialect, pool, write serialisation and statement observers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = dialect_of(url)
        self._db = databases.Database(_driver_url(url))
        self._sqlite_write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        self._observers: list[StatementObserver] = []
        self._login_pools: dict[str, tuple[str, databases.Database]] = {}
        self._login_pools_lock = asyncio.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    async def connect(self) -> None:
        await self._db.connect()
        if self.is_sqlite:
            # WAL lets readers run beside the one writer; the setting is stored in the file.
            async with self.session() as session:
                await session._raw("PRAGMA journal_mode = WAL")

    async def disconnect(self) -> None:
        for key in list(self._login_pools):
            await self.close_login_pool(key)
        await self._db.disconnect()

    def observe(self, observer: StatementObserver) -> Callable[[], None]:
        """Call `observer(sql)` for every statement run; returns a function that stops it."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    def _notify(self, statement) -> None:
        if self._observers:  # compiling a statement to text is costly; only when someone listens
            sql = str(statement)
            for observer in self._observers:
                observer(sql)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        """Hold one connection for a unit of work (a request, a CLI command, a plugin call)."""
        connection = self._db.connection()
        async with connection:
            raw = connection.raw_connection
            if self.is_sqlite:
                await raw.execute("PRAGMA foreign_keys = ON")
                await raw.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
                await raw.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL, far fewer fsyncs
            session = Session(self, connection)
            try:
                yield session
            finally:
                await session._abandon()


    @contextlib.asynccontextmanager
    async def login_session(
        self, key: str, credentials: Callable[[], Awaitable[tuple[str, str]]], *, max_size: int = 4
    ) -> AsyncIterator[Session]:
        """PostgreSQL: hold a connection logged in as another role, from that role's own pool.

        The pool is created on first use under `key` with the (role, password) that
        `credentials()` returns (so the caller reads them only once per process), and is closed
        by `close_login_pool(key)` or `disconnect()`. The session's `login_role` names the role.
        """
        if self.is_sqlite:
            raise ValueError("login sessions exist only on PostgreSQL; SQLite has no roles")
        role, pool = await self._login_pool(key, credentials, max_size)
        connection = pool.connection()
        async with connection:
            session = Session(self, connection)
            session.login_role = role
            try:
                yield session
            finally:
                await session._abandon()

    async def _login_pool(self, key, credentials, max_size) -> tuple[str, databases.Database]:
        async with self._login_pools_lock:
            if key not in self._login_pools:
                role, password = await credentials()
                url = make_url(_driver_url(self.url)).set(username=role, password=password)
                # min_size=0: a plugin that is never called holds no connection.
                pool = databases.Database(url.render_as_string(hide_password=False), min_size=0, max_size=max_size)
                await pool.connect()
                self._login_pools[key] = (role, pool)
            return self._login_pools[key]

    async def close_login_pool(self, key: str) -> None:
        """Close the pool `login_session(key, ...)` opened, if any (before its role is dropped)."""
        async with self._login_pools_lock:
            entry = self._login_pools.pop(key, None)
        if entry is not None:
            await entry[1].disconnect()


class Session:
    """One held connection: statements, RETURNING inserts and (nested) transactions on it."""

    # The role this connection logged in as when it came from `Database.login_session`; None for
    # the host's own connections.
    login_role: str | None = None

    def __init__(self, database: Database, connection: databases.core.Connection) -> None:
        self.database = database
        self.dialect = database.dialect
        self._connection = connection
        self._depth = 0
        self._savepoints = itertools.count(1)
        self._holds_write_lock = False
        self._lock = asyncio.Lock()

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    @property
    def driver_connection(self) -> Any:
        """The driver's own connection (aiosqlite or asyncpg) under this session, for code that must
        run statements `databases` cannot express (plugin SQL with native placeholders)."""
        return self._connection.raw_connection

    async def fetch_all(self, statement: sa.sql.ClauseElement) -> list[dict[str, Any]]:
        records = await self._run(self._connection.fetch_all, statement)
        return [dict(record._mapping) for record in records]

    async def fetch_native(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        """Run SQL text with the driver's own placeholders (`?` on SQLite, `$1..` on PostgreSQL) and
        bound values; rows as tuples. Observed (database.observe) and errors translated like the rest."""
        self.database._notify(sql)
        raw = self._connection.raw_connection
        try:
            if self.dialect == "sqlite":
                return list(await raw.execute_fetchall(sql, tuple(params)))
            return [tuple(record) for record in await raw.fetch(sql, *params)]
        except DatabaseError:
            raise
        except Exception as exc:
            translated = translate(exc)
            if translated is None:
                raise
            raise translated from exc

    async def fetch_one(self, statement: sa.sql.ClauseElement) -> dict[str, Any] | None:
        record = await self._run(self._connection.fetch_one, statement)
        return None if record is None else dict(record._mapping)

    async def fetch_value(self, statement: sa.sql.ClauseElement) -> Any:
        row = await self.fetch_one(statement)
        return None if row is None else next(iter(row.values()))

    async def execute(self, statement: sa.sql.ClauseElement) -> int:
        """Run a statement for its effect; returns how many rows an UPDATE or DELETE touched."""
        if isinstance(statement, (sa.Update, sa.Delete)) and not statement._returning:
            # RETURNING is the one row count both dialects report through `databases`.
            return len(await self.fetch_all(statement.returning(sa.literal_column("1"))))
        await self._run(self._connection.execute, statement)
        return 0

    async def insert(self, table: sa.Table, values: Mapping[str, Any]) -> dict[str, Any]:
        """Insert one row and return it as stored, generated primary key included."""
        row = await self.fetch_one(table.insert().values(**values).returning(*table.c))
        assert row is not None
        return row

    async def insert_many(self, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Insert rows in one statement and return them in input order."""
        if not rows:
            return []
        returned = await self.fetch_all(table.insert().values(list(rows)).returning(*table.c))
        return sorted(returned, key=lambda r: r[_single_pk(table)]) if len(returned) > 1 else returned

    async def insert_rows(self, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert rows in one statement when nothing needs to come back."""
        if rows:
            await self._run(self._connection.execute, table.insert().values(list(rows)))

    async def execute_script(self, sql: str) -> None:
        """Run trusted DDL (migrations) statement by statement on the raw connection."""
        for statement in split_sql_script(sql):
            self.database._notify(statement)
            try:
                await self._connection.raw_connection.execute(statement)
            except Exception as exc:  # noqa: BLE001 - re-raised with context below
                raise DatabaseError(f"migration statement failed: {exc}") from exc

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        """All or nothing. Nested calls become savepoints of the outer transaction."""
        if self._depth == 0:
            await self._begin()
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._depth = 0
                await self._finish("ROLLBACK")
                raise
            else:
                self._depth = 0
                await self._finish("COMMIT")
            return
        name = f"sp_{next(self._savepoints)}"
        await self._raw(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield self
        except BaseException:
            self._depth -= 1
            await self._raw(f"ROLLBACK TO SAVEPOINT {name}")
            await self._raw(f"RELEASE SAVEPOINT {name}")
            raise
        else:
            self._depth -= 1
            await self._raw(f"RELEASE SAVEPOINT {name}")

    async def _begin(self) -> None:
        if self.database.is_sqlite:
            await self.database._sqlite_write_lock.acquire()
            self._holds_write_lock = True
            try:
                await self._raw("BEGIN IMMEDIATE")
            except BaseException:
                self._release_write_lock()
                raise
        else:
            await self._raw("BEGIN")

    async def _finish(self, verb: str) -> None:
        try:
            await self._raw(verb)
        finally:
            self._release_write_lock()

    def _release_write_lock(self) -> None:
        if self._holds_write_lock:
            self._holds_write_lock = False
            self.database._sqlite_write_lock.release()

    async def _abandon(self) -> None:
        """Called when the session closes: never leave a transaction or the write lock behind."""
        if self._depth:
            self._depth = 0
            with contextlib.suppress(Exception):
                await self._raw("ROLLBACK")
        self._release_write_lock()

    async def _raw(self, sql: str) -> None:
        self.database._notify(sql)
        await self._connection.raw_connection.execute(sql)

    async def _run(self, method, statement):
        self.database._notify(statement)
        try:
            return await method(statement)
        except DatabaseError:
            raise
        except Exception as exc:
            translated = translate(exc)
            if translated is None:
                raise
            raise translated from exc


def _single_pk(table: sa.Table) -> str:
    (column,) = table.primary_key.columns
    return column.name


def split_sql_script(sql: str) -> list[str]:
    """Split a trusted migration script on semicolons at line ends; comments are dropped."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    statements = "\n".join(lines).split(";\n")
    return [s.strip().rstrip(";").strip() for s in statements if s.strip().rstrip(";").strip()]
