"""Core changes that plugins watch with `plugin.on("after_commit", "content", fn)`: one outbox
`hook` entry per watching plugin, written in the change's own transaction."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from modula.db import outbox
from modula.db.connection import Session
from modula.outbox.deliveries import after_commit_hooks

Record = Callable[[str, dict[str, Any]], Awaitable[None]]


def watchers(host, table: str) -> list:
    """The loaded plugins with an after_commit hook on `table`."""
    return [plugin for plugin in list(host.loaded.values()) if after_commit_hooks(plugin, table)] if host else []


@contextlib.asynccontextmanager
async def recorded_change(session: Session, host, table: str) -> AsyncIterator[Record]:
    """Wraps a core service's change: `await record(change, row)` inside queues it for every
    watching plugin in the same transaction. Nothing watching: no transaction is added (the
    service's own stays as it is)."""
    plugins = watchers(host, table)
    if not plugins:
        yield _nothing
        return

    async def record(change: str, row: dict[str, Any]) -> None:
        for plugin in plugins:
            await outbox.enqueue(session, plugin.name, "hook", {"table": table, "change": change, "row": dict(row)})

    # Short like the content services' own: a few index lookups and small writes (SQLite runs it
    # on the loop's connection when that is free).
    async with session.transaction(short=True):
        yield record


async def _nothing(change: str, row: dict[str, Any]) -> None:
    return None
