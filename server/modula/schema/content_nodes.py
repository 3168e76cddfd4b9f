"""How a content row becomes the GraphQL object of its datatype's generated type (`Article`), or
the generic `Content` when its datatype has none in this schema; typed values are loaded in
batches, one statement per datatype and request step."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from strawberry.dataloader import DataLoader

from modula.cms.typed_content import NODE_COLUMNS, DatatypeShape, typed_content
from modula.schema.content_filters import ContentStatus
from modula.schema.core_types import Content, CoreInfo, Row
from modula.schema.dynamic import python_name
from modula.schema.guards import content_visible

_NODE_ATTRIBUTES = tuple(c.name for c in NODE_COLUMNS)


@dataclass(frozen=True)
class TypedType:
    """One datatype's generated class in one schema build."""

    shape: DatatypeShape
    cls: type

    def instance(self, row: Row) -> Any:
        """The object for a row of `TypedContent` (node columns and one column per field)."""
        values = {python_name(f.name): row[f.name] for f in self.shape.fields if f.type != "content"}
        references = {f.name: row[f.name] for f in self.shape.fields if f.type == "content"}
        node = {name: row[name] for name in _NODE_ATTRIBUTES} | {"status": ContentStatus(row["status"])}
        return self.cls(**node, **values, references_=references)


@dataclass
class ContentNodes:
    """The generated content types of one schema, by datatype id."""

    types: dict[int, TypedType] = field(default_factory=dict)

    def type_names(self) -> dict[int, str]:
        """The GraphQL type of each datatype's nodes, by datatype id (the others are `Content`)."""
        return {datatype_id: typed.cls.__strawberry_definition__.name for datatype_id, typed in self.types.items()}

    def loader(self, info: CoreInfo, typed: TypedType, scope: str = "") -> DataLoader:
        """Typed rows by node id, batched per request and `scope`: the nodes of one tree field
        (`ancestors`, …) arrive together, so a loader of their own loads them in one batch whenever
        the other fields' nodes arrive."""
        session = info.context.session
        crud = typed_content(typed.shape, session.dialect)

        async def load(ids: list[int]) -> list[Row | None]:
            rows = await crud.by_keys(session, "id", list(ids))
            return [(rows.get(i) or [None])[0] for i in ids]

        return info.context.loaders.keyed(("typed", scope, typed.shape.id), lambda: DataLoader(load_fn=load))

    async def nodes(self, info: CoreInfo, rows: list[Row], scope: str = "") -> list[Any]:
        """The objects for `content_data` rows (already checked visible), in their order; a node
        deleted meanwhile is left out."""
        pending = []
        for row in rows:
            typed = self.types.get(row["datatype_id"])
            pending.append(self._typed(info, typed, row["id"], scope) if typed else _ready(Content.from_row(row)))
        return [node for node in await asyncio.gather(*pending) if node is not None]

    async def visible(self, info: CoreInfo, row: Row | None) -> Any | None:
        """The object for one `content_data` row, or None when there is none or the viewer may
        not see it (a node they may not see does not exist for them)."""
        if row is None or not content_visible(info, row):
            return None
        found = await self.nodes(info, [row])
        return found[0] if found else None

    async def _typed(self, info: CoreInfo, typed: TypedType, node_id: int, scope: str) -> Any:
        row = await self.loader(info, typed, scope).load(node_id)
        return None if row is None else typed.instance(row)


async def _ready(value: Any) -> Any:
    return value
