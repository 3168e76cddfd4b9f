"""Driver connections held open and lent out: a pool of aiosqlite connections (each with its own
worker thread) opened once, and asyncpg pools that skip the reset round trip where nothing needs
resetting. Every connection opened is counted, so tests can show none opens per request.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from typing import Any
from urllib.parse import urlencode

import aiosqlite
import asyncpg
from sqlalchemy.engine import URL

SQLITE_BUSY_TIMEOUT_MS = 10_000

# The SQLite pools this task (and the tasks it started) holds a connection of. Such a task never
# waits for another connection of the same pool but gets an extra one: waiting could deadlock
# when every connection is held by a task that opens a nested session (a plugin call, say).
_held: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar("modula_sqlite_pools_held", default=frozenset())


class Counters:
    """What a Database has done that a warmed-up request must not do again."""

    __slots__ = ("connections_opened", "threads_started")

    def __init__(self) -> None:
        self.connections_opened = 0
        self.threads_started = 0


class SQLitePool:
    """`size` connections to one SQLite file, opened by `open()` with their PRAGMAs set once."""

    def __init__(self, url: URL, size: int, counters: Counters) -> None:
        if size < 1:
            raise ValueError(f"the database pool size must be at least 1, not {size}")
        self.size = size
        self._path = url.database or ""
        self._uri = bool(url.query)
        if self._uri:  # options such as ?mode=ro reach SQLite as a file: URI
            self._path = f"file:{self._path}?{urlencode(dict(url.query), doseq=True)}"
        self._counters = counters
        self._idle: deque[aiosqlite.Connection] = deque()
        self._waiters: deque[asyncio.Future] = deque()
        self._open_count = 0
        self._closed = False

    async def open(self) -> None:
        self._closed = False
        first = await self._connect()
        try:
            # WAL lets readers run beside the one writer; the setting is stored in the file.
            await first._execute(_run_script, first._conn, "PRAGMA journal_mode = WAL")
        finally:
            self._give_back(first)
        while self._open_count < self.size:
            self._give_back(await self._connect())

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            await self._discard(self._idle.popleft())
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(RuntimeError("the database was disconnected"))
        self._waiters.clear()

    async def acquire(self) -> tuple[aiosqlite.Connection, contextvars.Token]:
        """A connection and the token that marks this task as holding one (for `release`)."""
        if self._closed:
            raise RuntimeError("the database is not connected")
        held = _held.get()
        if self._idle:
            connection = self._idle.pop()
        elif self._open_count < self.size or id(self) in held:
            connection = await self._connect()
        else:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                connection = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # handed one just as we were cancelled
                    self._give_back(waiter.result())
                else:
                    self._waiters.remove(waiter)
                raise
        return connection, _held.set(held | {id(self)})

    async def release(self, connection: aiosqlite.Connection, token: contextvars.Token) -> None:
        """Take the connection back; one left inside a transaction is rolled back first, one that
        cannot be is closed (the pool opens a fresh one when it is next short)."""
        try:
            _held.reset(token)
        except ValueError:  # released from another context (a fixture's teardown): nothing to undo
            pass
        try:
            if connection._conn.in_transaction:
                await connection._execute(_run_script, connection._conn, "ROLLBACK")
        except Exception:  # noqa: BLE001 - a connection we cannot clean is not lent again
            await self._discard(connection)
            return
        if self._closed or self._open_count > self.size:
            await self._discard(connection)
        else:
            self._give_back(connection)

    def _give_back(self, connection: aiosqlite.Connection) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    async def _connect(self) -> aiosqlite.Connection:
        self._open_count += 1
        try:
            connection = aiosqlite.connect(self._path, isolation_level=None, uri=self._uri)
            # A pooled connection lives as long as the Database; a daemon worker thread cannot
            # keep the process alive if someone forgets to disconnect.
            connection._thread.daemon = True
            self._counters.threads_started += 1
            await connection
            self._counters.connections_opened += 1
            await connection._execute(
                _run_script, connection._conn,
                f"PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; "
                "PRAGMA synchronous = NORMAL",  # durable enough with WAL, far fewer fsyncs
            )
        except BaseException:
            self._open_count -= 1
            raise
        return connection

    async def _discard(self, connection: aiosqlite.Connection) -> None:
        self._open_count -= 1
        try:
            await connection.close()
        except Exception:  # noqa: BLE001 - closing a broken connection may fail too
            pass


def _run_script(connection, sql: str) -> None:
    """Runs on the connection's worker thread: each `;`-separated statement, results discarded."""
    for statement in sql.split(";"):
        if statement.strip():
            connection.execute(statement).close()


async def _no_reset(connection: asyncpg.Connection) -> None:
    """The host's own sessions never leave session state behind (no SET, no LISTEN, no session
    advisory locks, transactions always ended), so the reset query would be a wasted round trip;
    asyncpg still rolls back a transaction left open."""


async def postgres_pool(url: URL, *, min_size: int, max_size: int, counters: Counters,
                        reset: bool) -> asyncpg.Pool:
    """An asyncpg pool for `url`. `reset=False` only for connections whose users never change
    session state; plugin roles' connections keep asyncpg's reset (RESET ALL, unlock advisory
    locks): plugin SQL may SET things that must not outlive its call."""

    async def opened(connection: asyncpg.Connection) -> None:
        counters.connections_opened += 1

    options: dict[str, Any] = dict(
        host=url.host, port=url.port, user=url.username, password=url.password, database=url.database,
        min_size=min_size, max_size=max_size, init=opened,
    )
    if "ssl" in url.query:  # ?ssl=true|false|require..., as `databases` read it
        ssl = str(url.query["ssl"]).lower()
        options["ssl"] = {"true": True, "false": False}.get(ssl, ssl)
    if not reset:
        options["reset"] = _no_reset
    return await asyncpg.create_pool(**options)

