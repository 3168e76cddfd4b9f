"""Driver connections held open and lent out one unit of work at a time: aiosqlite connections
(each with its own worker thread) opened once with their PRAGMAs set, asyncpg connections without
the reset round trip where nothing needs resetting. Every connection opened is counted, so tests
can show that none opens per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections import deque
from typing import Any, Protocol
from urllib.parse import urlencode

import aiosqlite
import asyncpg
from sqlalchemy.engine import URL

SQLITE_BUSY_TIMEOUT_MS = 10_000

# How many connections of each pool (by id) this task, and the tasks it started, hold. Such a
# task never waits for another connection of the same pool but gets an extra one: waiting could
# deadlock when every connection is held by a task that opens a nested session (a plugin call).
_held: contextvars.ContextVar[dict[int, int]] = contextvars.ContextVar("modula_pools_held", default={})


class Counters:
    """What a Database has done that a warmed-up request must not do again."""

    __slots__ = ("connections_opened", "threads_started")

    def __init__(self) -> None:
        self.connections_opened = 0
        self.threads_started = 0


class Connector(Protocol):
    """How a pool opens, cleans and closes one driver's connections."""

    async def connect(self) -> Any: ...

    async def clean(self, connection: Any, *, state_changed: bool = True) -> bool:
        """Make a returned connection fit for its next user; False if it cannot be.
        `state_changed`: its user may have changed session state (SET, LISTEN, advisory locks)."""

    async def close(self, connection: Any) -> None: ...


class ConnectionPool:
    """Up to `size` connections, lent one at a time; `open()` opens all of them when `eager`.

    A task that holds none waits for one when all are lent; a task that already holds one gets
    an extra connection instead (closed when it comes back), so nested sessions never deadlock.
    """

    def __init__(self, size: int, connector: Connector, *, eager: bool) -> None:
        if size < 1:
            raise ValueError(f"a pool holds at least 1 connection, not {size}")
        self.size = size
        self._connector = connector
        self._eager = eager
        self._idle: deque[Any] = deque()
        self._waiters: deque[asyncio.Future] = deque()
        self._open_count = 0
        self._closed = False
        self._all_back = asyncio.Event()

    def usage(self) -> dict[str, int]:
        """Connections now: the size, open, idle (open and not lent), and tasks waiting for one."""
        return {"size": self.size, "open": self._open_count, "idle": len(self._idle), "waiting": len(self._waiters)}

    async def open(self) -> None:
        self._closed = False
        while self._eager and self._open_count < self.size:
            self._give_back(await self._connect())

    async def close(self, *, wait: float = 10.0) -> None:
        """Close every connection; those still lent are closed as they come back, waited for up
        to `wait` seconds (a role is dropped, or a SQLite file copied, only after its last one)."""
        self._closed = True
        self._all_back.clear()
        while self._idle:
            await self._discard(self._idle.popleft())
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(RuntimeError("the database was disconnected"))
        self._waiters.clear()
        if self._open_count > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_back.wait(), wait)

    async def acquire(self) -> Any:
        """A connection, to be given back with `release` from the same task."""
        if self._closed:
            raise RuntimeError("the database is not connected")
        held = _held.get()
        if self._idle:
            connection = self._idle.pop()
        elif self._open_count < self.size or held.get(id(self)):
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
        _held.set({**held, id(self): held.get(id(self), 0) + 1})
        return connection

    async def release(self, connection: Any, *, state_changed: bool = True) -> None:
        """Take the connection back, cleaned for its next user (a transaction left open is
        rolled back; with `state_changed`, session state is reset where the connector resets);
        one that cannot be cleaned is closed, and a fresh one opens when needed."""
        held = _held.get()
        if held.get(id(self), 0) > 1:
            _held.set({**held, id(self): held[id(self)] - 1})
        elif id(self) in held:
            _held.set({k: v for k, v in held.items() if k != id(self)})
        try:
            reusable = await self._connector.clean(connection, state_changed=state_changed)
        except BaseException:
            await self._discard(connection)
            raise
        if not reusable or self._closed or self._open_count > self.size:
            await self._discard(connection)
        else:
            self._give_back(connection)

    def _give_back(self, connection: Any) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    async def _connect(self) -> Any:
        self._open_count += 1
        try:
            return await self._connector.connect()
        except BaseException:
            self._open_count -= 1
            raise

    async def _discard(self, connection: Any) -> None:
        self._open_count -= 1
        try:
            await self._connector.close(connection)
        except Exception:  # noqa: BLE001 - closing a broken connection may fail too
            pass
        if self._closed and self._open_count == 0:
            self._all_back.set()


class SQLiteConnector:
    """aiosqlite connections to one file, each set up once: foreign keys, busy timeout,
    synchronous=NORMAL; the first also switches the file to WAL."""

    def __init__(self, url: URL, counters: Counters) -> None:
        self._path = url.database or ""
        self._uri = bool(url.query)
        if self._uri:  # options such as ?mode=ro reach SQLite as a file: URI
            self._path = f"file:{self._path}?{urlencode(dict(url.query), doseq=True)}"
        self._counters = counters
        self._wal = False

    @property
    def target(self) -> tuple[str, bool]:
        """(path or file: URI, whether it is a URI), as sqlite3.connect takes them."""
        return self._path, self._uri

    async def connect(self) -> aiosqlite.Connection:
        connection = aiosqlite.connect(self._path, isolation_level=None, uri=self._uri)
        # A pooled connection lives as long as the Database; a daemon worker thread cannot keep
        # the process alive if someone forgets to disconnect.
        connection._thread.daemon = True
        self._counters.threads_started += 1
        try:
            await connection
        except Exception:
            # aiosqlite has queued its worker's stop; let the worker finish while the event loop
            # still runs, or it reports to a closed loop (a traceback after the CLI's error line).
            for _ in range(1000):
                if not connection._thread.is_alive():
                    break
                await asyncio.sleep(0.001)
            raise
        self._counters.connections_opened += 1
        try:
            setup = [] if self._wal else ["PRAGMA journal_mode = WAL"]  # stored in the file: once is enough
            setup += ["PRAGMA foreign_keys = ON", f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}",
                      "PRAGMA synchronous = NORMAL"]  # durable enough with WAL, far fewer fsyncs
            await connection._execute(_run_all, connection._conn, setup)
            self._wal = True
        except BaseException:
            await connection.close()
            raise
        return connection

    async def clean(self, connection: aiosqlite.Connection, *, state_changed: bool = True) -> bool:
        if connection._connection is None:
            return False
        if connection._conn.in_transaction:
            await connection._execute(_run_all, connection._conn, ["ROLLBACK"])
        return True

    async def close(self, connection: aiosqlite.Connection) -> None:
        await connection.close()


def _run_all(connection, statements: list[str]) -> None:
    """Runs on the connection's worker thread: each statement, results discarded."""
    for statement in statements:
        connection.execute(statement).close()


class PostgresConnector:
    """asyncpg connections to one server as one role. `reset=False` only for connections whose
    users never change session state (the host's: no SET, no LISTEN, no session advisory locks,
    transactions always ended), which then skip asyncpg's reset round trip; a plugin role's keep
    it (RESET ALL, advisory locks released) after any use that ran plugin SQL: plugin SQL may SET
    things that must not outlive its call. A use that ran only the host's generated statements
    (a fast-path insert as the plugin's role) skips it."""

    def __init__(self, url: URL, counters: Counters, *, reset: bool) -> None:
        self._options: dict[str, Any] = dict(host=url.host, port=url.port, user=url.username,
                                             password=url.password, database=url.database)
        if "ssl" in url.query:  # ?ssl=true|false|require..., as `databases` read it
            ssl = str(url.query["ssl"]).lower()
            self._options["ssl"] = {"true": True, "false": False}.get(ssl, ssl)
        self._counters = counters
        self._reset = reset

    async def connect(self) -> asyncpg.Connection:
        connection = await asyncpg.connect(**self._options)
        self._counters.connections_opened += 1
        return connection

    async def clean(self, connection: asyncpg.Connection, *, state_changed: bool = True) -> bool:
        if connection.is_closed():
            return False
        if self._reset and state_changed:
            await connection.reset()
        elif connection.is_in_transaction():
            await connection.execute("ROLLBACK")
        return True

    async def close(self, connection: asyncpg.Connection) -> None:
        try:
            await asyncio.wait_for(connection.close(), 5)
        except BaseException:
            connection.terminate()
            raise
