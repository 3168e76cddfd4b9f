"""The GraphQL API generated per datatype: `type Article implements ContentNode` with one typed
field per datatype field, `articles` / `articlesConnection` / `article(id:)` / `articlesAggregate`,
and the typed writes `createArticle`, `updateArticle`, `deleteArticle`.

Names follow the plugin-table rules (naming.py); filters, orders and aggregates are SQL over the
typed value columns (cms/typed_content.py); every write is the coupled write of cms/content.py
with the error paths renamed to the typed input (`["input", "views"]`). Reads and writes check
the same `content` permissions as the generic API.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import strawberry
from strawberry.scalars import JSON

from modula.cms import content
from modula.cms.typed_content import COLUMN_KINDS, DatatypeShape, TypedField, typed_content, visibility_filter
from modula.db.introspection import TableSpec
from modula.errors import InvalidInput, ModulaError, not_found
from modula.schema import naming
from modula.schema.content_nodes import ContentNodes, TypedType
from modula.schema.content_filters import ContentStatus, ContentStatusFilter, stored_status
from modula.schema.core_schema import content_event
from modula.schema.core_types import ContentNode, DeleteContentResult
from modula.schema.dynamic import TypeFactory, python_name, resolver
from modula.schema.filters import (COMPARABLE, FILTERS, NUMERIC, SCALARS, UNSET, DateTimeFilter, IntFilter,
                                   OrderDirection, PageInfo, StringFilter, given, to_order, to_where)
from modula.schema.guards import content_visibility, narrowed, require, require_content
from modula.schema.paging import cursor, page, position
from modula.schema.table_fields import reported
from modula.schema.table_types import aggregate_type

Fields = dict[str, tuple[Any, Any]]

# GraphQL field -> column, for the node's own columns a filter or an order may name.
_NODE_FILTERS = {"id": ("id", IntFilter), "status": ("status", ContentStatusFilter), "slug": ("slug", StringFilter),
                 "routeId": ("route_id", IntFilter),
                 "parentId": ("parent_id", IntFilter), "createdAt": ("created_at", DateTimeFilter),
                 "updatedAt": ("updated_at", DateTimeFilter)}
_NODE_ORDERS = {"id": "id", "position": "position", "status": "status", "slug": "slug", "createdAt": "created_at",
                "updatedAt": "updated_at"}


@dataclass
class DatatypePart:
    """One datatype's share of the schema."""

    shape: DatatypeShape
    names: naming.DatatypeNames
    query: Fields = field(default_factory=dict)
    mutation: Fields = field(default_factory=dict)

    @property
    def type_names(self) -> set[str]:
        return set(self.names.types())


def _scalar(f: TypedField) -> Any:
    return JSON if f.type == "json" else SCALARS[COLUMN_KINDS[f.type]]


def _as_text(f: TypedField, value: Any) -> str:
    """A typed input value in the generic API's text form, for cms/content.py to check and store."""
    if f.type == "boolean":
        return "true" if value else "false"
    if f.type == "json":
        return json.dumps(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _renamed(error: ModulaError, rename: dict[tuple, tuple]) -> ModulaError:
    """The service's error with its paths in the typed input's terms (("input", "fields", 2, "value")
    -> ("input", "views"))."""
    def one(problem: ModulaError) -> ModulaError:
        for prefix, replacement in rename.items():
            if problem.path[:len(prefix)] == prefix:
                return ModulaError(problem.code, problem.reason, replacement)
        return problem

    if isinstance(error, InvalidInput):
        return InvalidInput([one(p) for p in error.problems])
    return one(error)


class _Generated:
    """The classes of one datatype: the object and its filter made empty first (`_finish` fills
    them), so content fields and nested filters can name any datatype's types."""

    def __init__(self, factory: TypeFactory, shape: DatatypeShape) -> None:
        self.shape = shape
        self.names = naming.datatype_names(shape.type)
        derived = self.names.table.derived
        self.object = factory.raw_class(self.names.table.type, bases=(ContentNode,))
        self.filter = factory.raw_class(derived("Filter"))
        self.order_by = factory.raw_class(derived("OrderBy"))
        # python attribute of the filter / order input -> column of TypedContent
        self.columns = {python_name(g): c for g, (c, _) in _NODE_FILTERS.items()}
        self.columns |= {python_name(f.name): f.name for f in shape.fields}
        self.order_columns = {python_name(name): column for name, column in _NODE_ORDERS.items()}
        self.order_columns |= {python_name(f.name): f.name for f in shape.fields}
        # made by _finish
        self.create_input: type | None = None
        self.set_input: type | None = None
        self.connection: type | None = None
        self.aggregate: type | None = None
        self.numeric: list[str] = []  # columns sum and avg take
        self.comparable: list[str] = []  # columns min and max take


def datatype_parts(factory: TypeFactory, shapes: list[DatatypeShape], nodes: ContentNodes) -> list[DatatypePart]:
    """Types and root fields for each datatype; registers each type in `nodes`."""
    made = {shape.id: _Generated(factory, shape) for shape in shapes}
    by_type = {g.shape.type: g for g in made.values()}
    parts = []
    for generated in made.values():
        _finish(factory, generated, by_type)
        nodes.types[generated.shape.id] = TypedType(generated.shape, generated.object)
        part = DatatypePart(generated.shape, generated.names)
        part.query = _queries(generated, nodes)
        part.mutation = _mutations(generated, nodes)
        parts.append(part)
    return parts


# --- types ----------------------------------------------------------------------------------


def _finish(factory: TypeFactory, g: _Generated, by_type: dict[str, _Generated]) -> None:
    shape, derived = g.shape, g.names.table.derived
    # The ids content fields hold; their resolvers load the nodes. (A trailing "_": no field name has one.)
    fields: Fields = {"references_": (strawberry.Private[dict[str, int | None]], dataclasses.field(default_factory=dict))}
    for f in shape.fields:
        attribute = python_name(f.name)
        if f.type == "content":
            fields[attribute] = _reference_field(f, by_type)
        else:
            annotation = _scalar(f) if f.required else _scalar(f) | None
            fields[attribute] = (annotation, strawberry.field(name=f.name, description=f.label))
    factory.finish_object(g.object, fields, description=f"A content node of the datatype {shape.label!r} ({shape.type}).")

    filters: Fields = {python_name(name): (kind | None, strawberry.field(default=UNSET, name=name))
                       for name, (_, kind) in _NODE_FILTERS.items()}
    for f in shape.fields:
        filters[python_name(f.name)] = (FILTERS[COLUMN_KINDS[f.type]] | None, strawberry.field(default=UNSET, name=f.name))
    filters["and_"] = (list[g.filter] | None, strawberry.field(default=UNSET, name="and", description="all of these"))
    filters["or_"] = (list[g.filter] | None, strawberry.field(default=UNSET, name="or", description="any of these"))
    filters["not_"] = (g.filter | None, strawberry.field(default=UNSET, name="not", description="not this"))
    factory.finish_input(g.filter, filters, description=f"Which {shape.type} nodes: every given condition must hold.")

    orders: Fields = {python_name(name): (OrderDirection | None, strawberry.field(default=UNSET, name=name))
                      for name in _NODE_ORDERS}
    for f in shape.fields:
        if COLUMN_KINDS[f.type] in COMPARABLE | {"boolean"}:
            orders[python_name(f.name)] = (OrderDirection | None, strawberry.field(default=UNSET, name=f.name))
    factory.finish_input(g.order_by, orders, description="One field per item, e.g. [{views: DESC}, {title: ASC}].")

    def value_input(f: TypedField, required: bool) -> tuple[Any, Any]:
        scalar = int if f.type == "content" else _scalar(f)
        return (scalar if required else scalar | None), strawberry.field(default=UNSET, name=f.name, description=f.label)

    create = {"route_id": (int, strawberry.field(default=UNSET, name="routeId")),
              "parent_id": (int | None, strawberry.field(default=UNSET, name="parentId")),
              "slug": (str | None, strawberry.field(default=None, description="Unique among its siblings; derived "
                                                    "from a title-like field when not given")),
              "status": (ContentStatus, strawberry.field(default=ContentStatus.DRAFT,
                                                         description="New content is a draft unless asked otherwise."))}
    create |= {python_name(f.name): value_input(f, f.required) for f in shape.fields}
    g.create_input = factory.input_type(derived("CreateInput"), create, description=f"A new {shape.type} node and its values.")
    sets = {"status": (ContentStatus | None, strawberry.field(default=UNSET)),
            "slug": (str | None, strawberry.field(default=UNSET, description="A new slug: the node's and its "
                                                  "descendants' paths change with it"))}
    sets |= {python_name(f.name): value_input(f, False) for f in shape.fields}
    g.set_input = factory.input_type(derived("SetInput"), sets,
                                     description="The values to change; null clears an optional field.")

    edge = factory.object_type(derived("Edge"), {"cursor": (str, strawberry.field()), "node": (g.object, strawberry.field())})
    g.connection = factory.object_type(derived("Connection"), {
        "edges": (list[edge], strawberry.field()),
        "page_info": (PageInfo, strawberry.field()),
        "total_count": (int, strawberry.field(resolver=_total_count)),
    })
    values = {f.name for f in shape.fields if f.type not in ("media", "content")}  # ids are not quantities
    typed_columns = tuple(c for c in shape.spec.columns if c.name in values)
    g.aggregate = aggregate_type(factory, SimpleNamespace(
        spec=TableSpec(name=shape.spec.name, columns=typed_columns, primary_key=()), names=g.names.table))
    g.numeric = [c.name for c in typed_columns if c.type in NUMERIC]
    g.comparable = [c.name for c in typed_columns if c.type in COMPARABLE]


async def _total_count(root: strawberry.Parent[Any]) -> int:
    return await root["count"]()


def _reference_field(f: TypedField, by_type: dict[str, _Generated]) -> tuple[Any, Any]:
    """A `content` field: the node it names, typed when its settings name a datatype (`{"datatype":
    "article"}`), else any ContentNode; null when the viewer may not see it (or it is of another datatype)."""
    settings = f.settings
    target = by_type.get(settings.get("datatype")) if isinstance(settings, dict) else None
    returns = (target.object if target else ContentNode) | None

    async def resolve(root, info):
        node_id = root.references_.get(f.name)
        if node_id is None:
            return None
        row = await info.context.loaders.content.load(node_id)
        if row is not None and target and row["datatype_id"] != target.shape.id:
            return None
        return await info.schema.content_nodes.visible(info, row)

    return returns, strawberry.field(resolver=resolver(resolve, {}, returns, name=f.name), name=f.name, description=f.label)


# --- queries --------------------------------------------------------------------------------


def _queries(g: _Generated, nodes: ContentNodes) -> Fields:
    shape, names = g.shape, g.names.table
    typed = nodes.types[shape.id]

    def filters(info, where) -> dict | None:
        visible = visibility_filter(content_visibility(info))
        with reported():
            return narrowed(to_where(where, g.columns, ("where",)), visible)

    def crud(info):
        return typed_content(shape, info.context.session.dialect)

    async def rows(root, info, where=UNSET, order_by=UNSET, limit=None, offset=None):
        size, start = page(info.context.settings, limit, offset)
        condition = filters(info, where)
        with reported():
            found = await crud(info).find(info.context.session, where=condition, limit=size, offset=start,
                                          order_by=to_order(order_by, g.order_columns, ("orderBy",)))
        return [typed.instance(row) for row in found]

    async def connection(root, info, where=UNSET, order_by=UNSET, first=None, after=None):
        size, _ = page(info.context.settings, first, None, names=("first", "offset"))
        start = position(after)
        condition = filters(info, where)
        with reported():
            found = await crud(info).find(info.context.session, where=condition, limit=size + 1, offset=start,
                                          order_by=to_order(order_by, g.order_columns, ("orderBy",)))
        edges = [{"cursor": cursor(start + i), "node": typed.instance(row)} for i, row in enumerate(found[:size])]

        async def count() -> int:
            return await crud(info).count(info.context.session, where=condition)

        page_info = PageInfo(has_next_page=len(found) > size, has_previous_page=start > 0,
                             start_cursor=edges[0]["cursor"] if edges else None, end_cursor=edges[-1]["cursor"] if edges else None)
        return {"edges": edges, "page_info": page_info, "count": count}

    async def one(root, info, id):
        found = await crud(info).find(info.context.session, where=narrowed({"id": {"eq": id}}, filters(info, None)), limit=1)
        return typed.instance(found[0]) if found else None

    async def aggregate(root, info, where=UNSET):
        condition = filters(info, where)
        with reported():
            return await crud(info).aggregate(info.context.session, where=condition, sum=g.numeric, avg=g.numeric,
                                              min=g.comparable, max=g.comparable)

    listing = {"where": (g.filter | None, UNSET), "order_by": (list[g.order_by] | None, UNSET)}
    about = f"{shape.type} nodes"
    return {
        names.list: (list[g.object], strawberry.field(
            resolver=resolver(rows, {**listing, "limit": (int | None, UNSET), "offset": (int | None, UNSET)}, list[g.object],
                              name=names.list), name=names.list, description=f"The {about}, by id unless ordered.")),
        names.connection: (g.connection, strawberry.field(
            resolver=resolver(connection, {**listing, "first": (int | None, UNSET), "after": (str | None, UNSET)}, g.connection,
                              name=names.connection), name=names.connection, description=f"The {about} as a Relay connection.")),
        names.one: (g.object | None, strawberry.field(
            resolver=resolver(one, {"id": (int, UNSET)}, g.object | None, name=names.one), name=names.one,
            description=f"One {shape.type} node by id, or null.")),
        names.aggregate: (g.aggregate, strawberry.field(
            resolver=resolver(aggregate, {"where": (g.filter | None, UNSET)}, g.aggregate, name=names.aggregate),
            name=names.aggregate)),
    }


# --- mutations ------------------------------------------------------------------------------


def _mutations(g: _Generated, nodes: ContentNodes) -> Fields:
    shape, names = g.shape, g.names
    typed = nodes.types[shape.id]

    def values(obj: Any, *, keep_null: bool) -> tuple[list[content.FieldValue], list[str]]:
        chosen = [(f, getattr(obj, python_name(f.name))) for f in shape.fields]
        chosen = [(f, v) for f, v in chosen if v is not UNSET and (keep_null or v is not None)]
        return ([content.FieldValue(f.id, None if v is None else _as_text(f, v)) for f, v in chosen],
                [f.name for f, _ in chosen])

    async def reread(info, node_id: int) -> Any:
        rows = await typed_content(shape, info.context.session.dialect).by_keys(info.context.session, "id", [node_id])
        return typed.instance(rows[node_id][0])

    async def node_of_this_type(info, node_id: int, action: str) -> dict:
        require(info, action, "content")
        row = await info.context.loaders.content.load(node_id)
        if row is None or row["datatype_id"] != shape.id:
            raise not_found(shape.type, node_id, ("id",))
        require_content(info, row, action)
        return row

    async def create(root, info, input):
        fields, order = values(input, keep_null=False)
        parent_id = input.parent_id if given(input.parent_id) else None
        new = content.NewContent(route_id=input.route_id, datatype_id=shape.id, parent_id=parent_id, fields=fields,
                                 status=input.status.value, author_id=info.context.viewer.user_id, slug=input.slug)
        require(info, "create", "content")
        try:
            async with info.context.core_change("content") as record:
                row = await content.create_content(info.context.session, new)
                await record("insert", row)
        except ModulaError as exc:
            raise _renamed(exc, {("input", "fields", i): ("input", name) for i, name in enumerate(order)}) from None
        await content_event(info, "after_insert", row)
        return await reread(info, row["id"])

    async def update(root, info, id, set):
        await node_of_this_type(info, id, "update")
        fields, order = values(set, keep_null=True)
        status = None if set.status is UNSET else stored_status(set.status)
        slug = None if set.slug is UNSET else set.slug
        if not fields and status is None and slug is None:
            raise ModulaError("INVALID_INPUT", "give at least one value to set", ("set",))
        rename = {("fields", i): ("set", name) for i, name in enumerate(order)} | {("status",): ("set", "status"),
                                                                                     ("slug",): ("set", "slug")}
        try:
            async with info.context.core_change("content") as record:
                row = await content.update_content(info.context.session, id, fields, status=status, slug=slug)
                await record("update", row)
        except ModulaError as exc:
            raise _renamed(exc, rename) from None
        await content_event(info, "after_update", row)
        return await reread(info, id)

    async def delete(root, info, id):
        await node_of_this_type(info, id, "delete")
        async with info.context.core_change("content") as record:
            deleted = await content.delete_content(info.context.session, id)
            await record("delete", {"id": id, "deleted_ids": deleted})
        await content_event(info, "after_delete", {"id": id, "deleted_ids": deleted})
        return DeleteContentResult(deleted_ids=deleted)

    return {
        names.create: (g.object, strawberry.mutation(
            resolver=resolver(create, {"input": (g.create_input, UNSET)}, g.object, name=names.create), name=names.create,
            description=f"Create one {shape.type} node and all its values, all or nothing (createContent underneath).")),
        names.update: (g.object, strawberry.mutation(
            resolver=resolver(update, {"id": (int, UNSET), "set": (g.set_input, UNSET)}, g.object, name=names.update),
            name=names.update, description=f"Change values of one {shape.type} node; untouched fields keep theirs.")),
        names.delete: (DeleteContentResult, strawberry.mutation(
            resolver=resolver(delete, {"id": (int, UNSET)}, DeleteContentResult, name=names.delete), name=names.delete,
            description=f"Delete one {shape.type} node and its whole subtree.")),
    }
