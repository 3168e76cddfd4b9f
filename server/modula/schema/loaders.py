"""Per-request DataLoaders: every relationship is fetched in batches, one statement per batch."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from strawberry.dataloader import DataLoader

from modula.auth import users
from modula.cms import content, datatypes, media, paths, routes, sites
from modula.db.connection import Session

Row = dict[str, Any]


def _by_key(fetch: Callable[[Session, list], Awaitable[list[Row]]], session: Session, key: str = "id"):
    async def load(keys: list) -> list[Row | None]:
        rows = {row[key]: row for row in await fetch(session, list(keys))}
        return [rows.get(k) for k in keys]

    return DataLoader(load_fn=load)


def _grouped(fetch: Callable[[Session, list], Awaitable[list[Row]]], session: Session, key: str):
    async def load(keys: list) -> list[list[Row]]:
        groups: dict[Any, list[Row]] = defaultdict(list)
        for row in await fetch(session, list(keys)):
            groups[row[key]].append(row)
        return [groups.get(k, []) for k in keys]

    return DataLoader(load_fn=load)


def _aligned(fetch: Callable[[Session, list], Awaitable[list]], session: Session):
    """A loader over a fetch that answers one item per key, in the keys' order."""
    async def load(keys: list) -> list:
        return await fetch(session, list(keys))

    return DataLoader(load_fn=load)


class Loaders:
    """The loaders of one request; each is created on first use."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._made: dict[Any, DataLoader] = {}

    def keyed(self, key: Any, factory: Callable[[], DataLoader]) -> DataLoader:
        """The request's loader for `key`, made by `factory` on first use (generated relationships)."""
        loader = self._made.get(key)
        if loader is None:
            loader = self._made[key] = factory()
        return loader

    @property
    def site(self) -> DataLoader:
        return self.keyed("site", lambda: _by_key(sites.sites_by_ids, self.session))

    @property
    def route(self) -> DataLoader:
        return self.keyed("route", lambda: _by_key(routes.routes_by_ids, self.session))

    @property
    def datatype(self) -> DataLoader:
        return self.keyed("datatype", lambda: _by_key(datatypes.datatypes_by_ids, self.session))

    @property
    def datatype_fields(self) -> DataLoader:
        return self.keyed("datatype_fields", lambda: _grouped(datatypes.fields_of_datatypes, self.session, "datatype_id"))

    @property
    def content(self) -> DataLoader:
        return self.keyed("content", lambda: _by_key(content.contents_by_ids, self.session))

    @property
    def children(self) -> DataLoader:
        return self.keyed("children", lambda: _grouped(content.children_of, self.session, "parent_id"))

    @property
    def ancestors(self) -> DataLoader:
        """(route_id, tree_path) -> the nodes above, root first."""
        return self.keyed("ancestors", lambda: _aligned(paths.ancestors_of, self.session))

    @property
    def siblings(self) -> DataLoader:
        """(route_id, parent_id) -> the nodes under that parent, in order."""
        return self.keyed("siblings", lambda: _aligned(paths.siblings_of, self.session))

    def descendants(self, depth: int | None, where: dict | None) -> DataLoader:
        """(route_id, tree_path) -> the nodes below, one loader per (depth, filter) asked for."""
        key = ("descendants", depth, json.dumps(where, sort_keys=True, default=str))
        return self.keyed(key, lambda: _aligned(
            lambda session, keys: paths.descendants_of(session, keys, depth, where), self.session))

    @property
    def values(self) -> DataLoader:
        return self.keyed("values", lambda: _grouped(content.values_of, self.session, "content_data_id"))

    @property
    def user(self) -> DataLoader:
        return self.keyed("user", lambda: _by_key(lambda session, ids: users.list_users(session, user_ids=ids), self.session))

    @property
    def media(self) -> DataLoader:
        return self.keyed("media", lambda: _by_key(media.media_by_ids, self.session))

    @property
    def media_dimensions(self) -> DataLoader:
        return self.keyed("media_dimensions", lambda: _grouped(media.dimensions_of, self.session, "media_id"))
