"""PostgreSQL's change notifications, heard on one dedicated connection that LISTENs.

The database NOTIFYs in the transaction of every change other processes must follow (triggers on
the generation counters: sql/postgresql/0012_change_notifications.sql), so a notification arrives
only after the change committed. A connection that is lost is opened again with backoff; each
time it (re)connects, `on_connect` runs, so the owner resynchronises with whatever it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

import asyncpg
from sqlalchemy.engine import make_url

from modula.db import pools

log = logging.getLogger("modula.db")

SCHEMA_CHANNEL = "modula_schema"  # payload: the new schema generation
AUTH_CHANNEL = "modula_auth"  # payload: the new auth generation

Handler = Callable[[str], None]


class ChangeListener:
    """LISTENs on `channels` (name -> handler of the payload) until `close`."""

    def __init__(self, url: str, channels: Mapping[str, Handler], on_connect: Callable[[], None], *,
                 max_backoff: float = 2.0, ping_interval: float = 5.0) -> None:
        parsed = make_url(url)
        # Its own counters: this connection is no pool's, and it reconnects at any time.
        self._connector = pools.PostgresConnector(parsed.set(drivername=parsed.get_backend_name()), pools.Counters(),
                                                  reset=False)
        self._channels = dict(channels)
        self._on_connect = on_connect
        self._max_backoff = max_backoff
        self._ping_interval = ping_interval
        self._connection = None
        self._lost = asyncio.Event()
        self.connects = 0  # connections made so far (the first and every reconnection)

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    @property
    def server_pid(self) -> int | None:
        """The backend process of the LISTEN connection (tests end it to cut the connection)."""
        return self._connection.get_server_pid() if self.connected else None

    async def run(self) -> None:
        """Listen, and after any loss connect again (0.05 s, doubling up to `max_backoff`)."""
        backoff = 0.05
        while True:
            try:
                await self._listen()
                backoff = 0.05
                await self._until_lost()
                log.warning("the LISTEN connection was lost; connecting again")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the poll still follows; try again
                log.warning("could not LISTEN for changes (%s); trying again in %.2f s", exc, backoff)
            await self._drop()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    async def _until_lost(self) -> None:
        # A connection whose server went away without a word never says so: a ping finds out.
        while not self._lost.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self._ping_interval)
                return
            try:
                await asyncio.wait_for(self._connection.fetchval("SELECT 1"), self._ping_interval)
            except (asyncio.TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                return

    async def _listen(self) -> None:
        self._lost.clear()
        connection = await self._connector.connect()
        self._connection = connection
        connection.add_termination_listener(lambda _connection: self._lost.set())
        for channel, handler in self._channels.items():
            await connection.add_listener(channel, _dispatch(handler))
        self.connects += 1
        self._on_connect()  # after LISTEN: whatever committed before it is what the resync reads

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            connection.terminate()

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(Exception):
                await self._connector.close(connection)


def _dispatch(handler: Handler):
    def on_notification(_connection, _pid, _channel, payload: str) -> None:
        try:
            handler(payload)
        except Exception:  # noqa: BLE001 - one bad notification must not stop the listening
            log.exception("a change notification could not be handled")

    return on_notification
