"""Sites: the top of the hierarchy; a route may belong to one."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from modula.db.connection import Session
from modula.db.core_tables import sites
from modula.db.errors import UniqueViolation
from modula.db.types import utcnow
from modula.errors import ModulaError, Problems

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$")


async def create_site(session: Session, *, name: str, hostname: str | None) -> dict[str, Any]:
    problems = Problems()
    if not name.strip():
        problems.add("INVALID_VALUE", "a site needs a name", ("input", "name"))
    if hostname is not None and not _HOSTNAME.match(hostname):
        problems.add("INVALID_VALUE", f"{hostname!r} is not a lowercase hostname such as example.com", ("input", "hostname"))
    problems.raise_if_any()
    now = utcnow()
    try:
        async with session.transaction():
            return await session.insert(sites, {"name": name.strip(), "hostname": hostname, "created_at": now, "updated_at": now})
    except UniqueViolation:
        raise ModulaError("CONFLICT", f"a site with hostname {hostname!r} already exists", ("input", "hostname")) from None


async def list_sites(session: Session) -> list[dict[str, Any]]:
    return await session.fetch_all(sa.select(sites).order_by(sites.c.id))


async def sites_by_ids(session: Session, ids: list[int]) -> list[dict[str, Any]]:
    return await session.fetch_all(sa.select(sites).where(sites.c.id.in_(ids)))
