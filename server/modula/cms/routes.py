"""Routes: the addressable places (slugs) that content trees hang from."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from modula.db.connection import Session
from modula.db.core_tables import routes, sites
from modula.db.types import utcnow
from modula.errors import ModulaError, Problems, not_found

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*(?:/[a-z0-9]+(?:-[a-z0-9]+)*)*$")


async def create_route(session: Session, *, slug: str, title: str, site_id: int | None) -> dict[str, Any]:
    problems = Problems()
    if not _SLUG.match(slug):
        problems.add(
            "INVALID_VALUE",
            f"{slug!r} is not a slug: use lowercase letters, digits and '-', with '/' between segments",
            ("input", "slug"),
        )
    if not title.strip():
        problems.add("INVALID_VALUE", "a route needs a title", ("input", "title"))
    problems.raise_if_any()
    async with session.transaction():
        if site_id is not None and await session.fetch_value(sa.select(sites.c.id).where(sites.c.id == site_id)) is None:
            raise not_found("site", site_id, ("input", "siteId"))
        # UNIQUE (site_id, slug) does not hold for routes without a site (NULLs differ), so look.
        if await find_route(session, slug=slug, site_id=site_id) is not None:
            raise ModulaError("CONFLICT", f"route {slug!r} already exists", ("input", "slug"))
        now = utcnow()
        return await session.insert(
            routes, {"slug": slug, "title": title.strip(), "site_id": site_id, "created_at": now, "updated_at": now}
        )


async def find_route(session: Session, *, slug: str, site_id: int | None) -> dict[str, Any] | None:
    site_match = routes.c.site_id.is_(None) if site_id is None else routes.c.site_id == site_id
    return await session.fetch_one(sa.select(routes).where(routes.c.slug == slug, site_match))


async def list_routes(session: Session, *, site_id: int | None = None) -> list[dict[str, Any]]:
    statement = sa.select(routes).order_by(routes.c.id)
    if site_id is not None:
        statement = statement.where(routes.c.site_id == site_id)
    return await session.fetch_all(statement)


async def routes_by_ids(session: Session, ids: list[int]) -> list[dict[str, Any]]:
    return await session.fetch_all(sa.select(routes).where(routes.c.id.in_(ids)))
