"""The core CMS as GraphQL object types; every relationship goes through a per-request loader."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from modula.cms.paths import public_path
from modula.cms.typed_content import visibility_filter
from modula.schema.content_filters import FILTER_COLUMNS, ContentFilter, ContentStatus
from modula.schema.context import RequestContext
from modula.schema.filters import to_where
from modula.schema.guards import content_visibility, content_visible, narrowed, require

if TYPE_CHECKING:
    from modula.schema.auth_schema import User
    from modula.schema.content_nodes import ContentNodes

Row = dict[str, Any]
CoreInfo = Info[RequestContext, None]


@strawberry.type(description="A website or channel that routes can belong to.")
class Site:
    id: int
    name: str
    hostname: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_row(cls, row: Row) -> Site:
        return cls(id=row["id"], name=row["name"], hostname=row["hostname"],
                   created_at=row["created_at"], updated_at=row["updated_at"])


@strawberry.type(description="An addressable place (slug) that a content tree hangs from.")
class Route:
    id: int
    slug: str
    title: str
    created_at: dt.datetime
    updated_at: dt.datetime
    site_id: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: Row) -> Route:
        return cls(id=row["id"], slug=row["slug"], title=row["title"], site_id=row["site_id"],
                   created_at=row["created_at"], updated_at=row["updated_at"])

    @strawberry.field
    async def site(self, info: CoreInfo) -> Site | None:
        if self.site_id is None:
            return None
        require(info, "read", "site")
        row = await info.context.loaders.site.load(self.site_id)
        return Site.from_row(row) if row else None


@strawberry.type(description="The definition of one field: its label, value type and whether it is required.")
class Field:
    id: int
    name: str = strawberry.field(description="The machine name: the field of the datatype's generated type.")
    label: str
    type: str
    required: bool
    data: JSON | None
    created_at: dt.datetime

    @classmethod
    def from_row(cls, row: Row) -> Field:
        return cls(id=row["id"], name=row["name"], label=row["label"], type=row["type"], required=row["required"],
                   data=None if row["data"] is None else json.loads(row["data"]), created_at=row["created_at"])


@strawberry.type(description="A shape for content: a named, ordered list of fields.")
class Datatype:
    id: int
    label: str
    type: str
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_row(cls, row: Row) -> Datatype:
        return cls(id=row["id"], label=row["label"], type=row["type"],
                   created_at=row["created_at"], updated_at=row["updated_at"])

    @strawberry.field(description="The datatype's fields in their order.")
    async def fields(self, info: CoreInfo) -> list[Field]:
        return [Field.from_row(row) for row in await info.context.loaders.datatype_fields.load(self.id)]


@strawberry.type(description="A named size of an image media item (settings: MODULA_MEDIA_SIZES), made on upload.")
class MediaDimension:
    name: str
    url: str
    width: int
    height: int
    mime_type: str | None
    size: int | None = strawberry.field(description="Bytes.")

    @classmethod
    def from_row(cls, row: Row) -> MediaDimension:
        return cls(name=row["label"], url=row["url"], width=row["width"], height=row["height"],
                   mime_type=row["mime_type"], size=row["size_bytes"])


@strawberry.type(description="An uploaded file. Its bytes are served at `url`, a URL that may be cached for ever.")
class Media:
    id: int
    name: str = strawberry.field(description="The file name (sanitised from the uploaded one).")
    url: str
    mime_type: str | None = strawberry.field(description="As sniffed from the bytes, not as the client declared it.")
    size: int | None = strawberry.field(description="Bytes.")
    width: int | None = strawberry.field(description="Pixels, for an image the server could decode.")
    height: int | None
    alt: str | None
    folder: str | None
    content_hash: str | None = strawberry.field(description="The sha-256 of the bytes, in hex (also the ETag).")
    created_at: dt.datetime
    uploader_id: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: Row) -> Media:
        return cls(id=row["id"], name=row["name"], url=row["url"], mime_type=row["mime_type"], size=row["size_bytes"],
                   width=row.get("width"), height=row.get("height"), alt=row["alt"], folder=row.get("folder"),
                   content_hash=row.get("content_hash"), created_at=row["created_at"],
                   uploader_id=row.get("uploader_id"))

    @strawberry.field(description="The named sizes of an image, in the order they are configured.")
    async def dimensions(self, info: CoreInfo) -> list[MediaDimension]:
        return [MediaDimension.from_row(row) for row in await info.context.loaders.media_dimensions.load(self.id)]

    @strawberry.field(description="The id of the user who uploaded it (null once that user is deleted).")
    def uploaded_by_id(self) -> int | None:
        return self.uploader_id


@strawberry.type(description="One field value of a content node, as canonical text.")
class ContentField:
    id: int
    value: str | None
    field: Field = strawberry.field(description="The field this value belongs to.")

    @classmethod
    def from_row(cls, row: Row) -> ContentField:
        # The values loader fetches each value with its field definition in one statement.
        return cls(id=row["id"], value=row["value"], field=Field.from_row(row["field"]))

    @strawberry.field(description="For a `media` field, the media item the value names (batched); else null. "
                                  "Whoever may read the content may read the media it uses.")
    async def media(self, info: CoreInfo) -> Media | None:
        if self.field.type != "media" or self.value is None:
            return None
        row = await info.context.loaders.media.load(int(self.value))
        return Media.from_row(row) if row else None


def content_nodes(info: CoreInfo) -> ContentNodes:
    """The schema's map from a content row to the GraphQL object of its datatype."""
    return info.schema.content_nodes


@strawberry.interface(description="What every content node has, whatever its datatype; `... on Article` reaches "
                                  "the typed fields of a datatype's generated type.")
class ContentNode:
    id: int
    slug: str = strawberry.field(description="Unique among its siblings; the last segment of its path.")
    status: ContentStatus
    position: int = strawberry.field(description="Order among its siblings, from 0.")
    created_at: dt.datetime
    updated_at: dt.datetime
    route_id: strawberry.Private[int]
    datatype_id: strawberry.Private[int]
    parent_id: strawberry.Private[int | None]
    author_id: strawberry.Private[int | None]
    tree_path: strawberry.Private[str]  # the slugs from the route's root down ("2026/hello")

    @strawberry.field(description="The route's slug, then the slugs from the root down: /blog/2026/hello "
                                  "(what contentByPath takes).")
    async def path(self, info: CoreInfo) -> str:
        return public_path((await info.context.loaders.route.load(self.route_id))["slug"], self.tree_path)

    @strawberry.field(description="The nodes above this one, root first (those the viewer may see).")
    async def ancestors(self, info: CoreInfo) -> list[ContentNode]:
        rows = await info.context.loaders.ancestors.load((self.route_id, self.tree_path))
        return await content_nodes(info).nodes(info, [row for row in rows if content_visible(info, row)], "ancestors")

    @strawberry.field(description="The other nodes under the same parent (or the route's other roots), in order.")
    async def siblings(self, info: CoreInfo) -> list[ContentNode]:
        rows = await info.context.loaders.siblings.load((self.route_id, self.parent_id))
        return await content_nodes(info).nodes(
            info, [row for row in rows if row["id"] != self.id and content_visible(info, row)], "siblings")

    @strawberry.field(description="The nodes below this one, by id: down to `depth` levels (1: the children; "
                                  "null: all), those `where` lets through.")
    async def descendants(self, info: CoreInfo, depth: int | None = None,
                          where: ContentFilter | None = None) -> list[ContentNode]:
        condition = narrowed(to_where(where, FILTER_COLUMNS, ("where",)), visibility_filter(content_visibility(info)))
        rows = await info.context.loaders.descendants(depth, condition).load((self.route_id, self.tree_path))
        return await content_nodes(info).nodes(info, rows, "descendants")

    @strawberry.field
    async def route(self, info: CoreInfo) -> Route:
        require(info, "read", "route")
        return Route.from_row(await info.context.loaders.route.load(self.route_id))

    @strawberry.field
    async def parent(self, info: CoreInfo) -> ContentNode | None:
        if self.parent_id is None:
            return None
        return await content_nodes(info).visible(info, await info.context.loaders.content.load(self.parent_id))

    @strawberry.field(description="Direct children in their order.")
    async def children(self, info: CoreInfo) -> list[ContentNode]:
        rows = await info.context.loaders.children.load(self.id)
        return await content_nodes(info).nodes(info, [row for row in rows if content_visible(info, row)])

    @strawberry.field(description="Who created the node (needs read permission on users).")
    async def author(self, info: CoreInfo) -> Annotated[User, strawberry.lazy("modula.schema.auth_schema")] | None:
        if self.author_id is None:
            return None
        require(info, "read", "user")
        from modula.schema.auth_schema import User  # auth_schema imports this module

        row = await info.context.loaders.user.load(self.author_id)
        return User.from_row(row) if row else None

    @strawberry.field
    async def datatype(self, info: CoreInfo) -> Datatype:
        require(info, "read", "datatype")
        return Datatype.from_row(await info.context.loaders.datatype.load(self.datatype_id))

    @strawberry.field(description="Field values in the datatype's field order, as canonical text (the generic "
                                  "form; a datatype's generated type also has one typed field per field).")
    async def fields(self, info: CoreInfo) -> list[ContentField]:
        return [ContentField.from_row(row) for row in await info.context.loaders.values.load(self.id)]


@strawberry.type(description="A node of a route's content tree, with its field values (the type of a node whose "
                                   "datatype has no generated type in this schema).")
class Content(ContentNode):
    @classmethod
    def from_row(cls, row: Row) -> Content:
        return cls(id=row["id"], position=row["position"], status=ContentStatus(row["status"]), slug=row["slug"],
                   tree_path=row["tree_path"], created_at=row["created_at"], updated_at=row["updated_at"],
                   route_id=row["route_id"], datatype_id=row["datatype_id"], parent_id=row["parent_id"],
                   author_id=row.get("author_id"))

    @classmethod
    def visible(cls, info: CoreInfo, row: Row | None) -> Content | None:
        """The node if the viewer may read it, else None (a node they may not see does not exist for them)."""
        return cls.from_row(row) if row is not None and content_visible(info, row) else None

    @strawberry.field
    async def parent(self, info: CoreInfo) -> Content | None:
        if self.parent_id is None:
            return None
        return Content.visible(info, await info.context.loaders.content.load(self.parent_id))

    @strawberry.field(description="Direct children in their order.")
    async def children(self, info: CoreInfo) -> list[Content]:
        rows = await info.context.loaders.children.load(self.id)
        return [node for node in (Content.visible(info, row) for row in rows) if node is not None]



@strawberry.type(description="What deleteContent removed.")
class DeleteContentResult:
    deleted_ids: list[int] = strawberry.field(description="The node and its whole subtree.")
