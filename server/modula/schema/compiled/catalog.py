"""What the fast path may compile in one schema: the generated root fields of plugin tables and
the generated object types, with the plugin that owns each table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modula.db.introspection import ColumnSpec
from modula.schema import naming
from modula.schema.filters import COMPARABLE
from modula.schema.table_types import ArrayRelation, ObjectRelation, TableApi


@dataclass(frozen=True)
class GeneratedRoot:
    """A root field generated for a plugin table: `list`, `one` (by primary key), `aggregate`
    or `insert_one`."""

    kind: str
    api: TableApi
    binding: Any  # the PluginBinding of the plugin that owns the table (for writes and hooks)


@dataclass
class TableFields:
    """A generated object type's fields the fast path understands, by GraphQL name; any other
    field (Lua, core relations) is not here, so an operation selecting it falls back."""

    api: TableApi
    columns: dict[str, ColumnSpec]
    objects: dict[str, ObjectRelation]
    arrays: dict[str, ArrayRelation]
    filter_keys: frozenset[str] = frozenset()  # the fields of the table's filter input
    orderable: frozenset[str] = frozenset()  # the fields of its order input

    @classmethod
    def of(cls, api: TableApi) -> TableFields:
        columns = {naming.column_field(c.name): c for c in api.spec.columns}
        orderable = frozenset(name for name, c in columns.items() if c.type in COMPARABLE | {"boolean"})
        return cls(api, columns, {rel.field: rel for rel in api.object_relations},
                   {rel.field: rel for rel in api.array_relations}, frozenset(columns) | {"and", "or", "not"}, orderable)


@dataclass
class Catalog:
    roots: dict[str, GeneratedRoot] = field(default_factory=dict)  # GraphQL root field name ->
    types: dict[str, TableFields] = field(default_factory=dict)  # GraphQL type name ->
    tables: dict[str, TableFields] = field(default_factory=dict)  # table name (within its plugin) ->
    inputs: set[str] = field(default_factory=set)  # input types a variable may have: filter, order, insert
    # core root field name -> its planner (Planner, field nodes) -> a value that renders itself
    core: dict[str, Any] = field(default_factory=dict)
    # core mutation name -> its planner (Planner, response key, field nodes) -> a write that runs itself
    core_writes: dict[str, Any] = field(default_factory=dict)
    # datatype id -> the GraphQL type its content nodes have (`Article`); any other: `Content`
    content_types: dict[int, str] = field(default_factory=dict)

    def add(self, api: TableApi, binding: Any) -> None:
        fields = TableFields.of(api)
        self.types[api.names.type] = fields
        self.tables[api.spec.name] = fields
        self.roots[api.names.list] = GeneratedRoot("list", api, binding)
        self.roots[api.names.aggregate] = GeneratedRoot("aggregate", api, binding)
        if api.spec.primary_key:
            self.roots[api.names.one] = GeneratedRoot("one", api, binding)
        self.roots[api.names.insert_one] = GeneratedRoot("insert_one", api, binding)
        self.inputs |= {api.names.derived(suffix) for suffix in ("Filter", "OrderBy", "InsertInput")}

    def merge(self, other: Catalog) -> None:
        self.roots.update(other.roots)
        self.types.update(other.types)
        self.tables.update(other.tables)
        self.inputs |= other.inputs
        self.core.update(other.core)
        self.core_writes.update(other.core_writes)
