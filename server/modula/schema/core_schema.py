"""The core CMS root fields: queries and mutations that call the typed `cms` services."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from modula.cms import content, content_tree, datatypes, routes, sites
from modula.cms.datatypes import NewField
from modula.schema.guards import content_visibility, require, require_content
from modula.schema.paging import page
from modula.schema.auth_schema import AuthMutation, AuthQuery
from modula.schema.media_schema import MediaMutation, MediaQuery
from modula.schema.plugin_admin import PluginMutation, PluginQuery
from modula.schema.core_types import (
    Content,
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
    status: str = strawberry.field(default="published", description="draft or published")


async def _content_event(info: CoreInfo, event: str, row: dict) -> None:
    await info.context.core_event(event, "content", row, info.field_name)


async def _require_node(info: CoreInfo, node_id: int, action: str) -> None:
    require(info, action, "content")
    row = await info.context.loaders.content.load(node_id)
    if row is not None:  # a missing node is the service's NOT_FOUND
        require_content(info, row, action)


@strawberry.type
class Query(AuthQuery, PluginQuery, MediaQuery):
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
    async def content(self, info: CoreInfo, id: int) -> Content | None:
        require(info, "read", "content")
        return Content.visible(info, await info.context.loaders.content.load(id))

    @strawberry.field(description="Content nodes by id order, optionally of one route and/or datatype.")
    async def contents(
        self,
        info: CoreInfo,
        route_id: int | None = None,
        datatype_id: int | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Content]:
        size, start = page(info.context.settings, limit, offset)
        rows = await content.list_contents(
            info.context.session, route_id=route_id, datatype_id=datatype_id, limit=size, offset=start,
            visible=content_visibility(info),
        )
        return [Content.from_row(row) for row in rows]


@strawberry.type
class Mutation(PluginMutation, AuthMutation, MediaMutation):
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
        new_fields = [NewField(label=f.label, type=f.type, required=f.required, data=f.data) for f in input.fields]
        row = await datatypes.create_datatype(info.context.session, label=input.label, type=input.type, new_fields=new_fields)
        return Datatype.from_row(row)

    @strawberry.mutation(description="Create a content node and all its field values, all or nothing.")
    async def create_content(self, info: CoreInfo, input: CreateContentInput) -> Content:
        new = content.NewContent(
            route_id=input.route_id,
            datatype_id=input.datatype_id,
            parent_id=input.parent_id,
            fields=[content.FieldValue(field_id=f.field_id, value=f.value) for f in input.fields],
            status=input.status,
            author_id=info.context.viewer.user_id,
        )
        require(info, "create", "content")
        row = await content.create_content(info.context.session, new)
        await _content_event(info, "after_insert", row)
        return Content.from_row(row)

    @strawberry.mutation(description="Set field values; a null value clears an optional field.")
    async def update_content(
        self, info: CoreInfo, id: int, fields: list[FieldValueInput], status: str | None = None
    ) -> Content:
        await _require_node(info, id, "update")
        values = [content.FieldValue(field_id=f.field_id, value=f.value) for f in fields]
        row = await content.update_content(info.context.session, id, values, status=status)
        await _content_event(info, "after_update", row)
        return Content.from_row(row)

    @strawberry.mutation(description="Delete a content node and its whole subtree.")
    async def delete_content(self, info: CoreInfo, id: int) -> DeleteContentResult:
        await _require_node(info, id, "delete")
        deleted = await content.delete_content(info.context.session, id)
        await _content_event(info, "after_delete", {"id": id, "deleted_ids": deleted})
        return DeleteContentResult(deleted_ids=deleted)

    @strawberry.mutation(description="Move a node under another parent (null: the route's root) at a position (null: last).")
    async def move_content(
        self, info: CoreInfo, id: int, parent_id: int | None = None, position: int | None = None
    ) -> Content:
        await _require_node(info, id, "update")
        return Content.from_row(await content_tree.move_content(info.context.session, id, parent_id, position))
