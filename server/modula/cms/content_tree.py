"""The content tree of a route: sibling order, subtrees, paths, and moves that keep it a tree.

Siblings (same route, same parent) have positions 0..n-1 without gaps and distinct slugs; every
node's `tree_path` is its ancestors' slugs and its own (db/content_paths.py). Every change that
adds, removes, renames or moves a node keeps both true.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from modula.db import content_paths
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


def check_slug(slug: str, path) -> None:
    if not content_paths.is_slug(slug):
        raise ModulaError("INVALID_VALUE", f"{slug!r} is not a slug: 1 to 128 lowercase letters, digits and '-', "
                          "not starting with '-'", path)


async def rename(session: Session, content_id: int, slug: str, path) -> None:
    """Give a node a new slug (the route locked by the caller); refused when a sibling has it."""
    node = await session.fetch_one(sa.select(cd).where(cd.c.id == content_id))
    parent_path, _, _ = node["tree_path"].rpartition("/")
    await _repath(session, node, content_paths.tree_path(parent_path or None, slug), slug, path)


async def _repath(session: Session, node: dict[str, Any], new_path: str, slug: str, path) -> None:
    """Set the node's slug and path and its descendants' paths; SLUG_TAKEN when another node has the path."""
    if new_path == node["tree_path"]:
        return
    holder = await session.fetch_value(
        sa.select(cd.c.id).where(cd.c.route_id == node["route_id"], cd.c.tree_path == new_path, cd.c.id != node["id"]))
    if holder is not None:
        raise ModulaError("SLUG_TAKEN", f"slug {slug!r} is already taken among the node's new siblings (content {holder})", path)
    old = node["tree_path"]
    await session.execute(
        sa.update(cd)
        .where(cd.c.route_id == node["route_id"], sa.or_(cd.c.tree_path == old, cd.c.tree_path.like(old + "/%")))
        .values(tree_path=sa.literal(new_path, sa.Text) + sa.func.substr(cd.c.tree_path, len(old) + 1))
    )
    await session.execute(sa.update(cd).where(cd.c.id == node["id"]).values(slug=slug))


async def move_content(
    session: Session, content_id: int, parent_id: int | None, position: int | None, slug: str | None = None
) -> dict[str, Any]:
    """Move a node (with its subtree) under `parent_id` at `position` (end when None), optionally
    with a new slug; its and its descendants' paths follow."""
    if slug is not None:
        check_slug(slug, ("slug",))
    async with session.transaction():
        node = await session.fetch_one(sa.select(cd).where(cd.c.id == content_id))
        if node is None:
            raise not_found("content", content_id, ("id",))
        await lock_route(session, node["route_id"])
        node = await session.fetch_one(sa.select(cd).where(cd.c.id == content_id))  # as it is now
        parent_path = None
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
            parent_path = parent["tree_path"]
        if position is not None and position < 0:
            raise ModulaError("INVALID_VALUE", "position must be 0 or more", ("position",))
        slug = node["slug"] if slug is None else slug
        await _repath(session, node, content_paths.tree_path(parent_path, slug), slug,
                      ("parentId",) if slug == node["slug"] else ("slug",))

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
