"""Slugs and tree paths of content nodes: the slug rule, its derivation from a title, and the
one-time backfill of nodes made before nodes had slugs. It lives in `db` because a migration runs it.

A node's `tree_path` is the slugs from its route's root down to it, joined by "/" (`2026/hello`);
the public path puts the route's slug in front (`/blog/2026/hello`). Siblings' slugs differ, so
(route_id, tree_path) is unique and finding a node by its path is one index lookup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from slugify import slugify

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")
MAX_LENGTH = 128
FALLBACK = "content"  # the slug of a node with nothing title-like to derive one from
# Field names that read as a node's title, best first; else its first text field with a value.
TITLE_NAMES = ("title", "name", "headline", "heading", "label", "slug")


def is_slug(text: str) -> bool:
    return SLUG.match(text) is not None


def base_slug(title: str | None) -> str:
    """A valid slug from a title ("Hello, Wörld!" -> hello-world), or the fallback."""
    made = slugify(title or "", max_length=MAX_LENGTH, word_boundary=True, save_order=True)
    return made if is_slug(made) else FALLBACK


def title_of(fields: Iterable[Mapping[str, Any]], values: Mapping[int, str | None]) -> str | None:
    """The title-like value among a node's text values: `fields` are field definitions (id, name,
    type) in order, `values` their texts by field id."""
    texts = [(f["name"], values.get(f["id"])) for f in fields if f["type"] == "text"]
    texts = [(name, value) for name, value in texts if value and value.strip()]
    for wanted in TITLE_NAMES:
        for name, value in texts:
            if name.lower() == wanted:
                return value
    return texts[0][1] if texts else None


def stem(base: str) -> str:
    """What every candidate of `base` starts with (candidates are shortened to fit a suffix)."""
    return base[:MAX_LENGTH - 10]


def free_slug(base: str, taken: Iterable[str]) -> str:
    """`base`, or `base-2`, `base-3`, … : the first not in `taken`."""
    taken = set(taken)
    candidate, number = base, 2
    while candidate in taken:
        suffix = f"-{number}"
        candidate, number = base[:MAX_LENGTH - len(suffix)].rstrip("-") + suffix, number + 1
    return candidate


def tree_path(parent_path: str | None, slug: str) -> str:
    return slug if parent_path is None else f"{parent_path}/{slug}"


def depth_of(path: str) -> int:
    """0 for a root node, 1 for its children, …"""
    return path.count("/")


async def backfill(session) -> None:
    """Give every node without a slug one derived from its title-like value, free among its
    siblings, and every node its tree path, from the roots down."""
    nodes = sa.table("content_data", sa.column("id"), sa.column("route_id"), sa.column("parent_id"),
                     sa.column("position"), sa.column("slug"), sa.column("tree_path"))
    values = sa.table("content_fields", sa.column("content_data_id"), sa.column("field_id"), sa.column("value"))
    fields = sa.table("fields", sa.column("id"), sa.column("name"), sa.column("type"))
    rows = await session.fetch_all(sa.select(nodes).order_by(nodes.c.route_id, nodes.c.parent_id, nodes.c.position, nodes.c.id))
    texts: dict[int, list[dict]] = {}
    for row in await session.fetch_all(
            sa.select(values.c.content_data_id, values.c.field_id, values.c.value, fields.c.name, fields.c.type)
            .join(fields, fields.c.id == values.c.field_id).where(fields.c.type == "text").order_by(values.c.field_id)):
        texts.setdefault(row["content_data_id"], []).append(row)
    children: dict[Any, list[dict]] = {}
    for row in rows:
        children.setdefault((row["route_id"], row["parent_id"]), []).append(row)

    async def name(siblings: list[dict], parent_path: str | None) -> None:
        taken = {row["slug"] for row in siblings if row["slug"] is not None}
        for row in siblings:
            slug = row["slug"]
            if slug is None:
                mine = texts.get(row["id"], [])
                title = title_of(({"id": v["field_id"], "name": v["name"], "type": v["type"]} for v in mine),
                                 {v["field_id"]: v["value"] for v in mine})
                slug = free_slug(base_slug(title), taken)
                taken.add(slug)
            path = tree_path(parent_path, slug)
            await session.execute(sa.update(nodes).where(nodes.c.id == row["id"]).values(slug=slug, tree_path=path))
            await name(children.get((row["route_id"], row["id"]), []), path)

    for (route_id, parent_id), siblings in children.items():
        if parent_id is None:
            await name(siblings, None)
