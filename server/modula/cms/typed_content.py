"""The content of one datatype seen as a table: its nodes' own columns plus one typed column per
field, so the generic CRUD builder filters, orders, counts and aggregates it in SQL.

The values stay in `content_fields` (EAV); each field becomes a scalar subquery over the typed
copy its type stores (`value_number`, `value_time` or the text), so `views > 10` compares numbers
and `publishedOn` compares dates, on both dialects.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from modula.cms.content import Visibility
from modula.cms.datatypes import fields_of_datatypes, list_datatypes
from modula.db import core_tables as t
from modula.db.connection import Session
from modula.db.crud import TableCrud, Where
from modula.db.introspection import ColumnSpec, TableSpec
from modula.db.types import UTCDateTime

# field type -> the column type the CRUD builder treats its values as
COLUMN_KINDS = {
    "text": "text", "richtext": "text", "integer": "integer", "number": "real", "boolean": "boolean",
    "date": "date", "datetime": "datetime", "json": "json", "media": "integer", "content": "integer",
}
_SQL_TYPES = {
    "text": sa.Text(), "integer": sa.BigInteger(), "real": sa.Float(), "boolean": sa.Boolean(), "date": sa.Date(),
    "datetime": UTCDateTime(), "json": sa.Text(),
}


def _column(name: str, kind: str, *, nullable: bool = True, key: bool = False) -> ColumnSpec:
    return ColumnSpec(name=name, type=kind, nullable=nullable and not key, has_default=key, primary_key=key, autoincrement=key)


# The node's own columns, as every datatype's table has them.
NODE_COLUMNS = (
    _column("id", "integer", key=True),
    _column("route_id", "integer", nullable=False),
    _column("parent_id", "integer"),
    _column("author_id", "integer"),
    _column("datatype_id", "integer", nullable=False),
    _column("position", "integer", nullable=False),
    _column("status", "text", nullable=False),
    _column("slug", "text"),
    _column("tree_path", "text"),
    _column("created_at", "datetime", nullable=False),
    _column("updated_at", "datetime", nullable=False),
)


# Every node, whatever its datatype, over its own columns (the generic `contents` listing).
NODES = TableCrud(TableSpec(name=t.content_data.name, columns=NODE_COLUMNS, primary_key=("id",)))


@dataclass(frozen=True)
class TypedField:
    id: int
    name: str
    label: str
    type: str
    required: bool
    data: str | None  # JSON text, as stored

    @property
    def settings(self) -> Any:
        return None if self.data is None else json.loads(self.data)


@dataclass(frozen=True)
class DatatypeShape:
    """A datatype and its fields, as the schema is generated from it (hashable: builds cache on it)."""

    id: int
    label: str
    type: str
    fields: tuple[TypedField, ...]

    @property
    def spec(self) -> TableSpec:
        columns = (*NODE_COLUMNS, *(_column(f.name, COLUMN_KINDS[f.type]) for f in self.fields))
        return TableSpec(name=f"datatype_{self.type}", columns=columns, primary_key=("id",))

    def field(self, name: str) -> TypedField:
        return next(f for f in self.fields if f.name == name)


async def datatype_shapes(session: Session) -> list[DatatypeShape]:
    """Every datatype with its fields in order (two statements)."""
    datatypes = await list_datatypes(session)
    grouped: dict[int, list[TypedField]] = {d["id"]: [] for d in datatypes}
    for row in await fields_of_datatypes(session, list(grouped)):
        grouped[row["datatype_id"]].append(TypedField(row["id"], row["name"], row["label"], row["type"],
                                                      bool(row["required"]), row["data"]))
    return [DatatypeShape(d["id"], d["label"], d["type"], tuple(grouped[d["id"]])) for d in datatypes]


def _typed_value(field: TypedField, dialect: str) -> sa.ColumnElement:
    cf = t.content_fields
    kind = COLUMN_KINDS[field.type]
    if kind in ("text", "json"):
        return cf.c.value
    if kind == "boolean":
        return cf.c.value_number != 0
    if kind == "integer":
        return sa.cast(cf.c.value_number, sa.BigInteger)
    if kind == "date":  # stored as midnight UTC
        return sa.cast(cf.c.value_time, sa.Date) if dialect == "postgresql" else sa.func.date(cf.c.value_time)
    return cf.c.value_number if kind == "real" else cf.c.value_time


def _pivot(shape: DatatypeShape, dialect: str) -> sa.Subquery:
    cd, cf = t.content_data, t.content_fields
    columns: list[sa.ColumnElement] = [cd.c[c.name] for c in NODE_COLUMNS]
    for field in shape.fields:
        value = (sa.select(_typed_value(field, dialect))
                 .where(cf.c.content_data_id == cd.c.id, cf.c.field_id == field.id).scalar_subquery())
        columns.append(sa.type_coerce(value, _SQL_TYPES[COLUMN_KINDS[field.type]]).label(field.name))
    return sa.select(*columns).where(cd.c.datatype_id == shape.id).subquery(shape.spec.name)


class TypedContent(TableCrud):
    """Reads over one datatype's nodes with typed columns; writes go through cms/content.py."""

    def __init__(self, shape: DatatypeShape, dialect: str) -> None:
        super().__init__(shape.spec)
        self.shape = shape
        self.table = _pivot(shape, dialect)


@functools.lru_cache(maxsize=1024)
def typed_content(shape: DatatypeShape, dialect: str) -> TypedContent:
    return TypedContent(shape, dialect)


def visibility_filter(visible: Visibility | None) -> Where | None:
    """`Visibility` as a filter over the node columns (None: every node)."""
    if visible is None:
        return None
    parts: list[Where] = [{"status": {"eq": "published"}}] if visible.published else []
    if visible.author_id is not None:
        parts.append({"author_id": {"eq": visible.author_id}})
    return {"or": parts}
