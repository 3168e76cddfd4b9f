"""The outbox table's statements: queue a side effect in the caller's transaction, claim due
entries under a lease, and record how each attempt ended.

A claim is one UPDATE of due, unleased rows (on PostgreSQL their ids are picked FOR UPDATE SKIP
LOCKED, so replicas claiming at once take different rows; on SQLite the write transaction is the
lock). Attempts are counted when claimed, so a delivery that kills its process still counts.
Every later write names the lease holder, so a worker whose lease ran out (another took the row
over) changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa

from modula.db.connection import Session
from modula.db.core_tables import outbox
from modula.db.types import utcnow

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
STATUSES = (PENDING, DELIVERED, DEAD)
KINDS = ("http", "hook")


async def enqueue(session: Session, plugin: str, kind: str, payload: dict[str, Any]) -> int:
    """Queue one entry for `plugin`, in the session's transaction when one is open. On a plugin's
    own PostgreSQL login session the row is written by `modula_outbox_enqueue` (the role has no
    right on the table; the function names the plugin from the role)."""
    if kind not in KINDS:
        raise ValueError(f"unknown outbox kind {kind!r}")
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
    async with session.transaction():
        if session.login_role is not None:
            entry_id = await session.fetch_value(sa.select(sa.func.modula_outbox_enqueue(kind, text)))
            if entry_id is None:
                raise ValueError(f"the outbox refused a {kind} entry of {len(text)} characters from {plugin}")
            return entry_id
        now = utcnow()
        row = await session.insert(outbox, {"plugin": plugin, "kind": kind, "payload": text,
                                            "status": PENDING, "attempts": 0, "next_attempt_at": now,
                                            "created_at": now})
    return row["id"]


async def claim(session: Session, worker: str, limit: int, lease_seconds: float) -> list[dict[str, Any]]:
    """Lease up to `limit` due entries to `worker` for `lease_seconds`, oldest first."""
    now = utcnow()
    due = (sa.select(outbox.c.id)
           .where(outbox.c.status == PENDING, outbox.c.next_attempt_at <= now,
                  sa.or_(outbox.c.locked_until.is_(None), outbox.c.locked_until < now))
           .order_by(outbox.c.id).limit(limit))
    # A read first: an idle poll takes no write lock (SQLite has one for the whole database).
    if await session.fetch_value(due.limit(1)) is None:
        return []
    if session.dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    statement = (sa.update(outbox).where(outbox.c.id.in_(due.scalar_subquery()))
                 .values(locked_by=worker, locked_until=now + dt.timedelta(seconds=lease_seconds),
                         attempts=outbox.c.attempts + 1)
                 .returning(*outbox.c))
    async with session.transaction():
        rows = await session.fetch_all(statement)
    return sorted(rows, key=lambda row: row["id"])


async def renew(session: Session, entry_id: int, worker: str, lease_seconds: float) -> bool:
    """Extend `worker`'s lease on the entry; False when the lease is no longer its own."""
    now = utcnow()
    async with session.transaction():
        count = await session.execute(
            sa.update(outbox).where(outbox.c.id == entry_id, outbox.c.locked_by == worker,
                                    outbox.c.status == PENDING, outbox.c.locked_until > now)
            .values(locked_until=now + dt.timedelta(seconds=lease_seconds)))
    return count == 1


async def delivered(session: Session, entry_id: int, worker: str) -> None:
    async with session.transaction():
        await session.execute(
            sa.update(outbox).where(outbox.c.id == entry_id, outbox.c.locked_by == worker, outbox.c.status == PENDING)
            .values(status=DELIVERED, delivered_at=utcnow(), locked_until=None, last_error=None))


async def failed(session: Session, entry_id: int, worker: str, error: str, retry_in: float | None) -> None:
    """The attempt failed: due again in `retry_in` seconds, or dead when None (no attempts left)."""
    values: dict[str, Any] = {"last_error": error[:2000], "locked_until": None}
    if retry_in is None:
        values["status"] = DEAD
    else:
        values["next_attempt_at"] = utcnow() + dt.timedelta(seconds=retry_in)
    async with session.transaction():
        await session.execute(
            sa.update(outbox).where(outbox.c.id == entry_id, outbox.c.locked_by == worker, outbox.c.status == PENDING)
            .values(**values))


async def retry(session: Session, entry_id: int) -> dict[str, Any] | None:
    """Make a dead or pending entry due now, with its attempts counted from zero again; None when
    there is no such entry or it was delivered."""
    now = utcnow()
    async with session.transaction():
        rows = await session.fetch_all(
            sa.update(outbox).where(outbox.c.id == entry_id, outbox.c.status != DELIVERED)
            .values(status=PENDING, attempts=0, next_attempt_at=now, locked_until=None, locked_by=None)
            .returning(*outbox.c))
    return rows[0] if rows else None


async def entries(session: Session, *, status: str | None = None, limit: int = 100,
                  offset: int = 0) -> list[dict[str, Any]]:
    """Entries newest first, of one status or all."""
    query = sa.select(outbox).order_by(outbox.c.id.desc()).limit(limit).offset(offset)
    if status is not None:
        query = query.where(outbox.c.status == status)
    return await session.fetch_all(query)


async def counts(session: Session) -> dict[str, int]:
    """How many entries are in each status."""
    rows = await session.fetch_all(sa.select(outbox.c.status, sa.func.count().label("n")).group_by(outbox.c.status))
    return {status: 0 for status in STATUSES} | {row["status"]: row["n"] for row in rows}
