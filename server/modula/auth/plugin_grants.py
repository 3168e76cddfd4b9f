"""Permissions a plugin's manifest proposes ("grants" in plugin.json). Installing a plugin only
records them; an admin lists them and approves them before any role gains anything."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from modula.auth import roles
from modula.db.connection import Session
from modula.db.core_tables import plugin_grant_requests as requests
from modula.db.types import utcnow


async def propose(session: Session, plugin: str, grants: Iterable[tuple[str, str, str, str | None]]) -> None:
    """Replace the plugin's open requests with `grants` (call inside the install transaction)."""
    await session.execute(requests.delete().where(requests.c.plugin == plugin))
    now = utcnow()
    rows = [{"plugin": plugin, "role": role, "resource": resource, "action": action, "row_rule": rule, "requested_at": now}
            for role, resource, action, rule in dict.fromkeys(grants)]
    await session.insert_rows(requests, rows)


async def pending(session: Session, plugin: str | None = None) -> list[dict[str, Any]]:
    statement = sa.select(requests).order_by(requests.c.plugin, requests.c.role, requests.c.resource, requests.c.action)
    if plugin is not None:
        statement = statement.where(requests.c.plugin == plugin)
    return await session.fetch_all(statement)


async def approve(session: Session, plugin: str) -> list[dict[str, Any]]:
    """Turn the plugin's requests into permissions, all or nothing; returns what was granted."""
    async with session.transaction():
        found = await pending(session, plugin)
        for request in found:
            await roles.grant_permission(session, role=request["role"], resource=request["resource"],
                                         action=request["action"], row_rule=request["row_rule"])
        await session.execute(requests.delete().where(requests.c.plugin == plugin))
    return found
