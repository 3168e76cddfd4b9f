"""The one module that runs statements: connect, lend a held connection per unit of work, run
SQLAlchemy statements (compiled once per shape, see `statements`) and transactions on it, over
aiosqlite or asyncpg connections held open by `pools`.

Why the shape: every unit of work holds one `Session`; write transactions on SQLite are
serialised in the process and begin IMMEDIATE (a deferred BEGIN lets two concurrent
read-then-write transactions fail with "database is locked"; the busy timeout covers other
processes), and inserts use RETURNING (the one way both dialects hand back generated keys).
Rows come back as dicts: on SQLite with SQLAlchemy's result processing (dates, booleans, JSON,
UTCDateTime), on PostgreSQL as asyncpg decodes them (crud.py decodes the rest alike).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from modula.db import inline, pools
from modula.db.errors import DatabaseError, translate
from modula.db.statements import StatementCache, dialect_for

StatementObserver = Callable[[str], None]

# Connections held open when no size is configured: SQLite's are cheap and every reader beside
# the one writer can use one; PostgreSQL's as many as asyncpg's default pool.
DEFAULT_POOL_SIZE = {"sqlite": 4, "postgresql": 10}
# Connections one plugin's role may hold at once (its calls beyond that wait, within their time budget).
DEFAULT_PLUGIN_POOL_SIZE = 4

# Statements run on the loop thread between two passive checkpoints of the WAL (see db/inline.py).
INLINE_WRITES_PER_CHECKPOINT = 1000

# What a driver call hands back.
_ALL, _ONE, _NONE, _MANY = "all", "one", "none", "many"  # _MANY: args is a list of rows


def dialect_of(url: str) -> str:
    """'sqlite' or 'postgresql' for a database URL; anything else is refused."""
    backend = make_url(url).get_backend_name()
    if backend in ("postgres", "postgresql"):
        return "postgresql"
    if backend == "sqlite":
        return "sqlite"
    raise ValueError(f"unsupported database URL scheme {backend!r}: use sqlite:/// or postgresql://")


class Database:
    """A configured database: dialect, pools, compiled statements, write serialisation, observers.

    `compilations`, `connections_opened` and `threads_started` count what was done since the
    Database was made; a warmed-up request adds nothing to any of them."""

    def __init__(self, url: str, *, pool_size: int | None = None,
                 plugin_pool_size: int = DEFAULT_PLUGIN_POOL_SIZE) -> None:
        self.url = url
        self.dialect = dialect_of(url)
        self.pool_size = DEFAULT_POOL_SIZE[self.dialect] if pool_size is None else pool_size
        self.plugin_pool_size = plugin_pool_size
        for name, size in (("pool_size", self.pool_size), ("plugin_pool_size", plugin_pool_size)):
            if not isinstance(size, int) or size < 1:
                raise ValueError(f"{name} must be a positive integer, not {size!r}")
        self.counters = pools.Counters()
        self._statements = StatementCache(dialect_for(self.dialect))
        self._pool: pools.ConnectionPool | None = None
        self.inline: inline.InlineSQLite | None = None  # SQLite: short statements on the loop's thread
        self._inline_writes = 0
        self._checkpoints: set[asyncio.Task] = set()
        self._sqlite_write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        self._observers: list[StatementObserver] = []
        self._login_pools: dict[str, tuple[str, Any]] = {}
        self._login_pools_lock = asyncio.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def compilations(self) -> int:
        """Statements compiled (each shape once while it stays in the cache; DDL every time)."""
        return self._statements.compilations

    @property
    def connections_opened(self) -> int:
        """Driver connections opened, the host's and the plugin roles' pools together."""
        return self.counters.connections_opened

    @property
    def threads_started(self) -> int:
        """Worker threads started (one per aiosqlite connection; asyncpg starts none)."""
        return self.counters.threads_started

    def _driver_url(self):
        parsed = make_url(self.url)
        return parsed.set(drivername=parsed.get_backend_name())

    async def connect(self) -> None:
        if self.is_sqlite:
            connector = pools.SQLiteConnector(self._driver_url(), self.counters)
        else:
            connector = pools.PostgresConnector(self._driver_url(), self.counters, reset=False)
        pool = pools.ConnectionPool(self.pool_size, connector, eager=True)
        await pool.open()
        self._pool = pool
        if self.is_sqlite:
            path, uri = connector.target
            # Opened once here, like the pool; not a pooled connection, so not in connections_opened.
            self.inline = inline.InlineSQLite(path, uri=uri)

    async def disconnect(self) -> None:
        if self._checkpoints:
            await asyncio.gather(*self._checkpoints, return_exceptions=True)
        if self.inline is not None:
            self.inline.close()
            self.inline = None
        for key in list(self._login_pools):
            await self.close_login_pool(key)
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    def _wrote_inline(self) -> None:
        """Every INLINE_WRITES_PER_CHECKPOINT writes on the loop's connection (which never
        checkpoints), a passive checkpoint on a pooled connection, off the loop."""
        self._inline_writes += 1
        if self._inline_writes % INLINE_WRITES_PER_CHECKPOINT == 0:
            task = asyncio.get_running_loop().create_task(self._checkpoint())
            self._checkpoints.add(task)
            task.add_done_callback(self._checkpoints.discard)

    async def _checkpoint(self) -> None:
        async with self.session() as session:
            await session._raw("PRAGMA wal_checkpoint(PASSIVE)")

    def pool_usage(self) -> dict[str, int]:
        """The host pool's connections (see `pools.ConnectionPool.usage`); empty when not connected."""
        return self._pool.usage() if self._pool is not None else {}

    def observe(self, observer: StatementObserver) -> Callable[[], None]:
        """Call `observer(sql)` for every statement run; returns a function that stops it."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    def _notify(self, sql: str) -> None:
        for observer in self._observers:
            observer(sql)

    @contextlib.asynccontextmanager
    async def session(self, *, lazy: bool = False) -> AsyncIterator[Session]:
        """Hold one connection for a unit of work (a request, a CLI command, a plugin call).

        `lazy`: take it from the pool only at the session's first statement, so a unit of work
        that needs none (a warmed fast-path read) or spends long on something else first (a
        plugin's Lua code) does not keep other work waiting for a connection meanwhile."""
        if self._pool is None:
            raise RuntimeError("the database is not connected: call connect() first")
        async with _lent(self._pool, self, lazy=lazy) as session:
            yield session

    @contextlib.asynccontextmanager
    async def login_session(
        self, key: str, credentials: Callable[[], Awaitable[tuple[str, str]]], *, max_size: int | None = None
    ) -> AsyncIterator[Session]:
        """PostgreSQL: hold a connection logged in as another role, from that role's own pool.

        The pool is created on first use under `key` with the (role, password) that
        `credentials()` returns (so the caller reads them only once per process), holding at
        most `max_size` connections (default: the Database's `plugin_pool_size`), and is closed
        by `close_login_pool(key)` or `disconnect()`. The session's `login_role` names the role.
        """
        if self.is_sqlite:
            raise ValueError("login sessions exist only on PostgreSQL; SQLite has no roles")
        role, pool = await self._login_pool(key, credentials, max_size or self.plugin_pool_size)
        async with _lent(pool, self) as session:
            session.login_role = role
            yield session

    async def _login_pool(self, key, credentials, max_size) -> tuple[str, Any]:
        async with self._login_pools_lock:
            if key not in self._login_pools:
                role, password = await credentials()
                url = self._driver_url().set(username=role, password=password)
                # Not eager: a plugin that is never called holds no connection.
                pool = pools.ConnectionPool(max_size, pools.PostgresConnector(url, self.counters, reset=True), eager=False)
                await pool.open()
                self._login_pools[key] = (role, pool)
            return self._login_pools[key]

    async def close_login_pool(self, key: str) -> None:
        """Close the pool `login_session(key, ...)` opened, if any (before its role is dropped)."""
        async with self._login_pools_lock:
            entry = self._login_pools.pop(key, None)
        if entry is not None:
            await entry[1].close()


@contextlib.asynccontextmanager
async def _lent(pool: pools.ConnectionPool, database: Database, *, lazy: bool = False) -> AsyncIterator[Session]:
    session = Session(database, None if lazy else await pool.acquire(), pool=pool)
    try:
        yield session
    finally:
        if session._connection is None:
            session._release_write_lock()
        else:
            try:
                await session._abandon()
            finally:
                await pool.release(session._connection, state_changed=session.state_changed)


class Session:
    """One held connection: statements, RETURNING inserts and (nested) transactions on it."""

    # The role this connection logged in as when it came from `Database.login_session`; None for
    # the host's own connections.
    login_role: str | None = None
    # Set by whoever runs statements that may change session state (plugin SQL: SET, advisory
    # locks): a plugin role's connection is then reset before its next user.
    state_changed: bool = False

    def __init__(self, database: Database, connection: Any, *, pool: pools.ConnectionPool | None = None) -> None:
        self.database = database
        self.dialect = database.dialect
        self._connection = connection  # None until the first statement of a lazy session
        self._pool = pool
        self._acquiring = asyncio.Lock()
        self._is_sqlite = database.is_sqlite
        self._depth = 0
        self._savepoints = itertools.count(1)
        self._holds_write_lock = False
        self._inline: inline.InlineSQLite | None = None  # the loop's connection, while a short transaction holds it
        # asyncpg allows one operation at a time per connection; statements of concurrent
        # resolvers on one session take turns.
        self._lock = asyncio.Lock()

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    @property
    def driver_connection(self) -> Any:
        """The driver's own connection (aiosqlite or asyncpg) under this session, for code that must
        run statements SQLAlchemy cannot express (plugin SQL with native placeholders)."""
        if self._connection is None:
            raise RuntimeError("this lazy session holds no connection yet: use `await session.connection()`")
        return self._connection

    async def connection(self) -> Any:
        """The driver's own connection, taken from the pool now if this lazy session has none yet."""
        if self._connection is None:
            async with self._acquiring:
                if self._connection is None:
                    self._connection = await self._pool.acquire()
        return self._connection

    # `params`: the statement is a template (a module constant whose values are named
    # `sa.bindparam`s), compiled once and bound with these values; see StatementCache.prepare_template.

    async def fetch_all(self, statement: sa.sql.ClauseElement, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return await self._run(statement, _ALL, params)

    async def fetch_one(self, statement: sa.sql.ClauseElement, params: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        rows = await self._run(statement, _ONE, params)
        return rows[0] if rows else None

    async def fetch_value(self, statement: sa.sql.ClauseElement, params: Mapping[str, Any] | None = None) -> Any:
        row = await self.fetch_one(statement, params)
        return None if row is None else next(iter(row.values()))

    async def execute_many(self, template: sa.sql.ClauseElement, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run a template once per row of values, as one driver call (sqlite3's executemany;
        asyncpg's, which pipelines the rows in one round trip)."""
        if not rows:
            return
        cache = self.database._statements
        bound = [cache.prepare_template(template, row) for row in rows]
        sql = bound[0][0]
        self.database._notify(sql)
        await self._driver(sql, [args for _, args, _ in bound], _MANY, translated=True)

    async def fetch_native(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        """Run SQL text with the driver's own placeholders (`?` on SQLite, `$1..` on PostgreSQL) and
        bound values; rows as tuples. Observed (database.observe) and errors translated like the rest.
        On SQLite outside a transaction it runs on the loop's thread when it fits the budget of
        db/inline.py, else on this session's connection."""
        self.database._notify(sql)
        if self._is_sqlite and not self._depth and self.database.inline is not None:
            try:
                rows = self.database.inline.try_run(sql, params)
            except Exception as exc:
                found = translate(exc)
                if found is None:
                    raise
                raise found from exc
            if rows is not None:
                return rows
        rows, _ = await self._driver(sql, params, _ALL, translated=True)
        return rows if self._is_sqlite else [tuple(row) for row in rows]

    async def write_native(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        """`fetch_native` for one writing statement that is atomic by itself (an INSERT ...
        RETURNING). Outside a transaction on SQLite it holds the process's write lock for just that
        statement and runs it in autocommit: one round trip instead of BEGIN IMMEDIATE, the
        statement and COMMIT. Inside a transaction it is one more statement of it."""
        if not self._is_sqlite or self._depth:
            return await self.fetch_native(sql, params)
        await self.connection()  # always a connection before the write lock, never the reverse
        async with self.database._sqlite_write_lock:
            rows = await self.fetch_native(sql, params)
        if self.database.inline is not None:
            self.database._wrote_inline()
        return rows

    async def execute(self, statement: sa.sql.ClauseElement) -> int:
        """Run a statement for its effect; returns how many rows an UPDATE or DELETE touched."""
        if isinstance(statement, (sa.Update, sa.Delete)) and not statement._returning:
            # RETURNING is the one row count both drivers report alike.
            return len(await self.fetch_all(statement.returning(sa.literal_column("1"))))
        await self._run(statement, _NONE)
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
            await self._run(table.insert().values(list(rows)), _NONE)

    async def execute_script(self, sql: str) -> None:
        """Run trusted DDL (migrations) statement by statement on the raw connection."""
        for statement in split_sql_script(sql):
            self.database._notify(statement)
            try:
                await self._driver(statement, (), _NONE, translated=False)
            except Exception as exc:  # noqa: BLE001 - re-raised with context below
                raise DatabaseError(f"migration statement failed: {exc}") from exc

    @contextlib.asynccontextmanager
    async def transaction(self, *, short: bool = False) -> AsyncIterator[Session]:
        """All or nothing. Nested calls become savepoints of the outer transaction.

        `short`: every statement of the transaction is an index lookup or a write of a few rows
        (the core's coupled content writes). On SQLite it then runs on the loop's own connection
        (db/inline.py), with no thread switch per statement, when that connection is free."""
        if self._depth == 0:
            await self._begin(short)
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

    async def _begin(self, short: bool) -> None:
        if self.database.is_sqlite:
            await self.connection()  # always a connection before the write lock, never the reverse
            await self.database._sqlite_write_lock.acquire()
            self._holds_write_lock = True
            try:
                inline_connection = self.database.inline
                if short and inline_connection is not None and inline_connection.begin(self):
                    self._inline = inline_connection
                    self.database._notify("BEGIN IMMEDIATE")
                    return
                await self._raw("BEGIN IMMEDIATE")
            except BaseException:
                self._release_write_lock()
                raise
        else:
            await self._raw("BEGIN")

    async def _finish(self, verb: str) -> None:
        try:
            if self._inline is not None:
                held, self._inline = self._inline, None
                self.database._notify(verb)
                try:
                    held.end(verb)
                except Exception as exc:
                    found = translate(exc)
                    if found is None:
                        raise
                    raise found from exc
                finally:
                    self.database._wrote_inline()
            else:
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
                await self._finish("ROLLBACK")
        self._release_write_lock()

    async def _raw(self, sql: str) -> None:
        self.database._notify(sql)
        await self._driver(sql, (), _NONE, translated=False)

    async def _run(self, statement: sa.sql.ClauseElement, mode: str,
                   params: Mapping[str, Any] | None = None) -> list[dict[str, Any]] | None:
        statements = self.database._statements
        if params is None:
            sql, args, shape = statements.prepare(statement)
        else:
            sql, args, shape = statements.prepare_template(statement, params)
        self.database._notify(sql)
        rows, description = await self._driver(sql, args, mode, translated=True)
        if rows is None:
            return None
        if not self._is_sqlite:
            return [dict(row) for row in rows]
        if not rows:
            return []
        plan = shape.row_plan(self.database._statements.dialect, description)
        return [plan.dict(row) for row in rows]

    async def _driver(self, sql: str, args: Sequence[Any], mode: str, *, translated: bool) -> tuple[Any, Any]:
        """(rows, SQLite cursor description) of one statement on the driver; `translated`: driver
        errors become ours (db/errors.py) where we know them."""
        try:
            if self._inline is not None:  # a short transaction on the loop's own connection
                self._inline.statements += 1
                return _sqlite_statement(self._inline.connection, sql, args, mode)
            async with self._lock:
                connection = await self.connection()
                if self._is_sqlite:
                    return await connection._execute(_sqlite_statement, connection._conn, sql, args, mode)
                if mode == _MANY:
                    await connection.executemany(sql, args)
                    return None, None
                if mode == _ALL:
                    return await connection.fetch(sql, *args), None
                if mode == _ONE:
                    row = await connection.fetchrow(sql, *args)
                    return ([] if row is None else [row]), None
                await connection.execute(sql, *args)
                return None, None
        except DatabaseError:
            raise
        except Exception as exc:
            found = translate(exc) if translated else None
            if found is None:
                raise
            raise found from exc


def _sqlite_statement(connection, sql: str, args: Sequence[Any], mode: str) -> tuple[Any, Any]:
    """Runs on the aiosqlite worker thread: the statement, its rows and description in one hop
    (aiosqlite's own execute/fetch/close would be three)."""
    if mode == _MANY:
        connection.executemany(sql, args).close()
        return None, None
    cursor = connection.execute(sql, args)
    try:
        if mode == _NONE:
            return None, None
        rows = cursor.fetchall() if mode == _ALL else cursor.fetchmany(1)
        return rows, cursor.description
    finally:
        cursor.close()


def _single_pk(table: sa.Table) -> str:
    (column,) = table.primary_key.columns
    return column.name


def split_sql_script(sql: str) -> list[str]:
    """Split a trusted migration script on semicolons at line ends, except inside a `$$` quoted
    body (a function's); comment lines are dropped."""
    text = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    statements = [""]
    for index, part in enumerate(text.split("$$")):
        if index % 2:  # inside $$ … $$
            statements[-1] += f"$${part}$$"
            continue
        first, *rest = part.split(";\n")
        statements[-1] += first
        statements.extend(rest)
    return [s.strip().rstrip(";").strip() for s in statements if s.strip().rstrip(";").strip()]
