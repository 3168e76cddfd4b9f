"""The core CMS root fields: queries and mutations that call the typed `cms` services."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from modula.cms import content, content_tree, datatypes, paths, routes, sites, typed_content
from modula.cms.datatypes import NewField
from modula.errors import ModulaError
from modula.schema.guards import content_visibility, narrowed, require, require_content
from modula.schema.naming import datatype_names
from modula.schema.content_filters import (FILTER_COLUMNS, ORDER_COLUMNS, ContentFilter, ContentOrderBy, ContentStatus,
                                           stored_status)
from modula.schema.filters import to_order, to_where
from modula.schema.paging import page
from modula.schema.table_fields import reported
from modula.schema.auth_schema import AuthMutation, AuthQuery
from modula.schema.media_schema import MediaMutation, MediaQuery
from modula.schema.outbox_admin import OutboxMutation, OutboxQuery
from modula.schema.plugin_admin import PluginMutation, PluginQuery
from modula.schema.core_types import (
    Content,
    ContentNode,
    CoreInfo,
    Datatype,
    DeleteContentResult,
    Route,
    Site,
)


@strawberry.input
class CreateSiteInput:
    name: str
    hostname: str | None = None


@strawberry.input
class CreateRouteInput:
    slug: str
    title: str
    site_id: int | None = None


@strawberry.input
class FieldDefinitionInput:
    label: str
    name: str | None = strawberry.field(default=None, description="The machine name (camelCase), the field of the "
                                        "generated type; derived from the label when not given, never changed after")
    type: str = strawberry.field(description="text, richtext, integer, number, boolean, date, datetime, json, media or content")
    required: bool = False
    data: JSON | None = strawberry.field(default=None, description="Free-form settings for editors and frontends.")


@strawberry.input
class CreateDatatypeInput:
    label: str
    type: str
    fields: list[FieldDefinitionInput] = strawberry.field(default_factory=list)


@strawberry.input(description="A field value as text: numbers, booleans and dates in canonical form, json as JSON text.")
class FieldValueInput:
    field_id: int
    value: str | None


@strawberry.input
class CreateContentInput:
    route_id: int
    datatype_id: int
    parent_id: int | None = None
    fields: list[FieldValueInput] = strawberry.field(default_factory=list)
    status: ContentStatus = strawberry.field(default=ContentStatus.DRAFT, description="New content is a draft unless asked otherwise.")
    slug: str | None = strawberry.field(default=None, description="Unique among its siblings; derived from a "
                                        "title-like field when not given (hello-world, then hello-world-2, …)")


async def content_event(info: CoreInfo, event: str, row: dict) -> None:
    """Plugins watching core content hear of committed changes (`plugin.on("after_insert", "content", fn)`)."""
    await info.context.core_event(event, "content", row, info.field_name)


async def _require_node(info: CoreInfo, node_id: int, action: str) -> None:
    require(info, action, "content")
    row = await info.context.loaders.content.load(node_id)
    if row is not None:  # a missing node is the service's NOT_FOUND
        require_content(info, row, action)


def _check_names_free(info: CoreInfo, datatype_type: str) -> None:
    """A datatype's generated names may not be taken by the schema being served (core, plugins,
    other datatypes)."""
    graphql = info.schema._schema
    taken = {*graphql.type_map, *graphql.query_type.fields, *graphql.mutation_type.fields}
    generated = datatype_names(datatype_type)
    clash = sorted(set(generated.types() + generated.roots()) & taken)
    if clash:
        owners = info.schema.name_owners
        names = ", ".join(f"{name} (from {owners.get(name, 'the core schema')})" for name in clash[:5])
        raise ModulaError("NAME_TAKEN", f"type {datatype_type!r} would generate names already in use: {names}", ("input", "type"))


@strawberry.type
class Query(AuthQuery, PluginQuery, MediaQuery, OutboxQuery):
    @strawberry.field
    async def sites(self, info: CoreInfo) -> list[Site]:
        require(info, "read", "site")
        return [Site.from_row(row) for row in await sites.list_sites(info.context.session)]

    @strawberry.field
    async def routes(self, info: CoreInfo, site_id: int | None = None) -> list[Route]:
        require(info, "read", "route")
        return [Route.from_row(row) for row in await routes.list_routes(info.context.session, site_id=site_id)]

    @strawberry.field
    async def route(self, info: CoreInfo, slug: str, site_id: int | None = None) -> Route | None:
        require(info, "read", "route")
        row = await routes.find_route(info.context.session, slug=slug, site_id=site_id)
        return Route.from_row(row) if row else None

    @strawberry.field
    async def datatypes(self, info: CoreInfo) -> list[Datatype]:
        require(info, "read", "datatype")
        return [Datatype.from_row(row) for row in await datatypes.list_datatypes(info.context.session)]

    @strawberry.field
    async def datatype(self, info: CoreInfo, id: int) -> Datatype | None:
        require(info, "read", "datatype")
        row = await info.context.loaders.datatype.load(id)
        return Datatype.from_row(row) if row else None

    @strawberry.field
    async def content(self, info: CoreInfo, id: int) -> ContentNode | None:
        require(info, "read", "content")
        return await info.schema.content_nodes.visible(info, await info.context.loaders.content.load(id))

    @strawberry.field(description="Content nodes by id order (unless ordered), optionally of one route and/or datatype.")
    async def contents(
        self,
        info: CoreInfo,
        route_id: int | None = None,
        datatype_id: int | None = None,
        limit: int | None = None,
        offset: int | None = None,
        where: ContentFilter | None = None,
        order_by: list[ContentOrderBy] | None = None,
    ) -> list[ContentNode]:
        size, start = page(info.context.settings, limit, offset)
        if where is not None or order_by is not None:
            return await _filtered_contents(info, route_id, datatype_id, where, order_by, size, start)
        rows = await content.list_contents(
            info.context.session, route_id=route_id, datatype_id=datatype_id, limit=size, offset=start,
            visible=content_visibility(info),
        )
        return await info.schema.content_nodes.nodes(info, rows)

    @strawberry.field(description="The node at a path (/blog/2026/hello: the route's slug, then the node slugs from "
                                  "the root down) among the routes of `siteId` (null: routes without a site), typed "
                                  "by its datatype; null when there is none or the viewer may not see it.")
    async def content_by_path(self, info: CoreInfo, path: str, site_id: int | None = None) -> ContentNode | None:
        require(info, "read", "content")
        return await info.schema.content_nodes.visible(info, await paths.node_by_path(info.context.session, path, site_id))


async def _filtered_contents(info: CoreInfo, route_id, datatype_id, where, order_by, size: int, start: int) -> list[ContentNode]:
    visible = typed_content.visibility_filter(content_visibility(info))
    equal = {column: {"eq": value} for column, value in (("route_id", route_id), ("datatype_id", datatype_id)) if value is not None}
    with reported():
        condition = narrowed(narrowed(to_where(where, FILTER_COLUMNS, ("where",)), equal or None), visible)
        rows = await typed_content.NODES.find(info.context.session, where=condition, limit=size, offset=start,
                                              order_by=to_order(order_by, ORDER_COLUMNS, ("orderBy",)))
    return await info.schema.content_nodes.nodes(info, rows)


@strawberry.type
class Mutation(PluginMutation, AuthMutation, MediaMutation, OutboxMutation):
    @strawberry.mutation
    async def create_site(self, info: CoreInfo, input: CreateSiteInput) -> Site:
        require(info, "create", "site")
        return Site.from_row(await sites.create_site(info.context.session, name=input.name, hostname=input.hostname))

    @strawberry.mutation
    async def create_route(self, info: CoreInfo, input: CreateRouteInput) -> Route:
        require(info, "create", "route")
        row = await routes.create_route(info.context.session, slug=input.slug, title=input.title, site_id=input.site_id)
        return Route.from_row(row)

    @strawberry.mutation(description="Create a datatype with its fields, in one transaction.")
    async def create_datatype(self, info: CoreInfo, input: CreateDatatypeInput) -> Datatype:
        require(info, "create", "datatype")
        new_fields = [NewField(label=f.label, type=f.type, required=f.required, data=f.data, name=f.name) for f in input.fields]
        _check_names_free(info, input.type)
        row = await datatypes.create_datatype(info.context.session, label=input.label, type=input.type, new_fields=new_fields)
        if info.context.schemas is not None:  # serve its generated type before answering
            await info.context.schemas.datatypes_changed()
        return Datatype.from_row(row)

    @strawberry.mutation(description="Create a content node and all its field values, all or nothing.")
    async def create_content(self, info: CoreInfo, input: CreateContentInput) -> Content:
        new = content.NewContent(
            route_id=input.route_id,
            datatype_id=input.datatype_id,
            parent_id=input.parent_id,
            fields=[content.FieldValue(field_id=f.field_id, value=f.value) for f in input.fields],
            status=input.status.value,
            author_id=info.context.viewer.user_id,
            slug=input.slug,
        )
        require(info, "create", "content")
        async with info.context.core_change("content") as record:
            row = await content.create_content(info.context.session, new)
            await record("insert", row)
        await content_event(info, "after_insert", row)
        return Content.from_row(row)

    @strawberry.mutation(description="Set field values; a null value clears an optional field.")
    async def update_content(
        self, info: CoreInfo, id: int, fields: list[FieldValueInput], status: ContentStatus | None = None,
        slug: Annotated[str | None, strawberry.argument(description="A new slug: the node's and its descendants' "
                                                        "paths change with it")] = None,
    ) -> Content:
        await _require_node(info, id, "update")
        values = [content.FieldValue(field_id=f.field_id, value=f.value) for f in fields]
        async with info.context.core_change("content") as record:
            row = await content.update_content(info.context.session, id, values, status=stored_status(status), slug=slug)
            await record("update", row)
        await content_event(info, "after_update", row)
        return Content.from_row(row)

    @strawberry.mutation(description="Delete a content node and its whole subtree.")
    async def delete_content(self, info: CoreInfo, id: int) -> DeleteContentResult:
        await _require_node(info, id, "delete")
        async with info.context.core_change("content") as record:
            deleted = await content.delete_content(info.context.session, id)
            await record("delete", {"id": id, "deleted_ids": deleted})
        await content_event(info, "after_delete", {"id": id, "deleted_ids": deleted})
        return DeleteContentResult(deleted_ids=deleted)

    @strawberry.mutation(description="Move a node under another parent (null: the route's root) at a position (null: "
                                     "last), optionally with a new slug; its subtree's paths follow. Refused when it "
                                     "would be its own ancestor or its slug is taken among its new siblings.")
    async def move_content(
        self, info: CoreInfo, id: int, parent_id: int | None = None, position: int | None = None, slug: str | None = None
    ) -> Content:
        await _require_node(info, id, "update")
        return Content.from_row(await content_tree.move_content(info.context.session, id, parent_id, position, slug))
