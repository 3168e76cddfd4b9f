"""Reading the content tree through paths: a node by its URL (`/blog/2026/hello`), and the
ancestors, siblings and descendants of many nodes at once, one statement per batch.

A URL is the route's slug (which may hold "/" itself) then the node's `tree_path`; every split of
the URL is one UNION ALL branch of one statement, each two index lookups (routes by site and
slug, content by route and tree path).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from modula.cms.typed_content import NODES
from modula.db.connection import Session
from modula.db.core_tables import content_data as cd
from modula.db.core_tables import routes
from modula.db.crud import Where
from modula.errors import ModulaError

MAX_SEGMENTS = 64
_SEGMENT = re.compile(r"^[a-z0-9][a-z0-9-]*$")

Row = dict[str, Any]


def public_path(route_slug: str, tree_path: str) -> str:
    return f"/{route_slug}/{tree_path}"


def _segments(path: str) -> list[str]:
    """"/blog/2026/hello" (a trailing "/" allowed) -> ["blog", "2026", "hello"]; "/" -> []."""
    inner = path.strip("/")
    segments = inner.split("/") if inner else []
    if not path.startswith("/") or any(not _SEGMENT.match(s) for s in segments):
        raise ModulaError("INVALID_VALUE", f"{path!r} is not a content path: '/' then slugs separated by '/', "
                          "e.g. /blog/2026/hello", ("path",))
    if len(segments) > MAX_SEGMENTS:
        raise ModulaError("INVALID_VALUE", f"a content path has at most {MAX_SEGMENTS} segments", ("path",))
    return segments


async def node_by_path(session: Session, path: str, site_id: int | None) -> Row | None:
    """The node at `path` among the routes of `site_id` (None: routes without a site); when two
    routes could both hold it (`blog` and `blog/news`), the longer route slug wins."""
    segments = _segments(path)
    splits = [("/".join(segments[:k]), "/".join(segments[k:])) for k in range(1, len(segments))]
    if not splits:
        return None  # a route's own path, or "/": not a node
    params = {f"route_{k}": route_slug for k, (route_slug, _) in enumerate(splits, 1)}
    params |= {f"rest_{k}": rest for k, (_, rest) in enumerate(splits, 1)}
    if site_id is not None:
        params["site_id"] = site_id
    return await session.fetch_one(_by_path(len(splits), site_id is not None), params)


@functools.lru_cache(maxsize=2 * MAX_SEGMENTS)
def _by_path(splits: int, has_site: bool) -> sa.Select:
    """The template for a path of `splits` + 1 segments (built once, bound per call): one UNION ALL
    branch per split, each two index lookups (the route by site and slug, then the node by route
    and tree path); the branch of the longest route slug wins."""
    site = routes.c.site_id == sa.bindparam("site_id", type_=routes.c.site_id.type) if has_site else routes.c.site_id.is_(None)
    branches = [
        sa.select(*cd.c, sa.literal_column(str(k)).label("route_segments")).where(
            cd.c.route_id == sa.select(routes.c.id)
            .where(site, routes.c.slug == sa.bindparam(f"route_{k}", type_=routes.c.slug.type)).scalar_subquery(),
            cd.c.tree_path == sa.bindparam(f"rest_{k}", type_=cd.c.tree_path.type))
        for k in range(1, splits + 1)
    ]
    found = sa.union_all(*branches).subquery("found")
    return sa.select(*(found.c[c.name] for c in cd.c)).order_by(found.c.route_segments.desc()).limit(1)


def _prefixes(tree_path: str) -> list[str]:
    parts = tree_path.split("/")
    return ["/".join(parts[:k]) for k in range(1, len(parts))]


async def ancestors_of(session: Session, keys: Sequence[tuple[int, str]]) -> list[list[Row]]:
    """For each (route_id, tree_path), the nodes above it, root first."""
    wanted: dict[int, set[str]] = {}
    for route_id, tree_path in keys:
        wanted.setdefault(route_id, set()).update(_prefixes(tree_path))
    wanted = {route_id: paths for route_id, paths in wanted.items() if paths}
    found: dict[tuple[int, str], Row] = {}
    if wanted:
        statement = sa.select(cd).where(sa.or_(*(sa.and_(cd.c.route_id == route_id, cd.c.tree_path.in_(sorted(paths)))
                                               for route_id, paths in wanted.items())))
        found = {(row["route_id"], row["tree_path"]): row for row in await session.fetch_all(statement)}
    return [[found[(route_id, p)] for p in _prefixes(tree_path) if (route_id, p) in found] for route_id, tree_path in keys]


async def siblings_of(session: Session, keys: Sequence[tuple[int, int | None]]) -> list[list[Row]]:
    """For each (route_id, parent_id), the nodes under that parent (the route's roots for None), in order."""
    parents = sorted({parent for _, parent in keys if parent is not None})
    root_routes = sorted({route_id for route_id, parent in keys if parent is None})
    conditions = []
    if parents:
        conditions.append(cd.c.parent_id.in_(parents))
    if root_routes:
        conditions.append(sa.and_(cd.c.parent_id.is_(None), cd.c.route_id.in_(root_routes)))
    grouped: dict[tuple[int, int | None], list[Row]] = {}
    statement = sa.select(cd).where(sa.or_(*conditions)).order_by(cd.c.route_id, cd.c.parent_id, cd.c.position)
    for row in await session.fetch_all(statement):
        grouped.setdefault((row["route_id"], row["parent_id"]), []).append(row)
    return [grouped.get(key, []) for key in keys]


def _below(tree_path: str, depth: int | None) -> Where:
    """The filter of the nodes under `tree_path`, at most `depth` levels down (None: any)."""
    inside: Where = {"tree_path": {"like": tree_path + "/%"}}
    if depth is None:
        return inside
    return {"and": [inside, {"not": {"tree_path": {"like": tree_path + "/%" * (depth + 1)}}}]}


async def descendants_of(session: Session, keys: Sequence[tuple[int, str]], depth: int | None,
                         where: Where | None) -> list[list[Row]]:
    """For each (route_id, tree_path), the nodes below it (down to `depth` levels; None: all) that
    `where` (over the node columns) lets through, by id."""
    if depth is not None and depth < 1:
        raise ModulaError("INVALID_VALUE", "depth must be 1 or more", ("depth",))
    under = {"or": [{"and": [{"route_id": {"eq": route_id}}, _below(tree_path, depth)]} for route_id, tree_path in keys]}
    condition = under if where is None else {"and": [where, under]}
    rows = await NODES.find(session, where=condition, order_by=[("id", "asc")])
    grouped: dict[tuple[int, str], list[Row]] = {key: [] for key in keys}
    for row in rows:
        levels = _prefixes(row["tree_path"])
        for level, prefix in enumerate(reversed(levels), start=1):
            if depth is not None and level > depth:
                break
            if (row["route_id"], prefix) in grouped:
                grouped[(row["route_id"], prefix)].append(row)
    return [grouped[key] for key in keys]
