"""The GraphQL types generated for plugin tables, made in two passes so tables can refer to each
other: first every class is created empty, then filled (columns, relationships, Lua fields).

Relationships come from foreign keys: a child's `product_id` gives it an object field `product`,
the parent gets a list field `shopProductAttributes` (with where/orderBy/limit/offset), and the
parent's insert input takes its children for nested inserts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import strawberry

from modula.db.introspection import ColumnSpec, TableSpec
from modula.schema import naming
from modula.schema.dynamic import TypeFactory, python_name
from modula.schema.filters import COMPARABLE, FILTERS, NUMERIC, SCALARS, UNSET, OrderDirection, PageInfo
from modula.schema.guards import require


@dataclass(frozen=True)
class ObjectRelation:
    """On the child: `product` -> the parent row its `product_id` names."""

    field: str
    column: str
    target: str  # table
    target_column: str
    nullable: bool


@dataclass(frozen=True)
class ArrayRelation:
    """On the parent: `shopProductAttributes` -> the child rows whose `product_id` names it."""

    field: str
    child: str  # table
    column: str  # the child's foreign key column
    parent_column: str


@dataclass
class TableApi:
    """Everything generated for one table: names, classes and how attributes map to columns."""

    spec: TableSpec
    plugin: str
    names: naming.TableNames
    attributes: dict[str, str]  # python attribute -> column
    object: type
    filter: type
    order_by: type
    insert_input: type
    set_input: type
    columns_enum: Any = None
    on_conflict: type | None = None
    response: type | None = None
    connection: type | None = None
    aggregate: type | None = None
    object_relations: list[ObjectRelation] = field(default_factory=list)
    array_relations: list[ArrayRelation] = field(default_factory=list)


def column_annotation(column: ColumnSpec, *, required: bool) -> Any:
    scalar = SCALARS[column.type]
    return scalar if required else scalar | None


def relations(specs: dict[str, TableSpec], names: dict[str, naming.TableNames] | None = None
              ) -> tuple[dict[str, list[ObjectRelation]], dict[str, list[ArrayRelation]]]:
    """Foreign keys between the given tables, as fields on both ends; `names` (table -> its API's
    names) name a child list by the list name its table chose."""
    objects: dict[str, list[ObjectRelation]] = {name: [] for name in specs}
    arrays: dict[str, list[ArrayRelation]] = {name: [] for name in specs}
    for spec in specs.values():
        taken = {naming.column_field(c.name) for c in spec.columns}
        targets = [fk.target_table for fk in spec.foreign_keys]
        for fk in spec.foreign_keys:
            if fk.target_table not in specs:
                continue
            name = naming.object_relation_field(fk.column, fk.target_table, taken)
            taken.add(name)
            column = spec.column(fk.column)
            objects[spec.name].append(ObjectRelation(name, fk.column, fk.target_table, fk.target_column, column.nullable))
            ambiguous = targets.count(fk.target_table) > 1
            child_list = names[spec.name].list if names and spec.name in names else None
            arrays[fk.target_table].append(ArrayRelation(
                naming.array_relation_field(spec.name, fk.column, ambiguous, child_list), spec.name, fk.column,
                fk.target_column))
    return objects, arrays


def create(factory: TypeFactory, plugin: str, spec: TableSpec, graphql_type: str | None = None,
           graphql_list: str | None = None) -> TableApi:
    """First pass: the classes, still empty; `graphql_type`/`graphql_list` are the names the plugin
    chose instead of the inflected ones."""
    names = naming.table_names(spec.name, graphql_type, graphql_list)
    return TableApi(
        spec=spec,
        plugin=plugin,
        names=names,
        attributes={python_name(c.name): c.name for c in spec.columns},
        object=factory.raw_class(names.type),
        filter=factory.raw_class(names.derived("Filter")),
        order_by=factory.raw_class(names.derived("OrderBy")),
        insert_input=factory.raw_class(names.derived("InsertInput")),
        set_input=factory.raw_class(names.derived("SetInput")),
    )


def finish(factory: TypeFactory, api: TableApi, apis: dict[str, TableApi], extra_fields: dict[str, tuple[Any, Any]],
           relation_fields: dict[str, tuple[Any, Any]]) -> None:
    """Second pass: fill the classes. `relation_fields` and `extra_fields` (Lua fields) are made
    by the caller, which owns the resolvers."""
    spec, names = api.spec, api.names
    nestable = {rel.column for rel in api.object_relations}

    columns = {python_name(c.name): (column_annotation(c, required=not c.nullable), strawberry.field(name=naming.column_field(c.name)))
               for c in spec.columns}
    factory.finish_object(api.object, {**columns, **relation_fields, **extra_fields}, description=f"A row of the plugin table {spec.name}.")

    filters = {python_name(c.name): (FILTERS[c.type] | None, strawberry.field(default=UNSET, name=naming.column_field(c.name)))
               for c in spec.columns}
    filters["and_"] = (list[api.filter] | None, strawberry.field(default=UNSET, name="and", description="all of these"))
    filters["or_"] = (list[api.filter] | None, strawberry.field(default=UNSET, name="or", description="any of these"))
    filters["not_"] = (api.filter | None, strawberry.field(default=UNSET, name="not", description="not this"))
    factory.finish_input(api.filter, filters, description=f"Which rows of {spec.name}: every given condition must hold.")

    order = {python_name(c.name): (OrderDirection | None, strawberry.field(default=UNSET, name=naming.column_field(c.name)))
             for c in spec.columns if c.type in COMPARABLE | {"boolean"}}
    factory.finish_input(api.order_by, order, description="One column per item, e.g. [{price: DESC}, {name: ASC}].")

    inserts = {}
    for c in spec.columns:
        required = not c.nullable and not c.has_default and c.name not in nestable
        inserts[python_name(c.name)] = (column_annotation(c, required=required),
                                        strawberry.field(default=UNSET, name=naming.column_field(c.name)))
    for rel in api.array_relations:
        child = apis[rel.child]
        inserts["rel_" + rel.field] = (list[child.insert_input] | None, strawberry.field(
            default=UNSET, name=rel.field, description=f"Rows of {rel.child} to insert with this row's {rel.parent_column}."))
    factory.finish_input(api.insert_input, inserts)

    sets = {python_name(c.name): (column_annotation(c, required=False), strawberry.field(default=UNSET, name=naming.column_field(c.name)))
            for c in spec.columns if not c.autoincrement}
    if sets:
        factory.finish_input(api.set_input, sets, description="The columns to change; null clears a nullable column.")
    else:
        api.set_input = None

    members = {naming.column_enum_value(c.name): c.name for c in spec.columns}
    api.columns_enum = strawberry.enum(enum.Enum(names.derived("Column"), members, module=__name__,
                                                 qualname=f"{factory.build}.{names.derived('Column')}"))
    keys = [spec.primary_key, *spec.unique] if spec.primary_key else list(spec.unique)
    if keys:
        api.on_conflict = factory.input_type(names.derived("OnConflict"), {
            "columns": (list[api.columns_enum], strawberry.field(description="The primary key or a unique constraint's columns.")),
            "update_columns": (list[api.columns_enum], strawberry.field(default_factory=list, description="Columns to take from the new row; empty: keep the existing row.")),
            "where": (api.filter | None, strawberry.field(default=UNSET, description="Update only existing rows that match.")),
        }, description="Upsert: what to do when an inserted row conflicts with an existing one.")

    api.response = factory.object_type(names.derived("MutationResponse"), {
        "affected_rows": (int, strawberry.field()),
        "returning": (list[api.object], strawberry.field(resolver=_returning(spec.name), description="The rows written (needs read permission).")),
    })
    edge = factory.object_type(names.derived("Edge"), {"cursor": (str, strawberry.field()), "node": (api.object, strawberry.field())})
    api.connection = factory.object_type(names.derived("Connection"), {
        "edges": (list[edge], strawberry.field()),
        "page_info": (PageInfo, strawberry.field()),
        "total_count": (int, strawberry.field(resolver=_total_count)),
    })
    api.aggregate = aggregate_type(factory, api)


def _returning(table: str):
    """The written rows of a mutation response, shown only to viewers who may read the table."""

    def returning(root: strawberry.Parent[Any], info: strawberry.Info) -> list[Any]:
        require(info, "read", table)
        return root["returning"]

    return returning


async def _total_count(root: strawberry.Parent[Any]) -> int:
    return await root["count"]()


def aggregate_type(factory: TypeFactory, api: TableApi) -> type:
    spec, names = api.spec, api.names
    numeric = [c for c in spec.columns if c.type in NUMERIC]
    comparable = [c for c in spec.columns if c.type in COMPARABLE]
    fields: dict[str, tuple[Any, Any]] = {"count": (int, strawberry.field())}

    def part(suffix: str, columns: list[ColumnSpec], annotation) -> type:
        return factory.object_type(names.derived(suffix), {
            python_name(c.name): (annotation(c) | None, strawberry.field(name=naming.column_field(c.name))) for c in columns})

    if numeric:
        fields["sum"] = (part("SumFields", numeric, lambda c: Decimal if c.type == "numeric" else float) | None, strawberry.field())
        fields["avg"] = (part("AvgFields", numeric, lambda c: float) | None, strawberry.field())
    if comparable:
        min_max = part("MinMaxFields", comparable, lambda c: SCALARS[c.type])
        fields["min"] = (min_max | None, strawberry.field())
        fields["max"] = (min_max | None, strawberry.field())
    return factory.object_type(names.derived("Aggregate"), fields, description=f"Aggregates over the matching rows of {spec.name}.")
