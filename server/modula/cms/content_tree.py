"""The content tree of a route: sibling order, subtrees, and moves that keep it a tree.

Siblings (same route, same parent) have positions 0..n-1 without gaps; every change that adds,
removes or moves a node keeps it that way.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from modula.db.connection import Session
from modula.db.core_tables import content_data as cd
from modula.db.core_tables import routes
from modula.db.types import utcnow
from modula.errors import ModulaError, not_found


def _siblings(route_id: int, parent_id: int | None):
    parent = cd.c.parent_id.is_(None) if parent_id is None else cd.c.parent_id == parent_id
    return sa.and_(cd.c.route_id == route_id, parent)


async def lock_route(session: Session, route_id: int) -> bool:
    """Serialise tree changes within a route (row lock on PostgreSQL; SQLite writes are already
    serial). Sibling positions are read-then-written, so two writers must not interleave.
    Returns False when the route does not exist."""
    row = await session.fetch_one(_ROUTE_FOR_UPDATE, {"route_id": route_id})
    return row is not None


_ROUTE_FOR_UPDATE = (
    sa.select(routes.c.id).where(routes.c.id == sa.bindparam("route_id", type_=routes.c.id.type)).with_for_update()
)


async def next_position(session: Session, route_id: int, parent_id: int | None) -> int:
    count = await session.fetch_value(sa.select(sa.func.count()).select_from(cd).where(_siblings(route_id, parent_id)))
    return int(count or 0)


async def close_gap(session: Session, route_id: int, parent_id: int | None, position: int) -> None:
    await session.execute(
        sa.update(cd).where(_siblings(route_id, parent_id), cd.c.position > position).values(position=cd.c.position - 1)
    )


async def subtree_ids(session: Session, root_id: int) -> list[int]:
    """The node and all its descendants, one recursive query."""
    tree = sa.select(cd.c.id).where(cd.c.id == root_id).cte("subtree", recursive=True)
    tree = tree.union_all(sa.select(cd.c.id).where(cd.c.parent_id == tree.c.id))
    return [row["id"] for row in await session.fetch_all(sa.select(tree.c.id))]


async def ancestor_ids(session: Session, node_id: int) -> list[int]:
    """The node and every ancestor up to the root, one recursive query."""
    chain = sa.select(cd.c.id, cd.c.parent_id).where(cd.c.id == node_id).cte("ancestors", recursive=True)
    chain = chain.union_all(sa.select(cd.c.id, cd.c.parent_id).where(cd.c.id == chain.c.parent_id))
    return [row["id"] for row in await session.fetch_all(sa.select(chain.c.id))]


async def move_content(session: Session, content_id: int, parent_id: int | None, position: int | None) -> dict[str, Any]:
    """Move a node (with its subtree) under `parent_id` at `position` (end when None)."""
    async with session.transaction():
        node = await session.fetch_one(sa.select(cd).where(cd.c.id == content_id))
        if node is None:
            raise not_found("content", content_id, ("id",))
        await lock_route(session, node["route_id"])
        node = await session.fetch_one(sa.select(cd).where(cd.c.id == content_id))  # as it is now
        if parent_id is not None:
            parent = await session.fetch_one(sa.select(cd).where(cd.c.id == parent_id))
            if parent is None:
                raise not_found("parent content", parent_id, ("parentId",))
            if parent["route_id"] != node["route_id"]:
                raise ModulaError("INVALID_PARENT", f"parent {parent_id} belongs to another route", ("parentId",))
            if content_id in await ancestor_ids(session, parent_id):
                raise ModulaError(
                    "CYCLE", f"content {content_id} cannot move under itself or one of its descendants", ("parentId",)
                )
        if position is not None and position < 0:
            raise ModulaError("INVALID_VALUE", "position must be 0 or more", ("position",))

        route_id = node["route_id"]
        await close_gap(session, route_id, node["parent_id"], node["position"])
        # Park the node outside both sibling lists while positions shift.
        await session.execute(sa.update(cd).where(cd.c.id == content_id).values(position=-1, parent_id=parent_id))
        size = await session.fetch_value(
            sa.select(sa.func.count()).select_from(cd).where(_siblings(route_id, parent_id), cd.c.id != content_id)
        )
        target = size if position is None else min(position, size)
        await session.execute(
            sa.update(cd)
            .where(_siblings(route_id, parent_id), cd.c.id != content_id, cd.c.position >= target)
            .values(position=cd.c.position + 1)
        )
        await session.execute(
            sa.update(cd).where(cd.c.id == content_id).values(position=target, updated_at=utcnow())
        )
        return await session.fetch_one(sa.select(cd).where(cd.c.id == content_id))
